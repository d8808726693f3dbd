package webui

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestHandler checks what the console answers: index.html at / without
// caching, the hashed assets it references as immutable with their
// content types, the CSP everywhere, 404 for anything else.
func TestHandler(t *testing.T) {
	h := Handler(Files())
	get := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	idx := get("GET", "/")
	if idx.Code != 200 || !strings.HasPrefix(idx.Header().Get("Content-Type"), "text/html") || idx.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET /: %d %v", idx.Code, idx.Header())
	}
	if idx.Header().Get("Content-Security-Policy") != CSP || !strings.Contains(CSP, "script-src 'self';") {
		t.Errorf("CSP %q", idx.Header().Get("Content-Security-Policy"))
	}
	body := idx.Body.String()
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(body) {
		t.Errorf("index.html has an inline script:\n%s", body)
	}
	refs := regexp.MustCompile(`/assets/[A-Za-z0-9._-]+`).FindAllString(body, -1)
	if len(refs) != 2 {
		t.Fatalf("index.html references %v, want one script and one stylesheet", refs)
	}
	for _, ref := range refs {
		rec := get("GET", ref)
		want := map[string]string{".js": "text/javascript", ".css": "text/css"}[filepath.Ext(ref)]
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), want) ||
			rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" || rec.Body.Len() == 0 {
			t.Errorf("GET %s: %d %v (%d bytes)", ref, rec.Code, rec.Header(), rec.Body.Len())
		}
	}
	for _, p := range []string{"/assets/", "/assets/nope.js", "/assets/../index.html", "/assets/a/b.js", "/.srchash", "/assets/.srchash"} {
		if rec := get("GET", p); rec.Code != 404 {
			t.Errorf("GET %s: %d, want 404", p, rec.Code)
		}
	}
	if rec := get("POST", "/"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", rec.Code)
	}
	if rec := get("HEAD", "/"); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD /: %d, %d bytes", rec.Code, rec.Body.Len())
	}
}

func TestMount(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := Mount(Handler(Files()), api)
	for path, want := range map[string]int{"/": 200, "/api/v1/me": 418, "/healthz": 418, "/metrics": 418, "/assets/x.js": 404} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
	}
}

// srcHash is scripts/webui.sh's hash of the console sources.
func srcHash(t *testing.T) string {
	t.Helper()
	files := []string{"build.mjs", "package.json", "package-lock.json", "tsconfig.json"}
	err := filepath.WalkDir("src", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, filepath.ToSlash(p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	var list strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&list, "%x  %s\n", sha256.Sum256([]byte(b)), f)
	}
	return fmt.Sprintf("%x", sha256.Sum256([]byte(list.String())))
}

// TestDistUpToDate fails when src/ changed and dist/ was not rebuilt
// (make webui) before committing.
func TestDistUpToDate(t *testing.T) {
	got, err := os.ReadFile("dist/.srchash")
	if err != nil {
		t.Fatalf("dist/.srchash: %v (run make webui)", err)
	}
	if want := srcHash(t); strings.TrimSpace(string(got)) != want {
		t.Fatalf("dist/ was built from other sources (%s, sources now %s): run make webui and commit dist/", strings.TrimSpace(string(got)), want)
	}
}

// jsBudget bounds the console's first-load JavaScript, gzipped (issue #20).
const jsBudget = 300 << 10

// TestJSBudget gzips every script dist/index.html loads (and every .js of
// dist/assets/: the console has no lazy chunks, so first load is all of
// them) and fails above jsBudget. bench/notes.md quotes the logged size.
func TestJSBudget(t *testing.T) {
	files := Files()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	js, err := fs.Glob(files, "assets/*.js")
	if err != nil {
		t.Fatal(err)
	}
	if len(js) == 0 {
		t.Fatal("dist/assets has no JavaScript")
	}
	var raw, zipped int
	for _, name := range js {
		if !strings.Contains(string(index), "/"+name) {
			t.Errorf("%s is not loaded by index.html (a stale build?)", name)
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			t.Fatal(err)
		}
		var z bytes.Buffer
		w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		raw += len(b)
		zipped += z.Len()
	}
	t.Logf("console JavaScript: %d files, %d bytes, %d bytes gzipped (%.1f KB of the %d KB budget)", len(js), raw, zipped, float64(zipped)/1024, jsBudget>>10)
	if zipped > jsBudget {
		t.Errorf("console JavaScript is %d bytes gzipped, over the %d KB budget", zipped, jsBudget>>10)
	}
}
