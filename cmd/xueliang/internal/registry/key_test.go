package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, KeySize)
	for name, in := range map[string][]byte{
		"raw":    key,
		"hex":    []byte(hex.EncodeToString(key) + "\n"),
		"base64": []byte(base64.StdEncoding.EncodeToString(key) + "\n"),
	} {
		got, err := DecodeKey(in)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s: %x %v", name, got, err)
		}
	}
	for _, bad := range []string{"", "short", strings.Repeat("zz", KeySize), base64.StdEncoding.EncodeToString(key[:16])} {
		if _, err := DecodeKey([]byte(bad)); err == nil {
			t.Errorf("DecodeKey(%q) succeeded", bad)
		}
	}
}

func TestLoadSealer(t *testing.T) {
	dir := t.TempDir()
	def := filepath.Join(dir, "data", "secret.key")
	noEnv := func(string) (string, bool) { return "", false }

	// Generated once, 0600, then reused: what it sealed opens again.
	s1, src, err := LoadSealer("", noEnv, def)
	if err != nil || src != KeyGenerated {
		t.Fatalf("first load: %v %v", src, err)
	}
	if fi, err := os.Stat(def); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	sealed, _ := s1.Seal([]byte("pw"))
	s2, src, err := LoadSealer("", noEnv, def)
	if err != nil || src != KeyFromGenerated || s2.KeyID() != s1.KeyID() {
		t.Fatalf("second load: %v %v", src, err)
	}
	if pt, err := s2.Open(sealed); err != nil || string(pt) != "pw" {
		t.Fatalf("open with the reloaded key: %q %v", pt, err)
	}

	// The environment wins over the default file, the key file over both.
	hexKey := strings.Repeat("01", KeySize)
	env := func(k string) (string, bool) { return hexKey, k == EnvCredentialKey }
	s3, src, err := LoadSealer("", env, def)
	if err != nil || src != KeyFromEnv || s3.KeyID() == s1.KeyID() {
		t.Fatalf("env: %v %v", src, err)
	}
	kf := filepath.Join(dir, "key")
	if err := os.WriteFile(kf, bytes.Repeat([]byte{2}, KeySize), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, src, err := LoadSealer(kf, env, def); err != nil || src != KeyFromFile {
		t.Fatalf("key file: %v %v", src, err)
	}
	if err := os.Chmod(kf, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSealer(kf, env, def); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file: %v", err)
	}
}

// TestKeyFileChecks (issue #22.9): the generated key and its directory are
// private; a key in a directory others may write (who could swap it for a
// key they know) is refused.
func TestKeyFileChecks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "secret.key")
	noEnv := func(string) (string, bool) { return "", false }
	if _, src, err := LoadSealer("", noEnv, path); err != nil || src != KeyGenerated {
		t.Fatalf("generate: %v %v", src, err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: %v, want %#o", p, err, want)
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadSealer("", noEnv, path); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Fatalf("key in a world-writable directory: %v", err)
	}
	if _, err := NewSealerFromFile(path); err == nil {
		t.Fatal("NewSealerFromFile accepted the key in a world-writable directory")
	}
	os.Chmod(dir, 0o700)
	if _, err := NewSealerFromFile(path); err != nil {
		t.Fatal(err)
	}
}
