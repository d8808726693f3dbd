package main

// Replay time to first byte on the index benchmark's archive (parts index
// and postgres): the same instants, chosen with the same seed, asked of
// the HTTP API (api.Server's handler behind a loopback net/http server,
// the server's replay route with its camera check, limits and replayer)
// over a 1,000-camera × 30-day index in SQLite or PostgreSQL, so that the
// two backends' figures are one method's.
//
// The bulk-loaded rows have no init segment, fragments or object, so each
// sampled segment is replaced by a copy of one real segment (the replay
// part's template: the bench clip through the real segmenter), inserted
// through the index API (CreateSegment + AddFragments) at its place in the
// archive, with its object stored in MinIO.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"time"

	"xueliang/cmd/xueliang/internal/api"
	"xueliang/cmd/xueliang/internal/replay"
	"xueliang/storage"
	"xueliang/storage/recording"
	"xueliang/storage/s3"
	"xueliang/storage/spool"
)

// indexReplay is what the index runs need to time replays: the template
// segment, its bytes and the store the sampled objects go to.
type indexReplay struct {
	tpl     *capIndex
	obj     []byte
	store   storage.Store
	spool   string // an empty spool directory (the replayer reads spool, then store)
	storeAs string // what the store is, for the report
	n       int    // instants
}

// newIndexReplay makes the template segment from clip and opens the
// MinIO bucket "index-replay"; close releases the bucket's client.
func newIndexReplay(dir, clip string, m *minio, instants int) (rep *indexReplay, closeFn func(), err error) {
	ci, obj, err := template(dir, clip)
	if err != nil {
		return nil, nil, fmt.Errorf("template segment: %w", err)
	}
	st, err := s3.New(context.Background(), s3.Config{Endpoint: m.Endpoint, Bucket: "index-replay", AccessKey: m.AccessKey, SecretKey: m.SecretKey}, nil)
	if err != nil {
		return nil, nil, err
	}
	return &indexReplay{tpl: ci, obj: obj, store: st, spool: filepath.Join(dir, "index-replay-spool"), storeAs: "MinIO", n: instants},
		func() { st.Close() }, nil
}

// replaySample is one replay instant: camera cam's k-th segment slot,
// replaced by a template copy, asked from at.
type replaySample struct {
	cam, k int
	at     time.Time
}

// Seeds of the index benchmark's random choices: both backends query the
// same cameras and replay the same instants.
const (
	timelineSeed = 21
	replaySeed   = 22
)

// pickSamples chooses n distinct (camera, slot) pairs of a cams × perCam
// archive with rng, none for which skip is true (segments inserted
// otherwise). at is left zero.
func pickSamples(rng *rand.Rand, cams, perCam, n int, skip func(c, k int) bool) []replaySample {
	seen := map[[2]int]bool{}
	out := make([]replaySample, 0, n)
	for tries := 0; len(out) < n && tries < 100*n; tries++ {
		c, k := rng.IntN(cams), rng.IntN(perCam)
		if seen[[2]int{c, k}] || skip(c, k) {
			continue
		}
		seen[[2]int{c, k}] = true
		out = append(out, replaySample{cam: c, k: k})
	}
	return out
}

