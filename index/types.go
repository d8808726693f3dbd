package index

import "time"

// Camera is a recorded camera. The registry fields are persisted by
// registry.go (PutCamera); a camera row created by CreateSegment alone, or
// one removed from the registry, has Source "" and is not recorded.
type Camera struct {
	ID   string
	Name string
	// Township and Village locate the camera (county → township → village).
	Township, Village string
	// Lat and Lon are WGS-84 degrees; nil when unknown.
	Lat, Lon *float64
	// MainURL and SubURL are rtsp:// URLs without credentials.
	MainURL, SubURL string
	// Username is the RTSP user; SealedPassword the RTSP password sealed by
	// the registry (never the clear text), "" when there is none.
	Username, SealedPassword string
	// Transport is "tcp", "udp" or "" (the server default).
	Transport string
	// SegmentDuration is the per-camera segment length; 0 = server default.
	SegmentDuration time.Duration
	// Motion enables motion analysis.
	Motion bool
	// Enabled cameras are recorded.
	Enabled bool
	// Source is SourceConfig, SourceAPI, or "" (not in the registry).
	Source string
	// Created and Updated are the registry's timestamps (zero when unknown).
	Created, Updated time.Time
}

// Camera sources.
const (
	SourceConfig = "config" // declared in the configuration file
	SourceAPI    = "api"    // created through the API (or the CLI)
)

// Registered reports whether the camera is in the registry.
func (c Camera) Registered() bool { return c.Source != "" }
