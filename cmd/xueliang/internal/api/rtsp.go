package api

// RTSP restream of the live view (live.rtsp_listen): rtsp://host:port/{id}
// serves camera id's main stream, rtsp://host:port/{id}/sub its sub stream,
// from the same fan-out as the MSE and WebRTC views (ingest/live): each RTSP
// session that plays is one live.Viewer, never a second connection to the
// camera. No transcoding: the access units are re-packetised with
// gortsplib's H.264/H.265 and AAC (MPEG-4 audio, RFC 3640) RTP encoders.
// G.711 audio is not restreamed (the fan-out carries it expanded to LPCM;
// the video is). TCP (interleaved) transport only.
//
// Authentication is RTSP Basic with the user's name and an API token as the
// password (POST /api/v1/login issues one; tokens are stored hashed, so
// Digest, which needs the secret in the clear, is not offered). The token
// must belong to the user named. 401 without or with wrong credentials, 403
// when the role may not view live or the camera is outside the user's
// townships (audited, as the HTTP guard does), 404 for an unknown camera or
// path, 503 when the camera has no live stream now. A view is audited as
// action live (an entry when PLAY is answered and one when the session
// ends, both with "protocol rtsp") and counted in the live metrics with
// protocol="rtsp".

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/headers"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"

	rtspauth "github.com/bluenviron/gortsplib/v4/pkg/auth"
	"xueliang/cmd/xueliang/internal/auth"
	"xueliang/index"
	"xueliang/ingest/live"
	"xueliang/storage/recording"
)

const protoRTSP = "rtsp"

// RTSPServer restreams the live view over RTSP. Build it with
// Server.NewRTSP after Server.Handler (which creates the metrics).
type RTSPServer struct {
	api *Server
	srv *gortsplib.Server
}

// NewRTSP returns the RTSP restream server of s, to listen on addr.
func (s *Server) NewRTSP(addr string) *RTSPServer {
	s.initOnce.Do(func() { s.m, s.lm = newMetrics(s.Registerer), newLiveMetrics(s.Registerer) })
	r := &RTSPServer{api: s}
	h := &rtspHandler{s: s}
	r.srv = &gortsplib.Server{
		Handler:     h,
		RTSPAddress: addr,
		// Basic only: the password is an API token, kept hashed.
		AuthMethods:    []rtspauth.VerifyMethod{rtspauth.VerifyMethodBasic},
		WriteQueueSize: 1024,
		ReadTimeout:    10 * time.Second,
		WriteTimeout:   10 * time.Second,
	}
	h.srv = r.srv
	return r
}

// Start listens; it fails when the address cannot be bound.
func (r *RTSPServer) Start() error {
	if err := r.srv.Start(); err != nil {
		return fmt.Errorf("rtsp listen %s: %w", r.srv.RTSPAddress, err)
	}
	return nil
}

// Addr is the address listened on (after Start).
func (r *RTSPServer) Addr() string { return r.srv.RTSPAddress }

// Run serves until ctx ends, then closes every session.
func (r *RTSPServer) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- r.srv.Wait() }()
	select {
	case <-ctx.Done():
		r.srv.Close()
		<-done
		return nil
	case err := <-done:
		return fmt.Errorf("rtsp server: %w", err)
	}
}

// rtspHandler answers the RTSP requests (gortsplib's ServerHandler).
type rtspHandler struct {
	s   *Server
	srv *gortsplib.Server
	// playing: *gortsplib.ServerConn → chan struct{}, closed when the PLAY
	// response is sent. gortsplib makes the reader active only after
	// OnPlay returns: what is written before is lost, the kept GOP with it.
	playing sync.Map
}

