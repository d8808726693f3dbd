package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// TokenPrefix starts every token this server issues, so that a leaked
// token is recognisable (secret scanners, logs).
const TokenPrefix = "xl_"

// Token kinds.
const (
	KindSession = "session"
	KindAPI     = "api"
)

// NewToken returns a fresh token: TokenPrefix + base64url of 32 random bytes.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashToken is what the index stores for a token: lowercase hex SHA-256.
// Tokens carry 256 bits of entropy, so a fast hash is enough.
func HashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// TokenID is the non-secret id of a token: the first 12 hex digits of its
// hash. It names a token in the API and the audit log.
func TokenID(hash string) string {
	if len(hash) < 12 {
		return hash
	}
	return hash[:12]
}

// looksLikeToken rejects obviously foreign bearer values early.
func looksLikeToken(tok string) bool {
	return strings.HasPrefix(tok, TokenPrefix) && len(tok) == len(TokenPrefix)+43
}