// replayArchive picks the replay instants, inserts their template copies
// through the index API and stores their objects; fill then leaves their
// slots out (apiDone). It runs after api, before fill.
func (run *indexRun) replayArchive(rep *indexReplay) error {
	ctx := context.Background()
	r := &run.r
	segDur := time.Duration(r.SegmentSeconds) * time.Second
	perCam := int(run.end.Sub(run.start) / segDur)
	ci := rep.tpl
	tplDur := ci.end.Sub(ci.seg.Start)
	if tplDur <= time.Second || tplDur > segDur {
		return fmt.Errorf("template segment of %s does not fit a %s slot", tplDur, segDur)
	}
	rng := rand.New(rand.NewPCG(replaySeed, 0))
	run.samples = pickSamples(rng, r.Cameras, perCam, rep.n, func(c, k int) bool { return run.apiDone[[2]int{c, k}] })
	t0 := time.Now()
	for i, s := range run.samples {
		st := run.start.Add(time.Duration(s.k) * segDur)
		shift := st.Sub(ci.seg.Start)
		seg := ci.seg
		seg.ID, seg.CameraID = 0, fmt.Sprintf("cam%04d", s.cam)
		seg.ObjectKey = fmt.Sprintf("%s/%d.mp4", seg.CameraID, st.UnixNano())
		seg.Start, seg.End, seg.Size, seg.SHA256, seg.State = st, ci.end.Add(shift), int64(len(rep.obj)), ci.sha, recording.StateStored
		if err := run.db.CreateSegment(ctx, &seg); err != nil {
			return err
		}
		frags := make([]recording.Fragment, len(ci.frags))
		for j, f := range ci.frags {
			f.SegmentID, f.Start, f.End = seg.ID, f.Start.Add(shift), f.End.Add(shift)
			frags[j] = f
		}
		if err := run.db.AddFragments(ctx, frags); err != nil {
			return err
		}
		if _, err := rep.store.Put(ctx, seg.ObjectKey, bytes.NewReader(rep.obj), int64(len(rep.obj))); err != nil {
			return err
		}
		// Anywhere in the first half of the copy: a 10 s window from there
		// starts in it (and may end at its end: the next slot is a gap).
		run.samples[i].at = st.Add(time.Duration(rng.Int64N(int64(tplDur / 2))))
		run.apiDone[[2]int{s.cam, s.k}] = true
	}
	r.ReplayObjects = len(run.samples)
	logf("index: %d replay segments (template copies, %d bytes each) indexed and stored in %.1f s", len(run.samples), len(rep.obj), time.Since(t0).Seconds())
	return nil
}

// replayTTFB times GET /api/v1/cameras/{id}/replay.mp4?format=fmp4 for
// each sample, 10 s from its instant, up to the first byte of the body.
func (run *indexRun) replayTTFB(rep *indexReplay) error {
	sp, err := spool.NewDir(rep.spool)
	if err != nil {
		return err
	}
	srv := httptest.NewServer((&api.Server{Index: run.db,
		Replayer: &replay.Replayer{Index: run.db, Reader: spool.Reader{Dir: sp, Store: rep.store}}}).Handler())
	defer srv.Close()
	lat := make([]float64, 0, len(run.samples))
	for _, s := range run.samples {
		ms, err := firstByteMs(srv.Client(), replayURL(srv.URL, fmt.Sprintf("cam%04d", s.cam), s.at, 10*time.Second))
		if err != nil {
			return fmt.Errorf("replay cam%04d at %s: %w", s.cam, s.at.Format(time.RFC3339Nano), err)
		}
		lat = append(lat, ms)
	}
	r := &run.r
	r.ReplayInstants = len(lat)
	r.ReplayVia = "GET /api/v1/cameras/{id}/replay.mp4?format=fmp4 (api.Server on a loopback HTTP server; objects in " + rep.storeAs + ")"
	r.ReplayP50ms, r.ReplayP99ms = pct(lat, 50), pct(lat, 99)
	logf("index: replay TTFB over HTTP, %d instants: p50 %.1f ms, p99 %.1f ms", len(lat), r.ReplayP50ms, r.ReplayP99ms)
	return nil
}

// replayURL is the fragmented-MP4 replay of camera from at for d.
func replayURL(base, camera string, at time.Time, d time.Duration) string {
	q := url.Values{"start": {at.UTC().Format(time.RFC3339Nano)}, "end": {at.Add(d).UTC().Format(time.RFC3339Nano)}, "format": {api.FormatFMP4}}
	return base + "/api/v1/cameras/" + url.PathEscape(camera) + "/replay.mp4?" + q.Encode()
}

// firstByteMs GETs u and returns the milliseconds until the first byte of
// a 200 response's body.
func firstByteMs(c *http.Client, u string) (float64, error) {
	t := time.Now()
	resp, err := c.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("status %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var one [1]byte
	if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
		return 0, errors.Join(errors.New("no body"), err)
	}
	return time.Since(t).Seconds() * 1000, nil
}
