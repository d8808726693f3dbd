package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"xueliang/index"
	"xueliang/storage/local"
	"xueliang/storage/spool"
)

// TestHTTPServerMaxHeaderBytes (issue #22.1): the API's http.Server answers
// a 64 KiB header block with 431 before any handler runs; a normal one
// (8 KiB) gets through.
func TestHTTPServerMaxHeaderBytes(t *testing.T) {
	reached := 0
	srv := newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached++
		w.WriteHeader(http.StatusNoContent)
	}), slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for _, tc := range []struct {
		size int
		want int
	}{{8 << 10, http.StatusNoContent}, {64 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/healthz", nil)
		req.Header.Set("X-Filler", strings.Repeat("a", tc.size))
		resp, err := anonymousClient.Do(req)
		if err != nil {
			t.Fatalf("%d bytes: %v", tc.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d byte header: status %d, want %d", tc.size, resp.StatusCode, tc.want)
		}
	}
	if reached != 1 {
		t.Errorf("handler reached %d times, want 1", reached)
	}
}

// TestTokenNotFromArgv (issue #22.9): the API commands take the bearer
// token from --token-file or $XUELIANG_TOKEN; --token on the command line
// (visible in ps) is refused before anything is sent.
func TestTokenNotFromArgv(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"cameras":[]}`)
	}))
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("xl_from_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(TokenEnv, "")

	var out, errOut bytes.Buffer
	if rc := run([]string{"camera", "list", "--server", srv.URL, "--token-file", tokenFile}, &out, &errOut); rc != 0 {
		t.Fatalf("--token-file: %d %s", rc, errOut.String())
	}
	t.Setenv(TokenEnv, "xl_from_env")
	if rc := run([]string{"camera", "list", "--server", srv.URL}, &out, &errOut); rc != 0 {
		t.Fatalf("%s: %d %s", TokenEnv, rc, errOut.String())
	}
	errOut.Reset()
	if rc := run([]string{"camera", "list", "--server", srv.URL, "--token", "xl_in_argv"}, &out, &errOut); rc != 2 ||
		!strings.Contains(errOut.String(), "--token-file") {
		t.Fatalf("--token: exit %d, %s", rc, errOut.String())
	}
	errOut.Reset()
	if rc := run([]string{"camera", "probe", "rtsp://127.0.0.1:1/x", "--server", srv.URL, "--token", "xl_in_argv"}, &out, &errOut); rc != 2 {
		t.Fatalf("probe --token: exit %d, %s", rc, errOut.String())
	}
	if len(got) != 2 || got[0] != "Bearer xl_from_file" || got[1] != "Bearer xl_from_env" {
		t.Fatalf("Authorization headers sent: %q", got)
	}
}

// TestFileModes (issue #22.9): the index, the spool and the local store
// create their directories 0700 and their files 0600 whatever the umask
// lets through (the segmenter's own files: ingest/segmenter checkSegments).
func TestFileModes(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dbPath := filepath.Join(root, "data", "index.db")
	db, err := index.Open(ctx, dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	sp, err := spool.NewDir(filepath.Join(root, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := sp.Create("cam1/2026/12/07/seg.mp4")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, err := local.New(filepath.Join(root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "cam1/2026/12/07/seg.mp4", strings.NewReader("footage"), 7); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(root, "data"):  0o700,
		dbPath:                       0o600,
		filepath.Join(root, "spool"): 0o700,
		filepath.Join(root, "spool", "cam1", "2026", "12", "07"):            0o700,
		filepath.Join(root, "spool", "cam1", "2026", "12", "07", "seg.mp4"): 0o600,
		filepath.Join(root, "store"):                                        0o700,
		filepath.Join(root, "store", "cam1", "2026", "12", "07"):            0o700,
		filepath.Join(root, "store", "cam1", "2026", "12", "07", "seg.mp4"): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %#o, want %#o", path[len(root):], got, want)
		}
	}
	// The WAL files take the database's mode.
	for _, suffix := range []string{"-wal", "-shm"} {
		if fi, err := os.Stat(dbPath + suffix); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("index%s: mode %#o", suffix, fi.Mode().Perm())
		}
	}
}
