package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
	"xueliang/storage/recording"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// eventRecorder is an EventSink that records batches; block makes it wait.
type eventRecorder struct {
	mu    sync.Mutex
	evs   []recording.CameraEvent
	block chan struct{}
	fail  int // fail this many calls
	calls int
}

func (r *eventRecorder) AddCameraEvents(ctx context.Context, evs []recording.CameraEvent) error {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail > 0 {
		r.fail--
		return errors.New("index down")
	}
	r.evs = append(r.evs, evs...)
	return nil
}

func (r *eventRecorder) events() []recording.CameraEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recording.CameraEvent(nil), r.evs...)
}

func motionXML(at time.Time, rule string, on bool) string {
	return fmt.Sprintf(`<?xml version="1.0"?><tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema"><tt:Event><wsnt:NotificationMessage xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"><wsnt:Topic>tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic><wsnt:Message><tt:Message UtcTime="%s" PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="VideoSourceConfigurationToken" Value="vs0"/><tt:SimpleItem Name="Rule" Value="%s"/></tt:Source><tt:Data><tt:SimpleItem Name="IsMotion" Value="%t"/></tt:Data></tt:Message></wsnt:Message></wsnt:NotificationMessage></tt:Event></tt:MetadataStream>`,
		at.UTC().Format(time.RFC3339Nano), rule, on)
}

// feeder splits documents into 50-byte RTP packets.
type feeder struct {
	t   *metadataTrack
	seq uint16
}

func (f *feeder) doc(s string, ref time.Time) {
	b := []byte(s)
	for len(b) > 0 {
		n := min(50, len(b))
		f.t.onPacket(&rtp.Packet{Header: rtp.Header{SequenceNumber: f.seq, Marker: n == len(b)}, Payload: b[:n]}, ref, true)
		f.seq++
		b = b[n:]
	}
}

func newTestTrack(sink EventSink) (*metadataTrack, *eventPipe) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pipe := newEventPipe("cam1", sink, log)
	return &metadataTrack{pipe: pipe, log: log, now: time.Now, open: map[string]openEvent{}}, pipe
}

func TestMetadataTrackEvents(t *testing.T) {
	rec := &eventRecorder{}
	tr, pipe := newTestTrack(rec)
	stop := pipe.start(context.Background())
	f := &feeder{t: tr, seq: 65000}
	t0 := time.Now().Truncate(time.Second)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	f.doc(motionXML(at(1000), "r1", true), at(1000))
	f.doc(motionXML(at(1500), "r1", true), at(1500)) // repeated state: no new event
	f.doc(motionXML(at(1700), "r2", true), at(1700))
	f.doc(motionXML(at(3000), "r1", false), at(3000))
	f.doc(motionXML(at(3100), "r1", false), at(3100))                          // already closed
	f.doc("<tt:MetadataStream><tt:Event><wsnt:NotificationMessage>", at(3200)) // parse error
	// A camera clock two days off is not trusted: the packet time is used.
	f.doc(motionXML(at(4000).Add(48*time.Hour), "r3", true), at(4000))
	f.doc(`<tt:MetadataStream><tt:VideoAnalytics><tt:Frame UtcTime="`+at(5000).UTC().Format(time.RFC3339Nano)+`"/></tt:VideoAnalytics></tt:MetadataStream>`, at(5000))
	tr.end() // session over: r2 and r3 end at the last report (5 s)
	stop()

	type ev struct {
		rule       string
		start, end int
	}
	var got []ev
	for _, e := range rec.events() {
		if e.CameraID != "cam1" || e.Source != "onvif" || e.Topic != "RuleEngine/CellMotionDetector/Motion" {
			t.Errorf("event %+v", e)
		}
		end := -1
		if !e.End.IsZero() {
			end = int(e.End.Sub(t0) / time.Millisecond)
		}
		got = append(got, ev{e.Rule, int(e.Start.Sub(t0) / time.Millisecond), end})
	}
	want := []ev{{"r1", 1000, -1}, {"r2", 1700, -1}, {"r1", 1000, 3000}, {"r3", 4000, -1}}
	if len(got) != len(want)+2 {
		t.Fatalf("events %+v", got)
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("event %d = %+v, want %+v", i, got[i], w)
		}
	}
	// Map order: the two closes at the end, in any order.
	ends := map[ev]bool{got[4]: true, got[5]: true}
	if !ends[ev{"r2", 1700, 5000}] || !ends[ev{"r3", 4000, 5000}] {
		t.Errorf("session-end closes %+v", got[4:])
	}
	if st := pipe.stats(); st.Documents != 7 || st.Events != 6 || st.ParseErrors != 1 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestMetadataTrackNeverBlocks(t *testing.T) {
	rec := &eventRecorder{block: make(chan struct{})}
	tr, pipe := newTestTrack(rec)
	stop := pipe.start(context.Background())
	f := &feeder{t: tr}
	t0 := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2 * eventQueueLen {
			at := t0.Add(time.Duration(i) * time.Second)
			f.doc(motionXML(at, "r", i%2 == 0), at)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the RTP path blocked on a stuck sink")
	}
	if st := pipe.stats(); st.Dropped == 0 {
		t.Errorf("no drops counted with a stuck sink: %+v", st)
	}
	close(rec.block)
	stop()
	if len(rec.events()) == 0 {
		t.Error("nothing written once the sink recovered")
	}
}

