package export

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "export.key")
	k1, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v, %v: want mode 0600", fi, err)
	}
	k2, err := LoadOrCreateKey(p)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("reloaded key differs (%v)", err)
	}
	os.Chmod(p, 0o644)
	if _, err := LoadOrCreateKey(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key accepted: %v", err)
	}
	pub := k1.Public().(ed25519.PublicKey)
	back, err := ParsePublicKey(FormatPublicKey(pub))
	if err != nil || !bytes.Equal(back, pub) {
		t.Errorf("public key round trip: %v", err)
	}
	for _, bad := range []string{"", "ed25519:", "rsa:AAAA", "ed25519:" + base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("ParsePublicKey(%q) accepted", bad)
		}
	}
}

// writePackage writes a signed package with files into a new directory.
func writePackage(t *testing.T, key ed25519.PrivateKey, files map[string][]byte, edit func(*Manifest)) string {
	t.Helper()
	dir := t.TempDir()
	m := Manifest{Format: Format, ID: "0123456789abcdef01234567", Camera: Camera{ID: "cam1"},
		From: time.Unix(1000, 0).UTC(), To: time.Unix(2000, 0).UTC(), PublicKey: FormatPublicKey(key.Public().(ed25519.PublicKey))}
	for name, b := range files {
		sum := sha256.Sum256(b)
		m.Files = append(m.Files, File{Name: name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if edit != nil {
		edit(&m)
	}
	mb, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(dir, ManifestName), mb, 0o644)
	os.WriteFile(filepath.Join(dir, SignatureName), []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(key, mb))), 0o644)
	os.WriteFile(filepath.Join(dir, PublicKeyName), []byte(m.PublicKey), 0o644)
	return dir
}

func TestVerify(t *testing.T) {
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"))
	files := map[string][]byte{"01_a.mp4": bytes.Repeat([]byte("a"), 5000), "02_b.mp4": []byte("bbbb")}
	tests := []struct {
		name   string
		setup  func(t *testing.T) string
		pinned ed25519.PublicKey
		want   string // "" = verified
	}{
		{"intact", func(t *testing.T) string { return writePackage(t, key, files, nil) }, nil, ""},
		{"intact pinned", func(t *testing.T) string { return writePackage(t, key, files, nil) }, key.Public().(ed25519.PublicKey), ""},
		{"other pinned key", func(t *testing.T) string { return writePackage(t, key, files, nil) }, other.Public().(ed25519.PublicKey), "signature"},
		{"file changed", func(t *testing.T) string {
			d := writePackage(t, key, files, nil)
			os.WriteFile(filepath.Join(d, "01_a.mp4"), append(bytes.Repeat([]byte("a"), 4999), 'b'), 0o644)
			return d
		}, nil, "01_a.mp4 has SHA-256"},
		{"file truncated", func(t *testing.T) string {
			d := writePackage(t, key, files, nil)
			os.WriteFile(filepath.Join(d, "02_b.mp4"), []byte("bbb"), 0o644)
			return d
		}, nil, "02_b.mp4 has 3 bytes"},
		{"file missing", func(t *testing.T) string {
			d := writePackage(t, key, files, nil)
			os.Remove(filepath.Join(d, "02_b.mp4"))
			return d
		}, nil, "missing"},
		{"file added", func(t *testing.T) string {
			d := writePackage(t, key, files, nil)
			os.WriteFile(filepath.Join(d, "03_c.mp4"), []byte("c"), 0o644)
			return d
		}, nil, "not in the manifest"},
		{"manifest changed", func(t *testing.T) string {
			d := writePackage(t, key, files, nil)
			p := filepath.Join(d, ManifestName)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"cam1"`), []byte(`"cam2"`), 1), 0o644)
			return d
		}, nil, "signature"},
		{"resigned by another key", func(t *testing.T) string {
			d := writePackage(t, key, files, nil)
			b, _ := os.ReadFile(filepath.Join(d, ManifestName))
			os.WriteFile(filepath.Join(d, SignatureName), []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(other, b))), 0o644)
			return d
		}, nil, "signature"},
		{"path escape", func(t *testing.T) string {
			return writePackage(t, key, files, func(m *Manifest) { m.Files[0].Name = "../x.mp4" })
		}, nil, "bad file name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.setup(t), tc.pinned)
			var ve *VerifyError
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("not verified: %v", err)
			case tc.want != "" && (!errors.As(err, &ve) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want a VerifyError containing %q", err, tc.want)
			}
		})
	}
}

// TestVerifyZipDuplicateEntry: a zip with a second, different copy of a
// listed file fails, though the first copy is intact (extractors disagree
// on which copy they keep).
func TestVerifyZipDuplicateEntry(t *testing.T) {
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "k"))
	if err != nil {
		t.Fatal(err)
	}
	dir := writePackage(t, key, map[string][]byte{"01_a.mp4": []byte("original")}, nil)
	names := []string{ManifestName, SignatureName, PublicKeyName, "01_a.mp4"}
	zp := filepath.Join(t.TempDir(), "p.zip")
	if _, err := zipDir(t.Context(), dir, names, zp); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(zp, nil); err != nil {
		t.Fatalf("intact zip: %v", err)
	}
	f, err := os.Create(zp)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, n := range names {
		b, _ := os.ReadFile(filepath.Join(dir, n))
		w, _ := zw.Create(n)
		w.Write(b)
	}
	w, _ := zw.Create("01_a.mp4")
	w.Write([]byte("tampered"))
	zw.Close()
	f.Close()
	if _, err := Verify(zp, nil); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate entry: %v", err)
	}
}
