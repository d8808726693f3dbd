package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"xueliang/cmd/xueliang/internal/audit"
	"xueliang/index"
)

// Sentinel errors; test with errors.Is. The API maps them to statuses.
var (
	// ErrUnauthenticated: no token, an unknown, expired or revoked token,
	// or a disabled user.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrBadCredentials: login with an unknown user or a wrong password.
	ErrBadCredentials = errors.New("bad user name or password")
	// ErrNotFound: no such user or token.
	ErrNotFound = index.ErrNotFound
	// ErrExists: the user name is taken.
	ErrExists = index.ErrUserExists
)

// FieldErrors is a validation failure: field → problem. The API answers 400
// naming each field.
type FieldErrors map[string]string

func (f FieldErrors) Error() string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+f[k])
	}
	return "invalid: " + strings.Join(parts, "; ")
}

// BootstrapUser is the user name of the bootstrap token's principal; no
// stored user may take it.
const BootstrapUser = "bootstrap"

// Store is what Service keeps in the index (*index.DB).
type Store interface {
	CreateUser(ctx context.Context, u index.User) error
	UpdateUser(ctx context.Context, u index.User) error
	DeleteUser(ctx context.Context, name string) error
	User(ctx context.Context, name string) (index.User, error)
	Users(ctx context.Context) ([]index.User, error)
	CreateToken(ctx context.Context, t index.Token) error
	TokenByHash(ctx context.Context, hash string) (index.Token, error)
	Tokens(ctx context.Context, user string) ([]index.Token, error)
	TouchToken(ctx context.Context, hash string, at time.Time) error
	DeleteToken(ctx context.Context, hash string) error
	DeleteExpiredTokens(ctx context.Context, now time.Time) (int64, error)
	AppendAudit(ctx context.Context, rec index.AuditRecord, seal func(*index.AuditRecord)) (index.AuditRecord, error)
	QueryAudit(ctx context.Context, q index.AuditQuery) ([]index.AuditRecord, error)
}

// Service authenticates callers and administers users and tokens. Fill the
// fields; the zero values of the optional ones are replaced by defaults on
// first use.
type Service struct {
	Store Store
	// BootstrapToken, when not empty, authenticates as an admin named
	// "bootstrap", so that a fresh install can create the first users.
	BootstrapToken string
	// SessionTTL is the lifetime of a login session. It defaults to 12h.
	SessionTTL time.Duration
	// MaxAPITokenTTL is the longest lifetime of an API token of a user who
	// is not an admin: a token asked without a lifetime gets this one, a
	// longer one is refused. It defaults to 90 days (2160h).
	MaxAPITokenTTL time.Duration
	// Argon2 are the cost parameters of new password hashes. They default
	// to DefaultArgon2.
	Argon2 Argon2Params
	// Now is the clock. It defaults to time.Now.
	Now    func() time.Time
	Logger *slog.Logger

	once      sync.Once
	dummyHash string // compared against for unknown users (timing)
	bootHash  [32]byte
	// hashing bounds concurrent password hashes (each takes Argon2.Memory):
	// a flood of logins queues instead of exhausting memory.
	hashing chan struct{}
}

// DefaultMaxAPITokenTTL is Service.MaxAPITokenTTL's default.
const DefaultMaxAPITokenTTL = 90 * 24 * time.Hour

// maxConcurrentHashes bounds the password hashes computed at once.
const maxConcurrentHashes = 4

