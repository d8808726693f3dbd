package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"xueliang/ingest/onvif"
	"xueliang/storage/recording"
)

// Camera-side events: a camera whose SDP has an ONVIF metadata track
// (application, "vnd.onvif.metadata") reports its own motion detection in
// tt:MetadataStream documents. The puller sets the track up, reassembles
// and parses the documents in the RTP callback (bounded, cheap), turns the
// motion notifications into open/close events and hands them to a bounded
// queue; one writer goroutine per puller batches them into the EventSink.
// Nothing on this path blocks or fails the RTP read path: a full queue
// drops (counted), a document that does not parse is counted, a panic is
// recovered and counted.
//
//	RTP ─▶ onvif.Reassembler ─▶ onvif.Parse ─▶ metadataTrack (open events)
//	    ─▶ eventPipe queue (256, drop when full) ─▶ writer ─▶ EventSink

// EventSink records camera events (*index.DB). AddCameraEvents must accept
// an event a second time without duplicating it (see index.AddCameraEvents).
type EventSink interface {
	AddCameraEvents(ctx context.Context, evs []recording.CameraEvent) error
}

// danglingCloser is implemented by sinks that can close the events a
// previous run left open (*index.DB).
type danglingCloser interface {
	CloseOpenCameraEvents(ctx context.Context, camera string, now time.Time) (int64, error)
}

// MetadataStats counts a camera's ONVIF metadata track.
type MetadataStats struct {
	// Documents parsed and Events (motion notifications) read from them.
	Documents, Events int64
	// ParseErrors counts documents that could not be parsed.
	ParseErrors int64
	// Dropped counts documents lost in reassembly (sequence gaps, too
	// long) and events dropped because the write queue was full.
	Dropped int64
	// WriteErrors counts event batches the sink refused after retries.
	WriteErrors int64
}

const (
	eventQueueLen   = 256
	eventBatchMax   = 64
	eventWriteTries = 3
	// maxOpenEvents bounds the distinct (topic, rule, source) events one
	// session keeps open.
	maxOpenEvents = 64
	// maxEventDuration: an event active for longer is closed and a new one
	// opened (recording.MaxCameraEventDuration bounds index lookups).
	maxEventDuration = 10 * time.Minute
	// maxClockSkew: a UtcTime further than this from the packet's wall
	// clock (RTCP, else receive time) is not trusted.
	maxClockSkew = time.Hour
)

// isONVIFMetadata reports whether f is the ONVIF metadata format
// ("vnd.onvif.metadata/90000"; gortsplib represents it as format.Generic).
func isONVIFMetadata(f format.Format) bool {
	g, ok := f.(*format.Generic)
	if !ok {
		return false
	}
	name, _, _ := strings.Cut(g.RTPMap(), "/")
	return strings.EqualFold(strings.TrimSpace(name), "vnd.onvif.metadata")
}

// eventPipe is a puller's bounded queue and writer.
type eventPipe struct {
	camera string
	sink   EventSink
	log    *slog.Logger
	ch     chan recording.CameraEvent

	documents, events, parseErrors, dropped, writeErrors atomic.Int64
}

func newEventPipe(camera string, sink EventSink, log *slog.Logger) *eventPipe {
	return &eventPipe{camera: camera, sink: sink, log: log, ch: make(chan recording.CameraEvent, eventQueueLen)}
}

func (e *eventPipe) stats() MetadataStats {
	if e == nil {
		return MetadataStats{}
	}
	return MetadataStats{
		Documents: e.documents.Load(), Events: e.events.Load(), ParseErrors: e.parseErrors.Load(),
		Dropped: e.dropped.Load(), WriteErrors: e.writeErrors.Load(),
	}
}

// emit queues ev without blocking; a full queue drops it (counted).
func (e *eventPipe) emit(ev recording.CameraEvent) {
	if e.sink == nil {
		return
	}
	select {
	case e.ch <- ev:
	default:
		e.dropped.Add(1)
	}
}

// start runs the writer; stop flushes what is queued (with a deadline)
// and waits for it. Call stop after the last session has ended, so that
// the closes it queued are written.
func (e *eventPipe) start(ctx context.Context) (stop func()) {
	if e.sink == nil {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		e.run(context.WithoutCancel(ctx), quit)
	}()
	return func() { close(quit); <-done }
}

