package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"xueliang/storage"
	"xueliang/storage/recording"
	"xueliang/storage/spool"
)

// Index is what reconciliation needs from the index. *index.DB
// implements it.
type Index interface {
	// Timeline gives the spans a camera has rows in (to find the days).
	Timeline(ctx context.Context, camera string, from, to time.Time, gapTolerance time.Duration) ([]recording.Span, []recording.Gap, error)
	SegmentsInRange(ctx context.Context, camera string, from, to time.Time) ([]recording.Segment, error)
	CreateSegment(ctx context.Context, seg *recording.Segment) error
	AddFragments(ctx context.Context, frags []recording.Fragment) error
	FinishSegment(ctx context.Context, id int64, end time.Time, size int64, sha256 string) error
	MarkStored(ctx context.Context, id int64) error
	// DeleteSegment removes a row this run imported and could not finish.
	DeleteSegment(ctx context.Context, id int64) error
	// MarkLost moves the row of a lost segment out of the footage rows
	// into the record of lost segments (never a silent deletion).
	MarkLost(ctx context.Context, id int64, at time.Time) error
}

// Config configures Run.
type Config struct {
	// Index and Store are compared; required.
	Index Index
	Store storage.Store
	// Spool is the spool directory, where a copy of a segment missing
	// from the store may still be. It defaults to none (Root empty).
	Spool spool.Dir
	// Cameras are the camera IDs whose key prefixes ("<camera>/") are
	// reconciled; objects outside them are not looked at.
	Cameras []string
	// MaxLostDeletes bounds the rows marked lost in one run. When more
	// are found, none is marked (a misconfigured bucket looks exactly like
	// everything being lost); they are reported and kept as they are. It
	// defaults to 1000; negative means never mark.
	MaxLostDeletes int
	// Audit, when set, records each row marked lost and each orphan
	// imported in the audit log; a failure is counted in Errors.
	Audit func(ctx context.Context, f Finding) error
	// MaxExamples bounds Report.Examples. It defaults to 20.
	MaxExamples int
	// TempDir holds an orphan object while it is parsed. It defaults to
	// os.TempDir().
	TempDir string
	// Logger; nil discards.
	Logger *slog.Logger
	// Now bounds the days searched for rows. It defaults to time.Now.
	Now func() time.Time
}

// Kind classifies a Finding.
type Kind string

// Finding kinds.
const (
	// OrphanImported: an object without a row was parsed and indexed
	// (state stored).
	OrphanImported Kind = "orphan-imported"
	// OrphanLeft: an object without a row that is not one of our segments
	// (key or content); it is left alone.
	OrphanLeft Kind = "orphan-left"
	// LostReuploaded: a stored row's object was missing and was put again
	// from the spool copy; the row stays stored.
	LostReuploaded Kind = "lost-reuploaded"
	// LostMarked: a stored row's object was missing with no spool copy;
	// the row was marked lost (index.MarkLost: the timeline shows a gap
	// there, listed as lost) and audited.
	LostMarked Kind = "lost-marked"
	// LostKept: like LostMarked, but the row was kept as it is (too many
	// lost, or marking is disabled).
	LostKept Kind = "lost-kept"
	// SizeMismatch: a stored row's object has another size; reported only.
	SizeMismatch Kind = "size-mismatch"
	// Failed: an operation failed; the next run retries.
	Failed Kind = "failed"
)

// Finding is one example of a discrepancy.
type Finding struct {
	Kind       Kind
	Camera     string
	Key        string
	Start, End time.Time // zero when unknown
	Detail     string
}

// Report counts what Run found and did.
type Report struct {
	Cameras int
	// Objects is the number of objects listed, Rows the number of stored
	// rows compared with them.
	Objects, Rows int
	// Orphans are objects without a row: Imported + Unrecognised (+ the
	// failed ones, counted in Errors).
	Orphans, Imported, Unrecognised int
	// Lost are stored rows whose object is missing: Reuploaded + Marked
	// + Kept (+ failures).
	Lost, Reuploaded, Marked, Kept int
	// SizeMismatch counts stored rows whose object has another size.
	SizeMismatch int
	// SpoolRemoved counts spool files of stored segments (a crash between
	// MarkStored and the removal) removed after checking the object.
	SpoolRemoved int
	// Errors counts failed operations.
	Errors int
	// Examples holds up to MaxExamples findings, in discovery order.
	Examples []Finding
}

