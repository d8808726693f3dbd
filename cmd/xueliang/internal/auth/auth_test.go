package auth

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"xueliang/index"
)

// fastArgon2 keeps the tests quick; production uses DefaultArgon2.
var fastArgon2 = Argon2Params{Memory: 64, Time: 1, Threads: 1}

func TestPasswordHash(t *testing.T) {
	for _, p := range []Argon2Params{fastArgon2, DefaultArgon2} {
		enc, err := HashPassword("correct horse battery", p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(enc, "$argon2id$v=19$") {
			t.Fatalf("encoding %q", enc)
		}
		if !CheckPassword(enc, "correct horse battery") {
			t.Error("right password rejected")
		}
		if CheckPassword(enc, "correct horse batterY") {
			t.Error("wrong password accepted")
		}
		enc2, _ := HashPassword("correct horse battery", p)
		if enc == enc2 {
			t.Error("two hashes of one password are equal: salt not random")
		}
	}
}

// hashCases seed both TestParseHash and FuzzParseHash.
var hashCases = []struct {
	name, enc string
	ok        bool
}{
	{"good", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", true},
	{"empty", "", false},
	{"bcrypt", "$2a$10$abcdefghijklmnopqrstuv", false},
	{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"old version", "$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"huge memory", "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"huge time", "$argon2id$v=19$m=64,t=1000,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"zero threads", "$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"params reordered", "$argon2id$v=19$t=1,m=64,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"short key", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA", false},
	{"bad base64", "$argon2id$v=19$m=64,t=1,p=1$!!!$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"extra field", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g$x", false},
}

func TestParseHash(t *testing.T) {
	for _, tc := range hashCases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := parseHash(tc.enc)
			if (err == nil) != tc.ok {
				t.Fatalf("parseHash(%q) err = %v, want ok=%v", tc.enc, err, tc.ok)
			}
			if !tc.ok && CheckPassword(tc.enc, "") {
				t.Fatal("malformed hash matched")
			}
		})
	}
}

// FuzzParseHash: password hashes are read back from the database; a
// corrupted row must be rejected without panicking or costing more than
// the bounded parameters allow.
func FuzzParseHash(f *testing.F) {
	for _, tc := range hashCases {
		f.Add(tc.enc)
	}
	f.Fuzz(func(t *testing.T, enc string) {
		p, salt, key, err := parseHash(enc)
		if err != nil {
			return
		}
		if p.Memory > maxArgon2Memory || p.Time > 16 || p.Threads > 16 || len(salt) > 64 || len(key) > 64 || len(key) < 16 {
			t.Fatalf("accepted out-of-bounds hash %q: %+v", enc, p)
		}
	})
}

func TestTokens(t *testing.T) {
	a, _ := NewToken()
	b, _ := NewToken()
	if a == b || !looksLikeToken(a) || !strings.HasPrefix(a, TokenPrefix) {
		t.Fatalf("tokens %q %q", a, b)
	}
	if h := HashToken(a); len(h) != 64 || strings.Contains(h, a) || len(TokenID(h)) != 12 {
		t.Fatalf("hash %q", h)
	}
}

