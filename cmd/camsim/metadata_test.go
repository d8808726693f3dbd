package main

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"xueliang/ingest/onvif"
)

func TestMetadataSpec(t *testing.T) {
	cfg, err := parseFlags([]string{"-camera", "cam1:events=5s/3s,event=1s-2500ms,event=30s-31s", "-camera", "cam2:metadata=garbage"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Cameras[0].String(), "codec=h264,size=320x240,fps=25,gop=50,bframes=0,audio=none,metadata=on,events=5s/3s,event=1s-2.5s,event=30s-31s"; got != want {
		t.Errorf("spec %q, want %q", got, want)
	}
	if got := cfg.Cameras[1].Metadata; got != "garbage" {
		t.Errorf("cam2 metadata %q", got)
	}
	for _, bad := range []string{"cam1:events=3s/5s", "cam1:events=5s", "cam1:event=4s-2s", "cam1:metadata=maybe", "cam1:event=x-1s"} {
		if _, err := parseFlags([]string{"-camera", bad}, nil); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}

	s := cfg.Cameras[0].Schedule
	var changes []time.Duration
	on := s.active(0)
	for at := s.next(0); at >= 0 && at < 21*time.Second; at = s.next(at) {
		if a := s.active(at); a != on {
			on = a
			changes = append(changes, at)
		}
	}
	// [1s, 2.5s), then [5s, 8s), [10s, 13s), [15s, 18s), [20s, ...
	want := []time.Duration{1 * time.Second, 2500 * time.Millisecond, 5 * time.Second, 8 * time.Second,
		10 * time.Second, 13 * time.Second, 15 * time.Second, 18 * time.Second, 20 * time.Second}
	if !slices.Equal(changes, want) {
		t.Errorf("changes %v, want %v", changes, want)
	}
}

// TestMetadataTrack reads camsim's metadata track with gortsplib and the
// ingest/onvif reassembler and parser.
func TestMetadataTrack(t *testing.T) {
	url := startCamsim(t, t.TempDir(), "-cameras", "1", "-camera", "cam1:event=500ms-1500ms,event=2s-2600ms")
	u, err := base.ParseURL(url + "/cam1")
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.TransportTCP
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if len(desc.Medias) != 2 {
		t.Fatalf("%d medias, want video + metadata", len(desc.Medias))
	}
	m := desc.Medias[1]
	g, ok := m.Formats[0].(*format.Generic)
	if m.Type != "application" || !ok || g.RTPMap() != "vnd.onvif.metadata/90000" || g.ClockRate() != 90000 {
		t.Fatalf("metadata media %s %#v", m.Type, m.Formats[0])
	}
	if _, err := c.Setup(desc.BaseURL, m, 0, 0); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		r       onvif.Reassembler
		docs    []onvif.Document
		pkts    int
		maxPkts int
		perDoc  int
		errs    []error
	)
	c.OnPacketRTP(m, g, func(p *rtp.Packet) {
		mu.Lock()
		defer mu.Unlock()
		pkts++
		perDoc++
		if len(p.Payload) > metaChunk {
			t.Errorf("payload of %d bytes", len(p.Payload))
		}
		doc, ok := r.Push(p)
		if !ok {
			return
		}
		maxPkts = max(maxPkts, perDoc)
		perDoc = 0
		d, err := onvif.Parse(doc)
		if err != nil {
			errs = append(errs, err)
			return
		}
		docs = append(docs, d)
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3200 * time.Millisecond)
	c.Close()

	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 || r.Stats().DroppedGap > 0 {
		t.Fatalf("parse errors %v, stats %+v", errs, r.Stats())
	}
	if maxPkts < 2 {
		t.Errorf("no document spanned several packets (%d packets)", pkts)
	}
	var frames []time.Time
	type change struct {
		at time.Time
		on bool
	}
	var changes []change
	for _, d := range docs {
		if !d.FrameTime.IsZero() {
			frames = append(frames, d.FrameTime)
		}
		for _, e := range d.Events {
			if !e.IsMotion() || e.Topic != "RuleEngine/CellMotionDetector/Motion" || e.Rule != metaRule || e.Source != "VideoSourceToken" {
				t.Errorf("unexpected event %+v", e)
			}
			changes = append(changes, change{e.Time, e.Active})
		}
	}
	if len(frames) < 2 {
		t.Fatalf("%d heartbeat frames in 3.2 s", len(frames))
	}
	for i := 1; i < len(frames); i++ {
		if d := frames[i].Sub(frames[i-1]); d != time.Second {
			t.Errorf("heartbeats %v apart", d)
		}
	}
	want := []struct {
		at time.Duration
		on bool
	}{{500 * time.Millisecond, true}, {1500 * time.Millisecond, false}, {2 * time.Second, true}, {2600 * time.Millisecond, false}}
	// The reader may join after camsim started (and miss early changes):
	// align on the last change, the end of the 2s-2.6s event.
	if len(changes) < 2 {
		t.Fatalf("changes %+v", changes)
	}
	last := changes[len(changes)-1]
	if last.on {
		t.Fatalf("last change %+v is not the end of the 2s-2.6s event", last)
	}
	camStart := last.at.Add(-2600 * time.Millisecond)
	if off := frames[0].Sub(camStart) % time.Second; off != 0 {
		t.Errorf("heartbeat at %v, not a whole second after the start derived from the events (%v)", frames[0], camStart)
	}
	for i, c := range changes {
		w := want[len(want)-len(changes)+i]
		if got := c.at.Sub(camStart); got != w.at || c.on != w.on {
			t.Errorf("change %d at +%v on=%v, want +%v on=%v", i, got, c.on, w.at, w.on)
		}
	}
}