func (e *eventPipe) run(ctx context.Context, quit <-chan struct{}) {
	if dc, ok := e.sink.(danglingCloser); ok {
		if n, err := dc.CloseOpenCameraEvents(ctx, e.camera, time.Now()); err != nil {
			e.log.Warn("close dangling camera events", "err", err)
		} else if n > 0 {
			e.log.Info("closed dangling camera events", "events", n)
		}
	}
	batch := make([]recording.CameraEvent, 0, eventBatchMax)
	// drain appends what is queued, up to a batch.
	drain := func() {
		for len(batch) < eventBatchMax {
			select {
			case ev := <-e.ch:
				batch = append(batch, ev)
			default:
				return
			}
		}
	}
	for {
		select {
		case ev := <-e.ch:
			batch = append(batch[:0], ev)
			drain()
			e.write(ctx, quit, batch)
		case <-quit:
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				batch = batch[:0]
				drain()
				if len(batch) == 0 {
					return
				}
				e.write(ctx, nil, batch)
			}
			return
		}
	}
}

// write writes one batch, retrying a few times (not once quit is closed).
func (e *eventPipe) write(ctx context.Context, quit <-chan struct{}, batch []recording.CameraEvent) {
	var err error
	for try := range eventWriteTries {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = e.sink.AddCameraEvents(wctx, batch)
		cancel()
		if err == nil {
			return
		}
		if quit == nil || try+1 == eventWriteTries {
			break
		}
		select {
		case <-quit:
		case <-time.After(time.Duration(try+1) * 500 * time.Millisecond):
		}
	}
	e.writeErrors.Add(1)
	e.log.Warn("camera events not recorded", "events", len(batch), "err", err)
}

// openEvent is an event the camera reported active.
type openEvent struct {
	start       time.Time
	topic, rule string
}

// metadataTrack is one session's ONVIF metadata track. Its methods may be
// called on a nil track (no metadata).
type metadataTrack struct {
	pipe *eventPipe
	log  *slog.Logger
	now  func() time.Time

	mu       sync.Mutex
	reasm    onvif.Reassembler
	lost     int64 // reassembler drops already counted
	open     map[string]openEvent
	lastTime time.Time // latest time the camera reported state
	lastWarn time.Time
}

// setupMetadata sets up the ONVIF metadata media of a session and routes
// its packets; it returns nil (and logs) when there is none or SETUP fails:
// recording goes on without it.
func (p *Puller) setupMetadata(c *gortsplib.Client, baseURL *base.URL, m *description.Media, f format.Format) *metadataTrack {
	if m == nil {
		return nil
	}
	if _, err := c.Setup(baseURL, m, 0, 0); err != nil {
		p.log.Warn("ignoring track", "media", string(m.Type), "codec", f.RTPMap(), "err", err.Error())
		return nil
	}
	t := &metadataTrack{pipe: p.events, log: p.log, now: p.opts.Now, open: map[string]openEvent{}}
	c.OnPacketRTP(m, f, func(pkt *rtp.Packet) {
		ntp, ok := c.PacketNTP(m, pkt)
		t.onPacket(pkt, ntp, ok)
	})
	p.log.Info("onvif metadata track", "rtpmap", f.RTPMap())
	return t
}

// onPacket handles one RTP packet of the metadata track. It never panics.
func (t *metadataTrack) onPacket(pkt *rtp.Packet, ntp time.Time, ntpOK bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			t.pipe.parseErrors.Add(1)
			t.warn("metadata handling panicked", "panic", fmt.Sprint(r))
		}
	}()
	doc, ok := t.reasm.Push(pkt)
	st := t.reasm.Stats()
	if lost := st.DroppedGap + st.DroppedOverflow; lost != t.lost {
		t.pipe.dropped.Add(lost - t.lost)
		t.lost = lost
	}
	if !ok {
		return
	}
	ref := t.now()
	if ntpOK {
		ref = ntp
	}
	t.splitLong(ref)
	// Cameras with analytics send a document per frame (object trees,
	// kilobytes each): only documents with notifications are parsed in
	// full on the RTP path.
	if !bytes.Contains(doc, []byte("NotificationMessage")) && bytes.Contains(doc, []byte("MetadataStream")) {
		t.pipe.documents.Add(1)
		if ref.After(t.lastTime) {
			t.lastTime = ref
		}
		return
	}
	d, err := onvif.Parse(doc)
	if err != nil {
		t.pipe.parseErrors.Add(1)
		t.warn("unreadable onvif metadata", "err", err.Error())
		return
	}
	t.pipe.documents.Add(1)
	if ft := t.trust(d.FrameTime, ref); ft.After(t.lastTime) {
		t.lastTime = ft
	}
	for _, ev := range d.Events {
		if !ev.IsMotion() {
			continue
		}
		t.pipe.events.Add(1)
		t.apply(ev, t.trust(ev.Time, ref))
	}
}