func TestCan(t *testing.T) {
	for _, tc := range []struct {
		role, action string
		want         bool
	}{
		{RoleAdmin, "user.admin", true},
		{RoleInstaller, "camera.write", true},
		{RoleInstaller, "replay", false},
		{RoleOperator, "replay", true},
		{RoleOperator, "camera.write", false},
		{RoleAuditor, "audit.read", true},
		{RoleAuditor, "archive.read", false},
		{"", "session", false},
		{"root", "session", false},
	} {
		if got := Can(tc.role, tc.action); got != tc.want {
			t.Errorf("Can(%q, %q) = %v", tc.role, tc.action, got)
		}
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T) (*Service, *clock) {
	t.Helper()
	db, err := index.Open(context.Background(), filepath.Join(t.TempDir(), "index.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c := &clock{t: time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)}
	return &Service{Store: db, BootstrapToken: "bootstrap-token-for-tests", Argon2: fastArgon2, Now: c.now,
		SessionTTL: time.Hour}, c
}

func TestServiceLoginAndTokens(t *testing.T) {
	ctx := context.Background()
	s, c := newService(t)

	// Bootstrap.
	id, err := s.Authenticate(ctx, "bootstrap-token-for-tests")
	if err != nil || id.User != BootstrapUser || id.Role != RoleAdmin {
		t.Fatalf("bootstrap: %+v %v", id, err)
	}
	for _, bad := range []string{"", "bootstrap-token-for-test", "bootstrap-token-for-tests ", "xl_nope"} {
		if _, err := s.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v", bad, err)
		}
	}
	if _, err := (&Service{Store: s.Store}).Authenticate(ctx, ""); !errors.Is(err, ErrUnauthenticated) {
		t.Error("no bootstrap configured: empty token accepted")
	}

	// Validation names each bad field.
	_, err = s.CreateUser(ctx, NewUser{Name: "-x", Role: "root", Password: "short", Townships: []string{"A"}})
	var fe FieldErrors
	if !errors.As(err, &fe) || fe["name"] == "" || fe["role"] == "" || fe["password"] == "" {
		t.Fatalf("field errors: %v", err)
	}
	if _, err := s.CreateUser(ctx, NewUser{Name: "ins", Role: RoleInstaller, Password: "long enough pw", Townships: []string{"A"}}); !errors.As(err, &fe) || fe["townships"] == "" {
		t.Fatalf("townships on an installer: %v", err)
	}
	if _, err := s.CreateUser(ctx, NewUser{Name: "bootstrap", Role: RoleAdmin, Password: "long enough pw"}); !errors.As(err, &fe) {
		t.Fatalf("reserved name: %v", err)
	}

	u, err := s.CreateUser(ctx, NewUser{Name: "li", Role: RoleOperator, Password: "long enough pw", Townships: []string{"Huiting"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, NewUser{Name: "li", Role: RoleOperator, Password: "long enough pw"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if u.Role != RoleOperator || len(u.Townships) != 1 {
		t.Fatalf("user %+v", u)
	}

	// Wrong password, unknown user.
	if _, err := s.Login(ctx, "li", "long enough pW"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := s.Login(ctx, "nobody", "long enough pw"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}

	// Session, expiry.
	sess, err := s.Login(ctx, "li", "long enough pw")
	if err != nil {
		t.Fatal(err)
	}
	id, err = s.Authenticate(ctx, sess.Token)
	if err != nil || id.User != "li" || id.Role != RoleOperator || id.Townships[0] != "Huiting" {
		t.Fatalf("session: %+v %v", id, err)
	}
	c.t = c.t.Add(time.Hour)
	if _, err := s.Authenticate(ctx, sess.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired session accepted: %v", err)
	}

	// API token, revocation.
	issued, err := s.CreateToken(ctx, "li", "script", 0)
	if err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(1000 * time.Hour)
	if _, err := s.Authenticate(ctx, issued.Token); err != nil {
		t.Fatalf("api token: %v", err)
	}
	toks, _ := s.Tokens(ctx, "li")
	if len(toks) != 2 || toks[1].ID != issued.ID || toks[1].LastUsed == nil {
		t.Fatalf("tokens %+v", toks)
	}
	if err := s.RevokeToken(ctx, issued.ID, "someone-else"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke someone else's token: %v", err)
	}
	if err := s.RevokeToken(ctx, issued.ID, "li"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, issued.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("revoked token accepted: %v", err)
	}
	if _, err := s.CreateToken(ctx, BootstrapUser, "x", 0); !errors.As(err, &fe) {
		t.Fatalf("token for bootstrap: %v", err)
	}

	// Disabling a user locks out its tokens; a new password revokes them all.
	issued, _ = s.CreateToken(ctx, "li", "script", time.Hour)
	sess, _ = s.Login(ctx, "li", "long enough pw")
	yes, no := true, false
	if _, err := s.UpdateUser(ctx, "li", UserPatch{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, issued.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal("disabled user's token accepted")
	}
	if _, err := s.Login(ctx, "li", "long enough pw"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal("disabled user logged in")
	}
	pw := "another long pw"
	if _, err := s.UpdateUser(ctx, "li", UserPatch{Disabled: &no, Password: &pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, sess.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal("session survived a password change")
	}
	if _, err := s.Authenticate(ctx, issued.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("api token survived a password change: %v", err)
	}
	if _, err := s.Login(ctx, "li", pw); err != nil {
		t.Fatal(err)
	}

	// Deleting the user revokes everything.
	if err := s.DeleteUser(ctx, "li"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, issued.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal("deleted user's token accepted")
	}
	if toks, _ := s.Tokens(ctx, ""); len(toks) != 0 {
		t.Fatalf("tokens left: %+v", toks)
	}
}

// deletingStore deletes a user right after looking it up: the user is
// deleted while Login checks its password.
type deletingStore struct{ *index.DB }

func (d deletingStore) User(ctx context.Context, name string) (index.User, error) {
	u, err := d.DB.User(ctx, name)
	if err == nil {
		err = d.DB.DeleteUser(ctx, name)
	}
	return u, err
}

// TestLoginUserDeletedMeanwhile: found by TestAPIPropertyRandomRequests (a
// 500 for POST /api/v1/login while DELETE /api/v1/users/{name} ran).
func TestLoginUserDeletedMeanwhile(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	if _, err := s.CreateUser(ctx, NewUser{Name: "wang", Role: RoleOperator, Password: "a long password"}); err != nil {
		t.Fatal(err)
	}
	s.Store = deletingStore{s.Store.(*index.DB)}
	if _, err := s.Login(ctx, "wang", "a long password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("login of a user deleted meanwhile: %v", err)
	}
}