// rtspReader is one RTSP reader's view: prepared by DESCRIBE (or SETUP),
// started by PLAY, ended with its session.
type rtspReader struct {
	p            *Principal
	camera, name string
	path, remote string
	st           *live.Stream
	sess         *live.Session
	stream       *gortsplib.ServerStream
	media        *description.Media
	forma        format.Format
	// audio is the AAC media (nil: no audio, or not AAC).
	audio *description.Media
	aac   *format.MPEG4Audio

	mu      sync.Mutex
	cancel  context.CancelFunc
	done    chan struct{}
	started time.Time
}

var (
	_ gortsplib.ServerHandlerOnDescribe     = (*rtspHandler)(nil)
	_ gortsplib.ServerHandlerOnSetup        = (*rtspHandler)(nil)
	_ gortsplib.ServerHandlerOnPlay         = (*rtspHandler)(nil)
	_ gortsplib.ServerHandlerOnSessionClose = (*rtspHandler)(nil)
	_ gortsplib.ServerHandlerOnConnClose    = (*rtspHandler)(nil)
	_ gortsplib.ServerHandlerOnResponse     = (*rtspHandler)(nil)
)

// OnResponse releases the pump of a PLAY just answered on conn (its reader
// is active by now).
func (h *rtspHandler) OnResponse(conn *gortsplib.ServerConn, _ *base.Response) {
	if ch, ok := h.playing.LoadAndDelete(conn); ok {
		close(ch.(chan struct{}))
	}
}

func rtspStatus(code base.StatusCode) *base.Response { return &base.Response{StatusCode: code} }

// parseRTSPPath splits "/{id}" or "/{id}/sub".
func parseRTSPPath(p string) (camera, name string, ok bool) {
	p = strings.Trim(p, "/")
	camera, rest, _ := strings.Cut(p, "/")
	switch rest {
	case "":
		name = live.Main
	case live.Sub:
		name = live.Sub
	default:
		return "", "", false
	}
	return camera, name, camera != ""
}

// rtspPrincipal authenticates req's Basic credentials: the user's name and
// one of its API tokens.
func (h *rtspHandler) rtspPrincipal(ctx context.Context, req *base.Request) (*Principal, error) {
	var a headers.Authorization
	if err := a.Unmarshal(req.Header["Authorization"]); err != nil || a.Method != headers.AuthMethodBasic || a.BasicPass == "" {
		return nil, auth.ErrUnauthenticated
	}
	id, err := h.s.Auth.Authenticate(ctx, a.BasicPass)
	if err != nil {
		return nil, err
	}
	if id.User != a.Username {
		return nil, auth.ErrUnauthenticated
	}
	return &Principal{User: id.User, Role: id.Role, Townships: id.Townships}, nil
}