// trust returns the camera's time when it is close to ref, else ref.
func (t *metadataTrack) trust(camera, ref time.Time) time.Time {
	if camera.IsZero() || camera.Sub(ref).Abs() > maxClockSkew {
		return ref
	}
	return camera
}

func (t *metadataTrack) apply(ev onvif.Event, at time.Time) {
	if at.After(t.lastTime) {
		t.lastTime = at
	}
	key := ev.Topic + "\x00" + ev.Rule + "\x00" + ev.Source
	o, isOpen := t.open[key]
	if !ev.Active || ev.Operation == onvif.OpDeleted {
		if isOpen {
			t.close(key, o, at)
		}
		return
	}
	if isOpen && at.Sub(o.start) >= maxEventDuration {
		t.close(key, o, at)
		isOpen = false
	}
	if isOpen || len(t.open) >= maxOpenEvents {
		return
	}
	o = openEvent{start: at, topic: ev.Topic, rule: ev.Rule}
	t.open[key] = o
	t.pipe.emit(recording.CameraEvent{
		CameraID: t.pipe.camera, Source: recording.CameraEventSourceONVIF, Topic: o.topic, Rule: o.rule,
		Start: at, Data: eventData(ev),
	})
}

// splitLong closes the events open for maxEventDuration at now and opens
// their continuation (cameras report changes only; index rows stay short).
func (t *metadataTrack) splitLong(now time.Time) {
	for k, o := range t.open {
		if now.Sub(o.start) < maxEventDuration {
			continue
		}
		t.close(k, o, now)
		o.start = now
		t.open[k] = o
		t.pipe.emit(recording.CameraEvent{
			CameraID: t.pipe.camera, Source: recording.CameraEventSourceONVIF, Topic: o.topic, Rule: o.rule, Start: now,
		})
	}
}

func (t *metadataTrack) close(key string, o openEvent, at time.Time) {
	delete(t.open, key)
	if at.Before(o.start) {
		at = o.start
	}
	t.pipe.emit(recording.CameraEvent{
		CameraID: t.pipe.camera, Source: recording.CameraEventSourceONVIF, Topic: o.topic, Rule: o.rule,
		Start: o.start, End: at,
	})
}

// end closes the session's open events at the last time the camera
// reported (the session is over: their end is unknown after that).
func (t *metadataTrack) end() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	at := t.lastTime
	if at.IsZero() {
		at = t.now()
	}
	for k, o := range t.open {
		t.close(k, o, at)
	}
}

func (t *metadataTrack) warn(msg string, args ...any) {
	if now := time.Now(); now.Sub(t.lastWarn) >= 10*time.Second {
		t.lastWarn = now
		st := t.pipe.stats()
		t.log.Warn(msg, append(args, "parse_errors", st.ParseErrors, "dropped", st.Dropped)...)
	}
}

// eventData is the JSON kept with an event: the camera's source tokens and
// the cell bitmap when sent.
func eventData(ev onvif.Event) string {
	type cells struct {
		Columns int    `json:"columns,omitempty"`
		Rows    int    `json:"rows,omitempty"`
		Raw     string `json:"raw"`
	}
	v := struct {
		Source    string `json:"source,omitempty"`
		Analytics string `json:"analytics,omitempty"`
		Operation string `json:"operation,omitempty"`
		Cells     *cells `json:"cells,omitempty"`
	}{Source: ev.Source, Analytics: ev.Analytics, Operation: string(ev.Operation)}
	if c := ev.Cells; c != nil {
		v.Cells = &cells{Columns: c.Columns, Rows: c.Rows, Raw: c.Raw}
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "{}" {
		return ""
	}
	return string(b)
}

// MetadataStats returns the camera's metadata counters.
func (p *Puller) MetadataStats() MetadataStats { return p.events.stats() }

// MetadataStats returns the metadata counters of every running camera.
func (m *Manager) MetadataStats() map[string]MetadataStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]MetadataStats, len(m.running))
	for id, r := range m.running {
		out[id] = r.puller.MetadataStats()
	}
	return out
}
