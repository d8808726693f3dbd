package registry

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testSealer(t testing.TB, fill byte) *Sealer {
	t.Helper()
	s, err := NewSealer(bytes.Repeat([]byte{fill}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTrip(t *testing.T) {
	s := testSealer(t, 1)
	for _, pt := range [][]byte{nil, []byte("admin:hik12345"), bytes.Repeat([]byte("x"), 4096)} {
		a, err := s.Seal(pt)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := s.Seal(pt)
		if a == b {
			t.Fatal("two seals of the same plaintext are equal: nonce not random")
		}
		if !strings.HasPrefix(a, "xlseal:v1:"+s.KeyID()+":") {
			t.Fatalf("format %q", a)
		}
		if len(pt) > 0 && strings.Contains(a, string(pt)) {
			t.Fatal("plaintext visible in sealed text")
		}
		got, err := s.Open(a)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Open = %q, %v; want %q", got, err, pt)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	s := testSealer(t, 1)
	other := testSealer(t, 2)
	good, err := s.Seal([]byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	payload := good[strings.LastIndex(good, ":")+1:]
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-1] ^= 1
	cases := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrSealedFormat},
		{"plaintext password", "hik12345", ErrSealedFormat},
		{"no version", "xlseal:", ErrSealedFormat},
		{"future version", strings.Replace(good, ":v1:", ":v2:", 1), ErrSealedVersion},
		{"no kid", "xlseal:v1:" + payload, ErrSealedFormat},
		{"uppercase kid", "xlseal:v1:" + strings.ToUpper(s.KeyID()) + ":" + payload, ErrSealedFormat},
		{"padded base64", good + "==", ErrSealedFormat},
		{"std base64 chars", "xlseal:v1:" + s.KeyID() + ":" + strings.Repeat("+", 40), ErrSealedFormat},
		{"too short", "xlseal:v1:" + s.KeyID() + ":" + base64.RawURLEncoding.EncodeToString(make([]byte, 27)), ErrSealedFormat},
		{"other key", mustSeal(t, other, "secret"), ErrWrongKey},
		{"flipped tag bit", "xlseal:v1:" + s.KeyID() + ":" + base64.RawURLEncoding.EncodeToString(flipped), ErrTampered},
		{"kid swapped to another key's", "xlseal:v1:" + other.KeyID() + ":" + payload, ErrWrongKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := s.Open(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open(%q) = %q, %v; want %v", tc.in, pt, err, tc.want)
			}
		})
	}
	// The same payload under the other key's ID, opened with the other key,
	// must not authenticate (the key ID is additional data).
	if _, err := other.Open("xlseal:v1:" + other.KeyID() + ":" + payload); !errors.Is(err, ErrTampered) {
		t.Fatalf("cross-key open: %v", err)
	}
}

func mustSeal(t *testing.T, s *Sealer, pt string) string {
	t.Helper()
	out, err := s.Seal([]byte(pt))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKeyLoading(t *testing.T) {
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := NewSealerFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fromEnv, err := NewSealerFromEnv(func(k string) (string, bool) {
		if k == EnvCredentialKey {
			return key, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	sealed := mustSeal(t, fromFile, "pw")
	if pt, err := fromEnv.Open(sealed); err != nil || string(pt) != "pw" {
		t.Fatalf("env sealer cannot open file sealer's credential: %q %v", pt, err)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewSealerFromFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
	if _, err := NewSealerFromEnv(func(string) (string, bool) { return "", false }); !errors.Is(err, ErrBadKey) {
		t.Fatalf("missing env: %v", err)
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 16)), base64.RawStdEncoding.EncodeToString(make([]byte, 31))} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseKey(%q) = %v, want ErrBadKey", bad, err)
		}
	}
	if _, err := NewSealer(make([]byte, 16)); !errors.Is(err, ErrBadKey) {
		t.Fatalf("16-byte key: %v", err)
	}
}

func FuzzOpenSealed(f *testing.F) {
	s := testSealer(f, 1)
	for _, pt := range []string{"", "admin:12345", "密码"} {
		sealed, err := s.Seal([]byte(pt))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealed)
	}
	f.Add("xlseal:v1:00000000:")
	f.Add("xlseal:v2:abc")
	f.Add("xlseal:")
	f.Fuzz(func(t *testing.T, in string) {
		p, perr := parseSealed(in)
		pt, err := s.Open(in)
		if perr != nil {
			if err == nil {
				t.Fatalf("Open accepted what parseSealed rejects: %q", in)
			}
			if !errors.Is(perr, ErrSealedFormat) && !errors.Is(perr, ErrSealedVersion) {
				t.Fatalf("parse error %v has no sentinel", perr)
			}
			return
		}
		if !strings.HasPrefix(in, p.header) || len(p.nonce) != nonceLen || len(p.ciphertext) < tagLen {
			t.Fatalf("parts %+v of %q", p, in)
		}
		if err != nil {
			if !errors.Is(err, ErrWrongKey) && !errors.Is(err, ErrTampered) {
				t.Fatalf("open error %v has no sentinel", err)
			}
			return
		}
		// It authenticated: sealing the plaintext again must round-trip.
		again, err := s.Open(mustSealFuzz(t, s, pt))
		if err != nil || !bytes.Equal(again, pt) {
			t.Fatalf("re-seal round trip: %v", err)
		}
	})
}

func mustSealFuzz(t *testing.T, s *Sealer, pt []byte) string {
	out, err := s.Seal(pt)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
