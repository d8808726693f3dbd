package index

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUsersAndTokens(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
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
