package main

import (
	"log/slog"
	"strings"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// handler serves one ServerStream per camera path (/cam1, /cam2, ...).
type handler struct {
	cams map[string]*camera
	user string
	pass string
	log  *slog.Logger
}

var (
	_ gortsplib.ServerHandlerOnConnOpen     = (*handler)(nil)
	_ gortsplib.ServerHandlerOnConnClose    = (*handler)(nil)
	_ gortsplib.ServerHandlerOnSessionClose = (*handler)(nil)
	_ gortsplib.ServerHandlerOnDescribe     = (*handler)(nil)
	_ gortsplib.ServerHandlerOnSetup        = (*handler)(nil)
	_ gortsplib.ServerHandlerOnPlay         = (*handler)(nil)
)

func (h *handler) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	h.log.Debug("connection opened", "remote", ctx.Conn.NetConn().RemoteAddr().String())
}

func (h *handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.log.Debug("connection closed", "remote", ctx.Conn.NetConn().RemoteAddr().String(), "reason", ctx.Error)
}

func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	cam, ok := ctx.Session.UserData().(*camera)
	if !ok {
		return
	}
	cam.removeSession(ctx.Session)
	h.log.Info("session closed", "camera", cam.spec.ID, "reason", ctx.Error)
}

func (h *handler) camera(path string) *camera {
	return h.cams[strings.Trim(path, "/")]
}

// authorized checks credentials when -user is set; readers must send them
// with DESCRIBE and SETUP.
func (h *handler) authorized(sc *gortsplib.ServerConn, req *base.Request) bool {
	return h.user == "" || sc.VerifyCredentials(req, h.user, h.pass)
}

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !h.authorized(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	cam := h.camera(ctx.Path)
	if cam == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, cam.stream, nil
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !h.authorized(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	cam := h.camera(ctx.Path)
	if cam == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, cam.stream, nil
}

func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	cam := h.camera(ctx.Session.SetuppedPath())
	if cam == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil
	}
	ctx.Session.SetUserData(cam)
	cam.addSession(ctx.Session, ctx.Conn)
	h.log.Info("session playing", "camera", cam.spec.ID, "remote", ctx.Conn.NetConn().RemoteAddr().String())
	return &base.Response{StatusCode: base.StatusOK}, nil
}
