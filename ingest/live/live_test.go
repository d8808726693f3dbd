package live

import (
	"context"
	"testing"
	"time"

	"xueliang/storage/recording"
)

// h264 test AUs: an IDR (type 5) with SPS/PPS, and a non-IDR slice (type 1).
var (
	testSPS = []byte{0x67, 0x64, 0x00, 0x0c, 0xac, 0x3b, 0x50, 0xb0, 0x4b, 0x42, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x3d, 0x08}
	testPPS = []byte{0x68, 0xce, 0x3c, 0x80}
)

func keyAU(n byte) [][]byte   { return [][]byte{testSPS, testPPS, {0x65, 0x88, n}} }
func deltaAU(n byte) [][]byte { return [][]byte{{0x41, 0x9a, n}} }

func newTestStream(t *testing.T, ring int) *Stream {
	t.Helper()
	h := NewHub(HubConfig{Ring: ring})
	s := h.Stream("cam", Main)
	s.StartSession(Session{Video: recording.Video{Codec: recording.H264, SPS: testSPS, PPS: testPPS}, Anchor: time.Unix(1000, 0)})
	return s
}

// publish sends frame i (keyframe every gop frames) if the stream is
// active, as the puller does.
func publish(s *Stream, i, gop int) {
	if !s.Active() {
		return
	}
	pts := int64(i) * 3600
	if i%gop == 0 {
		s.PublishVideo(pts, pts, keyAU(byte(i)), true, time.Now())
	} else {
		s.PublishVideo(pts, pts, deltaAU(byte(i)), false, time.Now())
	}
}

func frameNo(u *Unit) int { return int(u.PTS / 3600) }

func drain(t *testing.T, v *Viewer) []int {
	t.Helper()
	var out []int
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		u, err := v.Next(ctx)
		cancel()
		if err != nil {
			return out
		}
		out = append(out, frameNo(u))
	}
}

func TestIdleStreamCostsNothingAndFirstViewerStartsAtKeyframe(t *testing.T) {
	s := newTestStream(t, 64)
	for i := range 7 {
		publish(s, i, 5)
	}
	if st := s.Stats(); st.Units != 0 {
		t.Fatalf("units published without viewers: %d", st.Units)
	}
	v := s.Subscribe()
	defer v.Close()
	for i := 7; i < 12; i++ {
		publish(s, i, 5)
	}
	got := drain(t, v)
	if len(got) == 0 || got[0] != 10 || got[len(got)-1] != 11 {
		t.Fatalf("first viewer got %v, want 10, 11 (from the next keyframe)", got)
	}
}

func TestJoiningViewerGetsLastGOP(t *testing.T) {
	s := newTestStream(t, 64)
	a := s.Subscribe()
	defer a.Close()
	for i := range 13 {
		publish(s, i, 5)
	}
	b := s.Subscribe()
	defer b.Close()
	got := drain(t, b)
	want := []int{10, 11, 12}
	if len(got) != len(want) || got[0] != 10 || got[2] != 12 {
		t.Fatalf("joining viewer got %v, want %v", got, want)
	}
	if got := drain(t, a); len(got) != 13 || got[0] != 0 {
		t.Fatalf("first viewer got %v", got)
	}
}

func TestSlowViewerCutToNextKeyframe(t *testing.T) {
	s := newTestStream(t, 8)
	slow := s.Subscribe()
	defer slow.Close()
	fast := s.Subscribe()
	defer fast.Close()
	var fastGot, slowGot []int
	for i := range 40 {
		publish(s, i, 10)
		fastGot = append(fastGot, drain(t, fast)...)
		if i == 14 {
			// The slow viewer takes a few units mid-GOP, making room:
			// it must still get nothing before the next keyframe.
			for range 4 {
				u, err := slow.Next(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				slowGot = append(slowGot, frameNo(u))
			}
		}
	}
	for i, n := range fastGot {
		if n != i {
			t.Fatalf("fast viewer got %v, want 0..39 in order", fastGot)
		}
	}
	if len(fastGot) != 40 {
		t.Fatalf("fast viewer got %d frames", len(fastGot))
	}
	if slow.Drops() == 0 || s.Stats().Drops != slow.Drops() {
		t.Fatalf("slow viewer drops %d, stream drops %d", slow.Drops(), s.Stats().Drops)
	}
	slowGot = append(slowGot, drain(t, slow)...)
	cuts := 0
	for i := 1; i < len(slowGot); i++ {
		if slowGot[i] != slowGot[i-1]+1 {
			cuts++
			if slowGot[i]%10 != 0 {
				t.Fatalf("slow viewer resumed at frame %d, not a keyframe: %v", slowGot[i], slowGot)
			}
		}
	}
	if cuts == 0 || slowGot[0]%10 != 0 {
		t.Fatalf("slow viewer got %v: want cuts to keyframes", slowGot)
	}
}

func TestMuxerFragments(t *testing.T) {
	s := newTestStream(t, 64)
	v := s.Subscribe()
	defer v.Close()
	for i := range 6 {
		publish(s, i, 5)
	}
	var m Muxer
	var msgs []Message
	for range 6 {
		u, err := v.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Push(u)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, out...)
	}
	// init + 5 fragments (the 6th frame waits for its successor)
	if len(msgs) != 6 || msgs[0].Header == nil || msgs[0].Header.Codecs[0] != "avc1.64000c" {
		t.Fatalf("got %d messages, first %+v", len(msgs), msgs[0].Header)
	}
	if _, err := recording.ParseInit(msgs[0].Data); err != nil {
		t.Fatal(err)
	}
	for i, f := range msgs[1:] {
		if frameNo(f.Video) != i || string(f.Data[4:8]) != "moof" {
			t.Fatalf("fragment %d: frame %d box %q", i, frameNo(f.Video), f.Data[4:8])
		}
	}
}
