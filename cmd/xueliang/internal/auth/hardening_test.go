package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPasswordResetRevokesAllTokens (issue #22.3): a new password revokes
// the user's sessions and API tokens; disabling alone keeps API tokens for
// re-enabling.
func TestPasswordResetRevokesAllTokens(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	if _, err := s.CreateUser(ctx, NewUser{Name: "li", Role: RoleOperator, Password: "long enough pw"}); err != nil {
		t.Fatal(err)
	}
	api1, _ := s.CreateToken(ctx, "li", "script", 0)
	api2, _ := s.CreateToken(ctx, "li", "nvr-sync", time.Hour)
	sess, err := s.Login(ctx, "li", "long enough pw")
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	s.UpdateUser(ctx, "li", UserPatch{Disabled: &yes})
	s.UpdateUser(ctx, "li", UserPatch{Disabled: &no})
	if _, err := s.Authenticate(ctx, api1.Token); err != nil {
		t.Fatalf("api token after disable + enable: %v", err)
	}
	sess, _ = s.Login(ctx, "li", "long enough pw")
	pw := "a brand new password"
	if _, err := s.UpdateUser(ctx, "li", UserPatch{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"session": sess.Token, "api token": api1.Token, "api token with ttl": api2.Token} {
		if _, err := s.Authenticate(ctx, tok); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s survived the password reset: %v", name, err)
		}
	}
	if toks, _ := s.Tokens(ctx, "li"); len(toks) != 0 {
		t.Fatalf("tokens left: %+v", toks)
	}
}

// TestAPITokenMaxTTL (issue #22.3): a non-admin's API token lives at most
// MaxAPITokenTTL (no ttl: exactly that; longer: refused), also when its
// user was an admin when it was issued; an admin's may never expire.
func TestAPITokenMaxTTL(t *testing.T) {
	ctx := context.Background()
	s, c := newService(t)
	s.MaxAPITokenTTL = 30 * 24 * time.Hour
	for _, nu := range []NewUser{{Name: "op", Role: RoleOperator, Password: "long enough pw"},
		{Name: "boss", Role: RoleAdmin, Password: "long enough pw"}} {
		if _, err := s.CreateUser(ctx, nu); err != nil {
			t.Fatal(err)
		}
	}
	var fe FieldErrors
	if _, err := s.CreateToken(ctx, "op", "x", 31*24*time.Hour); !errors.As(err, &fe) || fe["ttl"] == "" {
		t.Fatalf("ttl over the cap: %v", err)
	}
	tok, err := s.CreateToken(ctx, "op", "x", 0)
	if err != nil || tok.Expires == nil || !tok.Expires.Equal(c.t.Add(30*24*time.Hour)) {
		t.Fatalf("no ttl: %+v %v", tok, err)
	}
	adminTok, err := s.CreateToken(ctx, "boss", "x", 0)
	if err != nil || adminTok.Expires != nil {
		t.Fatalf("admin token: %+v %v", adminTok, err)
	}
	if _, err := s.CreateToken(ctx, "boss", "x", 10*365*24*time.Hour); err != nil {
		t.Fatalf("admin long ttl: %v", err)
	}
	// The admin is demoted: its never-expiring token is held to the cap.
	installer := RoleInstaller
	if _, err := s.UpdateUser(ctx, "boss", UserPatch{Role: &installer}); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(29 * 24 * time.Hour)
	for _, tk := range []string{tok.Token, adminTok.Token} {
		if _, err := s.Authenticate(ctx, tk); err != nil {
			t.Fatalf("within the cap: %v", err)
		}
	}
	c.t = c.t.Add(2 * 24 * time.Hour)
	for name, tk := range map[string]string{"operator's": tok.Token, "demoted admin's": adminTok.Token} {
		if _, err := s.Authenticate(ctx, tk); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s token past the cap: %v", name, err)
		}
	}
}

// TestBootstrapStopsWithAdmin (issue #22.3): the bootstrap token is an
// admin until an enabled admin exists; a disabled admin does not count.
func TestBootstrapStopsWithAdmin(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	const boot = "bootstrap-token-for-tests"
	if id, err := s.Authenticate(ctx, boot); err != nil || id.User != BootstrapUser {
		t.Fatalf("fresh install: %+v %v", id, err)
	}
	if _, err := s.CreateUser(ctx, NewUser{Name: "op", Role: RoleOperator, Password: "long enough pw"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, NewUser{Name: "boss", Role: RoleAdmin, Password: "long enough pw", Disabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, boot); err != nil {
		t.Fatalf("only a disabled admin: %v", err)
	}
	no := false
	if _, err := s.UpdateUser(ctx, "boss", UserPatch{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, boot); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("bootstrap token with an enabled admin: %v", err)
	}
}
