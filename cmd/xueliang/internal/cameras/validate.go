package cameras

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"xueliang/cmd/xueliang/internal/registry"
	"xueliang/index"
)

// Input is a camera as a client writes it (POST, PUT, one import row).
type Input struct {
	// ID is the GB/T 28181 device ID (20 digits, checked against the
	// county's Policy). On PUT it may be empty (the path names it).
	ID string `json:"id"`
	// Name is a human name; it defaults to the ID.
	Name     string `json:"name"`
	Township string `json:"township"`
	Village  string `json:"village"`
	// Lat and Lon are WGS-84 degrees; both or neither.
	Lat *float64 `json:"lat"`
	Lon *float64 `json:"lon"`
	// MainURL (required) and SubURL are rtsp:// or rtsps:// URLs without
	// credentials.
	MainURL string `json:"main_url"`
	SubURL  string `json:"sub_url"`
	// Username and Password are the RTSP credentials. A nil Password keeps
	// the stored one (on update, when Username is unchanged and not empty).
	Username string  `json:"username"`
	Password *string `json:"password"`
	// Transport is tcp, udp or empty (the server's recording.transport).
	Transport string `json:"transport"`
	// SegmentDuration is a Go duration (2s..1h) or empty (server default).
	SegmentDuration string `json:"segment_duration"`
	// Motion turns on motion analysis (of the sub stream when there is one).
	Motion bool `json:"motion"`
	// Enabled defaults to true.
	Enabled *bool `json:"enabled"`
}

// FieldErrors names each bad field of an input, with the reason.
type FieldErrors map[string]string

// ValidationError is returned when an input has bad fields.
type ValidationError struct {
	Fields FieldErrors
}

func (e *ValidationError) Error() string {
	return "invalid camera: " + e.Fields.String()
}

// String lists the fields in name order: "id: …; main_url: …".
func (f FieldErrors) String() string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+f[k])
	}
	return strings.Join(parts, "; ")
}

// Limits of the text fields.
const (
	maxName     = 128
	maxSite     = 64
	maxURL      = 1024
	maxUsername = 128
	maxPassword = 256
)

// validated is an Input that passed validation, normalised.
type validated struct {
	id, name, township, village string
	lat, lon                    *float64
	mainURL, subURL             string
	username                    string
	password                    *string
	transport                   string
	segmentDuration             time.Duration
	motion, enabled             bool
}

// validate checks every field of in and returns all problems at once. A
// registry camera's ID must satisfy policy.
func validate(in Input, policy registry.Policy) (validated, FieldErrors) {
	bad := FieldErrors{}
	v := validated{
		id: strings.TrimSpace(in.ID), name: strings.TrimSpace(in.Name),
		township: strings.TrimSpace(in.Township), village: strings.TrimSpace(in.Village),
		lat: in.Lat, lon: in.Lon, username: in.Username, password: in.Password,
		transport: strings.ToLower(strings.TrimSpace(in.Transport)), motion: in.Motion, enabled: true,
	}
	if in.Enabled != nil {
		v.enabled = *in.Enabled
	}
	switch {
	case v.id == "":
		bad["id"] = "required: a 20-digit GB/T 28181 device ID (GET /api/v1/sites/next-id proposes one)"
	default:
		if _, err := policy.Parse(v.id); err != nil {
			bad["id"] = err.Error()
		}
	}
	if v.name == "" {
		v.name = v.id
	}
	checkText(bad, "name", v.name, maxName, false)
	checkText(bad, "township", v.township, maxSite, true)
	checkText(bad, "village", v.village, maxSite, true)
	switch {
	case (v.lat == nil) != (v.lon == nil):
		if v.lat == nil {
			bad["lat"] = "required when lon is set"
		} else {
			bad["lon"] = "required when lat is set"
		}
	case v.lat != nil:
		if !(*v.lat >= -90 && *v.lat <= 90) {
			bad["lat"] = fmt.Sprintf("want -90..90 degrees, got %g", *v.lat)
		}
		if !(*v.lon >= -180 && *v.lon <= 180) {
			bad["lon"] = fmt.Sprintf("want -180..180 degrees, got %g", *v.lon)
		}
	}
	var err string
	if v.mainURL, err = checkURL(in.MainURL, true); err != "" {
		bad["main_url"] = err
	}
	if v.subURL, err = checkURL(in.SubURL, false); err != "" {
		bad["sub_url"] = err
	}
	if len(v.username) > maxUsername || strings.ContainsFunc(v.username, unicode.IsControl) || !utf8.ValidString(v.username) {
		bad["username"] = fmt.Sprintf("at most %d printable characters", maxUsername)
	}
	if p := v.password; p != nil {
		switch {
		case len(*p) > maxPassword || strings.ContainsFunc(*p, unicode.IsControl) || !utf8.ValidString(*p):
			bad["password"] = fmt.Sprintf("at most %d printable characters", maxPassword)
		case *p != "" && v.username == "":
			bad["password"] = "a password needs a username"
		}
	}
	switch v.transport {
	case "", "tcp", "udp":
	default:
		bad["transport"] = fmt.Sprintf("want tcp or udp (or empty for the server default), got %q", truncate(in.Transport))
	}
	if s := strings.TrimSpace(in.SegmentDuration); s != "" {
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			bad["segment_duration"] = fmt.Sprintf("want a duration such as 60s, got %q", truncate(s))
		case d < 2*time.Second || d > time.Hour:
			bad["segment_duration"] = fmt.Sprintf("want 2s..1h, got %s", d)
		default:
			v.segmentDuration = d
		}
	}
	if len(bad) == 0 {
		return v, nil
	}
	return v, bad
}

func checkText(bad FieldErrors, field, s string, max int, required bool) {
	switch {
	case s == "" && required:
		bad[field] = "required"
	case !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl):
		bad[field] = "must be printable UTF-8 text"
	case utf8.RuneCountInString(s) > max:
		bad[field] = fmt.Sprintf("at most %d characters", max)
	}
}

// checkURL validates a stream URL and returns it trimmed, or a reason.
func checkURL(raw string, required bool) (string, string) {
	s := strings.TrimSpace(raw)
	if s == "" {
		if required {
			return "", "required: rtsp://host[:port]/path"
		}
		return "", ""
	}
	if len(s) > maxURL || strings.ContainsFunc(s, unicode.IsControl) {
		return "", fmt.Sprintf("at most %d printable characters", maxURL)
	}
	if hasUserinfo(s) {
		// The error names neither the user nor the password.
		return "", "must not contain credentials (user:password@); put them in the username and password fields, which are stored encrypted"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "not a valid URL"
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return "", "want an rtsp:// or rtsps:// URL"
	}
	if u.Hostname() == "" {
		return "", "missing host: want rtsp://host[:port]/path"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", "bad port"
		}
	}
	return s, ""
}

// hasUserinfo reports whether the authority of raw has a user part, even
// one url.Parse would reject.
func hasUserinfo(raw string) bool {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return false
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return strings.Contains(rest, "@")
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// InputOf returns the Input that writes c back unchanged (the password is
// nil: kept). PATCH decodes a partial body over it.
func InputOf(c index.Camera) Input {
	in := Input{
		ID: c.ID, Name: c.Name, Township: c.Township, Village: c.Village, Lat: c.Lat, Lon: c.Lon,
		MainURL: c.MainURL, SubURL: c.SubURL, Username: c.Username, Transport: c.Transport, Motion: c.Motion,
	}
	if c.SegmentDuration > 0 {
		in.SegmentDuration = c.SegmentDuration.String()
	}
	enabled := c.Enabled
	in.Enabled = &enabled
	return in
}