// Findings is the number of discrepancies found.
func (r Report) Findings() int {
	return r.Orphans + r.Lost + r.SizeMismatch + r.SpoolRemoved + r.Errors
}

type run struct {
	cfg     Config
	log     *slog.Logger
	rep     Report
	spooled map[string]int64    // spool key → size
	lost    []recording.Segment // lost rows to delete at the end (no Init)
	tooMany bool
	logged  int // lost segments logged one by one
}

// Run reconciles the index with the store for cfg.Cameras and returns
// what it found; see the package doc. Per-item failures are counted in
// the report and logged; an error is returned only when listing the store
// or the index fails, with the report so far.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Index == nil || cfg.Store == nil {
		return Report{}, errors.New("reconcile: index and store are required")
	}
	if cfg.MaxLostDeletes == 0 {
		cfg.MaxLostDeletes = 1000
	}
	if cfg.MaxExamples <= 0 {
		cfg.MaxExamples = 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &run{cfg: cfg, log: log.With("component", "reconcile"), spooled: map[string]int64{}}
	if cfg.Spool.Root != "" {
		err := cfg.Spool.Walk(func(key string, info fs.FileInfo) error {
			r.spooled[key] = info.Size()
			return nil
		})
		if err != nil {
			return r.rep, fmt.Errorf("reconcile: %w", err)
		}
	}
	for _, cam := range cfg.Cameras {
		if err := r.camera(ctx, cam); err != nil {
			r.summary()
			return r.rep, fmt.Errorf("reconcile camera %s: %w", cam, err)
		}
		r.rep.Cameras++
	}
	r.deleteLost(ctx)
	r.summary()
	return r.rep, nil
}

func (r *run) summary() {
	rep := r.rep
	level := slog.LevelInfo
	if rep.Lost+rep.Errors+rep.SizeMismatch > 0 {
		level = slog.LevelError
	} else if rep.Orphans > 0 {
		level = slog.LevelWarn
	}
	r.log.Log(context.Background(), level, "store reconciled",
		"cameras", rep.Cameras, "objects", rep.Objects, "stored_rows", rep.Rows,
		"orphans", rep.Orphans, "imported", rep.Imported, "unrecognised", rep.Unrecognised,
		"lost", rep.Lost, "reuploaded", rep.Reuploaded, "marked", rep.Marked, "kept", rep.Kept,
		"size_mismatch", rep.SizeMismatch, "spool_removed", rep.SpoolRemoved, "errors", rep.Errors)
}

func (r *run) note(f Finding) {
	if len(r.rep.Examples) < r.cfg.MaxExamples {
		r.rep.Examples = append(r.rep.Examples, f)
	}
}

func (r *run) fail(cam, key string, err error) {
	r.rep.Errors++
	r.note(Finding{Kind: Failed, Camera: cam, Key: key, Detail: err.Error()})
	r.log.Warn("reconcile step failed", "camera", cam, "key", key, "err", err)
}

