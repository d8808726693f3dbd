package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"

	"xueliang/cmd/xueliang/internal/replay"
	"xueliang/index"
	"xueliang/ingest/segmenter"
	"xueliang/storage"
	"xueliang/storage/local"
	"xueliang/storage/recording"
	"xueliang/storage/s3"
	"xueliang/storage/spool"
)

type replayResult struct {
	Cameras        int     `json:"cameras"`
	Hours          int     `json:"hours"`
	SegmentSeconds int     `json:"segment_seconds"`
	Segments       int     `json:"segments"`
	SegmentBytes   int     `json:"segment_bytes"`
	Objects        int     `json:"objects_stored"`
	SynthSeconds   float64 `json:"synthesis_seconds"`
	Instants       int     `json:"instants"`
	MinioP50ms     float64 `json:"minio_ttfb_p50_ms"`
	MinioP99ms     float64 `json:"minio_ttfb_p99_ms"`
	LocalP50ms     float64 `json:"local_ttfb_p50_ms"`
	LocalP99ms     float64 `json:"local_ttfb_p99_ms"`
	LoadAvg        string  `json:"loadavg_before"`
}

// capIndex captures what a segmenter.Writer writes to the index.
type capIndex struct {
	mu    sync.Mutex
	seg   recording.Segment
	frags []recording.Fragment
	end   time.Time
	size  int64
	sha   string
}

func (c *capIndex) CreateSegment(_ context.Context, s *recording.Segment) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.ID = 1
	c.seg = *s
	return nil
}

func (c *capIndex) AddFragments(_ context.Context, f []recording.Fragment) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frags = append(c.frags, f...)
	return nil
}

func (c *capIndex) FinishSegment(_ context.Context, _ int64, end time.Time, size int64, sha string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.end, c.size, c.sha = end, size, sha
	return nil
}

type tsAU struct {
	pts, dts int64
	au       [][]byte
	idr      bool
}

// loadH264 reads the access units of an H.264 MPEG-TS clip.
func loadH264(path string) (aus []tsAU, sps, pps []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	r := &mpegts.Reader{R: bufio.NewReader(f)}
	if err := r.Initialize(); err != nil {
		return nil, nil, nil, err
	}
	for _, tr := range r.Tracks() {
		if _, ok := tr.Codec.(*mpegts.CodecH264); ok {
			r.OnDataH264(tr, func(pts, dts int64, au [][]byte) error {
				a := tsAU{pts: pts, dts: dts}
				for _, n := range au {
					if len(n) == 0 {
						continue
					}
					switch h264.NALUType(n[0] & 0x1F) {
					case h264.NALUTypeSPS:
						sps = n
					case h264.NALUTypePPS:
						pps = n
					case h264.NALUTypeIDR:
						a.idr = true
					}
					a.au = append(a.au, n)
				}
				aus = append(aus, a)
				return nil
			})
		}
	}
	for {
		if err := r.Read(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, nil, nil, err
		}
	}
	if len(aus) == 0 || sps == nil {
		return nil, nil, nil, errors.New("no H.264 video")
	}
	return aus, sps, pps, nil
}

