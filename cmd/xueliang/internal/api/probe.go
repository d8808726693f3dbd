package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"xueliang/ingest/probe"
)

// Prober probes a camera (ingest/probe.Probe; see ProberFunc).
type Prober interface {
	Probe(ctx context.Context, rawURL string, opts probe.Options) (probe.Result, error)
}

// ProberFunc adapts a function (probe.Probe) to Prober.
type ProberFunc func(ctx context.Context, rawURL string, opts probe.Options) (probe.Result, error)

// Probe calls f.
func (f ProberFunc) Probe(ctx context.Context, rawURL string, opts probe.Options) (probe.Result, error) {
	return f(ctx, rawURL, opts)
}

// ErrProbeBusy is returned by a LimitProbes prober when its limit is
// reached; the API answers 429.
var ErrProbeBusy = errors.New("too many probes in progress")

// LimitProbes lets at most n probes run at once through p; the others fail
// at once with ErrProbeBusy (a probe holds an RTSP session and a decoder for
// several seconds: queueing them would only make clients time out).
func LimitProbes(p Prober, n int) Prober {
	return &limitedProber{p: p, sem: make(chan struct{}, max(n, 1))}
}

type limitedProber struct {
	p   Prober
	sem chan struct{}
}

func (l *limitedProber) Probe(ctx context.Context, rawURL string, opts probe.Options) (probe.Result, error) {
	select {
	case l.sem <- struct{}{}:
		defer func() { <-l.sem }()
		return l.p.Probe(ctx, rawURL, opts)
	default:
		return probe.Result{}, ErrProbeBusy
	}
}

// Probe request bounds.
const (
	maxProbeBody      = 64 << 10
	minProbeTimeout   = time.Second
	maxProbeTimeout   = 30 * time.Second
	probeCodeBusy     = "busy"
	probeCodeDisabled = "disabled"
)

// ProbeRequest is the body of POST /api/v1/probe.
type ProbeRequest struct {
	URL      string `json:"url"`
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	// Timeout is a Go duration ("10s") or a number of seconds; it bounds
	// connecting and waiting for the first keyframe.
	Timeout json.RawMessage `json:"timeout,omitempty"`
}

// ProbeResponse is the 200 answer of POST /api/v1/probe.
type ProbeResponse struct {
	URL             string         `json:"url"` // password redacted
	Video           ProbeVideo     `json:"video"`
	Audio           *ProbeAudio    `json:"audio"`
	ConnectMS       int64          `json:"connect_ms"`
	FirstKeyframeMS int64          `json:"first_keyframe_ms"`
	WindowMS        int64          `json:"window_ms"`
	Snapshot        *ProbeSnapshot `json:"snapshot"`
	SnapshotError   string         `json:"snapshot_error,omitempty"`
}

// ProbeVideo is the video part of ProbeResponse.
type ProbeVideo struct {
	Codec       string  `json:"codec"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	FPS         float64 `json:"fps"`
	DeclaredFPS float64 `json:"declared_fps,omitempty"`
	Bitrate     int64   `json:"bitrate"` // bits per second
	Frames      int     `json:"frames"`
}

// ProbeAudio is the audio part of ProbeResponse.
type ProbeAudio struct {
	Codec      string `json:"codec"`
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channels"`
}

// ProbeSnapshot is the JPEG of the first keyframe.
type ProbeSnapshot struct {
	ContentType string `json:"content_type"` // image/jpeg
	Data        []byte `json:"data"`         // base64 in JSON
}

// ProbeError is the body of a failed probe (422, 429, 501): Code is one of
// the ingest/probe codes (unreachable, unauthorized, not_found, no_video,
// unsupported_codec, no_keyframe, not_allowed, rtsp_error), or busy /
// disabled. Error is the code's fixed text.
type ProbeError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// NewProbeResponse converts a probe result to its JSON form.
func NewProbeResponse(res probe.Result) ProbeResponse {
	out := ProbeResponse{
		URL: res.URL,
		Video: ProbeVideo{
			Codec: res.Video.Codec, Width: res.Video.Width, Height: res.Video.Height,
			FPS:         math.Round(res.Video.FPS*100) / 100,
			DeclaredFPS: math.Round(res.Video.DeclaredFPS*100) / 100,
			Bitrate:     int64(math.Round(res.Video.Bitrate)),
			Frames:      res.Video.Frames,
		},
		ConnectMS:       res.Connect.Milliseconds(),
		FirstKeyframeMS: res.FirstKeyframe.Milliseconds(),
		WindowMS:        res.Window.Milliseconds(),
		SnapshotError:   res.SnapshotError,
	}
	if a := res.Audio; a != nil {
		out.Audio = &ProbeAudio{Codec: a.Codec, SampleRate: a.SampleRate, Channels: a.Channels}
	}
	if len(res.Snapshot) > 0 {
		out.Snapshot = &ProbeSnapshot{ContentType: "image/jpeg", Data: res.Snapshot}
	}
	return out
}

