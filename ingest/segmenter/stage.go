package segmenter

import "sync"

// stageLocked appends n bytes of fr's media, produced by put, to the stage
// (fr must be w.frag), writing the stage out first when they do not fit.
// Media larger than the stage is written directly, from a pooled buffer.
// Failed writes are recorded in fr.err.
func (w *Writer) stageLocked(fr *openFrag, n int, put func([]byte) []byte) {
	if w.stage == nil {
		w.stage = allocBuf(stageSize)
	}
	if len(w.stage)+n > cap(w.stage) {
		w.writeStageLocked(fr)
	}
	if n <= cap(w.stage) {
		w.stage = put(w.stage)
		return
	}
	bp := bigPool.Get().(*[]byte)
	b := put((*bp)[:0])
	w.writeAtLocked(fr, b)
	if cap(b) <= maxPooled {
		*bp = b
		bigPool.Put(bp)
	}
}

// writeStageLocked writes the staged media of fr (w.frag) to its file.
func (w *Writer) writeStageLocked(fr *openFrag) {
	if len(w.stage) > 0 {
		w.writeAtLocked(fr, w.stage)
		w.stage = w.stage[:0]
	}
}

// writeAtLocked writes b behind what fr has written of its media.
func (w *Writer) writeAtLocked(fr *openFrag, b []byte) {
	if fr.err == nil {
		seg, off := fr.seg, fr.off+int64(fr.head)+fr.written
		if end := off + int64(len(b)); end > seg.alloc {
			var err error
			if seg.alloc, err = preallocate(seg.f, seg.alloc, end); err != nil {
				w.warnOnce("prealloc", "cannot preallocate spool file, writing without", "err", err)
			}
		}
		if _, err := seg.f.WriteAt(b, off); err != nil {
			fr.err = err
		}
	}
	fr.written += int64(len(b))
}

// stageSize is a camera's write staging buffer: media is written in
// chunks of up to 256 KiB instead of one write per access unit. A 4 Mbit/s
// P frame is ≈20 KB; on ext4 (Linux 6.18, preallocated file) a 30 MB
// segment written in such chunks costs the kernel ≈22 ms of CPU with
// writes of ≈256 KiB against ≈37 ms with writes of ≈64 KiB (write, fsync
// and unlink; bench/notes.md item 34), for 192 KiB more memory per camera.
const stageSize = 256 << 10

// preallocStep is how far ahead of its writes a segment's file is
// preallocated (preallocate).
const preallocStep = 1 << 20

// bigPool holds buffers for access units larger than the stage, shared by
// all cameras; maxPooled: larger ones are left to the GC.
var bigPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

const maxPooled = 4 << 20

// discardLocked removes a fragment that is not flushed from seg's file and
// gives its bytes back to the quota.
func (w *Writer) discardLocked(seg *segment, fr *openFrag) {
	if fr == &w.frag {
		w.stage = w.stage[:0]
	}
	if err := seg.f.Truncate(fr.off); err != nil {
		w.stats.WriteErrors++
		w.log.Error("cannot truncate a dropped fragment", "err", err)
	}
	if q := w.cfg.Quota; q != nil && fr.reserved > 0 {
		q.Release(fr.reserved)
	}
	fr.reserved = 0
}