// prepare authenticates and authorises the request for path and builds the
// reader's stream. A non-nil response is the refusal to send.
func (h *rtspHandler) prepare(conn *gortsplib.ServerConn, req *base.Request, path string) (*rtspReader, *base.Response, error) {
	s := h.s
	ctx := context.Background()
	remote := conn.NetConn().RemoteAddr().String()
	if host, _, err := net.SplitHostPort(remote); err == nil {
		remote = host
	}
	camera, name, ok := parseRTSPPath(path)
	var p *Principal
	if s.Auth != nil {
		var err error
		p, err = h.rtspPrincipal(ctx, req)
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			s.Logger.Debug("unauthenticated rtsp request", "path", path, "remote", remote)
			return nil, rtspStatus(base.StatusUnauthorized), liberrors.ErrServerAuth{}
		case err != nil:
			s.Logger.Error("authentication failed", "err", err)
			return nil, rtspStatus(base.StatusServiceUnavailable), nil
		}
		deny := func(why string) (*rtspReader, *base.Response, error) {
			_ = h.audit(index.AuditRecord{User: p.User, Role: p.Role, Remote: remote, Method: string(req.Method),
				Path: path, Camera: camera, Status: int(base.StatusForbidden), Detail: "protocol rtsp; denied: " + why})
			return nil, rtspStatus(base.StatusForbidden), nil
		}
		if !auth.Can(p.Role, string(ActLive)) {
			return deny(fmt.Sprintf("role lacks %s", ActLive))
		}
		if ok && len(p.Townships) > 0 {
			cam, err := s.Index.Camera(ctx, camera)
			switch {
			case errors.Is(err, index.ErrNotFound):
			case err != nil:
				s.Logger.Error("get camera failed", "camera", camera, "err", err)
				return nil, rtspStatus(base.StatusInternalServerError), nil
			case !p.InScope(cam.Township):
				return deny(fmt.Sprintf("township %q out of scope", cam.Township))
			}
		}
	}
	if !ok {
		return nil, rtspStatus(base.StatusNotFound), nil
	}
	if _, err := s.Index.Camera(ctx, camera); err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return nil, rtspStatus(base.StatusNotFound), nil
		}
		s.Logger.Error("get camera failed", "camera", camera, "err", err)
		return nil, rtspStatus(base.StatusInternalServerError), nil
	}
	if s.Live == nil {
		return nil, rtspStatus(base.StatusNotImplemented), nil
	}
	st, has := s.Live.Lookup(camera, name)
	if !has || st.Session() == nil {
		return nil, rtspStatus(base.StatusServiceUnavailable), nil
	}
	sess := st.Session()
	rd := &rtspReader{p: p, camera: camera, name: name, path: path, remote: remote, st: st, sess: sess}
	switch sess.Video.Codec {
	case recording.H264:
		rd.forma = &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: sess.Video.SPS, PPS: sess.Video.PPS}
	case recording.H265:
		rd.forma = &format.H265{PayloadTyp: 96, VPS: sess.Video.VPS, SPS: sess.Video.SPS, PPS: sess.Video.PPS}
	default:
		return nil, rtspStatus(base.StatusUnsupportedMediaType), nil
	}
	rd.media = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{rd.forma}}
	medias := []*description.Media{rd.media}
	if a := sess.Audio; a != nil && a.Codec == recording.AAC {
		conf := a.AAC
		rd.aac = &format.MPEG4Audio{PayloadTyp: 97, Config: &conf, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
		rd.audio = &description.Media{Type: description.MediaTypeAudio, Formats: []format.Format{rd.aac}}
		medias = append(medias, rd.audio)
	}
	rd.stream = &gortsplib.ServerStream{Server: nil, Desc: &description.Session{Medias: medias}}
	return rd, nil, nil
}

// reader returns the reader prepared on conn for path, preparing it.
func (h *rtspHandler) reader(conn *gortsplib.ServerConn, req *base.Request, path string, srv *gortsplib.Server) (*rtspReader, *base.Response, error) {
	rd, res, err := h.prepare(conn, req, path)
	if rd == nil {
		return nil, res, err
	}
	if old, _ := conn.UserData().(*rtspReader); old != nil && old.camera == rd.camera && old.name == rd.name && old.sess == rd.sess {
		return old, nil, nil
	}
	if old, _ := conn.UserData().(*rtspReader); old != nil {
		old.stream.Close()
	}
	rd.stream.Server = srv
	if err := rd.stream.Initialize(); err != nil {
		h.s.Logger.Error("rtsp stream failed", "camera", rd.camera, "err", err)
		return nil, rtspStatus(base.StatusInternalServerError), nil
	}
	conn.SetUserData(rd)
	return rd, nil, nil
}

func (h *rtspHandler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	rd, res, err := h.reader(ctx.Conn, ctx.Request, ctx.Path, h.srv)
	if rd == nil {
		return res, nil, err
	}
	return rtspStatus(base.StatusOK), rd.stream, nil
}

func (h *rtspHandler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Transport != gortsplib.TransportTCP {
		return rtspStatus(base.StatusUnsupportedTransport), nil, nil
	}
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return rtspStatus(base.StatusMethodNotAllowed), nil, nil
	}
	rd, res, err := h.reader(ctx.Conn, ctx.Request, ctx.Path, h.srv)
	if rd == nil {
		return res, nil, err
	}
	ctx.Session.SetUserData(rd)
	return rtspStatus(base.StatusOK), rd.stream, nil
}