// camera reconciles one camera, one UTC day at a time: the days that have
// objects (from the listing, which comes in key order, i.e. by time) and
// the days that have rows (from the camera's timeline) are merged.
func (r *run) camera(ctx context.Context, cam string) error {
	rowDays, err := r.rowDays(ctx, cam)
	if err != nil {
		return err
	}
	var (
		curDay  time.Time
		objects []storage.ObjectInfo
	)
	flush := func(upTo time.Time, withObjects bool) error {
		// Row-only days before the day being flushed, then that day.
		for len(rowDays) > 0 && rowDays[0].Before(upTo) {
			if err := r.day(ctx, cam, rowDays[0], nil); err != nil {
				return err
			}
			rowDays = rowDays[1:]
		}
		if !withObjects {
			return nil
		}
		if len(rowDays) > 0 && rowDays[0].Equal(upTo) {
			rowDays = rowDays[1:]
		}
		return r.day(ctx, cam, upTo, objects)
	}
	err = r.cfg.Store.List(ctx, cam+"/", func(oi storage.ObjectInfo) error {
		r.rep.Objects++
		d, ok := recording.KeyDay(cam, oi.Key)
		if !ok {
			r.orphanLeft(cam, oi.Key, "key is not a segment key of this camera")
			return nil
		}
		if len(objects) > 0 && !d.Equal(curDay) {
			if err := flush(curDay, true); err != nil {
				return err
			}
			objects = objects[:0]
		}
		curDay = d
		objects = append(objects, oi)
		return nil
	})
	if err != nil {
		return err
	}
	if len(objects) > 0 {
		if err := flush(curDay, true); err != nil {
			return err
		}
	}
	return flush(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), false)
}

// rowDays returns the UTC days that the camera's rows overlap, in order.
func (r *run) rowDays(ctx context.Context, cam string) ([]time.Time, error) {
	from := time.Unix(0, 0).UTC()
	to := r.cfg.Now().UTC().AddDate(1, 0, 0) // clock skew margin
	spans, _, err := r.cfg.Index.Timeline(ctx, cam, from, to, 0)
	if err != nil {
		return nil, err
	}
	var days []time.Time
	for _, s := range spans {
		for d := dayOf(s.Start); d.Before(s.End); d = d.AddDate(0, 0, 1) {
			if n := len(days); n == 0 || days[n-1].Before(d) {
				days = append(days, d)
			}
		}
	}
	return days, nil
}

func dayOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// day compares one camera-day: objects listed under its prefix and the
// rows whose keys are under it.
func (r *run) day(ctx context.Context, cam string, d time.Time, objects []storage.ObjectInfo) error {
	prefix := recording.DayPrefix(cam, d)
	segs, err := r.cfg.Index.SegmentsInRange(ctx, cam, d.Add(-time.Nanosecond), d.AddDate(0, 0, 1))
	if err != nil {
		return err
	}
	rows := make(map[string]recording.Segment, len(segs))
	for _, s := range segs {
		if strings.HasPrefix(s.ObjectKey, prefix) {
			rows[s.ObjectKey] = s
		}
	}
	listed := make(map[string]storage.ObjectInfo, len(objects))
	for _, oi := range objects {
		listed[oi.Key] = oi
		if _, ok := rows[oi.Key]; !ok {
			r.orphan(ctx, cam, oi)
		}
	}
	for key, s := range rows {
		if s.State != recording.StateStored {
			continue // the uploader's business
		}
		r.rep.Rows++
		oi, ok := listed[key]
		switch {
		case !ok:
			r.missing(ctx, s)
		case oi.Size != s.Size:
			r.rep.SizeMismatch++
			r.note(Finding{Kind: SizeMismatch, Camera: cam, Key: key, Start: s.Start, End: s.End,
				Detail: fmt.Sprintf("object %d bytes, row %d", oi.Size, s.Size)})
			r.log.Error("stored segment has the wrong size", "camera", cam, "key", key,
				"object_bytes", oi.Size, "row_bytes", s.Size)
		default:
			if _, ok := r.spooled[key]; ok {
				// Crash between MarkStored and the spool removal: the
				// object is whole, the spool copy is garbage.
				if err := r.cfg.Spool.Remove(key); err != nil {
					r.fail(cam, key, err)
				} else {
					r.rep.SpoolRemoved++
					delete(r.spooled, key)
				}
			}
		}
	}
	return nil
}

func (r *run) orphanLeft(cam, key, why string) {
	r.rep.Orphans++
	r.rep.Unrecognised++
	r.note(Finding{Kind: OrphanLeft, Camera: cam, Key: key, Detail: why})
	r.log.Warn("object not in the index left alone", "camera", cam, "key", key, "reason", why)
}

