package api

import (
	"context"
	"time"
)

// cameraEventJSON is one camera-side event of a timeline: reported by the
// camera itself (source "onvif": its ONVIF metadata track), as opposed to
// the motion we detect. End is null while the event is still open.
type cameraEventJSON struct {
	Source string     `json:"source"`
	Topic  string     `json:"topic"`
	Rule   string     `json:"rule"`
	Start  time.Time  `json:"start"`
	End    *time.Time `json:"end"`
}

// cameraEvents returns the camera events overlapping [from, to), never nil.
func (s *Server) cameraEvents(ctx context.Context, camera string, from, to time.Time) ([]cameraEventJSON, error) {
	evs, err := s.Index.CameraEvents(ctx, camera, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]cameraEventJSON, 0, len(evs))
	for _, e := range evs {
		j := cameraEventJSON{Source: e.Source, Topic: e.Topic, Rule: e.Rule, Start: e.Start.UTC()}
		if !e.End.IsZero() {
			end := e.End.UTC()
			j.End = &end
		}
		out = append(out, j)
	}
	return out, nil
}