func TestMetadataTrackGarbage(t *testing.T) {
	tr, pipe := newTestTrack(&eventRecorder{})
	f := &feeder{t: tr}
	for i := range 50 {
		b := make([]byte, 200+i*37)
		for j := range b {
			b[j] = byte(i*j + j/3)
		}
		f.doc(string(b), time.Now())
	}
	// A gap drops the document in progress.
	f.t.onPacket(&rtp.Packet{Header: rtp.Header{SequenceNumber: f.seq}, Payload: []byte("<?xml")}, time.Time{}, false)
	f.seq += 5
	f.doc(motionXML(time.Now(), "r", true), time.Now())
	if st := pipe.stats(); st.ParseErrors != 50 || st.Dropped != 1 || st.Events != 1 {
		t.Errorf("stats %+v", st)
	}
	var nilTrack *metadataTrack
	nilTrack.end() // no metadata: a no-op
}

func TestMetadataPipeRetriesAndFlushes(t *testing.T) {
	rec := &eventRecorder{fail: 1}
	_, pipe := newTestTrack(rec)
	stop := pipe.start(context.Background())
	pipe.emit(recording.CameraEvent{CameraID: "cam1", Source: "onvif", Topic: "x", Start: time.Now()})
	time.Sleep(100 * time.Millisecond)
	pipe.emit(recording.CameraEvent{CameraID: "cam1", Source: "onvif", Topic: "y", Start: time.Now()})
	stop()
	if n := len(rec.events()); n != 2 {
		t.Fatalf("%d events written, want 2 (one after a retry)", n)
	}
	if st := pipe.stats(); st.WriteErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestIsONVIFMetadata(t *testing.T) {
	for _, tc := range []struct {
		f    format.Format
		want bool
	}{
		{&format.Generic{PayloadTyp: 107, RTPMa: "vnd.onvif.metadata/90000"}, true},
		{&format.Generic{PayloadTyp: 98, RTPMa: "VND.ONVIF.METADATA/90000"}, true},
		{&format.Generic{PayloadTyp: 98, RTPMa: "vnd.onvif.metadata.exi.onvif/90000"}, false},
		{&format.Generic{PayloadTyp: 98, RTPMa: "x-custom/1000"}, false},
		{&format.H264{PayloadTyp: 96}, false},
	} {
		if got := isONVIFMetadata(tc.f); got != tc.want {
			t.Errorf("%s: %v", tc.f.RTPMap(), got)
		}
	}
}

func TestMetadataTrackSplitsLongEvents(t *testing.T) {
	rec := &eventRecorder{}
	tr, pipe := newTestTrack(rec)
	stop := pipe.start(context.Background())
	f := &feeder{t: tr}
	t0 := time.Now().Truncate(time.Second)
	f.doc(motionXML(t0, "r", true), t0)
	later := t0.Add(maxEventDuration + time.Minute)
	f.doc(`<tt:MetadataStream><tt:VideoAnalytics><tt:Frame/></tt:VideoAnalytics></tt:MetadataStream>`, later)
	f.doc(motionXML(later.Add(time.Second), "r", false), later.Add(time.Second))
	stop()
	got := rec.events()
	if len(got) != 4 {
		t.Fatalf("events %+v", got)
	}
	if !got[1].Start.Equal(t0) || !got[1].End.Equal(later) || !got[2].Start.Equal(later) || !got[2].End.IsZero() ||
		!got[3].Start.Equal(later) || !got[3].End.Equal(later.Add(time.Second)) {
		t.Errorf("split %+v", got)
	}
}
