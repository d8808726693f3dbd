package main

// WHEP end to end: a pion client negotiates with the server and receives
// the camera's RTP; the H.264 it carries is depacketised and its SEI stamps
// checked.

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/pion/webrtc/v4"

	"xueliang/ingest/sei"
	"xueliang/storage/recording"
)

// whepClient offers a recvonly H.264 transceiver to cam and returns the
// peer, the answer status and the session's Location.
func whepClient(t *testing.T, s *testServer, cam string, onTrack func(*webrtc.TrackRemote)) (*webrtc.PeerConnection, int, string) {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() }) // loopback only
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { onTrack(tr) })
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	req, _ := http.NewRequest("POST", s.base+"/api/v1/cameras/"+cam+"/whep", strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req) // the bootstrap token
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return pc, resp.StatusCode, ""
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	return pc, resp.StatusCode, resp.Header.Get("Location")
}

// checkWHEP receives 75 frames of cam over WebRTC: H.264 RTP whose access
// units carry consecutive SEI stamps of cam.
func checkWHEP(t *testing.T, s *testServer, cam string) {
	type result struct {
		seqs  []uint64
		codec string
		err   string
	}
	done := make(chan result, 1)
	_, code, loc := whepClient(t, s, cam, func(tr *webrtc.TrackRemote) {
		res := result{codec: tr.Codec().MimeType}
		var d rtph264.Decoder
		if err := d.Init(); err != nil {
			res.err = err.Error()
			done <- res
			return
		}
		for len(res.seqs) < 75 {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				res.err = err.Error()
				break
			}
			au, err := d.Decode(pkt)
			if err != nil {
				continue // fragments of an access unit
			}
			if st, ok := sei.FromAU(recording.H264, au); ok {
				res.seqs = append(res.seqs, st.Seq)
			}
		}
		done <- res
	})
	if code != http.StatusCreated || !strings.HasPrefix(loc, "/api/v1/cameras/"+cam+"/whep/") {
		t.Fatalf("WHEP offer: %d, Location %q", code, loc)
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("no 75 frames over WebRTC in 60 s")
	}
	if res.err != "" || res.codec != webrtc.MimeTypeH264 {
		t.Fatalf("track %s: %s after %d frames", res.codec, res.err, len(res.seqs))
	}
	for i := 1; i < len(res.seqs); i++ {
		if res.seqs[i] != res.seqs[i-1]+1 {
			t.Fatalf("WebRTC frames not consecutive: %v", res.seqs)
		}
	}
	t.Logf("WebRTC: %d consecutive frames of %s (seq %d..%d)", len(res.seqs), cam, res.seqs[0], res.seqs[len(res.seqs)-1])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "DELETE", s.base+loc, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE %s: %v %v", loc, err, resp)
	}
	resp.Body.Close()
}
