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
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
)

// Package file names.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig"
	PublicKeyName = "signing-key.pub"
	// Format is Manifest.Format.
	Format = "xueliang-export-v1"
)

// Manifest describes an export package. manifest.sig is the Ed25519
// signature (base64) of the exact bytes of manifest.json.
type Manifest struct {
	Format string `json:"format"`
	ID     string `json:"id"`
	Camera Camera `json:"camera"`
	// From and To are the requested range.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Files are the MP4s, one per continuous span, in time order.
	Files []File `json:"files"`
	// Gaps are the parts of [From, To) without footage.
	Gaps      []Interval `json:"gaps"`
	CreatedBy Creator    `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	// AuditHead is the last entry of the hash-chained audit log when the
	// package was built (the export request itself is appended when its
	// answer is sent, so it is the entry after it or later).
	AuditHead AuditHead `json:"audit_head"`
	// PublicKey is the signing key's public half ("ed25519:<base64>").
	PublicKey string `json:"public_key"`
	Server    string `json:"server,omitempty"`
}

// Camera identifies the camera of an export.
type Camera struct {
	ID string `json:"id"`
	// DeviceID is the GB/T 28181 device ID when the camera ID is one.
	DeviceID string `json:"gb28181_id,omitempty"`
	Name     string `json:"name,omitempty"`
	Township string `json:"township,omitempty"`
	Village  string `json:"village,omitempty"`
}

// File is one file of the package.
type File struct {
	Name   string    `json:"name"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256"`
}

// Interval is a time range.
type Interval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Creator is who asked for the export.
type Creator struct {
	User string `json:"user"`
	Role string `json:"role,omitempty"`
}

// AuditHead is an audit log entry's id and chain hash ("" and 0 when the
// log is empty).
type AuditHead struct {
	ID   int64  `json:"id"`
	Hash string `json:"hash"`
}

// VerifyResult is what Verify checked.
type VerifyResult struct {
	Manifest Manifest
	// KeyFingerprint names the key the signature was checked against.
	KeyFingerprint string
	// Pinned is true when that key was given by the caller rather than
	// taken from the package.
	Pinned bool
}

// VerifyError is a failed verification; Reason says what is wrong, in
// words an operator can act on.
type VerifyError struct{ Reason string }

func (e *VerifyError) Error() string { return "export package NOT verified: " + e.Reason }

func failf(format string, args ...any) error {
	return &VerifyError{Reason: fmt.Sprintf(format, args...)}
}

// pkgFS is an export package: a directory or a zip.
type pkgFS interface {
	names() ([]string, error)
	open(name string) (io.ReadCloser, error)
}

type dirPkg string

func (d dirPkg) names() ([]string, error) {
	var out []string
	err := fs.WalkDir(os.DirFS(string(d)), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

func (d dirPkg) open(name string) (io.ReadCloser, error) { return os.DirFS(string(d)).Open(name) }

type zipPkg struct{ r *zip.Reader }

func (z zipPkg) names() ([]string, error) {
	var out []string
	for _, f := range z.r.File {
		if !strings.HasSuffix(f.Name, "/") {
			out = append(out, f.Name)
		}
	}
	return out, nil
}

func (z zipPkg) open(name string) (io.ReadCloser, error) { return z.r.Open(name) }

// Verify checks the export package at p (a directory or a .zip): the
// signature of manifest.json (against pinned when not nil, else against
// the public key the package carries, which must match the manifest's),
// and the size and SHA-256 of every file the manifest lists; a file
// missing, changed or not listed fails it.
func Verify(p string, pinned ed25519.PublicKey) (VerifyResult, error) {
	var res VerifyResult
	fi, err := os.Stat(p)
	if err != nil {
		return res, err
	}
	var pkg pkgFS
	if fi.IsDir() {
		pkg = dirPkg(p)
	} else {
		zr, err := zip.OpenReader(p)
		if err != nil {
			return res, failf("%s is neither a directory nor a readable zip: %v", p, err)
		}
		defer zr.Close()
		pkg = zipPkg{&zr.Reader}
	}
	readSmall := func(name string) ([]byte, error) {
		rc, err := pkg.open(name)
		if err != nil {
			return nil, failf("%s missing from the package", name)
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, 16<<20))
	}
	manifest, err := readSmall(ManifestName)
	if err != nil {
		return res, err
	}
	sigText, err := readSmall(SignatureName)
	if err != nil {
		return res, err
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sigText)))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return res, failf("%s is not a base64 Ed25519 signature", SignatureName)
	}
	key := pinned
	res.Pinned = pinned != nil
	if key == nil {
		pubText, err := readSmall(PublicKeyName)
		if err != nil {
			return res, err
		}
		if key, err = ParsePublicKey(string(pubText)); err != nil {
			return res, failf("%s: %v", PublicKeyName, err)
		}
	}
	res.KeyFingerprint = Fingerprint(key)
	if !ed25519.Verify(key, manifest, sig) {
		return res, failf("the signature in %s does not match %s under key %s: the manifest was changed or signed by another key",
			SignatureName, ManifestName, res.KeyFingerprint)
	}
	var m Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return res, failf("%s is signed but is not a manifest: %v", ManifestName, err)
	}
	if mk, err := ParsePublicKey(m.PublicKey); err != nil || !bytes.Equal(mk, key) {
		return res, failf("the manifest names public key %q, not the key %s it is signed with", m.PublicKey, res.KeyFingerprint)
	}
	if m.Format != Format {
		return res, failf("manifest format %q, want %q", m.Format, Format)
	}
	names, err := pkg.names()
	if err != nil {
		return res, err
	}
	listed := map[string]bool{ManifestName: true, SignatureName: true, PublicKeyName: true}
	for _, f := range m.Files {
		if f.Name == "" || path.Clean(f.Name) != f.Name || strings.HasPrefix(f.Name, "../") || path.IsAbs(f.Name) || listed[f.Name] {
			return res, failf("manifest lists a bad file name %q", f.Name)
		}
		listed[f.Name] = true
		if err := checkFile(pkg, f); err != nil {
			return res, err
		}
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			// Extractors disagree on which copy wins.
			return res, failf("%s is in the package twice", n)
		}
		seen[n] = true
		if !listed[n] {
			return res, failf("%s is in the package but not in the manifest", n)
		}
	}
	if !slices.Contains(names, PublicKeyName) && pinned == nil {
		return res, failf("%s missing from the package", PublicKeyName)
	}
	res.Manifest = m
	return res, nil
}

func checkFile(pkg pkgFS, f File) error {
	rc, err := pkg.open(f.Name)
	if err != nil {
		return failf("%s is listed in the manifest but missing from the package", f.Name)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		if errors.Is(err, zip.ErrChecksum) {
			return failf("%s: the zip entry's CRC does not match (the file was changed)", f.Name)
		}
		return fmt.Errorf("read %s: %w", f.Name, err)
	}
	if n != f.Size {
		return failf("%s has %d bytes, the manifest says %d", f.Name, n, f.Size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != f.SHA256 {
		return failf("%s has SHA-256 %s, the manifest says %s: the file was changed", f.Name, sum, f.SHA256)
	}
	return nil
}