// probeCamera serves POST /api/v1/probe.
func (s *Server) probeCamera(w http.ResponseWriter, r *http.Request) {
	if s.Prober == nil {
		writeJSON(w, http.StatusNotImplemented, ProbeError{Error: "camera probing is not enabled on this server", Code: probeCodeDisabled})
		return
	}
	req, opts, err := parseProbeRequest(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	opts.Logger = s.Logger
	if s.CameraNetworks != nil {
		opts.DialContext = s.CameraNetworks.Dialer().DialContext
	}
	res, err := s.Prober.Probe(r.Context(), req.URL, opts)
	switch code := probe.Code(err); {
	case err == nil:
		writeJSON(w, http.StatusOK, NewProbeResponse(res))
	case code != "":
		// Coarse: the code's own text, never the dial or RTSP detail (which
		// would make the probe a port scanner of the server's networks).
		// The probe logs the detail at debug level.
		writeJSON(w, http.StatusUnprocessableEntity, ProbeError{Error: probe.FromCode(code).Error(), Code: code})
	case errors.Is(err, ErrProbeBusy):
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusTooManyRequests, ProbeError{Error: err.Error(), Code: probeCodeBusy})
	case r.Context().Err() != nil:
		// The client went away.
	default:
		s.Logger.Error("request failed", "op", "probe", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error: probe")
	}
}

// parseProbeRequest decodes and validates the body, naming every bad field.
func parseProbeRequest(r *http.Request) (ProbeRequest, probe.Options, error) {
	var req ProbeRequest
	var opts probe.Options
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return req, opts, fmt.Errorf("body: want Content-Type application/json, got %q", ct)
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxProbeBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		// encoding/json names an unknown field ("json: unknown field \"x\"");
		// it never quotes string values, so no password is echoed.
		return req, opts, fmt.Errorf("body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return req, opts, errors.New("body: want one JSON object")
	}
	var probs []string
	switch u, err := url.Parse(req.URL); {
	case req.URL == "":
		probs = append(probs, "url: required")
	case err != nil:
		probs = append(probs, "url: not a URL")
	case u.Scheme != "rtsp" && u.Scheme != "rtsps":
		probs = append(probs, fmt.Sprintf("url: scheme must be rtsp or rtsps, got %q", u.Scheme))
	case u.Host == "":
		probs = append(probs, "url: no host")
	}
	if req.Password != "" && req.User == "" {
		if u, err := url.Parse(req.URL); err == nil && u.User == nil {
			probs = append(probs, "password: given without user (and the url has none)")
		}
	}
	if len(req.Timeout) > 0 && string(req.Timeout) != "null" {
		d, err := parseProbeTimeout(req.Timeout)
		if err != nil {
			probs = append(probs, "timeout: "+err.Error())
		}
		opts.Timeout = d
	}
	if len(probs) > 0 {
		return req, opts, errors.New(strings.Join(probs, "; "))
	}
	opts.User, opts.Pass = req.User, req.Password
	return req, opts, nil
}

func parseProbeTimeout(raw json.RawMessage) (time.Duration, error) {
	var d time.Duration
	var secs float64
	var str string
	switch {
	case json.Unmarshal(raw, &secs) == nil:
		d = time.Duration(secs * float64(time.Second))
	case json.Unmarshal(raw, &str) == nil:
		var err error
		if d, err = time.ParseDuration(str); err != nil {
			return 0, fmt.Errorf("want a duration such as \"10s\" or a number of seconds, got %q", str)
		}
	default:
		return 0, errors.New("want a duration such as \"10s\" or a number of seconds")
	}
	if d < minProbeTimeout || d > maxProbeTimeout {
		return 0, fmt.Errorf("%s is outside [%s, %s]", d, minProbeTimeout, maxProbeTimeout)
	}
	return d, nil
}