func (s *Service) init() {
	s.once.Do(func() {
		if s.SessionTTL <= 0 {
			s.SessionTTL = 12 * time.Hour
		}
		if s.MaxAPITokenTTL <= 0 {
			s.MaxAPITokenTTL = DefaultMaxAPITokenTTL
		}
		if s.Argon2 == (Argon2Params{}) {
			s.Argon2 = DefaultArgon2
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
		s.dummyHash, _ = HashPassword("not a password of anyone", s.Argon2)
		s.bootHash = sha256.Sum256([]byte(s.BootstrapToken))
		s.hashing = make(chan struct{}, maxConcurrentHashes)
	})
}

// Authenticate returns the identity a bearer token stands for, or
// ErrUnauthenticated.
func (s *Service) Authenticate(ctx context.Context, tok string) (Identity, error) {
	s.init()
	if tok == "" {
		return Identity{}, ErrUnauthenticated
	}
	if s.BootstrapToken != "" {
		h := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(h[:], s.bootHash[:]) == 1 {
			// The bootstrap token exists to create the first admin; once
			// an enabled one exists it is refused (a leaked install
			// secret must not stay an admin forever).
			has, err := s.hasEnabledAdmin(ctx)
			if err != nil {
				return Identity{}, fmt.Errorf("authenticate: %w", err)
			}
			if has {
				s.Logger.Warn("bootstrap token refused: an enabled admin exists; remove it from the configuration")
				return Identity{}, ErrUnauthenticated
			}
			return Identity{User: BootstrapUser, Role: RoleAdmin}, nil
		}
	}
	if !looksLikeToken(tok) {
		return Identity{}, ErrUnauthenticated
	}
	hash := HashToken(tok)
	t, err := s.Store.TokenByHash(ctx, hash)
	if errors.Is(err, index.ErrNotFound) {
		return Identity{}, ErrUnauthenticated
	}
	if err != nil {
		return Identity{}, fmt.Errorf("authenticate: %w", err)
	}
	now := s.Now()
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return Identity{}, ErrUnauthenticated
	}
	u, err := s.Store.User(ctx, t.User)
	if errors.Is(err, index.ErrNotFound) {
		return Identity{}, ErrUnauthenticated
	}
	if err != nil {
		return Identity{}, fmt.Errorf("authenticate: %w", err)
	}
	if u.Disabled {
		return Identity{}, ErrUnauthenticated
	}
	// The lifetime cap holds also for a token issued while its user was an
	// admin (or before the cap existed).
	if t.Kind == KindAPI && u.Role != RoleAdmin && !now.Before(t.Created.Add(s.MaxAPITokenTTL)) {
		return Identity{}, ErrUnauthenticated
	}
	// Last use is kept to the minute: a write per request would contend
	// with recording on the index's single writer.
	if now.Sub(t.LastUsed) > time.Minute {
		if err := s.Store.TouchToken(ctx, hash, now); err != nil {
			s.Logger.Warn("token last use not recorded", "user", u.Name, "err", err)
		}
	}
	return Identity{User: u.Name, Role: u.Role, Townships: u.Townships, TokenID: TokenID(hash)}, nil
}

// hasEnabledAdmin reports whether a user with the admin role is enabled.
func (s *Service) hasEnabledAdmin(ctx context.Context) (bool, error) {
	us, err := s.Store.Users(ctx)
	if err != nil {
		return false, err
	}
	for _, u := range us {
		if u.Role == RoleAdmin && !u.Disabled {
			return true, nil
		}
	}
	return false, nil
}

// Session is a login's answer.
type Session struct {
	Token    string
	Expires  time.Time
	Identity Identity
}

// Login checks a user's password and issues a session token.
func (s *Service) Login(ctx context.Context, user, password string) (Session, error) {
	s.init()
	select {
	case s.hashing <- struct{}{}:
		defer func() { <-s.hashing }()
	case <-ctx.Done():
		return Session{}, ctx.Err()
	}
	u, err := s.Store.User(ctx, user)
	switch {
	case errors.Is(err, index.ErrNotFound) || user == "":
		CheckPassword(s.dummyHash, password) // same time as a wrong password
		return Session{}, ErrBadCredentials
	case err != nil:
		return Session{}, fmt.Errorf("login: %w", err)
	}
	if !CheckPassword(u.PasswordHash, password) || u.Disabled {
		return Session{}, ErrBadCredentials
	}
	now := s.Now()
	if _, err := s.Store.DeleteExpiredTokens(ctx, now); err != nil {
		s.Logger.Warn("expired tokens not removed", "err", err)
	}
	tok, err := NewToken()
	if err != nil {
		return Session{}, err
	}
	t := index.Token{Hash: HashToken(tok), User: u.Name, Kind: KindSession, Name: "login",
		Created: now, Expires: now.Add(s.SessionTTL), LastUsed: now}
	if err := s.Store.CreateToken(ctx, t); errors.Is(err, index.ErrNotFound) {
		return Session{}, ErrBadCredentials // deleted while its password was checked
	} else if err != nil {
		return Session{}, fmt.Errorf("login: %w", err)
	}
	return Session{Token: tok, Expires: t.Expires,
		Identity: Identity{User: u.Name, Role: u.Role, Townships: u.Townships, TokenID: TokenID(t.Hash)}}, nil
}

