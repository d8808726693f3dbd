package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"xueliang/ingest/onvif"
)

// The ONVIF metadata track (docs/camsim.md, "ONVIF metadata"): an
// application media "vnd.onvif.metadata/90000" carrying tt:MetadataStream
// documents — a heartbeat frame every second and a
// RuleEngine/CellMotionDetector/Motion notification at every transition of
// the camera's motion schedule — split over RTP packets of at most
// metaChunk bytes, the marker bit on the last one.

const (
	metaPayloadType = 107
	metaChunk       = 400 // payload bytes per RTP packet: documents span several packets
	metaHeartbeat   = time.Second
	metaRule        = "MyMotionDetectorRule"
	metaCols        = 8
	metaRows        = 6
)

// eventWindow is a scheduled motion event [From, To) in capture time.
type eventWindow struct{ From, To time.Duration }

// metaSchedule is a camera's motion schedule: explicit windows, plus a
// periodic event starting at Every, 2×Every, … lasting For.
type metaSchedule struct {
	Windows    []eventWindow
	Every, For time.Duration
}

// active reports whether motion is on at capture time t.
func (s *metaSchedule) active(t time.Duration) bool {
	for _, w := range s.Windows {
		if t >= w.From && t < w.To {
			return true
		}
	}
	return s.Every > 0 && t >= s.Every && t%s.Every < s.For
}

// next returns the first time after t at which active may change.
func (s *metaSchedule) next(t time.Duration) time.Duration {
	best := time.Duration(-1)
	consider := func(c time.Duration) {
		if c > t && (best < 0 || c < best) {
			best = c
		}
	}
	for _, w := range s.Windows {
		consider(w.From)
		consider(w.To)
	}
	if s.Every > 0 {
		k := max(t/s.Every, 1)
		for i := k; i <= k+1; i++ {
			consider(i * s.Every)
			consider(i*s.Every + s.For)
		}
	}
	return best
}

// applyMetadata handles the metadata keys of cameraSpec.apply.
func (s *cameraSpec) applyMetadata(k, v string) error {
	switch k {
	case "metadata":
		switch v {
		case "on", "off", "garbage":
			s.Metadata = v
		default:
			return fmt.Errorf("want on, off or garbage, got %q", v)
		}
		if v == "off" {
			s.Metadata = ""
		}
	case "events":
		if v == "" || v == "off" {
			s.Schedule.Every, s.Schedule.For = 0, 0
			return nil
		}
		e, f, ok := strings.Cut(v, "/")
		if !ok {
			return fmt.Errorf("want EVERY/FOR like 5s/3s, got %q", v)
		}
		every, err := parsePositiveDuration(e)
		if err != nil {
			return err
		}
		dur, err := parsePositiveDuration(f)
		if err != nil {
			return err
		}
		if dur >= every {
			return fmt.Errorf("%q: the event must be shorter than its period", v)
		}
		s.Schedule.Every, s.Schedule.For = every, dur
		if s.Metadata == "" {
			s.Metadata = "on"
		}
	case "event":
		if v == "" {
			s.Schedule.Windows = nil
			return nil
		}
		a, b, ok := strings.Cut(v, "-")
		if !ok {
			return fmt.Errorf("want FROM-TO like 10s-14s, got %q", v)
		}
		from, err := parseAt(a)
		if err != nil {
			return err
		}
		to, err := parsePositiveDuration(b)
		if err != nil {
			return err
		}
		if to <= from {
			return fmt.Errorf("%q: the event must end after it starts", v)
		}
		s.Schedule.Windows = append(s.Schedule.Windows, eventWindow{from, to})
		if s.Metadata == "" {
			s.Metadata = "on"
		}
	default:
		return fmt.Errorf("unknown key")
	}
	return nil
}

// metadataString renders the metadata settings in the -camera syntax.
func (s *cameraSpec) metadataString() string {
	if s.Metadata == "" {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, ",metadata=%s", s.Metadata)
	if s.Schedule.Every > 0 {
		fmt.Fprintf(&b, ",events=%s/%s", s.Schedule.Every, s.Schedule.For)
	}
	for _, w := range s.Schedule.Windows {
		fmt.Fprintf(&b, ",event=%s-%s", w.From, w.To)
	}
	return b.String()
}

// newMetadataMedia returns the metadata media of spec, or nil.
func newMetadataMedia(spec cameraSpec) *description.Media {
	if spec.Metadata == "" {
		return nil
	}
	return &description.Media{Type: description.MediaTypeApplication, Formats: []format.Format{&format.Generic{
		PayloadTyp: metaPayloadType,
		RTPMa:      "vnd.onvif.metadata/90000",
		ClockRat:   90000,
	}}}
}

// metaSender packetises documents for the metadata track.
type metaSender struct {
	cam      *camera
	start    time.Time
	rtpStart uint32
	seq      uint16
}

func (m *metaSender) send(at time.Duration, doc []byte) {
	ts := m.rtpStart + uint32(durToTicks(at, videoClockRate))
	for len(doc) > 0 {
		n := min(metaChunk, len(doc))
		p := &rtp.Packet{
			Header: rtp.Header{Version: 2, PayloadType: metaPayloadType, SequenceNumber: m.seq, Timestamp: ts,
				Marker: n == len(doc)},
			Payload: doc[:n],
		}
		m.seq++
		doc = doc[n:]
		m.cam.write(m.cam.metaMedia, p, m.start.Add(at))
	}
}

