package registry

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DecodeKey reads a credential key in any of the forms a key file may hold:
// 32 raw bytes, 64 hex digits, or standard base64 of 32 bytes (what
// GenerateKey writes). Surrounding whitespace is ignored for the text forms.
func DecodeKey(b []byte) ([]byte, error) {
	if len(b) == KeySize {
		// 32 bytes can be neither 64 hex digits nor base64 of 32 bytes (44
		// characters): it is the raw key.
		return append([]byte(nil), b...), nil
	}
	text := strings.TrimSpace(string(b))
	if len(text) == 2*KeySize {
		if key, err := hex.DecodeString(text); err == nil {
			return key, nil
		}
	}
	if key, err := base64.StdEncoding.DecodeString(text); err == nil && len(key) == KeySize {
		return key, nil
	}
	return nil, fmt.Errorf("%w: want 32 raw bytes, 64 hex digits or base64 of 32 bytes", ErrBadKey)
}

// KeySource says where LoadSealer found the key (never the key itself).
type KeySource string

// Key sources.
const (
	KeyFromFile      KeySource = "file"         // the configured key file
	KeyFromEnv       KeySource = "env"          // EnvCredentialKey
	KeyFromGenerated KeySource = "default file" // data_dir's key, generated earlier
	KeyGenerated     KeySource = "generated"    // data_dir's key, generated now
)

// LoadSealer returns the credential Sealer. The key comes from keyFile when
// it is set, else from the environment variable EnvCredentialKey (read
// through lookup), else from defaultPath, which is created with a new
// random key (mode 0600) when it does not exist. A key file must not be
// readable by group or others.
func LoadSealer(keyFile string, lookup func(string) (string, bool), defaultPath string) (*Sealer, KeySource, error) {
	if keyFile != "" {
		s, err := NewSealerFromFile(keyFile)
		return s, KeyFromFile, err
	}
	if v, ok := lookup(EnvCredentialKey); ok && v != "" {
		key, err := DecodeKey([]byte(v))
		if err != nil {
			return nil, KeyFromEnv, fmt.Errorf("%s: %w", EnvCredentialKey, err)
		}
		s, err := NewSealer(key)
		return s, KeyFromEnv, err
	}
	if _, err := os.Stat(defaultPath); err == nil {
		s, err := NewSealerFromFile(defaultPath)
		return s, KeyFromGenerated, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, KeyFromGenerated, fmt.Errorf("credential key: %w", err)
	}
	text, err := GenerateKey()
	if err != nil {
		return nil, KeyGenerated, fmt.Errorf("credential key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(defaultPath), 0o700); err != nil {
		return nil, KeyGenerated, fmt.Errorf("credential key: %w", err)
	}
	// O_EXCL: two processes starting at once never overwrite each other's key.
	f, err := os.OpenFile(defaultPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, KeyGenerated, fmt.Errorf("credential key: %w", err)
	}
	_, werr := f.WriteString(text + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return nil, KeyGenerated, fmt.Errorf("credential key %s: %w", defaultPath, err)
	}
	s, err := NewSealerFromFile(defaultPath)
	return s, KeyGenerated, err
}
