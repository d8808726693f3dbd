package segmenter

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"xueliang/storage/recording"
)

// OrphanIndex is what RecoverOrphans needs from the index. *index.DB
// implements it.
type OrphanIndex interface {
	// SegmentByKey returns the segment with object key key, or an error
	// wrapping recording.ErrNotFound.
	SegmentByKey(ctx context.Context, key string) (recording.Segment, error)
	CreateSegment(ctx context.Context, seg *recording.Segment) error
	AddFragments(ctx context.Context, frags []recording.Fragment) error
	FinishSegment(ctx context.Context, id int64, end time.Time, size int64, sha256 string) error
}

// OrphanReport counts what RecoverOrphans did.
type OrphanReport struct {
	// Files is the number of spool files looked at.
	Files int
	// Orphans is the number of those without an index row.
	Orphans int
	// Indexed orphans got their rows (segment closed, fragments) and were
	// handed to onClosed.
	Indexed int
	// Fragments is the number of fragment rows written for them.
	Fragments int
	// Skipped orphans are not segments of ours (no camera and start in
	// the name, no init, no complete fragment, no keyframe at time 0):
	// they are left on disk, untouched, and logged.
	Skipped int
	// Failed orphans could not be indexed (I/O or index error); they are
	// tried again at the next start.
	Failed int
	// TruncatedBytes is the number of bytes cut from orphan files (an
	// incomplete last fragment). A spool quota measured before
	// RecoverOrphans must be credited with it.
	TruncatedBytes int64
}

// RecoverOrphans indexes the spool files that have no segment row: a
// segment whose CreateSegment never succeeded (the index was full,
// locked or failing, or a crash came between the file's creation and the
// row's commit) is otherwise lost for good, as nothing else ever looks
// at it. Each file under spoolRoot named like recording.SegmentKey is
// looked up by key; one without a row is parsed (the file is the source
// of truth, as in Recover), truncated to its last complete fragment, and
// indexed: CreateSegment (state recording, so that a crash half-way is
// finished by the next Recover), AddFragments (recording.FragmentRows),
// FinishSegment with its SHA-256; then it is handed to onClosed (the
// uploader's Enqueue; may be nil).
//
// It must run at start, after Recover and before any camera records (a
// file being written has no row until its writer's index worker commits
// one). An error is returned only when the spool cannot be walked;
// per-file failures are logged and counted.
func RecoverOrphans(ctx context.Context, idx OrphanIndex, spoolRoot string, onClosed func(recording.Segment), logger *slog.Logger) (OrphanReport, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "recovery")
	var rep OrphanReport
	err := filepath.WalkDir(spoolRoot, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.Type().IsRegular() || !strings.HasSuffix(p, ".mp4") {
			return nil
		}
		rel, err := filepath.Rel(spoolRoot, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		rep.Files++
		if _, err := idx.SegmentByKey(ctx, key); err == nil {
			return nil
		} else if !errors.Is(err, recording.ErrNotFound) {
			rep.Failed++
			logger.Error("cannot look up spool file in the index", "key", key, "err", err)
			return nil
		}
		rep.Orphans++
		log := logger.With("key", key)
		cam, start, ok := recording.ParseKey(key)
		if !ok {
			rep.Skipped++
			log.Warn("spool file without index row left alone", "reason", "name is not a segment key")
			return nil
		}
		log = log.With("camera", cam)
		out, why, err := indexOrphan(ctx, idx, p, cam, key, start)
		switch {
		case err != nil:
			rep.Failed++
			log.Error("cannot index orphan spool file", "err", err)
		case why != "":
			rep.Skipped++
			log.Warn("spool file without index row left alone", "reason", why)
		default:
			rep.Indexed++
			rep.Fragments += len(out.frags)
			rep.TruncatedBytes += out.truncated
			log.Warn("orphan spool file indexed", "start", out.seg.Start, "end", out.seg.End,
				"fragments", len(out.frags), "truncated_bytes", out.truncated)
			if onClosed != nil {
				onClosed(out.seg)
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("walk spool for orphans: %w", err)
	}
	return rep, nil
}

// indexOrphan parses the orphan file at path and writes its rows. why is
// set (and nothing written) when the file is not a usable segment of ours.
func indexOrphan(ctx context.Context, idx OrphanIndex, path, cam, key string, start time.Time) (out recovered, why string, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return out, "", fmt.Errorf("open spool file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return out, "", fmt.Errorf("stat spool file: %w", err)
	}
	pf, err := recording.ParseFile(f, st.Size())
	if err != nil {
		return out, "not a segment: " + err.Error(), nil
	}
	if len(pf.Fragments) == 0 {
		return out, "no complete fragment", nil
	}
	if fr := pf.Fragments[0]; !fr.Keyframe() || len(fr.Video) == 0 || fr.Video[0].PTS() != 0 {
		return out, "first fragment does not start with a keyframe at time 0", nil
	}
	init := make([]byte, pf.InitSize)
	if _, err := f.ReadAt(init, 0); err != nil {
		return out, "", fmt.Errorf("read init: %w", err)
	}
	info, err := recording.DescribeInit(init)
	if err != nil {
		return out, "not a segment: " + err.Error(), nil
	}
	out.truncated = st.Size() - pf.ValidSize
	// Always: a truncate to the file's own size also frees the blocks
	// preallocated past its end.
	if err := f.Truncate(pf.ValidSize); err != nil {
		return out, "", fmt.Errorf("truncate spool file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return out, "", fmt.Errorf("sync spool file: %w", err)
	}
	sum, err := HashFile(f, pf.ValidSize)
	if err != nil {
		return out, "", err
	}
	seg := recording.Segment{
		CameraID: cam, Start: start, End: start, ObjectKey: key, Size: pf.InitSize, Init: init,
		Codecs: info.Codecs, Width: info.Width, Height: info.Height, State: recording.StateRecording,
	}
	if err := idx.CreateSegment(ctx, &seg); err != nil {
		return out, "", fmt.Errorf("create segment: %w", err)
	}
	// From here a failure leaves a row in state recording with its spool
	// file: the next Recover finishes it.
	out.frags = recording.FragmentRows(seg.ID, start, pf)
	if err := idx.AddFragments(ctx, out.frags); err != nil {
		return out, "", fmt.Errorf("add fragments: %w", err)
	}
	end := out.frags[len(out.frags)-1].End
	if err := idx.FinishSegment(ctx, seg.ID, end, pf.ValidSize, sum); err != nil {
		return out, "", fmt.Errorf("finish segment: %w", err)
	}
	seg.End, seg.Size, seg.SHA256, seg.State = end, pf.ValidSize, sum, recording.StateClosed
	out.seg = seg
	return out, "", nil
}
