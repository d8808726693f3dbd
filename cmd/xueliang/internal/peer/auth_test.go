package peer

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef")
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
	testNow     = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
)

func signedRequest(secret []byte, node string, at time.Time) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "http://n1:8080"+SpoolPath+"cam1/2026/12/07/a.mp4?x=1", nil)
	req.Header.Set("Range", "bytes=100-199")
	Signer{Node: node, Secret: secret, Now: func() time.Time { return at }}.Sign(req)
	return req
}

// TestVerify: only a request signed with the shared secret, unaltered and
// within the skew, is accepted; every other case is refused with the
// matching error.
func TestVerify(t *testing.T) {
	v := Verifier{Secret: testSecret, MaxSkew: time.Minute, Now: func() time.Time { return testNow }}
	cases := []struct {
		name string
		req  func() *http.Request
		want error // nil: accepted
	}{
		{"signed", func() *http.Request { return signedRequest(testSecret, "n2", testNow) }, nil},
		{"clock 59 s behind", func() *http.Request { return signedRequest(testSecret, "n2", testNow.Add(-59*time.Second)) }, nil},
		{"clock 59 s ahead", func() *http.Request { return signedRequest(testSecret, "n2", testNow.Add(59*time.Second)) }, nil},
		{"no header", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			r.Header.Del("Authorization")
			return r
		}, ErrNoAuth},
		{"operator bearer token", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			r.Header.Set("Authorization", "Bearer "+string(testSecret))
			return r
		}, ErrNoAuth},
		{"wrong secret", func() *http.Request { return signedRequest(otherSecret, "n2", testNow) }, ErrBadSignature},
		{"expired", func() *http.Request { return signedRequest(testSecret, "n2", testNow.Add(-2*time.Minute)) }, ErrStale},
		{"from the future", func() *http.Request { return signedRequest(testSecret, "n2", testNow.Add(2*time.Minute)) }, ErrStale},
		{"other path", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			r.URL.Path = SpoolPath + "cam2/2026/12/07/a.mp4"
			return r
		}, ErrBadSignature},
		{"other query", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			r.URL.RawQuery = "x=2"
			return r
		}, ErrBadSignature},
		{"other range", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			r.Header.Set("Range", "bytes=0-")
			return r
		}, ErrBadSignature},
		{"other method", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			r.Method = http.MethodDelete
			return r
		}, ErrBadSignature},
		{"other node named", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "node=n2", "node=n3", 1))
			return r
		}, ErrBadSignature},
		{"time moved", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow.Add(-2*time.Minute))
			h := r.Header.Get("Authorization")
			old := "t=" + itoa(testNow.Add(-2*time.Minute).Unix())
			r.Header.Set("Authorization", strings.Replace(h, old, "t="+itoa(testNow.Unix()), 1))
			return r
		}, ErrBadSignature},
		{"no signature", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			h, _, _ := strings.Cut(r.Header.Get("Authorization"), ", sig=")
			r.Header.Set("Authorization", h)
			return r
		}, ErrBadAuth},
		{"signature not base64url", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			h, _, _ := strings.Cut(r.Header.Get("Authorization"), ", sig=")
			r.Header.Set("Authorization", h+", sig=***")
			return r
		}, ErrBadAuth},
		{"empty signature", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			h, _, _ := strings.Cut(r.Header.Get("Authorization"), ", sig=")
			r.Header.Set("Authorization", h+", sig=")
			return r
		}, ErrBadAuth},
		{"truncated signature", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			h := r.Header.Get("Authorization")
			r.Header.Set("Authorization", h[:len(h)-4])
			return r
		}, ErrBadSignature},
		{"time not a number", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			r.Header.Set("Authorization", Scheme+" node=n2, t=soon, sig=AAAA")
			return r
		}, ErrBadAuth},
		{"unknown parameter", func() *http.Request {
			r := signedRequest(testSecret, "n2", testNow)
			r.Header.Set("Authorization", r.Header.Get("Authorization")+", role=admin")
			return r
		}, ErrBadAuth},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node, err := v.Verify(tc.req())
			switch {
			case tc.want == nil && (err != nil || node != "n2"):
				t.Fatalf("Verify = %q, %v; want n2, nil", node, err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Verify = %q, %v; want %v", node, err, tc.want)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestSignatureIsHMAC pins the signature to HMAC-SHA256 of the fields: a
// receiver written from the documentation computes the same bytes.
func TestSignatureIsHMAC(t *testing.T) {
	r := signedRequest(testSecret, "n2", testNow)
	_, sig, _ := strings.Cut(r.Header.Get("Authorization"), "sig=")
	b, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(b) != 32 {
		t.Fatalf("signature %q: %d bytes, %v; want a 32-byte HMAC-SHA256", sig, len(b), err)
	}
}

func TestLoadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if b, err := LoadSecret(write("ok", "  "+string(testSecret)+"\n", 0o600)); err != nil || string(b) != string(testSecret) {
		t.Errorf("LoadSecret = %q, %v; want the trimmed secret", b, err)
	}
	if _, err := LoadSecret(write("short", "tooshort\n", 0o600)); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("short secret: %v", err)
	}
	if _, err := LoadSecret(write("open", string(testSecret), 0o644)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable secret: %v", err)
	}
	if _, err := LoadSecret(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing secret: %v", err)
	}
}

// FuzzVerify: any Authorization header (and path, range) is parsed
// without panicking, and none is accepted without the secret.
func FuzzVerify(f *testing.F) {
	f.Add(signedRequest(otherSecret, "n2", testNow).Header.Get("Authorization"), SpoolPath+"k", "bytes=0-")
	f.Add(Scheme+" node=n2, t=1, sig=AAAA", "/", "")
	f.Add(Scheme+" node=,t=,sig=", "", "")
	f.Add(Scheme+" ,,,===", "/internal/", "bytes=")
	v := Verifier{Secret: testSecret, Now: func() time.Time { return testNow }}
	f.Fuzz(func(t *testing.T, auth, path, rng string) {
		r := httptest.NewRequest(http.MethodGet, "http://n1/", nil)
		r.URL.Path = path
		r.Header.Set("Authorization", auth)
		r.Header.Set("Range", rng)
		if node, err := v.Verify(r); err == nil {
			t.Fatalf("accepted %q as node %q without the secret", auth, node)
		}
	})
}
