package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"xueliang/cmd/xueliang/internal/audit"
	"xueliang/cmd/xueliang/internal/config"
	"xueliang/index"
	"xueliang/storage/local"
	"xueliang/storage/spool"
)

// TestHTTPServerMaxHeaderBytes (issue #22.1): the API's http.Server answers
// a 64 KiB header block with 431 before any handler runs; a normal one
// (8 KiB) gets through.
func TestHTTPServerMaxHeaderBytes(t *testing.T) {
	reached := 0
	srv := newHTTPServer(config.Default().HTTP, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
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

// TestAuditVerifyAnchor (issue #22.7): with a signed anchor outside the
// index, `xueliang audit verify` (read-only) detects what the chain alone
// cannot: the newest entries cut off, and the whole chain rewritten from
// an edited entry on; a forged anchor is refused too.
func TestAuditVerifyAnchor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB, anchorPath string)
		want   string
	}{
		{"intact", func(*testing.T, *sql.DB, string) {}, ""},
		{"tail truncated", func(t *testing.T, db *sql.DB, _ string) {
			execAll(t, db, `DELETE FROM audit WHERE id >= 7`)
		}, "tail truncated"},
		{"chain rewritten", func(t *testing.T, db *sql.DB, _ string) {
			rewriteChain(t, db, 3)
		}, "the chain was rewritten"},
		{"anchor forged", func(t *testing.T, db *sql.DB, anchorPath string) {
			execAll(t, db, `DELETE FROM audit WHERE id >= 5`)
			a, err := audit.ReadAnchor(anchorPath)
			if err != nil {
				t.Fatal(err)
			}
			a.ID, a.Hash = 4, lastHash(t, db)
			if err := audit.WriteAnchor(anchorPath, a); err != nil {
				t.Fatal(err)
			}
		}, "signature is invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfgPath, dbPath := auditFixture(t, 8)
			cfg, err := config.Load(cfgPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := index.Open(context.Background(), dbPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			an, err := newAnchorer(cfg, idx, slog.New(slog.DiscardHandler))
			if err == nil {
				err = an.Anchor(context.Background())
			}
			idx.Close()
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(cfg.AuditKeyFile()); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v %v", fi, err)
			}

			db, err := sql.Open("sqlite", dbPath)
			if err != nil {
				t.Fatal(err)
			}
			execAll(t, db, `DROP TRIGGER audit_no_update`, `DROP TRIGGER audit_no_delete`)
			tc.tamper(t, db, cfg.AuditAnchorFile())
			db.Close()
			// The chain alone still verifies after these tamperings.
			r, err := index.OpenAuditReader(context.Background(), dbPath)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := audit.Verify(context.Background(), r); err != nil {
				t.Fatalf("the chain itself: %v", err)
			}
			r.Close()

			before := fileSum(t, dbPath)
			var out, errOut bytes.Buffer
			rc := run([]string{"audit", "verify", "--config", cfgPath}, &out, &errOut)
			if fileSum(t, dbPath) != before {
				t.Error("audit verify changed the index file")
			}
			if tc.want == "" {
				if rc != 0 || !strings.Contains(out.String(), "audit log OK: 8 entries") || !strings.Contains(out.String(), "anchored: entry 8") {
					t.Fatalf("intact: rc %d %q %q", rc, out.String(), errOut.String())
				}
				return
			}
			if rc != 1 || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("rc %d, want 1 and %q: %q %q", rc, tc.want, out.String(), errOut.String())
			}
		})
	}
}

func execAll(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func lastHash(t *testing.T, db *sql.DB) string {
	t.Helper()
	var h string
	if err := db.QueryRow(`SELECT hash FROM audit ORDER BY id DESC LIMIT 1`).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// rewriteChain edits entry from and re-seals it and every later entry, as
// a forger holding only the database would: the chain stays consistent.
func rewriteChain(t *testing.T, db *sql.DB, from int64) {
	t.Helper()
	rows, err := db.Query(`SELECT id FROM audit ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	recs := map[int64]index.AuditRecord{}
	r, err := index.OpenAuditReader(context.Background(), dbPathOf(t, db))
	if err != nil {
		t.Fatal(err)
	}
	r.ScanAudit(context.Background(), func(a index.AuditRecord) error { recs[a.ID] = a; return nil })
	r.Close()
	prev := recs[from-1].Hash
	for _, id := range ids {
		if id < from {
			continue
		}
		a := recs[id]
		if id == from {
			a.Detail = "nothing happened here"
		}
		a.PrevHash = prev
		audit.Seal(&a)
		prev = a.Hash
		if _, err := db.Exec(`UPDATE audit SET detail = ?, prev_hash = ?, hash = ? WHERE id = ?`, a.Detail, a.PrevHash, a.Hash, id); err != nil {
			t.Fatal(err)
		}
	}
}

func dbPathOf(t *testing.T, db *sql.DB) string {
	t.Helper()
	var seq int
	var name, file string
	if err := db.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
