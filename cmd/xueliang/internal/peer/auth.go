// Package peer is the node-to-node HTTP of a cluster (issue #21): a node
// serves the segment files of its own spool to the other nodes on an
// internal endpoint, and the replay reader of every node fetches from
// there the footage the index says is still in another node's spool
// (recorded, not yet uploaded: the last minute of every camera).
//
//	node B: replay ──Reader.ReadRange(seg)
//	   1. B's own spool file              (spool.Reader.ReadSpool)
//	   2. stored?  ──────────────────────▶ object store (spool.Reader.ReadStore)
//	   3. index.SegmentNode(seg) = node A, A's advertise_url
//	      GET A/internal/v1/spool/<key>   Range: bytes=off-end
//	      Authorization: XL-HMAC-SHA256 node=B, t=<unix s>, sig=…   (Signer)
//	node A: SpoolHandler ── Verifier ── A's spool file, 206 Partial Content
//	   404 (uploaded and removed meanwhile) ─▶ the store
//	   A down, stalled or refusing ─────────▶ *UnavailableError (the API
//	                                          answers 503 naming node A)
//
// Authentication is a secret shared by every node (cluster.secret_file),
// never an operator session or token: each request carries an HMAC-SHA256
// over its method, path, query, Range header, the sending node's id and
// the time, and is accepted within MaxSkew of the receiver's clock
// (compared in constant time). The secret itself never crosses the
// network, and a captured request can only fetch the same bytes again,
// for at most MaxSkew. The internal endpoint is not part of the operator
// API: it is not in docs/openapi.yaml (docs/operations.md, "Replay from
// any node").
package peer

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Scheme is the Authorization scheme of node-to-node requests.
const Scheme = "XL-HMAC-SHA256"

// MinSecretLen is the shortest shared secret accepted (after trimming
// surrounding white space).
const MinSecretLen = 32

// DefaultMaxSkew is how far a request's time may be from the receiver's
// clock. The nodes' clocks must agree to well within it (NTP).
const DefaultMaxSkew = time.Minute

// Errors of Verify (wrapped); all of them are answered 401.
var (
	// ErrNoAuth: the request carries no node signature.
	ErrNoAuth = errors.New("no node signature")
	// ErrBadAuth: the Authorization header is malformed.
	ErrBadAuth = errors.New("malformed node signature")
	// ErrStale: the signed time is further than MaxSkew from now.
	ErrStale = errors.New("node signature expired or from the future")
	// ErrBadSignature: the signature does not match (another secret, or
	// the request was altered).
	ErrBadSignature = errors.New("node signature does not match")
)

// LoadSecret reads the shared cluster secret from path: at least
// MinSecretLen bytes once surrounding white space is trimmed, in a file
// that group and others cannot read.
func LoadSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("cluster secret %s: mode %#o lets others read it; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinSecretLen {
		return nil, fmt.Errorf("cluster secret %s: %d bytes, want at least %d (e.g. head -c 32 /dev/urandom | base64)", path, len(b), MinSecretLen)
	}
	return b, nil
}

// Signer signs the requests of node Node.
type Signer struct {
	Node   string
	Secret []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Sign sets req's Authorization header. Call it after the Range header is
// set: the signature covers it.
func (s Signer) Sign(req *http.Request) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	sig := signature(s.Secret, req, s.Node, ts)
	req.Header.Set("Authorization", Scheme+" node="+s.Node+", t="+ts+", sig="+base64.RawURLEncoding.EncodeToString(sig))
}

// Verifier checks the signatures of incoming node requests.
type Verifier struct {
	Secret []byte
	// MaxSkew defaults to DefaultMaxSkew.
	MaxSkew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verify returns the signing node's id, or an error wrapping one of the
// Verify errors.
func (v Verifier) Verify(r *http.Request) (node string, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", ErrNoAuth
	}
	rest, ok := strings.CutPrefix(h, Scheme+" ")
	if !ok {
		return "", fmt.Errorf("%w: want scheme %s", ErrNoAuth, Scheme)
	}
	var ts, sig string
	for part := range strings.SplitSeq(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", ErrBadAuth
		}
		switch k {
		case "node":
			node = val
		case "t":
			ts = val
		case "sig":
			sig = val
		default:
			return "", fmt.Errorf("%w: unknown parameter %q", ErrBadAuth, k)
		}
	}
	if node == "" || ts == "" || sig == "" {
		return "", fmt.Errorf("%w: want node, t and sig", ErrBadAuth)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: time %q", ErrBadAuth, ts)
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return "", fmt.Errorf("%w: signature encoding", ErrBadAuth)
	}
	// The signature is checked before the time, so that an unauthenticated
	// caller learns nothing about the receiver's clock.
	if !hmac.Equal(got, signature(v.Secret, r, node, ts)) {
		return "", ErrBadSignature
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	if d := now().Sub(time.Unix(sec, 0)); d > skew || d < -skew {
		return "", fmt.Errorf("%w: %s off", ErrStale, d.Round(time.Second))
	}
	return node, nil
}

// signature is the HMAC-SHA256 of the signed fields, each prefixed by its
// length (so that no field can run into the next).
func signature(secret []byte, r *http.Request, node, ts string) []byte {
	m := hmac.New(sha256.New, secret)
	for _, f := range []string{"xueliang-node-v1", r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Range"), node, ts} {
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(f))))
		m.Write([]byte(f))
	}
	return m.Sum(nil)
}