func (h *rtspHandler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	rd, _ := ctx.Session.UserData().(*rtspReader)
	if rd == nil {
		return rtspStatus(base.StatusBadRequest), nil
	}
	// Credentials are checked on every request, PLAY too.
	if again, res, err := h.prepare(ctx.Conn, ctx.Request, rd.path); again == nil {
		return res, err
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.cancel != nil {
		return rtspStatus(base.StatusOK), nil
	}
	started := h.s.Now()
	// Fail closed, as the HTTP guard: no audit entry, no view.
	if err := h.audit(h.record(rd, string(ctx.Request.Method), int(base.StatusOK), started, time.Time{},
		fmt.Sprintf("protocol rtsp; live view started: stream %s", rd.name))); err != nil {
		return rtspStatus(base.StatusServiceUnavailable), nil
	}
	pctx, cancel := context.WithCancel(context.Background())
	rd.cancel, rd.done, rd.started = cancel, make(chan struct{}), started
	v := rd.st.Subscribe()
	ready := make(chan struct{})
	h.playing.Store(ctx.Conn, ready)
	lm := h.s.lm
	lm.viewers.WithLabelValues(rd.camera, protoRTSP).Inc()
	lm.views.WithLabelValues(rd.camera, protoRTSP).Inc()
	h.s.Logger.Info("live view started", "camera", rd.camera, "stream", rd.name, "protocol", protoRTSP)
	go func() {
		defer close(rd.done)
		sent, reason := int64(0), "client closed"
		select {
		case <-ready:
			sent, reason = h.pump(pctx, rd, v, ctx.Session)
		case <-pctx.Done():
		}
		v.Close()
		lm.viewers.WithLabelValues(rd.camera, protoRTSP).Dec()
		h.s.Logger.Info("live view ended", "camera", rd.camera, "stream", rd.name, "protocol", protoRTSP,
			"bytes", sent, "drops", v.Drops(), "reason", reason)
		_ = h.audit(h.record(rd, "PLAY", int(base.StatusOK), rd.started, h.s.Now(),
			fmt.Sprintf("protocol rtsp; live view ended: stream %s, %d bytes, %d drops, %s", rd.name, sent, v.Drops(), reason)))
	}()
	return rtspStatus(base.StatusOK), nil
}

func (h *rtspHandler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	rd, _ := ctx.Session.UserData().(*rtspReader)
	if rd == nil {
		return
	}
	rd.mu.Lock()
	cancel, done := rd.cancel, rd.done
	rd.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (h *rtspHandler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.playing.Delete(ctx.Conn)
	if rd, _ := ctx.Conn.UserData().(*rtspReader); rd != nil {
		rd.stream.Close()
	}
}

// pump sends v's video units to rd's stream until ctx ends or the camera's
// session changes, and returns the bytes sent and why it ended.
func (h *rtspHandler) pump(ctx context.Context, rd *rtspReader, v *live.Viewer, ss *gortsplib.ServerSession) (int64, string) {
	var enc interface {
		Encode([][]byte) ([]*rtp.Packet, error)
	}
	var err error
	switch f := rd.forma.(type) {
	case *format.H264:
		enc, err = f.CreateEncoder()
	case *format.H265:
		enc, err = f.CreateEncoder()
	}
	if err != nil {
		h.s.Logger.Error("rtsp encoder failed", "camera", rd.camera, "err", err)
		return 0, "encoder error"
	}
	var aenc interface {
		Encode([][]byte) ([]*rtp.Packet, error)
	}
	if rd.aac != nil {
		if aenc, err = rd.aac.CreateEncoder(); err != nil {
			h.s.Logger.Error("rtsp encoder failed", "camera", rd.camera, "err", err)
			return 0, "encoder error"
		}
	}
	bytes := h.s.lm.bytes.WithLabelValues(rd.camera, protoRTSP)
	drops := h.s.lm.drops.WithLabelValues(rd.camera, protoRTSP)
	lat := h.s.lm.latency.WithLabelValues(protoRTSP)
	var sent, lastDrops int64
	for {
		if d := v.Drops(); d != lastDrops {
			drops.Add(float64(d - lastDrops))
			lastDrops = d
		}
		u, err := v.Next(ctx)
		if err != nil {
			return sent, "client closed"
		}
		if u.Session != rd.sess {
			// New camera session or parameter sets: the SDP is stale.
			// The client reconnects and DESCRIBEs again.
			go ss.Close()
			return sent, "camera session changed"
		}
		if u.Audio {
			if aenc == nil {
				continue
			}
			pkts, err := aenc.Encode(u.Data)
			if err != nil {
				h.s.Logger.Warn("rtsp packetise failed", "camera", rd.camera, "err", err)
				continue
			}
			rate := int64(u.Session.Audio.Rate())
			d := recording.MulDiv(u.PTS, 90000, rate) - u.Session.AnchorPTS
			wall := u.Session.Anchor.Add(time.Duration(d/90000)*time.Second + time.Duration(d%90000)*time.Second/90000)
			for _, pkt := range pkts {
				pkt.Timestamp = uint32(u.PTS)
				if err := rd.stream.WritePacketRTPWithNTP(rd.audio, pkt, wall); err != nil {
					return sent, "write failed"
				}
				n := int64(len(pkt.Payload) + 12)
				sent += n
				bytes.Add(float64(n))
			}
			continue
		}
		au := u.Data
		if u.Key {
			au = withParams(rd.sess.Video, au)
		}
		pkts, err := enc.Encode(au)
		if err != nil {
			h.s.Logger.Warn("rtsp packetise failed", "camera", rd.camera, "err", err)
			continue
		}
		wall := u.Wall()
		for _, pkt := range pkts {
			pkt.Timestamp = uint32(u.PTS)
			if err := rd.stream.WritePacketRTPWithNTP(rd.media, pkt, wall); err != nil {
				return sent, "write failed"
			}
			n := int64(len(pkt.Payload) + 12)
			sent += n
			bytes.Add(float64(n))
		}
		lat.Observe(h.s.Now().Sub(wall).Seconds())
	}
}

// withParams prepends the session's parameter sets to a keyframe that has
// none in band, so that a reader can start decoding at it.
func withParams(v recording.Video, au [][]byte) [][]byte {
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if v.Codec == recording.H265 {
			if (n[0]>>1)&0x3f == 33 { // SPS
				return au
			}
		} else if n[0]&0x1f == 7 {
			return au
		}
	}
	var ps [][]byte
	for _, p := range [][]byte{v.VPS, v.SPS, v.PPS} {
		if len(p) > 0 {
			ps = append(ps, p)
		}
	}
	return append(ps, au...)
}

func (h *rtspHandler) record(rd *rtspReader, method string, status int, from, to time.Time, detail string) index.AuditRecord {
	rec := index.AuditRecord{At: h.s.Now().UTC(), Remote: rd.remote, Method: method, Path: rd.path,
		Action: string(ActLive), Camera: rd.camera, From: from.UTC(), To: to.UTC(), Status: status, Detail: detail}
	if to.IsZero() {
		rec.To = time.Time{}
	}
	if rd.p != nil {
		rec.User, rec.Role = rd.p.User, rd.p.Role
	}
	return rec
}

func (h *rtspHandler) audit(rec index.AuditRecord) error {
	if h.s.Auth == nil {
		return nil
	}
	if rec.At.IsZero() {
		rec.At = h.s.Now().UTC()
	}
	rec.Action = string(ActLive)
	if err := h.s.Auth.AppendAudit(context.Background(), rec); err != nil {
		h.s.Logger.Error("rtsp live view not audited", "camera", rec.Camera, "err", err)
		return err
	}
	return nil
}
