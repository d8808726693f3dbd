package peer

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"xueliang/storage"
	"xueliang/storage/spool"
)

// SpoolPath prefixes the internal spool endpoint: GET SpoolPath + <object
// key> answers the bytes of this node's spool file of that segment
// (Range requests: 206 with the part asked for; the file of a segment
// being recorded is served up to its current size).
const SpoolPath = "/internal/v1/spool/"

// InternalPrefix is the path prefix of every node-to-node endpoint.
const InternalPrefix = "/internal/"

// SpoolHandler serves this node's spool files to the other nodes.
type SpoolHandler struct {
	Dir      spool.Dir
	Verifier Verifier
	// Metrics may be nil.
	Metrics *Metrics
	// Logger; nil discards.
	Logger *slog.Logger
}

func (h *SpoolHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	node, err := h.Verifier.Verify(r)
	if err != nil {
		h.Metrics.servedOne(ServedUnauthorized)
		h.log().Debug("internal request refused", "remote", r.RemoteAddr, "err", err)
		w.Header().Set("WWW-Authenticate", Scheme)
		writeError(w, http.StatusUnauthorized, "node authentication required")
		return
	}
	key, ok := strings.CutPrefix(r.URL.Path, SpoolPath)
	if !ok || storage.CheckKey(key) != nil {
		h.Metrics.servedOne(ServedBadRequest)
		writeError(w, http.StatusNotFound, "no such internal endpoint or segment key")
		return
	}
	f, err := os.Open(h.Dir.Path(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			h.Metrics.servedOne(ServedNotFound)
			writeError(w, http.StatusNotFound, "segment not in this node's spool")
			return
		}
		h.log().Warn("spool file unreadable", "key", key, "err", err)
		writeError(w, http.StatusInternalServerError, "spool file unreadable")
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		h.Metrics.servedOne(ServedNotFound)
		writeError(w, http.StatusNotFound, "segment not in this node's spool")
		return
	}
	h.Metrics.servedOne(ServedOK)
	h.log().Debug("spool served", "node", node, "key", key, "range", r.Header.Get("Range"))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	// The size now: a segment being recorded grows, its complete
	// fragments (all the index lists) are within it.
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(f, 0, st.Size()))
}

func (h *SpoolHandler) log() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

// Mount serves InternalPrefix with internal and everything else with rest.
func Mount(internal, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, InternalPrefix) {
			internal.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
