package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"xueliang/ingest/sei"
	"xueliang/storage/recording"
)

func TestPercentile(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct{ q, want float64 }{{0.5, 5}, {0.99, 10}, {0.1, 1}, {0, 1}, {1, 10}} {
		if got := percentile(s, tc.q); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
	big := make([]float64, 1000)
	for i := range big {
		big[i] = float64(i + 1)
	}
	if got := percentile(big, 0.99); got != 990 {
		t.Errorf("p99 of 1..1000 = %v, want 990", got)
	}
}

// box is an ISO BMFF box.
func box(typ string, payload ...[]byte) []byte {
	n := 8
	for _, p := range payload {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, typ...)
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

func lengthPrefixed(nalus ...[]byte) []byte {
	var b []byte
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

func TestFragmentStamp(t *testing.T) {
	want := sei.Stamp{Camera: "cam7", Seq: 4242, Captured: time.Unix(1765000000, 123456789)}
	aud := []byte{0x09, 0xf0}
	slice := []byte{0x65, 0x88, 0x84, 0x00, 0x33}
	frag := append(box("moof", box("mfhd", make([]byte, 8))), box("mdat", lengthPrefixed(aud, sei.NAL(recording.H264, want), slice))...)
	got, ok := fragmentStamp(frag)
	if !ok || got.Camera != want.Camera || got.Seq != want.Seq || !got.Captured.Equal(want.Captured) {
		t.Fatalf("stamp %+v %v, want %+v", got, ok, want)
	}
	// No stamp, a truncated NAL, no mdat, a box larger than the buffer.
	for name, b := range map[string][]byte{
		"no stamp":  box("mdat", lengthPrefixed(aud, slice)),
		"truncated": box("mdat", binary.BigEndian.AppendUint32(nil, 1000)),
		"no mdat":   box("moof", box("mfhd", make([]byte, 8))),
		"oversized": binary.BigEndian.AppendUint32(nil, 1<<20),
	} {
		if _, ok := fragmentStamp(b); ok {
			t.Errorf("%s: found a stamp", name)
		}
	}
}

func TestViewerTrack(t *testing.T) {
	s := &viewerStats{}
	v := &viewerTrack{s: s}
	now := time.Now()
	v.frame(sei.Stamp{Seq: 10, Captured: now.Add(-50 * time.Millisecond)}, now) // before measuring: not counted
	s.measuring.Store(true)
	v.frame(sei.Stamp{Seq: 11, Captured: now.Add(-40 * time.Millisecond)}, now)
	v.frame(sei.Stamp{Seq: 15, Captured: now.Add(-30 * time.Millisecond)}, now) // 3 missed
	if s.connected != 1 || len(s.lat) != 2 || s.missed != 3 || s.lat[0] != 40 || s.lat[1] != 30 {
		t.Fatalf("connected %d, latencies %v, missed %d", s.connected, s.lat, s.missed)
	}
}

func TestReadViewerReport(t *testing.T) {
	p := filepath.Join(t.TempDir(), "viewers.log")
	if err := os.WriteFile(p, []byte("viewers: ready\nviewers: result {\"protocol\":\"mse\",\"viewers\":3,\"latency_p99_ms\":81.5}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := readViewerReport(p)
	if err != nil || rep.Protocol != "mse" || rep.Viewers != 3 || rep.P99ms != 81.5 {
		t.Fatalf("%+v %v", rep, err)
	}
	if err := os.WriteFile(p, []byte("viewers: ready\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readViewerReport(p); err == nil {
		t.Fatal("no result line: no error")
	}
}

func TestMergeParts(t *testing.T) {
	old := results{Commit: "old", Ingest: []ingestResult{{Cameras: 100}}, Replay: &replayResult{Cameras: 20}, Errors: []string{"motion: x"}}
	fresh := results{Commit: "new", Date: "d", Live: &liveResult{Cameras: 100}, Errors: []string{"live: y"}}
	got := mergeParts(old, fresh, func(p string) bool { return p == "live" })
	if got.Commit != "old" || len(got.Ingest) != 1 || got.Replay == nil || got.Live == nil || got.Live.Cameras != 100 {
		t.Fatalf("merged %+v", got)
	}
	if len(got.Errors) != 2 || len(got.Reruns) != 1 || !strings.HasPrefix(got.Reruns[0], "live: commit new, d") {
		t.Fatalf("errors %q, reruns %q", got.Errors, got.Reruns)
	}
	// A later rerun of the same parts replaces the earlier's note and
	// errors; a note of other parts stays.
	old2 := results{Reruns: []string{"index,postgres: commit a, d1", "index: commit b, d2", "index,motion: commit c, d3", "live: commit d, d4"},
		Errors: []string{"index: slow", "postgres: down", "motion: x"}}
	got = mergeParts(old2, results{Commit: "e", Date: "d5", Errors: []string{"postgres: again"}}, func(p string) bool { return p == "index" || p == "postgres" })
	if len(got.Reruns) != 3 || got.Reruns[0] != "index,motion: commit c, d3" || got.Reruns[1] != "live: commit d, d4" || !strings.HasPrefix(got.Reruns[2], "index,postgres: commit e, d5") {
		t.Errorf("reruns %q", got.Reruns)
	}
	if !slices.Equal(got.Errors, []string{"motion: x", "postgres: again"}) {
		t.Errorf("errors %q", got.Errors)
	}
	// A rerun of ingest replaces it, even with nothing (failed).
	if got := mergeParts(old, results{}, func(p string) bool { return p == "ingest" }); got.Ingest != nil || got.Replay == nil {
		t.Fatalf("ingest rerun: %+v", got)
	}
}
