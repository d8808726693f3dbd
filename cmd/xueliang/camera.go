package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"xueliang/cmd/xueliang/internal/api"
	"xueliang/ingest/probe"
)

const cameraUsage = `usage: xueliang camera <command> [flags]

  xueliang camera add --township T --village V --url URL [flags]
  xueliang camera list [--township T] [--village V] [--enabled B] [--online B] [--q TEXT] [--json]
  xueliang camera rm ID...
  xueliang camera import FILE.csv [--dry-run] [--batch N]
  xueliang camera probe URL [flags]

add, list, rm and import talk to a running server's API:
  --server URL         API base URL (default $XUELIANG_SERVER or http://127.0.0.1:8080)
  --token-file F       read the bearer token from F (default $XUELIANG_TOKEN;
                       a token is never taken from the command line)

add flags:
  --id ID              20-digit GB/T 28181 device ID (default: the server
                       proposes the next free one of the village)
  --name N, --lat D, --lon D, --sub-url URL, --transport tcp|udp,
  --segment-duration D, --motion, --disabled
  --user U             RTSP user
  --password-file F    read the RTSP password from F ("-": stdin); the URL
                       must not contain credentials

import FILE.csv: a header row, then one camera per row; columns
  id,name,township,village,lat,lon,main_url,sub_url,username,password,
  transport,enabled,motion[,segment_duration]
  Every row is validated first; bad rows are listed (row number, id,
  reason). Without --dry-run the valid rows are then upserted by id
  (running it again changes nothing). Exit status 1 if any row failed.

xueliang camera probe URL: probe a camera before adding it: codec,
resolution, measured fps and bitrate, audio, time to the first keyframe
and a JPEG snapshot.

probe flags:
  --user U             RTSP user (overrides the URL's)
  --password-file F    read the RTSP password from F (never pass it on the
                       command line); "-" reads it from stdin
  --snapshot FILE      write the snapshot JPEG to FILE
  --timeout D          bound on connecting + waiting for a keyframe (default 10s)
  --server URL         probe through a running server's API (e.g. http://127.0.0.1:8080)
                       instead of from this machine
  --token-file F       bearer token for --server (or $XUELIANG_TOKEN)

exit status: 0 ok; 2 usage; 1 other failure (e.g. the server cannot be reached);
  3 unreachable, 4 unauthorized, 5 not_found, 6 no_video,
  7 unsupported_codec, 8 no_keyframe, 9 rtsp_error
`

// probeExitCodes maps a probe error code to the command's exit status.
var probeExitCodes = map[string]int{
	probe.CodeUnreachable:      3,
	probe.CodeUnauthorized:     4,
	probe.CodeNotFound:         5,
	probe.CodeNoVideo:          6,
	probe.CodeUnsupportedCodec: 7,
	probe.CodeNoKeyframe:       8,
	probe.CodeRTSP:             9,
}

func runCamera(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, cameraUsage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch args[0] {
	case "probe":
		return runCameraProbe(ctx, args[1:], stdin, stdout, stderr)
	case "add":
		return runCameraAdd(ctx, args[1:], stdin, stdout, stderr)
	case "list", "ls":
		return runCameraList(ctx, args[1:], stdout, stderr)
	case "rm", "remove", "delete":
		return runCameraRm(ctx, args[1:], stdout, stderr)
	case "import":
		return runCameraImport(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "xueliang camera: unknown command %q\n\n%s", args[0], cameraUsage)
		return 2
	}
}

type probeFlags struct {
	url, user, passwordFile, snapshot, server, token string
	timeout                                          time.Duration
}

