package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const retentionUsage = `usage:
  xueliang retention show [--server URL] [--token-file F]
  xueliang retention set (--camera ID | --township NAME) [--max-age 2160h] [--max-bytes N]
                        set an override (admin); no --max-age/--max-bytes removes it
  xueliang evidence lock --camera ID[,ID] --from RFC3339 --to RFC3339 --case NUMBER [--reason TEXT]
  xueliang evidence list [--all]
  xueliang evidence unlock ID        (admin)

--server defaults to XUELIANG_SERVER or http://127.0.0.1:8080, the token to --token-file or
XUELIANG_TOKEN (never on the command line).
`

// runRetention runs "xueliang retention ..." through the API.
func runRetention(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "show" && args[0] != "set") {
		fmt.Fprint(stderr, retentionUsage)
		return 2
	}
	fs := flag.NewFlagSet("retention "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, retentionUsage) }
	server, token := serverFlags(fs)
	camera := fs.String("camera", "", "camera ID")
	township := fs.String("township", "", "township")
	maxAge := fs.String("max-age", "", "retention (Go duration, e.g. 2160h)")
	maxBytes := fs.Int64("max-bytes", 0, "cap of the camera's unlocked footage in bytes")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	ctx := context.Background()
	c := newAPIClient(*server, *token)
	if args[0] == "show" {
		var out json.RawMessage
		if err := c.do(ctx, http.MethodGet, "/api/v1/retention", nil, &out); err != nil {
			return reportCLIError(stderr, "retention show", err)
		}
		fmt.Fprintln(stdout, string(out))
		return 0
	}
	if (*camera == "") == (*township == "") {
		fmt.Fprintf(stderr, "xueliang retention set: give exactly one of --camera and --township\n\n%s", retentionUsage)
		return 2
	}
	body := map[string]any{}
	if *maxAge != "" {
		body["max_age"] = *maxAge
	}
	if *maxBytes != 0 {
		body["max_bytes"] = *maxBytes
	}
	path := "/api/v1/cameras/" + url.PathEscape(*camera) + "/retention"
	what := "camera " + *camera
	if *township != "" {
		path = "/api/v1/townships/" + url.PathEscape(*township) + "/retention"
		what = "township " + *township
	}
	if err := c.do(ctx, http.MethodPut, path, body, nil); err != nil {
		return reportCLIError(stderr, "retention set", err)
	}
	fmt.Fprintf(stdout, "retention of %s set: max_age=%q max_bytes=%d\n", what, *maxAge, *maxBytes)
	return 0
}

// runEvidence runs "xueliang evidence ..." through the API.
func runEvidence(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "lock" && args[0] != "list" && args[0] != "unlock") {
		fmt.Fprint(stderr, retentionUsage)
		return 2
	}
	fs := flag.NewFlagSet("evidence "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, retentionUsage) }
	server, token := serverFlags(fs)
	cams := fs.String("camera", "", "camera IDs, comma-separated")
	from := fs.String("from", "", "start (RFC 3339)")
	to := fs.String("to", "", "end (RFC 3339)")
	caseNo := fs.String("case", "", "case number")
	reason := fs.String("reason", "", "reason")
	all := fs.Bool("all", false, "list unlocked locks too")
	rest, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	ctx := context.Background()
	c := newAPIClient(*server, *token)
	var out json.RawMessage
	switch args[0] {
	case "lock":
		f, err1 := time.Parse(time.RFC3339, *from)
		t, err2 := time.Parse(time.RFC3339, *to)
		if *cams == "" || *caseNo == "" || err1 != nil || err2 != nil {
			fmt.Fprintf(stderr, "xueliang evidence lock: want --camera, --from, --to (RFC 3339) and --case\n\n%s", retentionUsage)
			return 2
		}
		body := map[string]any{"cameras": strings.Split(*cams, ","), "from": f, "to": t, "case_number": *caseNo, "reason": *reason}
		err = c.do(ctx, http.MethodPost, "/api/v1/evidence", body, &out)
	case "list":
		q := ""
		if *all {
			q = "?all=true"
		}
		err = c.do(ctx, http.MethodGet, "/api/v1/evidence"+q, nil, &out)
	case "unlock":
		if len(rest) != 1 {
			fmt.Fprintf(stderr, "xueliang evidence unlock: want one lock ID\n\n%s", retentionUsage)
			return 2
		}
		err = c.do(ctx, http.MethodDelete, "/api/v1/evidence/"+url.PathEscape(rest[0]), nil, &out)
	}
	if err != nil {
		return reportCLIError(stderr, "evidence "+args[0], err)
	}
	fmt.Fprintln(stdout, string(out))
	return 0
}

func reportCLIError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "xueliang %s: %v\n", cmd, err)
	return 1
}
