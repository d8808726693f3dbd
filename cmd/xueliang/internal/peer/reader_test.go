package peer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"xueliang/index"
	"xueliang/storage/local"
	"xueliang/storage/recording"
	"xueliang/storage/spool"
)

// nodesFunc is a SegmentNodes of a function (the index's answer).
type nodesFunc func(id int64) (index.SegmentNode, error)

func (f nodesFunc) SegmentNode(_ context.Context, id int64) (index.SegmentNode, error) { return f(id) }

const testKey = "cam1/2026/12/07/100000.000000000.mp4"

// owner is node n1: its spool holds testKey, served on a loopback server.
func owner(t *testing.T, secret []byte, content []byte) (*httptest.Server, *Metrics) {
	t.Helper()
	dir, err := spool.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := dir.Create(testKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m := NewMetrics(prometheus.NewRegistry())
	srv := httptest.NewServer(&SpoolHandler{Dir: dir, Verifier: Verifier{Secret: secret}, Metrics: m})
	t.Cleanup(srv.Close)
	return srv, m
}

// reader is node n2's reader: its own spool is empty, its store (a local
// one) holds what stored holds.
func reader(t *testing.T, secret []byte, loc func() index.SegmentNode, stored map[string][]byte) (*Reader, *Metrics) {
	t.Helper()
	dir, err := spool.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for k, b := range stored {
		if _, err := st.Put(context.Background(), k, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	m := NewMetrics(prometheus.NewRegistry())
	return &Reader{
		Local:   spool.Reader{Dir: dir, Store: st},
		Index:   nodesFunc(func(int64) (index.SegmentNode, error) { return loc(), nil }),
		Signer:  Signer{Node: "n2", Secret: secret},
		Timeout: 500 * time.Millisecond,
		Metrics: m,
	}, m
}

func content() []byte {
	b := make([]byte, 100_000)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

var recordingSeg = recording.Segment{ID: 7, CameraID: "cam1", ObjectKey: testKey, State: recording.StateRecording}

func readAll(t *testing.T, r *Reader, seg recording.Segment, off, length int64) ([]byte, error) {
	t.Helper()
	rc, err := r.ReadRange(context.Background(), seg, off, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// TestReaderFetchesFromOwner: a segment in another node's spool is read
// from that node, exactly the range asked for (to the end, too).
func TestReaderFetchesFromOwner(t *testing.T) {
	want := content()
	srv, served := owner(t, testSecret, want)
	r, m := reader(t, testSecret, func() index.SegmentNode {
		return index.SegmentNode{State: recording.StateRecording, Node: "n1", AdvertiseURL: srv.URL}
	}, nil)
	for _, rg := range [][2]int64{{0, 100}, {1000, 50_000}, {99_999, 1}, {40_000, -1}, {0, -1}} {
		got, err := readAll(t, r, recordingSeg, rg[0], rg[1])
		end := int64(len(want))
		if rg[1] >= 0 {
			end = rg[0] + rg[1]
		}
		if err != nil || !bytes.Equal(got, want[rg[0]:end]) {
			t.Fatalf("range %v: %d bytes, %v; want %d bytes of the owner's file", rg, len(got), err, end-rg[0])
		}
	}
	if n := testutil.ToFloat64(m.fetch.WithLabelValues(FetchOK)); n != 5 {
		t.Errorf("fetch ok = %v, want 5", n)
	}
	if n := testutil.ToFloat64(served.served.WithLabelValues(ServedOK)); n != 5 {
		t.Errorf("served ok = %v, want 5", n)
	}
}

// TestSpoolHandlerRefuses: without a signature, with another secret's, a
// key outside the spool rules or another method: refused before any file
// is opened.
func TestSpoolHandlerRefuses(t *testing.T) {
	srv, served := owner(t, testSecret, content())
	get := func(path string, sign []byte, method string) int {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Range", "bytes=0-9")
		if sign != nil {
			Signer{Node: "n2", Secret: sign}.Sign(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != Scheme {
			t.Errorf("401 without WWW-Authenticate: %s", Scheme)
		}
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, path, method string
		sign               []byte
		want               int
	}{
		{"signed", SpoolPath + testKey, http.MethodGet, testSecret, http.StatusPartialContent},
		{"no signature", SpoolPath + testKey, http.MethodGet, nil, http.StatusUnauthorized},
		{"wrong secret", SpoolPath + testKey, http.MethodGet, otherSecret, http.StatusUnauthorized},
		{"not in spool", SpoolPath + "cam1/other.mp4", http.MethodGet, testSecret, http.StatusNotFound},
		{"dot-dot key", SpoolPath + "cam1/../../etc/passwd", http.MethodGet, testSecret, http.StatusNotFound},
		{"bad key", SpoolPath + "cam1//x", http.MethodGet, testSecret, http.StatusNotFound},
		{"write", SpoolPath + testKey, http.MethodPut, testSecret, http.StatusMethodNotAllowed},
	} {
		if got := get(tc.path, tc.sign, tc.method); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := testutil.ToFloat64(served.served.WithLabelValues(ServedUnauthorized)); n != 2 {
		t.Errorf("served unauthorized = %v, want 2", n)
	}
}

// TestReaderOwnerFailures: every way the owner can fail ends in an
// UnavailableError naming it, counted by result, within the timeout;
// footage uploaded meanwhile (owner 404, index now stored) comes from the
// store instead.
func TestReaderOwnerFailures(t *testing.T) {
	want := content()
	t.Run("wrong secret", func(t *testing.T) {
		srv, _ := owner(t, otherSecret, want)
		r, m := reader(t, testSecret, func() index.SegmentNode {
			return index.SegmentNode{State: recording.StateClosed, Node: "n1", AdvertiseURL: srv.URL}
		}, nil)
		_, err := readAll(t, r, recordingSeg, 0, 10)
		checkUnavailable(t, err, "secret_file")
		if n := testutil.ToFloat64(m.fetch.WithLabelValues(FetchUnauthorized)); n != 1 {
			t.Errorf("fetch unauthorized = %v", n)
		}
	})
	t.Run("owner down", func(t *testing.T) {
		srv, _ := owner(t, testSecret, want)
		srv.Close()
		r, m := reader(t, testSecret, func() index.SegmentNode {
			return index.SegmentNode{State: recording.StateClosed, Node: "n1", AdvertiseURL: srv.URL}
		}, nil)
		_, err := readAll(t, r, recordingSeg, 0, 10)
		checkUnavailable(t, err, "connect")
		if n := testutil.ToFloat64(m.fetch.WithLabelValues(FetchUnavailable)); n != 1 {
			t.Errorf("fetch unavailable = %v", n)
		}
	})
	t.Run("no address", func(t *testing.T) {
		r, _ := reader(t, testSecret, func() index.SegmentNode {
			return index.SegmentNode{State: recording.StateClosed, Node: "n1"}
		}, nil)
		_, err := readAll(t, r, recordingSeg, 0, 10)
		checkUnavailable(t, err, "advertise_url")
	})
	for _, stallBody := range []bool{false, true} {
		name := "owner stalls before answering"
		if stallBody {
			name = "owner stalls half-way"
		}
		t.Run(name, func(t *testing.T) {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if stallBody {
					w.Header().Set("Content-Range", "bytes 0-9999/100000")
					w.WriteHeader(http.StatusPartialContent)
					w.Write(want[:100])
					w.(http.Flusher).Flush()
				}
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			t.Cleanup(func() { close(release); srv.Close() })
			r, _ := reader(t, testSecret, func() index.SegmentNode {
				return index.SegmentNode{State: recording.StateClosed, Node: "n1", AdvertiseURL: srv.URL}
			}, nil)
			began := time.Now()
			_, err := readAll(t, r, recordingSeg, 0, 10_000)
			if took := time.Since(began); took > 10*time.Second {
				t.Errorf("gave up after %v (timeout 500 ms)", took)
			}
			if stallBody {
				if err == nil || !strings.Contains(err.Error(), "sent nothing for") {
					t.Fatalf("stalled body: %v", err)
				}
				return
			}
			checkUnavailable(t, err, "")
		})
	}
	t.Run("uploaded meanwhile", func(t *testing.T) {
		srv, _ := owner(t, testSecret, nil)
		var asked atomic.Int32
		r, m := reader(t, testSecret, func() index.SegmentNode {
			if asked.Add(1) == 1 {
				return index.SegmentNode{State: recording.StateClosed, Node: "n1", AdvertiseURL: srv.URL}
			}
			return index.SegmentNode{State: recording.StateStored, Node: "n1", AdvertiseURL: srv.URL}
		}, map[string][]byte{testKey: want})
		seg := recordingSeg
		seg.ObjectKey = "cam1/2026/12/07/gone.mp4"
		r.Local.Store.Put(context.Background(), seg.ObjectKey, bytes.NewReader(want), int64(len(want)))
		got, err := readAll(t, r, seg, 10, 20)
		if err != nil || !bytes.Equal(got, want[10:30]) {
			t.Fatalf("after the owner's 404: %d bytes, %v; want the store's", len(got), err)
		}
		if n := testutil.ToFloat64(m.fetch.WithLabelValues(FetchNotFound)); n != 1 {
			t.Errorf("fetch not_found = %v", n)
		}
	})
	t.Run("stored or own segments never leave the node", func(t *testing.T) {
		r, m := reader(t, testSecret, func() index.SegmentNode {
			return index.SegmentNode{State: recording.StateRecording, Node: "n2", AdvertiseURL: "http://127.0.0.1:1"}
		}, map[string][]byte{testKey: want})
		for _, st := range []recording.SegmentState{recording.StateStored, recording.StateRecording} {
			seg := recordingSeg
			seg.State = st
			if got, err := readAll(t, r, seg, 0, 10); err != nil || !bytes.Equal(got, want[:10]) {
				t.Errorf("state %v: %v", st, err)
			}
		}
		for _, res := range []string{FetchOK, FetchNotFound, FetchUnavailable, FetchUnauthorized, FetchError} {
			if n := testutil.ToFloat64(m.fetch.WithLabelValues(res)); n != 0 {
				t.Errorf("fetch %s = %v, want no fetch", res, n)
			}
		}
	})
}

func checkUnavailable(t *testing.T, err error, mention string) {
	t.Helper()
	var ue *UnavailableError
	if !errors.As(err, &ue) || ue.UnavailableNode() != "n1" || !strings.Contains(err.Error(), mention) {
		t.Fatalf("err = %v; want an UnavailableError naming n1 and mentioning %q", err, mention)
	}
}

// The spool file of a segment in progress grows between requests: each
// read sees the size at that moment.
func TestSpoolHandlerGrowingFile(t *testing.T) {
	dir, err := spool.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := dir.Create(testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	srv := httptest.NewServer(&SpoolHandler{Dir: dir, Verifier: Verifier{Secret: testSecret}})
	t.Cleanup(srv.Close)
	r, _ := reader(t, testSecret, func() index.SegmentNode {
		return index.SegmentNode{State: recording.StateRecording, Node: "n1", AdvertiseURL: srv.URL + "/"}
	}, nil)
	want := content()
	for _, n := range []int{1000, 50_000, 100_000} {
		if _, err := f.WriteAt(want[:n], 0); err != nil {
			t.Fatal(err)
		}
		got, err := readAll(t, r, recordingSeg, int64(n-1000), 1000)
		if err != nil || !bytes.Equal(got, want[n-1000:n]) {
			t.Fatalf("after %d bytes written: %d bytes, %v", n, len(got), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir.Root, filepath.FromSlash(testKey))); err != nil {
		t.Fatal(err)
	}
}
