// Package registry holds the installer-facing camera registry's pure parts:
// GB/T 28181 device IDs (parsing, county validation, allocation of the next
// free ID) and the sealing of camera credentials at rest (AES-256-GCM).
//
// Nothing here touches a database or the network (key.go reads and may
// create the key file); the registry service is package cameras.
package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// XiayiDivision is the GB/T 2260 administrative division code of Xiayi
// County (夏邑县), Shangqiu, Henan.
const XiayiDivision = "411426"

// DeviceIDLen is the length of a GB/T 28181 device ID.
const DeviceIDLen = 20

// Camera type codes (GB/T 28181 device ID digits 11–13).
const (
	TypeCamera   = "131" // camera (analogue behind an encoder)
	TypeIPCamera = "132" // IP camera
)

// Errors of device ID parsing and allocation. Validation errors wrap
// ErrInvalidDeviceID; allocation fails with ErrNoFreeID when every serial
// under a prefix is taken.
var (
	ErrInvalidDeviceID = errors.New("invalid device ID")
	ErrNoFreeID        = errors.New("no free device ID")
)

// DeviceID is a GB/T 28181 20-digit device ID, split into its fields:
//
//	41142600 00 132 0 000001
//	│        │  │   │ └ serial (6)
//	│        │  │   └ network flag (1)
//	│        │  └ type (3): 131 camera, 132 IP camera, 118 NVR, 200 platform…
//	│        └ industry (2): 00–03 public order
//	└ centre code (8) = division (6, GB/T 2260) + base unit (2)
type DeviceID struct {
	Division string // 6 digits
	BaseUnit string // 2 digits
	Industry string // 2 digits
	Type     string // 3 digits
	Network  string // 1 digit
	Serial   string // 6 digits
}

// ParseDeviceID splits a 20-digit ID into its fields. It checks only the
// shape (20 ASCII digits); Policy.Check applies the county's rules.
func ParseDeviceID(s string) (DeviceID, error) {
	if len(s) != DeviceIDLen {
		return DeviceID{}, fmt.Errorf("%w %q: want %d digits, got %d characters", ErrInvalidDeviceID, truncate(s), DeviceIDLen, len(s))
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		return DeviceID{}, fmt.Errorf("%w %q: character %d is not a digit", ErrInvalidDeviceID, truncate(s), i+1)
	}
	return DeviceID{
		Division: s[0:6],
		BaseUnit: s[6:8],
		Industry: s[8:10],
		Type:     s[10:13],
		Network:  s[13:14],
		Serial:   s[14:20],
	}, nil
}

// String returns the 20-digit form.
func (d DeviceID) String() string {
	return d.Division + d.BaseUnit + d.Industry + d.Type + d.Network + d.Serial
}

// Centre returns the 8-digit centre code (division + base unit).
func (d DeviceID) Centre() string { return d.Division + d.BaseUnit }

// IsCamera reports whether the type code is a camera (131 or 132).
func (d DeviceID) IsCamera() bool { return d.Type == TypeCamera || d.Type == TypeIPCamera }

// Policy is what a county accepts as a camera ID. The zero value is not
// useful; use XiayiCameras or fill every field.
type Policy struct {
	// Division is the 6-digit GB/T 2260 county code every ID must start with.
	Division string
	// Industries are the accepted industry codes.
	Industries []string
	// Types are the accepted device type codes.
	Types []string
	// Networks are the accepted network flags.
	Networks []string
}

// XiayiCameras accepts the cameras of Xiayi County: division 411426, any
// base unit, industry 00–03 (public order: road, community, internal,
// other), type 131/132, network flag 0–8 (9 is reserved).
var XiayiCameras = Policy{
	Division:   XiayiDivision,
	Industries: []string{"00", "01", "02", "03"},
	Types:      []string{TypeCamera, TypeIPCamera},
	Networks:   []string{"0", "1", "2", "3", "4", "5", "6", "7", "8"},
}

// Parse parses s and checks it against the policy; the error names every
// field that is wrong and wraps ErrInvalidDeviceID.
func (p Policy) Parse(s string) (DeviceID, error) {
	d, err := ParseDeviceID(s)
	if err != nil {
		return DeviceID{}, err
	}
	return d, p.Check(d)
}

// Check reports every field of d the policy rejects, or nil.
func (p Policy) Check(d DeviceID) error {
	var probs []string
	if d.Division != p.Division {
		probs = append(probs, fmt.Sprintf("division %s is not %s", d.Division, p.Division))
	}
	if !slices.Contains(p.Industries, d.Industry) {
		probs = append(probs, fmt.Sprintf("industry %s not in %s", d.Industry, strings.Join(p.Industries, ",")))
	}
	if !slices.Contains(p.Types, d.Type) {
		probs = append(probs, fmt.Sprintf("type %s not in %s", d.Type, strings.Join(p.Types, ",")))
	}
	if !slices.Contains(p.Networks, d.Network) {
		probs = append(probs, fmt.Sprintf("network flag %s not in %s", d.Network, strings.Join(p.Networks, ",")))
	}
	if d.Serial == "000000" {
		probs = append(probs, "serial 000000 is reserved")
	}
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%w %s: %s", ErrInvalidDeviceID, d, strings.Join(probs, "; "))
}

// NextFreeID proposes the lowest-numbered free ID starting with prefix: a
// village's block of IDs is named by its prefix, from the 14 digits before
// the serial (centre, industry, type, network flag) up to 19 digits (a
// sub-block of serials). used lists the IDs already allocated; entries that
// do not start with prefix, or are not 20 digits, are ignored. Serial
// 000000 is never proposed. The result satisfies XiayiCameras when the
// prefix does; NextFreeID itself checks only that prefix is 14–19 digits.
func NextFreeID(prefix string, used []string) (string, error) {
	if len(prefix) < 14 || len(prefix) >= DeviceIDLen {
		return "", fmt.Errorf("%w prefix %q: want 14 to 19 digits, got %d characters", ErrInvalidDeviceID, truncate(prefix), len(prefix))
	}
	if strings.ContainsFunc(prefix, func(r rune) bool { return r < '0' || r > '9' }) {
		return "", fmt.Errorf("%w prefix %q: not all digits", ErrInvalidDeviceID, truncate(prefix))
	}
	width := DeviceIDLen - len(prefix)
	taken := make(map[string]bool, len(used))
	for _, u := range used {
		if len(u) == DeviceIDLen && strings.HasPrefix(u, prefix) {
			taken[u[len(prefix):]] = true
		}
	}
	limit := 1
	for range width {
		limit *= 10
	}
	for n := 0; n < limit; n++ {
		suffix := fmt.Sprintf("%0*d", width, n)
		if strings.Trim(prefix[14:]+suffix, "0") == "" {
			continue // serial 000000
		}
		if !taken[suffix] {
			return prefix + suffix, nil
		}
	}
	return "", fmt.Errorf("%w under prefix %s: all %d taken", ErrNoFreeID, prefix, len(taken))
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
