package api

// Live snapshot: GET /api/v1/cameras/{id}/snapshot.jpg decodes the stream's
// latest keyframe (ingest/live keeps the last GOP while a stream is watched
// or lingers; an idle stream gives its next keyframe, within one GOP) and
// answers a JPEG, cached per camera stream for SnapshotMaxAge.

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"net/http"
	"sync"
	"time"

	"xueliang/ingest/live"
	"xueliang/storage/recording"
)

// KeyframeDecoder decodes one keyframe access unit (NAL units with its
// parameter sets) to a picture; serve wires libavcodec (ingest/decode).
type KeyframeDecoder func(codec recording.VideoCodec, au [][]byte) (image.Image, error)

const (
	// SnapshotMaxAge is how long a snapshot is served from the cache.
	SnapshotMaxAge = time.Second
	// snapshotWait bounds the wait for a keyframe of an idle stream.
	snapshotWait = 10 * time.Second
)

type snapshotEntry struct {
	jpeg     []byte
	at, made time.Time // the keyframe's capture time; when it was decoded
}

// snapshots is the per-stream cache; one decode at a time per server
// (decoding is CPU the recording also needs).
type snapshots struct {
	mu     sync.Mutex
	cache  map[[2]string]snapshotEntry
	decode sync.Mutex
}

func (s *Server) snapshotRoutes() []route {
	return []route{{Route{"GET", "/api/v1/cameras/{id}/snapshot.jpg", ActLive}, s.snapshot}}
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.cameraExists(w, r, id) {
		return
	}
	name := r.URL.Query().Get("stream")
	if name == "" {
		name = live.Main
	}
	if name != live.Main && name != live.Sub {
		writeError(w, http.StatusBadRequest, "stream: want main or sub, got %q", name)
		return
	}
	if s.Live == nil || s.DecodeKeyframe == nil {
		writeError(w, http.StatusNotImplemented, "live snapshots are not available on this server")
		return
	}
	st, ok := s.Live.Lookup(id, name)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "camera %s has no live %s stream now", id, name)
		return
	}
	b, at, err := s.snapshotJPEG(r.Context(), st, id, name)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "no keyframe from camera %s within %v", id, snapshotWait)
		return
	case err != nil && r.Context().Err() != nil:
		return
	case err != nil:
		s.internal(w, r, "snapshot", err)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "max-age=1")
	w.Header().Set("X-Snapshot-Time", at.UTC().Format(time.RFC3339Nano))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// snapshotJPEG returns the cached snapshot of the stream, or decodes a new
// one; at is the keyframe's capture time.
func (s *Server) snapshotJPEG(ctx context.Context, st *live.Stream, camera, name string) ([]byte, time.Time, error) {
	k := [2]string{camera, name}
	s.snaps.mu.Lock()
	e, ok := s.snaps.cache[k]
	s.snaps.mu.Unlock()
	if ok && s.Now().Sub(e.made) < SnapshotMaxAge {
		return e.jpeg, e.at, nil
	}
	v := st.Subscribe() // starts at a keyframe: the kept GOP's, or the next
	defer v.Close()
	wctx, cancel := context.WithTimeout(ctx, snapshotWait)
	defer cancel()
	var u *live.Unit
	for u == nil || u.Audio {
		var err error
		if u, err = v.Next(wctx); err != nil {
			return nil, time.Time{}, err
		}
	}
	v.Close()
	s.snaps.decode.Lock()
	img, err := s.DecodeKeyframe(u.Session.Video.Codec, u.Data)
	s.snaps.decode.Unlock()
	if err != nil {
		return nil, time.Time{}, err
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		return nil, time.Time{}, err
	}
	e = snapshotEntry{jpeg: buf.Bytes(), at: u.Wall(), made: s.Now()}
	s.snaps.mu.Lock()
	if s.snaps.cache == nil {
		s.snaps.cache = map[[2]string]snapshotEntry{}
	}
	s.snaps.cache[k] = e
	s.snaps.mu.Unlock()
	return e.jpeg, e.at, nil
}