// template records the clip into one real segment with the real segmenter.
func template(dir, clipPath string) (*capIndex, []byte, error) {
	aus, sps, pps, err := loadH264(clipPath)
	if err != nil {
		return nil, nil, fmt.Errorf("load %s: %w", clipPath, err)
	}
	root := filepath.Join(dir, "template-spool")
	os.RemoveAll(root)
	ci := &capIndex{}
	w, err := segmenter.New(segmenter.Config{CameraID: "tpl", SpoolRoot: root, Index: ci,
		SegmentDuration: time.Hour, MaxFragmentDuration: 2 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	worker := make(chan error, 1)
	go func() { worker <- w.Run(context.Background()) }()
	t0 := time.Unix(1700000000, 0)
	if err := w.Start(segmenter.Session{Anchor: t0, AnchorPTS: aus[0].pts,
		Video: recording.Video{Codec: recording.H264, SPS: sps, PPS: pps}}); err != nil {
		return nil, nil, err
	}
	for _, a := range aus {
		if err := w.WriteVideo(a.pts, a.dts, a.au, a.idr); err != nil {
			return nil, nil, err
		}
	}
	w.Close()
	if err := <-worker; err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(spool.Dir{Root: root}.Path(ci.seg.ObjectKey))
	if err != nil {
		return nil, nil, err
	}
	if ci.size > 0 && int64(len(b)) > ci.size {
		b = b[:ci.size]
	}
	return ci, b, nil
}

type firstByte struct{ at time.Time }

var errFirstByte = errors.New("first byte")

func (f *firstByte) Write(p []byte) (int, error) {
	if f.at.IsZero() && len(p) > 0 {
		f.at = time.Now()
	}
	return 0, errFirstByte
}

// runReplay synthesises cams × hours of segments (copies of one real 10 s
// 1080p segment) through the index API, stores the objects the sampled
// instants need in MinIO and on local disk, and times Plan+Write up to the
// first byte for each instant. (Replay through the HTTP API on the
// 1,000-camera index, SQLite and PostgreSQL: indexreplay.go.)
func runReplay(dir, clipPath string, m *minio, cams, hours, instants int, ready func()) (replayResult, error) {
	ctx := context.Background()
	r := replayResult{Cameras: cams, Hours: hours, Instants: instants, LoadAvg: loadavg()}
	ci, obj, err := template(dir, clipPath)
	if err != nil {
		return r, fmt.Errorf("template segment: %w", err)
	}
	segDur := ci.end.Sub(ci.seg.Start).Round(time.Second)
	r.SegmentSeconds = int(segDur / time.Second)
	r.SegmentBytes = len(obj)
	t0 := time.Now()
	path := filepath.Join(dir, "replay-index.db")
	os.Remove(path)
	db, err := index.Open(ctx, path, nil)
	if err != nil {
		return r, err
	}
	defer db.Close()
	end := time.Now().Truncate(time.Hour)
	start := end.Add(-time.Duration(hours) * time.Hour)
	perCam := int(end.Sub(start) / segDur)
	key := func(c, k int) string { return fmt.Sprintf("bench/cam%02d/%06d.mp4", c, k) }
	for c := range cams {
		for k := range perCam {
			st := start.Add(time.Duration(k) * segDur)
			shift := st.Sub(ci.seg.Start)
			seg := ci.seg
			seg.ID, seg.CameraID, seg.ObjectKey = 0, fmt.Sprintf("cam%02d", c), key(c, k)
			seg.Start, seg.End, seg.Size, seg.SHA256, seg.State = st, ci.end.Add(shift), int64(len(obj)), ci.sha, recording.StateStored
			if err := db.CreateSegment(ctx, &seg); err != nil {
				return r, err
			}
			frags := make([]recording.Fragment, len(ci.frags))
			for i, f := range ci.frags {
				f.SegmentID, f.Start, f.End = seg.ID, f.Start.Add(shift), f.End.Add(shift)
				frags[i] = f
			}
			if err := db.AddFragments(ctx, frags); err != nil {
				return r, err
			}
			r.Segments++
		}
	}
	logf("replay: %d segments indexed in %.1f s", r.Segments, time.Since(t0).Seconds())

	mst, err := s3.New(ctx, s3.Config{Endpoint: m.Endpoint, Bucket: "replay", AccessKey: m.AccessKey, SecretKey: m.SecretKey}, nil)
	if err != nil {
		return r, err
	}
	defer mst.Close()
	lst, err := local.New(filepath.Join(dir, "replay-objects"))
	if err != nil {
		return r, err
	}
	defer lst.Close()
	type sample struct {
		cam string
		at  time.Time
	}
	samples := make([]sample, instants)
	stored := map[string]bool{}
	for i := range samples {
		c := rand.IntN(cams)
		at := start.Add(time.Duration(rand.Int64N(int64(end.Sub(start) - segDur))))
		samples[i] = sample{fmt.Sprintf("cam%02d", c), at}
		k := int(at.Sub(start) / segDur)
		for _, kk := range []int{k} { // segments start with a keyframe; Write stops at the first byte
			if kk < 0 || kk >= perCam || stored[key(c, kk)] {
				continue
			}
			stored[key(c, kk)] = true
			for _, st := range []storage.Store{mst, lst} {
				if _, err := st.Put(ctx, key(c, kk), bytes.NewReader(obj), int64(len(obj))); err != nil {
					return r, err
				}
			}
		}
	}
	r.Objects = len(stored)
	r.SynthSeconds = time.Since(t0).Seconds()
	logf("replay: %d objects stored; archive ready after %.1f s", r.Objects, r.SynthSeconds)

	ready() // the machine is quiet again
	r.LoadAvg = loadavg()
	sp, err := spool.NewDir(filepath.Join(dir, "replay-spool"))
	if err != nil {
		return r, err
	}
	type source struct {
		name string
		s    storage.Store
		db   *index.DB
		p50  *float64
		p99  *float64
	}
	sources := []source{{"minio", mst, db, &r.MinioP50ms, &r.MinioP99ms}, {"local", lst, db, &r.LocalP50ms, &r.LocalP99ms}}
	for _, st := range sources {
		rp := &replay.Replayer{Index: st.db, Reader: spool.Reader{Dir: sp, Store: st.s}}
		var lat []float64
		for _, s := range samples {
			t := time.Now()
			plan, err := rp.Plan(ctx, replay.Request{Camera: s.cam, Start: s.at, End: s.at.Add(10 * time.Second)})
			if err != nil {
				return r, fmt.Errorf("%s: plan %s at %s: %w", st.name, s.cam, s.at, err)
			}
			fb := &firstByte{}
			if err := rp.Write(ctx, plan, fb); err != nil && !errors.Is(err, errFirstByte) {
				return r, fmt.Errorf("%s: write %s at %s: %w", st.name, s.cam, s.at, err)
			}
			if fb.at.IsZero() {
				return r, fmt.Errorf("%s: no byte written for %s at %s", st.name, s.cam, s.at)
			}
			lat = append(lat, fb.at.Sub(t).Seconds()*1000)
		}
		*st.p50, *st.p99 = pct(lat, 50), pct(lat, 99)
		logf("replay from %s: TTFB p50 %.1f ms, p99 %.1f ms over %d instants", st.name, *st.p50, *st.p99, len(lat))
	}
	return r, nil
}
