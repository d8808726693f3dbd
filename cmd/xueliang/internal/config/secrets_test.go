package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretsKeyFile(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte(strings.Repeat("ab", 32)), 0o644); err != nil {
		t.Fatal(err)
	}
	parse := func() error {
		_, err := Parse([]byte("secrets:\n  key_file: "+key+"\n"), nil)
		return err
	}
	if err := parse(); err == nil || !strings.Contains(err.Error(), "secrets.key_file") || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file: %v", err)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := parse(); err != nil {
		t.Fatal(err)
	}
	os.Remove(key)
	if err := parse(); err == nil || !strings.Contains(err.Error(), "secrets.key_file") {
		t.Fatalf("missing key file: %v", err)
	}
	cfg, err := Parse(nil, []string{"XUELIANG_SECRETS_KEY_FILE=" + filepath.Join(dir, "nope")})
	if err == nil {
		t.Fatalf("env override of a missing key file accepted: %+v", cfg.Secrets)
	}
	if d := Default(); d.Secrets.KeyFile != "" {
		t.Fatal("a default key file is set")
	}
	if c := (Config{DataDir: "/d"}); c.DefaultKeyFile() != "/d/secret.key" {
		t.Fatal(c.DefaultKeyFile())
	}
}
