package segmenter

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
	"xueliang/storage/recording"
)

// RecoveryIndex is what Recover needs from the index. *index.DB
// implements it.
type RecoveryIndex interface {
	// SegmentsByState lists the segments in state st.
	SegmentsByState(ctx context.Context, st recording.SegmentState) ([]recording.Segment, error)
	AddFragments(ctx context.Context, frags []recording.Fragment) error
	FinishSegment(ctx context.Context, id int64, end time.Time, size int64, sha256 string) error
	// DeleteSegment removes the segment row and its fragment rows.
	DeleteSegment(ctx context.Context, id int64) error
}

// Fence is implemented by a RecoveryIndex shared by several nodes (a
// cluster node's: cmd/xueliang/cluster.go). Recover asks it, for every
// segment, how much of the spool file it may index: Recoverable returns
// -1 when the segment's writer still holds the camera's lease (the whole
// file is recovered, the index writes going through the lease's fence),
// or else n ≥ 0, the highest fragment seq indexed while the lease was
// held: the file is cut after fragment n, no fragment row is added and
// the segment is finished on what was committed (deleted when n is 0).
// Footage a stalled writer put in its file after it lost the camera never
// reaches the index.
type Fence interface {
	Recoverable(ctx context.Context, seg recording.Segment) (int, error)
}

// Report counts what Recover did.
type Report struct {
	// Segments is the number of segments found in state recording.
	Segments int
	// Recovered segments were re-indexed and closed.
	Recovered int
	// Deleted segments had no complete fragment (or no spool file) and
	// were removed with their file.
	Deleted int
	// Failed segments could not be processed (I/O or index error); they
	// stay in state recording for the next run.
	Failed int
	// Fragments is the number of fragment rows re-derived.
	Fragments int
	// TruncatedBytes is the number of bytes cut from spool files.
	TruncatedBytes int64
	// FreedBytes is the number of bytes removed from the spool: truncated
	// bytes and deleted files. A spool quota created before Recover must
	// be credited with it (Quota.Release).
	FreedBytes int64
}

// Recover closes the segments left in state recording by a crash: each
// spool file is parsed (the file is the source of truth), truncated to its
// last complete fragment, its fragment rows are re-derived and upserted,
// the segment is finished and handed to onClosed (may be nil). Segments
// without a complete fragment are deleted with their file. An error is
// returned only when the index cannot be listed; per-segment failures are
// logged and counted.
func Recover(ctx context.Context, idx RecoveryIndex, spoolRoot string, onClosed func(recording.Segment), logger *slog.Logger) (Report, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "recovery")
	var rep Report
	segs, err := idx.SegmentsByState(ctx, recording.StateRecording)
	if err != nil {
		return rep, fmt.Errorf("list recording segments: %w", err)
	}
	rep.Segments = len(segs)
	for _, seg := range segs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		log := logger.With("camera", seg.CameraID, "key", seg.ObjectKey)
		out, err := recoverOne(ctx, idx, spoolRoot, seg)
		switch {
		case err != nil:
			rep.Failed++
			log.Error("cannot recover segment", "err", err)
		case out.deleted:
			rep.Deleted++
			rep.FreedBytes += out.freed
			log.Warn("deleted segment without complete fragment")
		default:
			rep.Recovered++
			rep.Fragments += len(out.frags)
			rep.TruncatedBytes += out.truncated
			rep.FreedBytes += out.truncated
			log.Info("recovered segment", "fragments", len(out.frags), "truncated_bytes", out.truncated)
			if onClosed != nil {
				onClosed(out.seg)
			}
		}
	}
	return rep, nil
}

type recovered struct {
	deleted   bool
	seg       recording.Segment
	frags     []recording.Fragment
	truncated int64
	freed     int64 // size of the deleted file
}

func recoverOne(ctx context.Context, idx RecoveryIndex, spoolRoot string, seg recording.Segment) (recovered, error) {
	path := filepath.Join(spoolRoot, filepath.FromSlash(seg.ObjectKey))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return deleteSeg(ctx, idx, seg, "")
	}
	if err != nil {
		return recovered{}, fmt.Errorf("open spool file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return recovered{}, fmt.Errorf("stat spool file: %w", err)
	}
	pf, err := recording.ParseFile(f, st.Size())
	committedOnly := false
	if fence, ok := idx.(Fence); ok && err == nil {
		n, ferr := fence.Recoverable(ctx, seg)
		if ferr != nil {
			return recovered{}, fmt.Errorf("check lease: %w", ferr)
		}
		if n >= 0 {
			committedOnly = true
			keep := 0
			for keep < len(pf.Fragments) && int(pf.Fragments[keep].Seq) <= n {
				keep++
			}
			pf.Fragments = pf.Fragments[:keep]
			if keep > 0 {
				last := pf.Fragments[keep-1]
				pf.ValidSize = last.Offset + last.Size
			}
		}
	}
	if err != nil || len(pf.Fragments) == 0 {
		f.Close()
		out, err := deleteSeg(ctx, idx, seg, path)
		out.freed = st.Size()
		return out, err
	}
	out := recovered{truncated: st.Size() - pf.ValidSize}
	// Always: a truncate to the file's own size frees the blocks
	// preallocated past its end (preallocate).
	if err := f.Truncate(pf.ValidSize); err != nil {
		return recovered{}, fmt.Errorf("truncate spool file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return recovered{}, fmt.Errorf("sync spool file: %w", err)
	}
	sum, err := HashFile(f, pf.ValidSize)
	if err != nil {
		return recovered{}, err
	}
	out.frags = recording.FragmentRows(seg.ID, seg.Start, pf)
	if !committedOnly {
		if err := idx.AddFragments(ctx, out.frags); err != nil {
			return recovered{}, fmt.Errorf("add fragments: %w", err)
		}
	}
	end := out.frags[len(out.frags)-1].End
	if err := idx.FinishSegment(ctx, seg.ID, end, pf.ValidSize, sum); err != nil {
		return recovered{}, fmt.Errorf("finish segment: %w", err)
	}
	seg.End, seg.Size, seg.SHA256, seg.State = end, pf.ValidSize, sum, recording.StateClosed
	out.seg = seg
	return out, nil
}

func deleteSeg(ctx context.Context, idx RecoveryIndex, seg recording.Segment, path string) (recovered, error) {
	if err := idx.DeleteSegment(ctx, seg.ID); err != nil {
		return recovered{}, fmt.Errorf("delete segment: %w", err)
	}
	if path != "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return recovered{}, fmt.Errorf("remove spool file: %w", err)
		}
	}
	return recovered{deleted: true}, nil
}