// orphan imports an object without a row when it is one of our segments.
func (r *run) orphan(ctx context.Context, cam string, oi storage.ObjectInfo) {
	start, ok := recording.KeyStart(cam, oi.Key)
	if !ok {
		r.orphanLeft(cam, oi.Key, "cannot derive the start time from the key")
		return
	}
	seg, frags, why, err := r.parseObject(ctx, cam, oi, start)
	switch {
	case err != nil:
		r.rep.Orphans++
		r.fail(cam, oi.Key, err)
		return
	case why != "":
		r.orphanLeft(cam, oi.Key, why)
		return
	}
	r.rep.Orphans++
	if err := r.importSegment(ctx, &seg, frags); err != nil {
		r.fail(cam, oi.Key, err)
		return
	}
	r.rep.Imported++
	f := Finding{Kind: OrphanImported, Camera: cam, Key: oi.Key, Start: seg.Start, End: seg.End}
	r.note(f)
	r.audit(ctx, f)
	r.log.Warn("object not in the index imported", "camera", cam, "key", oi.Key,
		"start", seg.Start, "end", seg.End, "fragments", len(frags))
}

// parseObject downloads the object to a temporary file and derives its
// row. why is set when it is not one of our segments.
func (r *run) parseObject(ctx context.Context, cam string, oi storage.ObjectInfo, start time.Time) (seg recording.Segment, frags []recording.Fragment, why string, err error) {
	f, err := os.CreateTemp(r.cfg.TempDir, "xueliang-reconcile-*")
	if err != nil {
		return seg, nil, "", err
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	rc, err := r.cfg.Store.GetRange(ctx, oi.Key, 0, -1)
	if err != nil {
		return seg, nil, "", err
	}
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), rc)
	rc.Close()
	if err != nil {
		return seg, nil, "", fmt.Errorf("read object: %w", err)
	}
	pf, err := recording.ParseFile(f, size)
	if err != nil {
		return seg, nil, "not a segment: " + err.Error(), nil
	}
	if pf.StopReason != "" || pf.ValidSize != size || len(pf.Fragments) == 0 {
		return seg, nil, fmt.Sprintf("incomplete segment: %d fragments, %d of %d bytes valid %s",
			len(pf.Fragments), pf.ValidSize, size, pf.StopReason), nil
	}
	if fr := pf.Fragments[0]; !fr.Keyframe() || fr.Video[0].PTS() != 0 {
		return seg, nil, "first fragment does not start with a keyframe at time 0", nil
	}
	init := make([]byte, pf.InitSize)
	if _, err := f.ReadAt(init, 0); err != nil {
		return seg, nil, "", fmt.Errorf("read init: %w", err)
	}
	info, err := recording.DescribeInit(init)
	if err != nil {
		return seg, nil, "not a segment: " + err.Error(), nil
	}
	frags = recording.FragmentRows(0, start, pf)
	seg = recording.Segment{
		CameraID: cam, Start: start, End: frags[len(frags)-1].End, ObjectKey: oi.Key,
		Size: size, SHA256: hex.EncodeToString(h.Sum(nil)), Init: init,
		Codecs: info.Codecs, Width: info.Width, Height: info.Height, State: recording.StateRecording,
	}
	return seg, frags, "", nil
}

// importSegment indexes an object: the row is created recording (if this
// stops half-way, segmenter.Recover deletes it at the next start, as it
// has no spool file, and the next run imports the object again), gets its
// fragments, is closed and marked stored.
func (r *run) importSegment(ctx context.Context, seg *recording.Segment, frags []recording.Fragment) error {
	if err := r.cfg.Index.CreateSegment(ctx, seg); err != nil {
		return err
	}
	for i := range frags {
		frags[i].SegmentID = seg.ID
	}
	err := r.cfg.Index.AddFragments(ctx, frags)
	if err == nil {
		err = r.cfg.Index.FinishSegment(ctx, seg.ID, seg.End, seg.Size, seg.SHA256)
	}
	if err == nil {
		err = r.cfg.Index.MarkStored(ctx, seg.ID)
	}
	if err != nil {
		return errors.Join(err, r.cfg.Index.DeleteSegment(ctx, seg.ID))
	}
	seg.State = recording.StateStored
	return nil
}

