// Package webui serves the command-room web console: a TypeScript single
// page app (src/, built by build.mjs with esbuild into dist/) embedded in
// the binary. The built dist/ is committed, so `go build` needs no Node;
// `make webui` rebuilds it when the sources changed (scripts/webui.sh).
//
// Handler serves dist/index.html at "/" and the files of dist/assets/
// under /assets/. Asset names carry a content hash (build.mjs), so they are
// cached for a year as immutable; index.html is revalidated every time.
// Every answer carries a Content-Security-Policy that allows no inline
// script and no other origin. Mount puts the console in front of the API
// handler: everything that is not the console goes to the API, which
// stays under /api/v1.
package webui

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed dist
var dist embed.FS

// CSP is the Content-Security-Policy of every console answer: scripts and
// styles from the server only (no inline script), media and images also
// from blob: (Media Source Extensions, snapshots), connections (fetch and
// the live WebSocket) to the same origin.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"media-src 'self' blob:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Files returns the built console (the dist/ tree).
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // dist is embedded: cannot happen
	}
	return sub
}

// Handler serves the console from files (Files() in production).
func Handler(files fs.FS) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		name := "index.html"
		cache := "no-cache"
		if p := r.URL.Path; p != "/" && p != "/index.html" {
			rel, ok := strings.CutPrefix(path.Clean(p), "/assets/")
			if !ok || rel == "" || strings.Contains(rel, "/") {
				http.NotFound(w, r)
				return
			}
			name, cache = "assets/"+rel, "public, max-age=31536000, immutable"
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.Set("Content-Type", ct)
		h.Set("Cache-Control", cache)
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(b)
		}
	})
}

// IsConsolePath reports whether p is served by the console rather than
// the API.
func IsConsolePath(p string) bool {
	return p == "/" || p == "/index.html" || strings.HasPrefix(p, "/assets/")
}

// Mount returns a handler that serves the console (ui) at its paths and
// passes every other request to api.
func Mount(ui, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsConsolePath(r.URL.Path) {
			ui.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}
