package api

import (
	"net/http"
	"sync"
	"time"

	"xueliang/index"
	"xueliang/ingest"
)

// Camera states of GET /api/v1/camera-status.
const (
	StateRecording = "recording"  // connected, keyframes arriving
	StateNoFootage = "no_footage" // connected, but no keyframe for StaleKeyframe
	StateOffline   = "offline"    // enabled, not connected
	StateDisabled  = "disabled"   // not enabled in the registry
)

// StaleKeyframe is how old the last keyframe of a connected camera may be
// before it is reported no_footage (camsim and real cameras send one every
// 1–4 s).
const StaleKeyframe = 15 * time.Second

// motionNowWindow is how recent motion must be for motion_now.
const motionNowWindow = 10 * time.Second

// MotionStatus is the live motion analysis of the running pullers
// (*ingest.Manager); Server.Pullers may implement it.
type MotionStatus interface {
	MotionStats() map[string]ingest.MotionStats
}

type cameraStatusJSON struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Township string `json:"township"`
	Village  string `json:"village"`
	State    string `json:"state"`
	Online   bool   `json:"online"`
	// MotionNow: the live analysis saw motion in the last 10 s, or a
	// stored motion interval overlaps them (cameras with motion analysis
	// only). LastMotion is the end of the latest second with motion the
	// live analysis saw (since the server started).
	MotionNow  bool       `json:"motion_now"`
	LastMotion *time.Time `json:"last_motion,omitempty"`
	// BitrateBPS is the media bitrate received, over the interval since
	// the previous status request (at least 2 s), or the session average
	// on the first.
	BitrateBPS     int64      `json:"bitrate_bps"`
	Frames         int64      `json:"frames"`
	Reconnects     int64      `json:"reconnects"`
	LastError      string     `json:"last_error,omitempty"`
	LastErrorClass string     `json:"last_error_class,omitempty"`
	LastKeyframe   *time.Time `json:"last_keyframe,omitempty"`
	SessionStart   *time.Time `json:"session_start,omitempty"`
}

// bitrates keeps the previous byte count of each camera for the bitrate.
type bitrates struct {
	mu   sync.Mutex
	last map[string]byteSample
}

type byteSample struct {
	bytes int64
	at    time.Time
	bps   int64
}

// rate returns the bitrate of camera from its byte counter now.
func (b *bitrates) rate(camera string, bytes int64, now, session time.Time) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == nil {
		b.last = map[string]byteSample{}
	}
	prev, ok := b.last[camera]
	switch {
	case ok && bytes >= prev.bytes && now.Sub(prev.at) < 2*time.Second:
		return prev.bps // too soon: keep the last figure
	case ok && bytes >= prev.bytes:
		bps := int64(float64(bytes-prev.bytes) * 8 / now.Sub(prev.at).Seconds())
		b.last[camera] = byteSample{bytes, now, bps}
		return bps
	}
	var bps int64
	if d := now.Sub(session); !session.IsZero() && d > time.Second {
		bps = int64(float64(bytes) * 8 / d.Seconds())
	}
	b.last[camera] = byteSample{bytes, now, bps}
	return bps
}

func (s *Server) statusRoutes() []route {
	return []route{{Route{"GET", "/api/v1/camera-status", ActCameraRead}, s.cameraStatus}}
}

// cameraStatus serves GET /api/v1/camera-status: the state of every
// registered camera in the caller's townships, for the console's camera
// tree and health page.
func (s *Server) cameraStatus(w http.ResponseWriter, r *http.Request) {
	var cams []index.Camera
	var err error
	if s.Cameras == nil {
		cams, err = s.Index.Cameras(r.Context())
	} else {
		cams, err = s.Cameras.List(r.Context())
	}
	if err != nil {
		s.internal(w, r, "list cameras", err)
		return
	}
	now := s.Now()
	sts := s.status()
	var live map[string]ingest.MotionStats
	if ms, ok := s.Pullers.(MotionStatus); ok {
		live = ms.MotionStats()
	}
	mi := s.motionIndex()
	p := principalFrom(r.Context())
	out := make([]cameraStatusJSON, 0, len(cams))
	for _, c := range cams {
		if !p.InScope(c.Township) {
			continue
		}
		cs := cameraStatusJSON{ID: c.ID, Name: c.Name, Township: c.Township, Village: c.Village, State: StateOffline}
		st, ok := sts[c.ID]
		if ok {
			cs.Online = st.Connected
			cs.Frames, cs.Reconnects = st.Frames, st.Reconnects
			cs.LastError, cs.LastErrorClass = st.LastError, st.LastErrorClass
			if !st.LastKeyframe.IsZero() {
				k := st.LastKeyframe.UTC()
				cs.LastKeyframe = &k
			}
			if !st.SessionStart.IsZero() {
				ss := st.SessionStart.UTC()
				cs.SessionStart = &ss
			}
			if st.Connected {
				cs.BitrateBPS = s.rates.rate(c.ID, st.Bytes, now, st.SessionStart)
			}
		}
		switch {
		case !c.Enabled:
			cs.State = StateDisabled
		case !cs.Online:
			cs.State = StateOffline
		case st.LastKeyframe.IsZero() || now.Sub(st.LastKeyframe) > StaleKeyframe:
			cs.State = StateNoFootage
		default:
			cs.State = StateRecording
		}
		if m := live[c.ID]; c.Motion && !m.LastMotion.IsZero() {
			lm := m.LastMotion.UTC()
			cs.LastMotion = &lm
			cs.MotionNow = cs.Online && now.Sub(lm) <= motionNowWindow
		}
		if mi != nil && c.Motion && cs.Online && !cs.MotionNow {
			iv, err := mi.MotionIntervals(r.Context(), c.ID, now.Add(-motionNowWindow), now, 1)
			if err != nil {
				s.internal(w, r, "motion intervals", err)
				return
			}
			cs.MotionNow = len(iv) > 0
		}
		out = append(out, cs)
	}
	writeJSON(w, http.StatusOK, map[string]any{"cameras": out})
}
