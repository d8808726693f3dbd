package registry

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnvCredentialKey is the environment variable NewSealerFromEnv reads.
const EnvCredentialKey = "XUELIANG_CREDENTIAL_KEY"

// KeySize is the size of a credential key (AES-256).
const KeySize = 32

// Sealed format, version 1:
//
//	xlseal:v1:<kid>:<payload>
//
// kid is the first 8 hex digits of SHA-256(key), so that a credential sealed
// with another key is reported as such rather than as tampering; payload is
// unpadded base64url of nonce (12 random bytes) ‖ AES-256-GCM ciphertext ‖
// tag. The "xlseal:v1:<kid>:" header is the GCM additional data, so the
// version and key ID cannot be swapped.
const (
	sealPrefix  = "xlseal:"
	sealVersion = "v1"
	kidLen      = 8
	nonceLen    = 12
	tagLen      = 16
)

// Errors of Open and of key loading.
var (
	// ErrSealedFormat: the text is not a sealed credential.
	ErrSealedFormat = errors.New("malformed sealed credential")
	// ErrSealedVersion: a sealed credential of a version this build cannot open.
	ErrSealedVersion = errors.New("unsupported sealed credential version")
	// ErrWrongKey: the credential was sealed with another key.
	ErrWrongKey = errors.New("credential sealed with another key")
	// ErrTampered: the ciphertext does not authenticate under this key.
	ErrTampered = errors.New("sealed credential fails authentication")
	// ErrBadKey: the key is not 32 bytes of standard base64.
	ErrBadKey = errors.New("bad credential key")
)

// Sealer seals and opens camera credentials with one AES-256-GCM key. It is
// safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
	kid  string
}

// NewSealer returns a Sealer for a raw 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: want %d bytes, got %d", ErrBadKey, KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	sum := sha256.Sum256(key)
	return &Sealer{aead: aead, kid: hex.EncodeToString(sum[:])[:kidLen]}, nil
}

// ParseKey decodes a key written as standard base64 of 32 bytes
// (surrounding whitespace allowed, as in a file ending with a newline).
func ParseKey(text string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("%w: not standard base64", ErrBadKey)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: want %d bytes, got %d", ErrBadKey, KeySize, len(key))
	}
	return key, nil
}

// GenerateKey returns a new random key in the form ParseKey reads.
func GenerateKey() (string, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(key), nil
}

// NewSealerFromFile reads the key from path (32 raw bytes, 64 hex digits or
// base64, see DecodeKey). The file must not be readable by group or others.
func NewSealerFromFile(path string) (*Sealer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("credential key %s: mode %#o lets others read it; chmod 600", path, fi.Mode().Perm())
	}
	if uid, foreign := foreignOwner(fi); foreign {
		return nil, fmt.Errorf("credential key %s: owned by uid %d, not by the server's user", path, uid)
	}
	// Whoever may write the directory may swap the key for one they know.
	dir := filepath.Dir(path)
	if di, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	} else if di.Mode().Perm()&0o022 != 0 && di.Mode()&fs.ModeSticky == 0 {
		return nil, fmt.Errorf("credential key %s: directory %s (mode %#o) is writable by others; chmod go-w %s",
			path, dir, di.Mode().Perm(), dir)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	key, err := DecodeKey(b)
	if err != nil {
		return nil, fmt.Errorf("credential key %s: %w", path, err)
	}
	return NewSealer(key)
}

// NewSealerFromEnv reads the key from EnvCredentialKey through lookup
// (os.LookupEnv in production).
func NewSealerFromEnv(lookup func(string) (string, bool)) (*Sealer, error) {
	v, ok := lookup(EnvCredentialKey)
	if !ok || v == "" {
		return nil, fmt.Errorf("%w: %s is not set", ErrBadKey, EnvCredentialKey)
	}
	key, err := ParseKey(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvCredentialKey, err)
	}
	return NewSealer(key)
}

// KeyID returns the key's identifier as written in sealed credentials.
func (s *Sealer) KeyID() string { return s.kid }

// Seal encrypts plaintext under a fresh random nonce.
func (s *Sealer) Seal(plaintext []byte) (string, error) {
	nonce := make([]byte, nonceLen, nonceLen+len(plaintext)+tagLen)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	header := sealPrefix + sealVersion + ":" + s.kid + ":"
	out := s.aead.Seal(nonce, nonce, plaintext, []byte(header))
	return header + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a credential sealed by Seal with the same key. The error
// wraps ErrSealedFormat, ErrSealedVersion, ErrWrongKey or ErrTampered.
func (s *Sealer) Open(sealed string) ([]byte, error) {
	p, err := parseSealed(sealed)
	if err != nil {
		return nil, err
	}
	if p.kid != s.kid {
		return nil, fmt.Errorf("%w: key %s, this key is %s", ErrWrongKey, p.kid, s.kid)
	}
	pt, err := s.aead.Open(nil, p.nonce, p.ciphertext, []byte(p.header))
	if err != nil {
		return nil, ErrTampered
	}
	return pt, nil
}

type sealedParts struct {
	header            string // authenticated: "xlseal:v1:<kid>:"
	kid               string
	nonce, ciphertext []byte
}

// parseSealed splits a sealed credential; it never panics (fuzzed).
func parseSealed(s string) (sealedParts, error) {
	rest, ok := strings.CutPrefix(s, sealPrefix)
	if !ok {
		return sealedParts{}, fmt.Errorf("%w: missing %q prefix", ErrSealedFormat, sealPrefix)
	}
	version, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return sealedParts{}, fmt.Errorf("%w: missing version", ErrSealedFormat)
	}
	if version != sealVersion {
		if len(version) > 8 {
			version = version[:8] + "…"
		}
		return sealedParts{}, fmt.Errorf("%w %q (want %s)", ErrSealedVersion, version, sealVersion)
	}
	kid, payload, ok := strings.Cut(rest, ":")
	if !ok || len(kid) != kidLen || strings.ContainsFunc(kid, func(r rune) bool { return !strings.ContainsRune("0123456789abcdef", r) }) {
		return sealedParts{}, fmt.Errorf("%w: bad key ID", ErrSealedFormat)
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return sealedParts{}, fmt.Errorf("%w: payload is not base64url", ErrSealedFormat)
	}
	if len(raw) < nonceLen+tagLen {
		return sealedParts{}, fmt.Errorf("%w: payload too short (%d bytes)", ErrSealedFormat, len(raw))
	}
	return sealedParts{
		header:     sealPrefix + sealVersion + ":" + kid + ":",
		kid:        kid,
		nonce:      raw[:nonceLen],
		ciphertext: raw[nonceLen:],
	}, nil
}
