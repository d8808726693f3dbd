package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"xueliang/index"
	"xueliang/storage/recording"
	"xueliang/storage/spool"
)

// SegmentNodes is the part of the index the Reader asks where a segment
// is.
type SegmentNodes interface {
	// SegmentNode returns the segment's current state and the node whose
	// spool holds it while it is not stored.
	SegmentNode(ctx context.Context, id int64) (index.SegmentNode, error)
}

// DefaultTimeout bounds connecting to another node, its answer's headers,
// and each wait for more of its body.
const DefaultTimeout = 5 * time.Second

// Reader is the replay's segment reader on a cluster node: this node's
// spool, then — for a segment not yet stored — the spool of the node that
// records it, then the store. Fill the fields; safe for concurrent use.
type Reader struct {
	// Local reads this node's spool and the shared store.
	Local spool.Reader
	Index SegmentNodes
	// Signer signs the requests as this node (Signer.Node is this node's
	// id: its own segments are never fetched over the network).
	Signer Signer
	// Timeout defaults to DefaultTimeout.
	Timeout time.Duration
	// Client defaults to NewClient(Timeout).
	Client *http.Client
	// Metrics may be nil.
	Metrics *Metrics

	once   sync.Once
	client *http.Client
}

// UnavailableError: the footage is in another node's spool and that node
// cannot serve it (down, stalled, no address, refusing this node).
type UnavailableError struct {
	Node, Key string
	Err       error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("segment %s is in node %s's spool, which cannot be read: %v", e.Key, e.Node, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// UnavailableNode is the node holding the footage (the API names it).
func (e *UnavailableError) UnavailableNode() string { return e.Node }

// errNotInSpool: the owner answered 404.
var errNotInSpool = errors.New("not in the node's spool (uploaded meanwhile?)")

// inSpool reports whether a segment in state st is in its recorder's
// spool, not (only) in the store.
func inSpool(st recording.SegmentState) bool {
	return st == recording.StateRecording || st == recording.StateClosed
}

// ReadRange implements replay.SegmentReader.
func (r *Reader) ReadRange(ctx context.Context, seg recording.Segment, off, length int64) (io.ReadCloser, error) {
	if !inSpool(seg.State) {
		return r.Local.ReadRange(ctx, seg, off, length)
	}
	rc, err := r.Local.ReadSpool(seg, off, length)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return rc, err
	}
	loc, err := r.Index.SegmentNode(ctx, seg.ID)
	if err != nil {
		return nil, fmt.Errorf("read segment %s: %w", seg.ObjectKey, err)
	}
	if !inSpool(loc.State) || loc.Node == "" || loc.Node == r.Signer.Node {
		// Stored since the caller's lookup, or recorded here (or not in
		// cluster mode): the store has it, if anyone does.
		return r.Local.ReadStore(ctx, seg, off, length)
	}
	rc, err = r.fetch(ctx, loc, seg.ObjectKey, off, length)
	if err == nil {
		return rc, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// Uploaded while we asked (the owner removes its file once the row is
	// stored)?
	if now, err2 := r.Index.SegmentNode(ctx, seg.ID); err2 == nil && !inSpool(now.State) {
		return r.Local.ReadStore(ctx, seg, off, length)
	}
	return nil, &UnavailableError{Node: loc.Node, Key: seg.ObjectKey, Err: err}
}

func (r *Reader) timeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultTimeout
}

func (r *Reader) httpClient() *http.Client {
	r.once.Do(func() {
		r.client = r.Client
		if r.client == nil {
			r.client = NewClient(r.timeout())
		}
	})
	return r.client
}

// NewClient is the HTTP client of node-to-node requests: no proxy from
// the environment, no redirects, timeout for connecting, TLS and the
// answer's headers.
func NewClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// fetch asks node loc for [off, off+length) of key's spool file.
func (r *Reader) fetch(ctx context.Context, loc index.SegmentNode, key string, off, length int64) (io.ReadCloser, error) {
	if loc.AdvertiseURL == "" {
		r.Metrics.fetched(FetchUnavailable)
		return nil, errors.New("the node advertises no address (cluster.advertise_url)")
	}
	u, err := url.Parse(loc.AdvertiseURL)
	if err != nil {
		r.Metrics.fetched(FetchUnavailable)
		return nil, fmt.Errorf("the node's advertise_url: %w", err)
	}
	u.Path = path.Join("/", u.Path, SpoolPath, key)
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	timeout := r.timeout()
	fctx, cancel := context.WithCancelCause(ctx)
	// One timer for the whole exchange, rearmed by every read of the body:
	// a node that stalls half-way is given up after timeout too.
	stall := time.AfterFunc(timeout, func() {
		cancel(fmt.Errorf("node %s sent nothing for %s", loc.Node, timeout))
	})
	fail := func(result string, err error) (io.ReadCloser, error) {
		stall.Stop()
		if c := context.Cause(fctx); c != nil && ctx.Err() == nil {
			err = c
		}
		cancel(nil)
		r.Metrics.fetched(result)
		return nil, err
	}
	req, err := http.NewRequestWithContext(fctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail(FetchError, err)
	}
	want := "bytes=" + strconv.FormatInt(off, 10) + "-"
	if length > 0 {
		want += strconv.FormatInt(off+length-1, 10)
	}
	req.Header.Set("Range", want)
	r.Signer.Sign(req)
	resp, err := r.httpClient().Do(req)
	if err != nil {
		return fail(FetchUnavailable, fmt.Errorf("get %s: %w", u.Redacted(), err))
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		if cr := resp.Header.Get("Content-Range"); !strings.HasPrefix(cr, "bytes "+strconv.FormatInt(off, 10)+"-") {
			resp.Body.Close()
			return fail(FetchError, fmt.Errorf("node answered Content-Range %q for %s", cr, want))
		}
	case resp.StatusCode == http.StatusOK && off == 0 && length < 0:
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return fail(FetchNotFound, errNotInSpool)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		resp.Body.Close()
		return fail(FetchUnauthorized, fmt.Errorf("the node refused this node's signature (%s): is cluster.secret_file the same on every node?", resp.Status))
	default:
		resp.Body.Close()
		return fail(FetchError, fmt.Errorf("the node answered %s for %s", resp.Status, want))
	}
	stall.Reset(timeout)
	r.Metrics.fetched(FetchOK)
	return &remoteBody{body: resp.Body, stall: stall, timeout: timeout, ctx: fctx, cancel: cancel}, nil
}

// remoteBody is a fetched body whose reads rearm the stall timer.
type remoteBody struct {
	body    io.ReadCloser
	stall   *time.Timer
	timeout time.Duration
	ctx     context.Context
	cancel  context.CancelCauseFunc
}

func (b *remoteBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err != nil && err != io.EOF {
		if c := context.Cause(b.ctx); c != nil {
			err = c
		}
		return n, err
	}
	b.stall.Reset(b.timeout)
	return n, err
}

func (b *remoteBody) Close() error {
	b.stall.Stop()
	err := b.body.Close()
	b.cancel(nil)
	return err
}
