package main

import (
	"bytes"
	"image/jpeg"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"xueliang/cmd/xueliang/internal/api"
	"xueliang/ingest/probe"
)

func TestCameraProbeCLI(t *testing.T) {
	const user, pass = "installer", "Cli-s3cret"
	base, _ := startCamsim(t, "-cameras", "2", "-camera", "cam2:codec=h265", "-user", user, "-pass", pass)
	host := strings.TrimPrefix(base, "rtsp://")
	dir := t.TempDir()
	goodPW := filepath.Join(dir, "good")
	badPW := filepath.Join(dir, "bad")
	if err := os.WriteFile(goodPW, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(badPW, []byte("Wr0ng-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	srv := httptest.NewServer((&api.Server{Prober: api.LimitProbes(api.ProberFunc(probe.Probe), 2)}).Handler())
	t.Cleanup(srv.Close)

	cases := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantOut    []string
		wantErr    []string
		snapshot   bool
		snapW      int
		snapH      int
		noLeakText string
	}{
		{name: "local h264 with snapshot", args: []string{"probe", base + "/cam1", "--user", user, "--password-file", goodPW, "--snapshot", filepath.Join(dir, "local.jpg")},
			wantOut: []string{"camera    rtsp://installer:xxxxx@" + host + "/cam1", "video     H264 320x240, 25.00 fps (declared 25), ", "audio     none", "snapshot  written to "}, snapshot: true, snapW: 320, snapH: 240},
		{name: "local h265, flags before URL, password from stdin", args: []string{"probe", "--user", user, "--password-file", "-", base + "/cam2"}, stdin: pass + "\n",
			wantOut: []string{"video     H265 320x240, 25.00 fps", "snapshot  JPEG, "}},
		{name: "local wrong password", args: []string{"probe", base + "/cam1", "--user", user, "--password-file", badPW},
			wantCode: 4, wantErr: []string{"unauthorized: ", "wrong credentials"}, noLeakText: "Wr0ng-pw"},
		{name: "local unreachable", args: []string{"probe", "rtsp://" + closed + "/cam1"},
			wantCode: 3, wantErr: []string{"unreachable: ", "connection refused"}},
		{name: "server h264 with snapshot", args: []string{"probe", base + "/cam1", "--user", user, "--password-file", goodPW, "--server", srv.URL, "--token-file", tokenFile, "--snapshot", filepath.Join(dir, "server.jpg")},
			wantOut: []string{"camera    rtsp://installer:xxxxx@" + host + "/cam1", "video     H264 320x240, 25.00 fps"}, snapshot: true, snapW: 320, snapH: 240},
		{name: "server wrong password", args: []string{"probe", base + "/cam1", "--user", user, "--password-file", badPW, "--server", srv.URL},
			wantCode: 4, wantErr: []string{"unauthorized: ", "wrong credentials"}, noLeakText: "Wr0ng-pw"},
		{name: "server unreachable camera", args: []string{"probe", "rtsp://" + closed + "/cam1", "--server", srv.URL},
			wantCode: 3, wantErr: []string{"unreachable: "}},
		{name: "server itself unreachable", args: []string{"probe", base + "/cam1", "--server", "http://" + closed},
			wantCode: 1, wantErr: []string{"server http://" + closed}},
		{name: "server rejects the request", args: []string{"probe", "http://example/cam1", "--server", srv.URL},
			wantCode: 1, wantErr: []string{"400 Bad Request: url: scheme must be rtsp or rtsps"}},
		{name: "no URL", args: []string{"probe"}, wantCode: 2, wantErr: []string{"want exactly one URL"}},
		{name: "unknown subcommand", args: []string{"frobnicate"}, wantCode: 2, wantErr: []string{`unknown command "frobnicate"`}},
		{name: "missing password file", args: []string{"probe", base + "/cam1", "--password-file", filepath.Join(dir, "none")}, wantCode: 2, wantErr: []string{"password file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runCamera(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr)
			t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d", code, tc.wantCode)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout does not say %q", w)
				}
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not say %q", w)
				}
			}
			for _, secret := range []string{pass, tc.noLeakText} {
				if secret != "" && strings.Contains(stdout.String()+stderr.String(), secret) {
					t.Errorf("password %q printed", secret)
				}
			}
			if tc.snapshot {
				path := tc.args[len(tc.args)-1]
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				img, err := jpeg.Decode(bytes.NewReader(b))
				if err != nil || img.Bounds().Dx() != tc.snapW || img.Bounds().Dy() != tc.snapH {
					t.Fatalf("snapshot: %v %v", err, img)
				}
			}
		})
	}
}

func TestRunDispatchesCamera(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"camera"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "xueliang camera probe URL") {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "camera probe URL") {
		t.Fatalf("help does not list camera probe: %s", stdout.String())
	}
}