// parseInterspersed parses flags that may come before or after the
// positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runCameraProbe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camera probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, cameraUsage) }
	var f probeFlags
	fs.StringVar(&f.user, "user", "", "RTSP user")
	fs.StringVar(&f.passwordFile, "password-file", "", "file holding the RTSP password")
	fs.StringVar(&f.snapshot, "snapshot", "", "write the snapshot JPEG here")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "connect + first keyframe bound")
	fs.StringVar(&f.server, "server", "", "probe through this server's API")
	tokenFlags(fs, &f.token)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "xueliang camera probe: want exactly one URL, got %d arguments\n\n%s", len(pos), cameraUsage)
		return 2
	}
	f.url = pos[0]
	var password string
	if f.passwordFile != "" {
		var b []byte
		if f.passwordFile == "-" {
			b, err = io.ReadAll(io.LimitReader(stdin, 4096))
		} else {
			b, err = os.ReadFile(f.passwordFile)
		}
		if err != nil {
			fmt.Fprintf(stderr, "xueliang camera probe: password file: %v\n", err)
			return 2
		}
		password = strings.TrimRight(string(b), "\r\n")
	}

	var resp api.ProbeResponse
	if f.server != "" {
		resp, err = probeViaServer(ctx, f, password)
	} else {
		var res probe.Result
		res, err = probe.Probe(ctx, f.url, probe.Options{User: f.user, Pass: password, Timeout: f.timeout})
		resp = api.NewProbeResponse(res)
	}
	if err != nil {
		code := probe.Code(err)
		if code == "" {
			fmt.Fprintf(stderr, "xueliang camera probe: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "xueliang camera probe: %s: %v\n", code, err)
		return probeExitCodes[code]
	}
	printProbe(stdout, resp)
	if f.snapshot != "" {
		if resp.Snapshot == nil {
			fmt.Fprintf(stderr, "xueliang camera probe: no snapshot to write: %s\n", resp.SnapshotError)
			return 1
		}
		if err := os.WriteFile(f.snapshot, resp.Snapshot.Data, 0o644); err != nil {
			fmt.Fprintf(stderr, "xueliang camera probe: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "snapshot  written to %s (%d bytes)\n", f.snapshot, len(resp.Snapshot.Data))
	}
	return 0
}

// probeViaServer asks a running server to probe. A probe failure comes
// back as an error wrapping the probe sentinel (probe.Code works on it); a
// failure to talk to the server does not.
func probeViaServer(ctx context.Context, f probeFlags, password string) (api.ProbeResponse, error) {
	var out api.ProbeResponse
	body, err := json.Marshal(map[string]any{"url": f.url, "user": f.user, "password": password, "timeout": f.timeout.String()})
	if err != nil {
		return out, err
	}
	endpoint := strings.TrimRight(f.server, "/") + "/api/v1/probe"
	// The probe itself takes up to timeout + about 4 s.
	ctx, cancel := context.WithTimeout(ctx, f.timeout+15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return out, fmt.Errorf("server %s: %w", f.server, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return out, fmt.Errorf("server %s: %w", f.server, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return out, fmt.Errorf("server %s: read answer: %w", f.server, err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &out); err != nil {
			return out, fmt.Errorf("server %s: bad answer: %w", f.server, err)
		}
		return out, nil
	}
	var perr api.ProbeError
	_ = json.Unmarshal(b, &perr)
	if sentinel := probe.FromCode(perr.Code); sentinel != nil && resp.StatusCode == http.StatusUnprocessableEntity {
		return out, &remoteProbeError{msg: perr.Error, sentinel: sentinel}
	}
	msg := perr.Error
	if msg == "" {
		msg = strings.TrimSpace(string(b))
	}
	return out, fmt.Errorf("server %s: %s: %s", f.server, resp.Status, msg)
}

// remoteProbeError is a probe failure reported by the server.
type remoteProbeError struct {
	msg      string
	sentinel error
}

func (e *remoteProbeError) Error() string { return e.msg }
func (e *remoteProbeError) Unwrap() error { return e.sentinel }

func printProbe(w io.Writer, r api.ProbeResponse) {
	v := r.Video
	fmt.Fprintf(w, "camera    %s\n", r.URL)
	declared := ""
	if v.DeclaredFPS > 0 {
		declared = fmt.Sprintf(" (declared %g)", v.DeclaredFPS)
	}
	fmt.Fprintf(w, "video     %s %dx%d, %.2f fps%s, %s\n", v.Codec, v.Width, v.Height, v.FPS, declared, formatBitrate(v.Bitrate))
	if a := r.Audio; a != nil {
		fmt.Fprintf(w, "audio     %s %d Hz, %s\n", a.Codec, a.SampleRate, channels(a.Channels))
	} else {
		fmt.Fprintln(w, "audio     none")
	}
	fmt.Fprintf(w, "timing    connected in %s, first keyframe after %s, measured over %s (%d frames)\n",
		time.Duration(r.ConnectMS)*time.Millisecond, time.Duration(r.FirstKeyframeMS)*time.Millisecond,
		time.Duration(r.WindowMS)*time.Millisecond, v.Frames)
	if r.Snapshot != nil {
		fmt.Fprintf(w, "snapshot  JPEG, %d bytes\n", len(r.Snapshot.Data))
	} else {
		fmt.Fprintf(w, "snapshot  none: %s\n", r.SnapshotError)
	}
}

func formatBitrate(bps int64) string {
	switch {
	case bps >= 1_000_000:
		return fmt.Sprintf("%.2f Mbit/s", float64(bps)/1e6)
	default:
		return fmt.Sprintf("%.0f kbit/s", float64(bps)/1e3)
	}
}

func channels(n int) string {
	switch n {
	case 1:
		return "mono"
	case 2:
		return "stereo"
	}
	return fmt.Sprintf("%d channels", n)
}