// Logout revokes tok (a no-op for the bootstrap token).
func (s *Service) Logout(ctx context.Context, tok string) error {
	s.init()
	err := s.Store.DeleteToken(ctx, HashToken(tok))
	if err != nil && !errors.Is(err, index.ErrNotFound) {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// UserInfo is a user without its password hash.
type UserInfo struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Townships []string  `json:"townships"`
	Disabled  bool      `json:"disabled"`
	Created   time.Time `json:"created"`
}

func userInfo(u index.User) UserInfo {
	t := u.Townships
	if t == nil {
		t = []string{}
	}
	return UserInfo{Name: u.Name, Role: u.Role, Townships: t, Disabled: u.Disabled, Created: u.Created}
}

// Users lists every user.
func (s *Service) Users(ctx context.Context) ([]UserInfo, error) {
	us, err := s.Store.Users(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]UserInfo, 0, len(us))
	for _, u := range us {
		out = append(out, userInfo(u))
	}
	return out, nil
}

// User returns one user or ErrNotFound.
func (s *Service) User(ctx context.Context, name string) (UserInfo, error) {
	u, err := s.Store.User(ctx, name)
	if err != nil {
		return UserInfo{}, err
	}
	return userInfo(u), nil
}

// NewUser is a user to create.
type NewUser struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`
	Password  string   `json:"password"`
	Townships []string `json:"townships"`
	Disabled  bool     `json:"disabled"`
}

// UserPatch changes the fields that are not nil.
type UserPatch struct {
	Role      *string   `json:"role"`
	Password  *string   `json:"password"`
	Townships *[]string `json:"townships"`
	Disabled  *bool     `json:"disabled"`
}

var userNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidUserName reports whether name is a well-formed user name (the
// bootstrap principal's included); no stored user has any other.
func ValidUserName(name string) bool { return userNameRe.MatchString(name) }

func validate(fe FieldErrors, name, role string, password *string, townships []string) {
	if !userNameRe.MatchString(name) {
		fe["name"] = "want 1-64 of [A-Za-z0-9._@-] starting with a letter or digit"
	} else if name == BootstrapUser {
		fe["name"] = "\"bootstrap\" is reserved"
	}
	if !ValidRole(role) {
		fe["role"] = "want one of " + strings.Join(Roles, ", ")
	}
	if password != nil && (len(*password) < MinPasswordLen || len(*password) > MaxPasswordLen) {
		fe["password"] = fmt.Sprintf("want %d to %d characters", MinPasswordLen, MaxPasswordLen)
	}
	if len(townships) > 0 && role != RoleOperator && ValidRole(role) {
		fe["townships"] = "only an operator can be limited to townships"
	}
	for _, t := range townships {
		if t == "" || strings.ContainsAny(t, ",\n") || len(t) > 128 {
			fe["townships"] = "each township must be 1-128 characters without commas"
		}
	}
}

// CreateUser validates nu (a *FieldErrors for bad fields) and stores it.
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (UserInfo, error) {
	s.init()
	fe := FieldErrors{}
	validate(fe, nu.Name, nu.Role, &nu.Password, nu.Townships)
	if len(fe) > 0 {
		return UserInfo{}, fe
	}
	hash, err := HashPassword(nu.Password, s.Argon2)
	if err != nil {
		return UserInfo{}, err
	}
	u := index.User{Name: nu.Name, Role: nu.Role, Townships: slices.Clone(nu.Townships), PasswordHash: hash,
		Disabled: nu.Disabled, Created: s.Now().UTC()}
	if err := s.Store.CreateUser(ctx, u); err != nil {
		return UserInfo{}, err
	}
	return userInfo(u), nil
}

// UpdateUser applies p to an existing user. A new password revokes all of
// the user's tokens, sessions and API tokens; disabling the user ends its
// sessions (its API tokens stay, but a disabled user's tokens do not
// authenticate).
func (s *Service) UpdateUser(ctx context.Context, name string, p UserPatch) (UserInfo, error) {
	s.init()
	u, err := s.Store.User(ctx, name)
	if err != nil {
		return UserInfo{}, err
	}
	if p.Role != nil {
		u.Role = *p.Role
		if u.Role != RoleOperator && p.Townships == nil {
			u.Townships = nil
		}
	}
	if p.Townships != nil {
		u.Townships = slices.Clone(*p.Townships)
	}
	if p.Disabled != nil {
		u.Disabled = *p.Disabled
	}
	fe := FieldErrors{}
	validate(fe, u.Name, u.Role, p.Password, u.Townships)
	if len(fe) > 0 {
		return UserInfo{}, fe
	}
	if p.Password != nil {
		if u.PasswordHash, err = HashPassword(*p.Password, s.Argon2); err != nil {
			return UserInfo{}, err
		}
	}
	if err := s.Store.UpdateUser(ctx, u); err != nil {
		return UserInfo{}, err
	}
	if p.Password != nil || (p.Disabled != nil && *p.Disabled) {
		toks, err := s.Store.Tokens(ctx, u.Name)
		if err != nil {
			return UserInfo{}, err
		}
		for _, t := range toks {
			// A password reset (the answer to a leaked account) revokes
			// every token; disabling ends sessions only.
			if t.Kind == KindSession || p.Password != nil {
				if err := s.Store.DeleteToken(ctx, t.Hash); err != nil && !errors.Is(err, index.ErrNotFound) {
					return UserInfo{}, err
				}
			}
		}
	}
	return userInfo(u), nil
}

// DeleteUser deletes a user and revokes its tokens.
func (s *Service) DeleteUser(ctx context.Context, name string) error {
	return s.Store.DeleteUser(ctx, name)
}

// TokenInfo describes a token without its secret.
type TokenInfo struct {
	ID       string     `json:"id"`
	User     string     `json:"user"`
	Kind     string     `json:"kind"`
	Name     string     `json:"name"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires,omitempty"`
	LastUsed *time.Time `json:"last_used,omitempty"`
}

