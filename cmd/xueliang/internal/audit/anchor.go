package audit

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"xueliang/index"
)

// An Anchor is a signed copy of the chain's head, kept outside the
// database: HMAC-SHA256 under a key the database does not hold. Someone
// with the database file alone can cut the newest entries or rewrite the
// whole chain consistently, but not forge an anchor, so VerifyAnchored
// detects both against the last anchor. The server writes one at start,
// every audit.anchor_interval while the head moves, and at shutdown, and
// logs each ("audit anchor"), so a log shipped off the host is a second,
// older copy.
type Anchor struct {
	// ID and Hash are the newest entry's when the anchor was written (0
	// and Genesis for an empty log).
	ID   int64     `json:"id"`
	Hash string    `json:"hash"`
	At   time.Time `json:"at"`
	// MAC is the lowercase hex HMAC-SHA256 of the fields above.
	MAC string `json:"mac"`
}

// KeySize is the anchor key's length in bytes.
const KeySize = 32

func (a Anchor) mac(key []byte) string {
	m := hmac.New(sha256.New, key)
	var n [8]byte
	m.Write([]byte("xueliang-audit-anchor-v1"))
	binary.BigEndian.PutUint64(n[:], uint64(a.ID))
	m.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(len(a.Hash)))
	m.Write(n[:])
	m.Write([]byte(a.Hash))
	binary.BigEndian.PutUint64(n[:], uint64(a.At.UnixNano()))
	m.Write(n[:])
	return hex.EncodeToString(m.Sum(nil))
}

// Sign fills a.MAC.
func (a *Anchor) Sign(key []byte) { a.MAC = a.mac(key) }

// Valid reports whether a.MAC is a's signature under key.
func (a Anchor) Valid(key []byte) bool {
	return hmac.Equal([]byte(a.MAC), []byte(a.mac(key)))
}

// LoadOrCreateKey reads the anchor key at path (64 hex digits), creating it
// (0600, its directory 0700) with a random key when it does not exist. A
// key others may read is refused.
func LoadOrCreateKey(path string) (key []byte, created bool, err error) {
	key, err = ReadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("audit key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("audit key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("audit key: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return nil, false, fmt.Errorf("audit key %s: %w", path, err)
	}
	return key, true, nil
}

// ReadKey reads an existing anchor key (an fs.ErrNotExist error when there
// is none).
func ReadKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("audit key %s: mode %#o lets others read it; chmod 600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("audit key %s: want %d hex digits", path, 2*KeySize)
	}
	return key, nil
}

// WriteAnchor replaces the anchor file at path atomically (0600).
func WriteAnchor(path string, a Anchor) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("audit anchor: %w", err)
	}
	f, err := os.CreateTemp(dir, ".audit-anchor-*")
	if err != nil {
		return fmt.Errorf("audit anchor: %w", err)
	}
	_, werr := f.Write(append(b, '\n'))
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("audit anchor: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("audit anchor: %w", err)
	}
	return nil
}

// ReadAnchor reads the anchor file at path (an fs.ErrNotExist error when
// there is none). It does not check the signature.
func ReadAnchor(path string) (Anchor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Anchor{}, fmt.Errorf("audit anchor: %w", err)
	}
	var a Anchor
	if err := json.Unmarshal(b, &a); err != nil {
		return Anchor{}, fmt.Errorf("audit anchor %s: %w", path, err)
	}
	return a, nil
}

// AnchorError says how the log disagrees with a valid anchor.
type AnchorError struct {
	Anchor Anchor
	// Reason says what is wrong.
	Reason string
}

func (e *AnchorError) Error() string {
	return fmt.Sprintf("audit log does not match the anchor of %s (entry %d): %s",
		e.Anchor.At.UTC().Format(time.RFC3339), e.Anchor.ID, e.Reason)
}

// VerifyAnchored is Verify, then checks the log against the anchor a
// (signed under key): the anchored entry must still exist with the
// anchored hash. It returns a *BadEntryError for a broken chain, an
// *AnchorError for a forged anchor, a truncated tail or a rewritten chain.
func VerifyAnchored(ctx context.Context, s Scanner, a Anchor, key []byte) (n int64, head string, err error) {
	if !a.Valid(key) {
		return 0, "", &AnchorError{Anchor: a, Reason: "the anchor's signature is invalid (forged anchor, or not this key's)"}
	}
	var v Verifier
	var atAnchor string
	err = s.ScanAudit(ctx, func(r index.AuditRecord) error {
		if err := v.Next(r); err != nil {
			return err
		}
		if r.ID == a.ID {
			atAnchor = r.Hash
		}
		return nil
	})
	if err != nil {
		return v.Count(), v.Head(), err
	}
	switch {
	case a.ID == 0:
	case v.Count() < a.ID:
		return v.Count(), v.Head(), &AnchorError{Anchor: a, Reason: fmt.Sprintf(
			"the log ends at entry %d: entries %d..%d were cut off (tail truncated)", v.Count(), v.Count()+1, a.ID)}
	case atAnchor != a.Hash:
		return v.Count(), v.Head(), &AnchorError{Anchor: a, Reason: fmt.Sprintf(
			"entry %d's hash differs from the anchored one: the chain was rewritten", a.ID)}
	}
	return v.Count(), v.Head(), nil
}

// HeadReader is what Anchorer reads: the newest entry's ID and hash.
type HeadReader interface {
	AuditHead(ctx context.Context) (id int64, hash string, err error)
}

// Anchorer writes the anchor file. Fill the fields, then Run.
type Anchorer struct {
	Head HeadReader
	Key  []byte
	Path string
	// Interval is how often the head is checked and, when it moved,
	// anchored. It defaults to 10s.
	Interval time.Duration
	// Now is the clock. It defaults to time.Now.
	Now    func() time.Time
	Logger *slog.Logger

	last Anchor
}

// Anchor writes an anchor of the current head when it moved since the
// last one written.
func (an *Anchorer) Anchor(ctx context.Context) error {
	if an.Now == nil {
		an.Now = time.Now
	}
	if an.Logger == nil {
		an.Logger = slog.New(slog.DiscardHandler)
	}
	id, hash, err := an.Head.AuditHead(ctx)
	if err != nil {
		return err
	}
	if hash == "" {
		hash = Genesis
	}
	if an.last.MAC != "" && an.last.ID == id && an.last.Hash == hash {
		return nil
	}
	a := Anchor{ID: id, Hash: hash, At: an.Now().UTC()}
	a.Sign(an.Key)
	if err := WriteAnchor(an.Path, a); err != nil {
		return err
	}
	an.last = a
	an.Logger.Info("audit anchor", "id", a.ID, "hash", a.Hash, "at", a.At, "mac", a.MAC)
	return nil
}

// Run anchors at once, every Interval, and once more when ctx ends.
func (an *Anchorer) Run(ctx context.Context) error {
	if an.Interval <= 0 {
		an.Interval = 10 * time.Second
	}
	if err := an.Anchor(ctx); err != nil {
		return fmt.Errorf("audit anchor: %w", err)
	}
	t := time.NewTicker(an.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := an.Anchor(context.WithoutCancel(ctx)); err != nil {
				an.Logger.Error("audit anchor not written", "err", err)
			}
			return nil
		case <-t.C:
			if err := an.Anchor(ctx); err != nil && ctx.Err() == nil {
				an.Logger.Error("audit anchor not written", "err", err)
			}
		}
	}
}
