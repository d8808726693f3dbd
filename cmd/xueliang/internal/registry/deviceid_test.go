package registry

import (
	"errors"
	"strings"
	"testing"
)

var deviceIDCases = []struct {
	name    string
	in      string
	wantErr string // substring; "" = valid for XiayiCameras
	parseOK bool   // ParseDeviceID accepts the shape
}{
	{name: "reference example", in: "41142600001320000001", parseOK: true},
	{name: "camera 131 industry 03 net 5", in: "41142612031315123456", parseOK: true},
	{name: "other county", in: "41142700001320000001", wantErr: "division 411427 is not 411426", parseOK: true},
	{name: "industry 04", in: "41142600041320000001", wantErr: "industry 04", parseOK: true},
	{name: "NVR type", in: "41142600001180000001", wantErr: "type 118", parseOK: true},
	{name: "platform type", in: "41142600002000000001", wantErr: "type 200", parseOK: true},
	{name: "reserved network flag", in: "41142600001329000001", wantErr: "network flag 9", parseOK: true},
	{name: "serial zero", in: "41142600001320000000", wantErr: "serial 000000", parseOK: true},
	{name: "every field wrong", in: "11010100991189000000", wantErr: "division 110101 is not 411426; industry 99 not in 00,01,02,03; type 118 not in 131,132; network flag 9 not in 0,1,2,3,4,5,6,7,8; serial 000000", parseOK: true},
	{name: "too short", in: "4114260000132000001", wantErr: "want 20 digits, got 19"},
	{name: "too long", in: "411426000013200000011", wantErr: "want 20 digits, got 21"},
	{name: "empty", in: "", wantErr: "want 20 digits, got 0"},
	{name: "letter", in: "4114260000132000000A", wantErr: "character 20 is not a digit"},
	{name: "fullwidth digit", in: "411426000013200000１", wantErr: "want 20 digits"},
	{name: "space", in: "41142600 01320000001", wantErr: "character 9 is not a digit"},
}

func TestDeviceID(t *testing.T) {
	for _, tc := range deviceIDCases {
		t.Run(tc.name, func(t *testing.T) {
			d, perr := ParseDeviceID(tc.in)
			if (perr == nil) != tc.parseOK {
				t.Fatalf("ParseDeviceID(%q) err = %v, want ok=%v", tc.in, perr, tc.parseOK)
			}
			if perr == nil && d.String() != tc.in {
				t.Fatalf("round trip: %q → %+v → %q", tc.in, d, d.String())
			}
			_, err := XiayiCameras.Parse(tc.in)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse(%q): %v", tc.in, err)
				}
				if !d.IsCamera() || d.Centre() != tc.in[:8] {
					t.Fatalf("fields %+v", d)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse(%q) err = %v, want %q", tc.in, err, tc.wantErr)
			}
			if !errors.Is(err, ErrInvalidDeviceID) {
				t.Fatalf("err %v does not wrap ErrInvalidDeviceID", err)
			}
		})
	}
}

func TestDeviceIDFields(t *testing.T) {
	d, err := ParseDeviceID("41142607021320654321")
	if err != nil {
		t.Fatal(err)
	}
	want := DeviceID{Division: "411426", BaseUnit: "07", Industry: "02", Type: "132", Network: "0", Serial: "654321"}
	if d != want {
		t.Fatalf("got %+v want %+v", d, want)
	}
}

func TestNextFreeID(t *testing.T) {
	cases := []struct {
		name    string
		prefix  string
		used    []string
		want    string
		wantErr error
	}{
		{name: "empty village", prefix: "41142600001320", want: "41142600001320000001"},
		{name: "fills the first hole", prefix: "41142600001320",
			used: []string{"41142600001320000001", "41142600001320000002", "41142600001320000004"},
			want: "41142600001320000003"},
		{name: "unsorted and foreign IDs ignored", prefix: "41142600001320",
			used: []string{"41142600001320000002", "41142600001310000001", "junk", "41142600001320000001", "4114260000132000000"},
			want: "41142600001320000003"},
		{name: "village sub-block", prefix: "4114260000132001230",
			used: []string{"41142600001320012300", "41142600001320012301"}, want: "41142600001320012302"},
		{name: "zero sub-block skips serial 000000", prefix: "4114260000132000000",
			want: "41142600001320000001"},
		{name: "sub-block full", prefix: "4114260000132001230",
			used: fullBlock("4114260000132001230"), wantErr: ErrNoFreeID},
		{name: "zero sub-block full", prefix: "4114260000132000000",
			used: fullBlock("4114260000132000000")[1:], wantErr: ErrNoFreeID},
		{name: "prefix too short", prefix: "4114260000132", wantErr: ErrInvalidDeviceID},
		{name: "prefix is a whole ID", prefix: "41142600001320000001", wantErr: ErrInvalidDeviceID},
		{name: "prefix not digits", prefix: "41142600001x20", wantErr: ErrInvalidDeviceID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NextFreeID(tc.prefix, tc.used)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %q, %v; want %v", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			if _, err := XiayiCameras.Parse(got); err != nil {
				t.Fatalf("proposed ID fails the policy: %v", err)
			}
		})
	}
}

func fullBlock(prefix string) []string {
	var out []string
	for d := '0'; d <= '9'; d++ {
		out = append(out, prefix+string(d))
	}
	return out
}

func FuzzParseDeviceID(f *testing.F) {
	for _, tc := range deviceIDCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDeviceID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidDeviceID) {
				t.Fatalf("error %v does not wrap ErrInvalidDeviceID", err)
			}
			return
		}
		if d.String() != s {
			t.Fatalf("round trip %q → %q", s, d.String())
		}
		if err := XiayiCameras.Check(d); err != nil && !errors.Is(err, ErrInvalidDeviceID) {
			t.Fatalf("check error %v does not wrap ErrInvalidDeviceID", err)
		}
	})
}