func tokenInfo(t index.Token) TokenInfo {
	ti := TokenInfo{ID: TokenID(t.Hash), User: t.User, Kind: t.Kind, Name: t.Name, Created: t.Created}
	if !t.Expires.IsZero() {
		e := t.Expires
		ti.Expires = &e
	}
	if !t.LastUsed.IsZero() {
		l := t.LastUsed
		ti.LastUsed = &l
	}
	return ti
}

// Tokens lists the tokens of user ("" = every user).
func (s *Service) Tokens(ctx context.Context, user string) ([]TokenInfo, error) {
	ts, err := s.Store.Tokens(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]TokenInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenInfo(t))
	}
	return out, nil
}

// IssuedToken is a new API token: the secret is shown once.
type IssuedToken struct {
	Token string `json:"token"`
	TokenInfo
}

// CreateToken issues a long-lived API token for user. ttl 0 never expires
// for an admin; for anyone else it is MaxAPITokenTTL, and a longer ttl is
// a FieldErrors.
func (s *Service) CreateToken(ctx context.Context, user, name string, ttl time.Duration) (IssuedToken, error) {
	s.init()
	fe := FieldErrors{}
	if user == BootstrapUser {
		fe["user"] = "the bootstrap token cannot own tokens: create a user first"
	}
	if name == "" || len(name) > 128 {
		fe["name"] = "want 1-128 characters"
	}
	if ttl < 0 {
		fe["ttl"] = "must not be negative"
	}
	if len(fe) == 0 {
		u, err := s.Store.User(ctx, user)
		if err != nil {
			return IssuedToken{}, err
		}
		if u.Role != RoleAdmin {
			switch {
			case ttl == 0:
				ttl = s.MaxAPITokenTTL
			case ttl > s.MaxAPITokenTTL:
				fe["ttl"] = fmt.Sprintf("at most %s for a %s", s.MaxAPITokenTTL, u.Role)
			}
		}
	}
	if len(fe) > 0 {
		return IssuedToken{}, fe
	}
	tok, err := NewToken()
	if err != nil {
		return IssuedToken{}, err
	}
	now := s.Now().UTC()
	t := index.Token{Hash: HashToken(tok), User: user, Kind: KindAPI, Name: name, Created: now}
	if ttl > 0 {
		t.Expires = now.Add(ttl)
	}
	if err := s.Store.CreateToken(ctx, t); err != nil {
		return IssuedToken{}, err
	}
	return IssuedToken{Token: tok, TokenInfo: tokenInfo(t)}, nil
}

// RevokeToken revokes the token with this id, which must belong to user
// ("" = any user); ErrNotFound otherwise.
func (s *Service) RevokeToken(ctx context.Context, id, user string) error {
	ts, err := s.Store.Tokens(ctx, user)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if TokenID(t.Hash) == id {
			return s.Store.DeleteToken(ctx, t.Hash)
		}
	}
	return fmt.Errorf("token %s: %w", id, ErrNotFound)
}

// AppendAudit appends rec to the hash-chained audit log.
func (s *Service) AppendAudit(ctx context.Context, rec index.AuditRecord) error {
	_, err := s.Store.AppendAudit(ctx, rec, audit.Seal)
	return err
}

// QueryAudit returns audit entries, newest first.
func (s *Service) QueryAudit(ctx context.Context, q index.AuditQuery) ([]index.AuditRecord, error) {
	return s.Store.QueryAudit(ctx, q)
}
