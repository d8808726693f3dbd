package ingest

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"xueliang/storage/recording"
)

// panicCatcher is a slog handler that remembers whether the metadata
// track logged a recovered panic (onPacket recovers them: a fuzz target
// must still see them).
type panicCatcher struct {
	mu       sync.Mutex
	panicked string
}

func (h *panicCatcher) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicCatcher) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		h.mu.Lock()
		defer h.mu.Unlock()
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "panic" {
				h.panicked = a.Value.String()
			}
			return true
		})
		if h.panicked == "" {
			h.panicked = r.Message
		}
	}
	return nil
}
func (h *panicCatcher) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *panicCatcher) WithGroup(string) slog.Handler      { return h }

// maxEventData bounds an event row's Data: JSON of the source and
// analytics tokens and the operation (onvif clips each to 256 bytes) and
// the raw cell attribute (clipped to 4×512+8 bytes), each escaped at most
// 6 bytes per input byte.
const maxEventData = 6*(3*256+4*(64*64*8/8)+8) + 128

// FuzzMetadataEvents feeds two ONVIF metadata documents through a
// camera's metadata track (RTP reassembly, parse, open/close) eleven
// minutes apart, then ends the session, and checks the rows it would
// write: no panic (also none recovered by onPacket), every row valid for
// the index and bounded, Data valid JSON, at most maxOpenEvents open at a
// time, and every opened row closed exactly once when the session ends.
func FuzzMetadataEvents(f *testing.F) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	on := motionXML(t0, "MyMotionDetectorRule", true)
	off := motionXML(t0.Add(11*time.Minute), "MyMotionDetectorRule", false)
	f.Add([]byte(on), []byte(off))
	f.Add([]byte(on), []byte(on))
	f.Add([]byte(motionXML(t0.Add(-2*time.Hour), "r", true)), []byte(motionXML(t0.Add(-3*time.Hour), "r", false)))
	f.Add([]byte(strings.Replace(on, `<tt:Data>`, `<tt:Data><tt:ElementItem Name="Layout"/><tt:SimpleItem Name="Cells" Value="zwA="/>`, 1)), []byte{})
	f.Fuzz(func(t *testing.T, doc1, doc2 []byte) {
		catcher := &panicCatcher{}
		pipe := newEventPipe("cam1", &eventRecorder{}, slog.New(catcher))
		tr := &metadataTrack{pipe: pipe, log: slog.New(catcher), now: func() time.Time { return t0 }, open: map[string]openEvent{}}
		var rows []recording.CameraEvent
		drain := func() {
			for {
				select {
				case ev := <-pipe.ch:
					rows = append(rows, ev)
				default:
					return
				}
			}
		}
		seq := uint16(0)
		feed := func(doc []byte, ref time.Time) {
			for len(doc) > 0 {
				n := min(1200, len(doc))
				tr.onPacket(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Marker: n == len(doc)}, Payload: doc[:n]}, ref, true)
				seq++
				doc = doc[n:]
			}
			if len(tr.open) > maxOpenEvents {
				t.Fatalf("%d events open", len(tr.open))
			}
			drain()
		}
		feed(doc1, t0)
		feed(doc2, t0.Add(11*time.Minute))
		tr.end()
		drain()
		if catcher.panicked != "" {
			t.Fatalf("metadata track panicked: %s", catcher.panicked)
		}
		if d := pipe.stats().Dropped; d > 0 {
			t.Fatalf("%d rows dropped by a queue of %d", d, eventQueueLen)
		}
		type key struct {
			topic, rule string
			start       time.Time
		}
		open := map[key]int{}
		for _, r := range rows {
			if err := r.Valid(); err != nil {
				t.Fatalf("row %+v: %v", r, err)
			}
			if r.CameraID != "cam1" || r.Source != recording.CameraEventSourceONVIF || len(r.Topic) > 256 || len(r.Rule) > 256 || len(r.Data) > maxEventData {
				t.Fatalf("row out of bounds: camera %q source %q topic %d rule %d data %d bytes", r.CameraID, r.Source, len(r.Topic), len(r.Rule), len(r.Data))
			}
			if r.Data != "" && !json.Valid([]byte(r.Data)) {
				t.Fatalf("data is not JSON: %q", r.Data)
			}
			if !r.End.IsZero() && r.End.Sub(r.Start) > recording.MaxCameraEventDuration {
				t.Fatalf("row spans %s", r.End.Sub(r.Start))
			}
			k := key{r.Topic, r.Rule, r.Start}
			if r.End.IsZero() {
				open[k]++
			} else if open[k]--; open[k] < 0 {
				t.Fatalf("row closed without being opened: %+v", r)
			}
		}
		for k, n := range open {
			if n != 0 {
				t.Fatalf("%d rows %+v left open after the session ended", n, k)
			}
		}
	})
}
