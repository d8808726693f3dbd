package index

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func testUsersAndTokens(t *testing.T, be *backend) {
	ctx := context.Background()
	db := be.open(t)
	now := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	u := User{Name: "li", Role: "operator", Townships: []string{"Huiting", "会亭镇"}, PasswordHash: "$argon2id$x", Created: now}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, u); !errors.Is(err, ErrUserExists) {
		t.Fatalf("duplicate: %v", err)
	}
	got, err := db.User(ctx, "li")
	if err != nil || got.Role != "operator" || len(got.Townships) != 2 || got.Townships[1] != "会亭镇" || !got.Created.Equal(now) {
		t.Fatalf("user %+v %v", got, err)
	}
	if _, err := db.User(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := db.UpdateUser(ctx, User{Name: "nobody"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if err := db.CreateToken(ctx, Token{Hash: "h1", User: "li", Kind: "session", Created: now, Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateToken(ctx, Token{Hash: "h2", User: "nobody", Kind: "api", Created: now}); err == nil {
		t.Fatal("token of an unknown user stored")
	}
	if n, err := db.DeleteExpiredTokens(ctx, now.Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("expired: %d %v", n, err)
	}
	if err := db.CreateToken(ctx, Token{Hash: "h3", User: "li", Kind: "api", Created: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, User{Name: "wang", Role: "viewer", PasswordHash: "$argon2id$y", Created: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateToken(ctx, Token{Hash: "h4", User: "wang", Kind: "api", Created: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	// The user filter compares the column (on PostgreSQL an unquoted user
	// is CURRENT_USER).
	for who, want := range map[string]string{"li": "h3", "wang": "h4", "": "h3,h4"} {
		toks, err := db.Tokens(ctx, who)
		var hashes []string
		for _, tk := range toks {
			hashes = append(hashes, tk.Hash)
			if who != "" && tk.User != who {
				t.Errorf("Tokens(%q) returned a token of %q", who, tk.User)
			}
		}
		if got := strings.Join(hashes, ","); err != nil || got != want {
			t.Errorf("Tokens(%q) = %s, %v; want %s", who, got, err, want)
		}
	}
	if err := db.DeleteUser(ctx, "li"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TokenByHash(ctx, "h3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token outlived its user: %v", err)
	}
}

// TestCreateTokenUnknownUser: a token for a user that does not exist (one
// deleted while a login checked its password) is ErrNotFound, not an
// internal error.
func TestCreateTokenUnknownUser(t *testing.T) {
	db := openTest(t)
	err := db.CreateToken(context.Background(), Token{Hash: "h", User: "ghost", Kind: "session", Created: time.Now()})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("CreateToken for a missing user: %v", err)
	}
}