// startMetadata runs the metadata track until ctx ends; the returned func
// waits for it.
func (c *camera) startMetadata(ctx context.Context, start time.Time) (wait func()) {
	if c.metaMedia == nil {
		return func() {}
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.runMetadata(ctx, start) })
	return wg.Wait
}

func (c *camera) runMetadata(ctx context.Context, start time.Time) {
	s := &metaSender{cam: c, start: start, rtpStart: rand.Uint32(), seq: uint16(rand.Uint32())}
	sched := &c.spec.Schedule
	timer := time.NewTimer(0)
	defer timer.Stop()
	on := sched.active(0)
	nextBeat, nextChange := time.Duration(0), sched.next(0)
	if on {
		c.log.Info("metadata: motion", "camera", c.spec.ID, "active", true, "at", time.Duration(0))
		s.send(0, motionDoc(c.spec.ID, start, true, onvif.OpInitialized))
	}
	n := 0
	for {
		at := nextBeat
		if nextChange >= 0 && nextChange <= at {
			at = nextChange
		}
		if wait := time.Until(start.Add(at)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		if at == nextChange {
			if a := sched.active(at); a != on {
				on = a
				c.log.Info("metadata: motion", "camera", c.spec.ID, "active", on, "at", at)
				if c.spec.Metadata == "garbage" {
					s.send(at, garbageDoc(n))
				} else {
					s.send(at, motionDoc(c.spec.ID, start.Add(at), on, onvif.OpChanged))
				}
				n++
			}
			nextChange = sched.next(at)
			continue
		}
		if c.spec.Metadata == "garbage" {
			s.send(at, garbageDoc(n))
		} else {
			s.send(at, frameDoc(start.Add(at), on))
		}
		n++
		nextBeat += metaHeartbeat
	}
}

const metaTime = "2006-01-02T15:04:05.000Z"

// motionDoc is a cell motion detector notification, Hikvision-style.
func motionDoc(cam string, at time.Time, on bool, op onvif.Operation) []byte {
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema">
<tt:Event>
<wsnt:NotificationMessage xmlns:tns1="http://www.onvif.org/ver10/topics" xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2">
<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic>
<wsnt:ProducerReference><wsa5:Address xmlns:wsa5="http://www.w3.org/2005/08/addressing">camsim://%s</wsa5:Address></wsnt:ProducerReference>
<wsnt:Message>
<tt:Message UtcTime="%s" PropertyOperation="%s">
<tt:Source>
<tt:SimpleItem Name="VideoSourceConfigurationToken" Value="VideoSourceToken"/>
<tt:SimpleItem Name="VideoAnalyticsConfigurationToken" Value="VideoAnalyticsToken"/>
<tt:SimpleItem Name="Rule" Value="%s"/>
</tt:Source>
<tt:Data>
<tt:SimpleItem Name="IsMotion" Value="%t"/>
</tt:Data>
</tt:Message>
</wsnt:Message>
</wsnt:NotificationMessage>
</tt:Event>
</tt:MetadataStream>
`, cam, at.UTC().Format(metaTime), op, metaRule, on)
}

// frameDoc is the heartbeat: a VideoAnalytics frame, with the motion
// cells (the left half of the picture) while motion is on.
func frameDoc(at time.Time, on bool) []byte {
	cells := ""
	if on {
		bits := make([]byte, metaCols*metaRows/8)
		for r := range metaRows {
			for col := range metaCols / 2 {
				i := r*metaCols + col
				bits[i/8] |= 0x80 >> (i % 8)
			}
		}
		cells = fmt.Sprintf(`<tt:Extension><tt:MotionInCells Columns="%d" Rows="%d" Cells="%s"/></tt:Extension>`,
			metaCols, metaRows, base64.StdEncoding.EncodeToString(onvif.PackBits(bits)))
	}
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<tt:MetadataStream xmlns:tt="http://www.onvif.org/ver10/schema"><tt:VideoAnalytics><tt:Frame UtcTime="%s">%s</tt:Frame></tt:VideoAnalytics></tt:MetadataStream>
`, at.UTC().Format(metaTime), cells)
}

// garbageDoc cycles through documents a receiver must survive: random
// bytes, truncated XML, the wrong root, an oversized document and a
// document with an absurd cell layout.
func garbageDoc(n int) []byte {
	switch n % 5 {
	case 0:
		b := make([]byte, 1000)
		for i := range b {
			b[i] = byte(rand.Uint32())
		}
		return b
	case 1:
		d := motionDoc("garbage", time.Now(), true, onvif.OpChanged)
		return d[:len(d)/2]
	case 2:
		return []byte(`<html><body>IsMotion true</body></html>`)
	case 3:
		return []byte(`<tt:MetadataStream>` + strings.Repeat("<x>", 100) + strings.Repeat(" ", 70<<10) + `</tt:MetadataStream>`)
	default:
		return []byte(`<tt:MetadataStream><tt:VideoAnalytics><tt:Frame UtcTime="yesterday"><tt:MotionInCells Columns="99999999" Rows="-1" Cells="!!!"/></tt:Frame></tt:VideoAnalytics></tt:MetadataStream>`)
	}
}