// missing handles a stored row whose object was not listed.
func (r *run) missing(ctx context.Context, s recording.Segment) {
	// The listing is older than the rows: check again.
	if _, err := r.cfg.Store.Stat(ctx, s.ObjectKey); err == nil {
		return
	} else if !errors.Is(err, storage.ErrNotFound) {
		r.fail(s.CameraID, s.ObjectKey, err)
		return
	}
	r.rep.Lost++
	if size, ok := r.spooled[s.ObjectKey]; ok && size == s.Size {
		err := r.reupload(ctx, s)
		if err == nil {
			r.rep.Reuploaded++
			r.note(Finding{Kind: LostReuploaded, Camera: s.CameraID, Key: s.ObjectKey, Start: s.Start, End: s.End})
			r.log.Warn("lost object put again from the spool", "camera", s.CameraID, "key", s.ObjectKey,
				"start", s.Start, "end", s.End)
			return
		}
		r.log.Warn("spool copy of a lost object unusable", "camera", s.CameraID, "key", s.ObjectKey, "err", err)
	}
	if r.cfg.MaxLostDeletes < 0 || len(r.lost) >= r.cfg.MaxLostDeletes {
		r.tooMany = r.tooMany || r.cfg.MaxLostDeletes >= 0
		r.rep.Kept++
		r.note(Finding{Kind: LostKept, Camera: s.CameraID, Key: s.ObjectKey, Start: s.Start, End: s.End})
		r.logLost(s)
		return
	}
	s.Init = nil
	r.lost = append(r.lost, s)
}

func (r *run) logLost(s recording.Segment) {
	if r.logged < r.cfg.MaxExamples {
		r.logged++
		r.log.Error("segment lost: no object and no spool copy", "camera", s.CameraID, "key", s.ObjectKey,
			"start", s.Start, "end", s.End)
	}
}

// reupload puts the spool copy of s after checking it against the row.
func (r *run) reupload(ctx context.Context, s recording.Segment) error {
	f, err := os.Open(r.cfg.Spool.Path(s.ObjectKey))
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); s.SHA256 != "" && sum != s.SHA256 {
		return fmt.Errorf("spool copy sha256 %s, row %s", sum, s.SHA256)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	info, err := r.cfg.Store.Put(ctx, s.ObjectKey, f, s.Size)
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if info.Size != s.Size {
		return fmt.Errorf("stored %d bytes, want %d", info.Size, s.Size)
	}
	if err := r.cfg.Spool.Remove(s.ObjectKey); err != nil {
		r.log.Warn("spool file removal failed", "key", s.ObjectKey, "err", err)
	}
	delete(r.spooled, s.ObjectKey)
	return nil
}

// audit records f in the audit log (Config.Audit).
func (r *run) audit(ctx context.Context, f Finding) {
	if r.cfg.Audit == nil {
		return
	}
	if err := r.cfg.Audit(ctx, f); err != nil {
		r.fail(f.Camera, f.Key, fmt.Errorf("audit: %w", err))
	}
}

// deleteLost marks the lost rows collected, unless there were too many.
func (r *run) deleteLost(ctx context.Context) {
	if r.tooMany {
		r.log.Error("too many lost segments, rows kept: check the store configuration",
			"lost", r.rep.Lost, "max_deletes", r.cfg.MaxLostDeletes)
	}
	for _, s := range r.lost {
		if r.tooMany {
			r.rep.Kept++
			r.note(Finding{Kind: LostKept, Camera: s.CameraID, Key: s.ObjectKey, Start: s.Start, End: s.End})
			r.logLost(s)
			continue
		}
		if err := r.cfg.Index.MarkLost(ctx, s.ID, r.cfg.Now()); err != nil {
			r.fail(s.CameraID, s.ObjectKey, err)
			continue
		}
		r.rep.Marked++
		f := Finding{Kind: LostMarked, Camera: s.CameraID, Key: s.ObjectKey, Start: s.Start, End: s.End}
		r.note(f)
		r.audit(ctx, f)
		r.logLost(s)
	}
}
