package api

// WebRTC live view (WHEP, draft-ietf-wish-whep): POST an SDP offer to
// /api/v1/cameras/{id}/whep, get the answer (201, Location of the session);
// DELETE the Location to stop. Video only, H.264 only (WebRTC players do not
// take H.265 everywhere, and B-frames would need reordering the RTP
// payloader does not do): other cameras answer 415 and play through the
// MSE WebSocket. ICE uses host candidates, loopback included, with no
// STUN/TURN: loopback and LAN only (docs/operations.md says what a WAN
// setup needs). The answer is sent once ICE gathering is complete (no
// trickle).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"xueliang/ingest/live"
	"xueliang/storage/recording"
)

const protoWebRTC = "webrtc"

// whepSessions are the running WebRTC views by session ID.
type whepSessions struct {
	mu   sync.Mutex
	byID map[string]*whepSession
}

type whepSession struct {
	camera string
	pc     *webrtc.PeerConnection
	cancel context.CancelFunc
}

func (s *Server) whepRoutes() []route {
	return []route{
		{Route{"POST", "/api/v1/cameras/{id}/whep", ActLive}, s.whepOffer},
		{Route{"DELETE", "/api/v1/cameras/{id}/whep/{session}", ActLive}, s.whepDelete},
	}
}

func (s *Server) whepOffer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !s.cameraExists(w, r, id) {
		return
	}
	name := r.URL.Query().Get("stream")
	if name == "" {
		name = live.Main
	}
	if name != live.Main && name != live.Sub {
		writeError(w, http.StatusBadRequest, "stream: want main or sub, got %q", name)
		return
	}
	if s.Live == nil {
		writeError(w, http.StatusNotImplemented, "live view is not available on this server")
		return
	}
	st, ok := s.Live.Lookup(id, name)
	var sess *live.Session
	if ok {
		sess = st.Session()
	}
	if sess == nil {
		writeError(w, http.StatusServiceUnavailable, "camera %s has no live %s stream now", id, name)
		return
	}
	if sess.Video.Codec != recording.H264 {
		writeError(w, http.StatusUnsupportedMediaType, "WebRTC carries H.264 only; camera %s sends %s: use the MSE live view", id, sess.Video.Codec)
		return
	}
	offer, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil || len(offer) == 0 {
		writeError(w, http.StatusBadRequest, "body: want an SDP offer (application/sdp)")
		return
	}
	pc, track, err := newWHEPPeer()
	if err != nil {
		s.internal(w, r, "webrtc peer", err)
		return
	}
	answer, err := negotiate(r.Context(), pc, string(offer))
	if err != nil {
		pc.Close()
		writeError(w, http.StatusBadRequest, "sdp offer: %v", err)
		return
	}
	sid := newSessionID()
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	ws := &whepSession{camera: id, pc: pc, cancel: cancel}
	s.whep.mu.Lock()
	if s.whep.byID == nil {
		s.whep.byID = map[string]*whepSession{}
	}
	s.whep.byID[sid] = ws
	s.whep.mu.Unlock()
	pc.OnConnectionStateChange(func(cs webrtc.PeerConnectionState) {
		switch cs {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateDisconnected:
			cancel()
		}
	})
	start := s.Now()
	v := st.Subscribe()
	s.lm.viewers.WithLabelValues(id, protoWebRTC).Inc()
	s.lm.views.WithLabelValues(id, protoWebRTC).Inc()
	go func() {
		sent, reason := s.pumpWHEP(ctx, v, track, id)
		v.Close()
		pc.Close()
		s.whep.mu.Lock()
		delete(s.whep.byID, sid)
		s.whep.mu.Unlock()
		s.lm.viewers.WithLabelValues(id, protoWebRTC).Dec()
		s.Logger.Info("live view ended", "camera", id, "stream", name, "protocol", protoWebRTC, "bytes", sent, "drops", v.Drops(), "reason", reason)
		s.auditLiveEnd(r, id, name, start, sent, v.Drops(), reason+", webrtc")
	}()
	s.Logger.Info("live view started", "camera", id, "stream", name, "protocol", protoWebRTC)
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/api/v1/cameras/"+id+"/whep/"+sid)
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

func (s *Server) whepDelete(w http.ResponseWriter, r *http.Request) {
	s.whep.mu.Lock()
	ws := s.whep.byID[r.PathValue("session")]
	s.whep.mu.Unlock()
	if ws == nil || ws.camera != r.PathValue("id") {
		writeError(w, http.StatusNotFound, "no such WebRTC session")
		return
	}
	ws.cancel()
	w.WriteHeader(http.StatusNoContent)
}

// newWHEPPeer returns a peer connection with one H.264 video track.
func newWHEPPeer() (*webrtc.PeerConnection, *webrtc.TrackLocalStaticSample, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, nil, err
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, err
	}
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}, "video", "xueliang")
	if err != nil {
		pc.Close()
		return nil, nil, err
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		pc.Close()
		return nil, nil, err
	}
	go func() { // RTCP must be read for the interceptors to work
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	return pc, track, nil
}

// negotiate applies the offer and returns the answer with every ICE
// candidate in it.
func negotiate(ctx context.Context, pc *webrtc.PeerConnection, offer string) (string, error) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		return "", fmt.Errorf("ICE gathering did not complete")
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}

// pumpWHEP writes v's video to track until ctx ends.
func (s *Server) pumpWHEP(ctx context.Context, v *live.Viewer, track *webrtc.TrackLocalStaticSample, camera string) (int64, string) {
	bytes := s.lm.bytes.WithLabelValues(camera, protoWebRTC)
	drops := s.lm.drops.WithLabelValues(camera, protoWebRTC)
	lat := s.lm.latency.WithLabelValues(protoWebRTC)
	var sent, lastDrops int64
	var prev *live.Unit
	for {
		if d := v.Drops(); d != lastDrops {
			drops.Add(float64(d - lastDrops))
			lastDrops = d
		}
		u, err := v.Next(ctx)
		if err != nil {
			return sent, "closed"
		}
		if u.Audio {
			continue
		}
		dur := 40 * time.Millisecond
		if prev != nil && prev.Session == u.Session && u.PTS > prev.PTS {
			dur = time.Duration(u.PTS-prev.PTS) * time.Second / 90000
		}
		prev = u
		b, err := h264.AnnexB(u.Data).Marshal()
		if err != nil {
			continue
		}
		if err := track.WriteSample(media.Sample{Data: b, Duration: dur}); err != nil {
			return sent, "write failed"
		}
		sent += int64(len(b))
		bytes.Add(float64(len(b)))
		lat.Observe(live.Latency(u, s.Now()).Seconds())
	}
}

func newSessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
