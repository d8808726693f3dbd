package main

// xueliang camera add | list | rm | import: the installer's commands, which
// talk to a running server's registry API with a bearer token.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"xueliang/cmd/xueliang/internal/cameras"
)

// defaultServer is the API the camera commands talk to.
const defaultServer = "http://127.0.0.1:8080"

// importBatch is how many rows one import request upserts; checkBatch how
// many one dry run checks (at most cameras.MaxImportRows).
const (
	importBatch = 50
	checkBatch  = 1000
)

// apiClient calls the server's API.
type apiClient struct {
	base, token string
	hc          *http.Client
}

// apiError is a non-2xx answer.
type apiError struct {
	Status int
	Msg    string            `json:"error"`
	Fields map[string]string `json:"fields"`
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("%d %s", e.Status, e.Msg)
	if len(e.Fields) > 0 {
		msg += ": " + cameras.FieldErrors(e.Fields).String()
	}
	return msg
}

// serverFlags adds --server and --token to fs.
func serverFlags(fs *flag.FlagSet) (server, token *string) {
	def := os.Getenv("XUELIANG_SERVER")
	if def == "" {
		def = defaultServer
	}
	server = fs.String("server", def, "server API base URL (or XUELIANG_SERVER)")
	token = new(string)
	tokenFlags(fs, token)
	return server, token
}

// TokenEnv holds the bearer token of the API commands.
const TokenEnv = "XUELIANG_TOKEN"

// tokenFlags sets *token from $XUELIANG_TOKEN, or from the file named by
// --token-file (its first line). --token on the command line is refused: a
// process's arguments are visible to every local user (ps, /proc).
func tokenFlags(fs *flag.FlagSet, token *string) {
	*token = os.Getenv(TokenEnv)
	fs.Func("token-file", "read the bearer token from this file (or set "+TokenEnv+")", func(path string) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if *token = strings.TrimSpace(line); *token == "" {
			return fmt.Errorf("%s holds no token", path)
		}
		return nil
	})
	fs.Func("token", "refused: use --token-file or "+TokenEnv, func(string) error {
		return errors.New("a token on the command line is visible to every local user: use --token-file FILE or " + TokenEnv)
	})
}

func newAPIClient(server, token string) *apiClient {
	return &apiClient{base: strings.TrimRight(server, "/"), token: token, hc: &http.Client{Timeout: 2 * time.Minute}}
}

// do sends body (JSON, when not nil) and decodes a 2xx answer into out.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("server %s: %w", c.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("server %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("server %s: read answer: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Msg == "" {
			e.Msg = strings.TrimSpace(string(b))
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("server %s: bad answer: %w", c.base, err)
		}
	}
	return nil
}

// reportAPIError prints err (and each bad field) and returns the exit code.
func reportAPIError(stderr io.Writer, cmd string, err error) int {
	var ae *apiError
	if errors.As(err, &ae) && len(ae.Fields) > 0 {
		fmt.Fprintf(stderr, "xueliang camera %s: %s\n", cmd, ae.Msg)
		keys := make([]string, 0, len(ae.Fields))
		for k := range ae.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(stderr, "  %s: %s\n", k, ae.Fields[k])
		}
		return 1
	}
	fmt.Fprintf(stderr, "xueliang camera %s: %v\n", cmd, err)
	return 1
}

func readPassword(path string, stdin io.Reader) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 4096))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// cameraView is the part of the API's camera JSON the CLI prints.
type cameraView struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Township    string `json:"township"`
	Village     string `json:"village"`
	MainURL     string `json:"main_url"`
	HasPassword bool   `json:"has_password"`
	Enabled     bool   `json:"enabled"`
	Online      bool   `json:"online"`
	Source      string `json:"source"`
	Outcome     string `json:"outcome"`
}

func runCameraAdd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camera add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, cameraUsage) }
	server, token := serverFlags(fs)
	var in cameras.Input
	var lat, lon, passwordFile string
	var disabled bool
	fs.StringVar(&in.ID, "id", "", "GB/T 28181 device ID (default: the server proposes the next free one)")
	fs.StringVar(&in.Name, "name", "", "human name")
	fs.StringVar(&in.Township, "township", "", "township")
	fs.StringVar(&in.Village, "village", "", "village")
	fs.StringVar(&lat, "lat", "", "latitude (WGS-84)")
	fs.StringVar(&lon, "lon", "", "longitude (WGS-84)")
	fs.StringVar(&in.MainURL, "url", "", "main stream rtsp:// URL, without credentials")
	fs.StringVar(&in.SubURL, "sub-url", "", "sub stream rtsp:// URL")
	fs.StringVar(&in.Username, "user", "", "RTSP user")
	fs.StringVar(&passwordFile, "password-file", "", `file holding the RTSP password ("-": stdin)`)
	fs.StringVar(&in.Transport, "transport", "", "tcp or udp (default: the server's)")
	fs.StringVar(&in.SegmentDuration, "segment-duration", "", "segment length (default: the server's)")
	fs.BoolVar(&in.Motion, "motion", false, "analyse motion")
	fs.BoolVar(&disabled, "disabled", false, "register without recording")
	if _, err := parseInterspersed(fs, args); err != nil {
		return 2
	}
	for name, s := range map[string]string{"lat": lat, "lon": lon} {
		if s == "" {
			continue
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			fmt.Fprintf(stderr, "xueliang camera add: --%s: want a number, got %q\n", name, s)
			return 2
		}
		if name == "lat" {
			in.Lat = &f
		} else {
			in.Lon = &f
		}
	}
	if passwordFile != "" {
		p, err := readPassword(passwordFile, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "xueliang camera add: password file: %v\n", err)
			return 2
		}
		in.Password = &p
	}
	enabled := !disabled
	in.Enabled = &enabled
	c := newAPIClient(*server, *token)
	if in.ID == "" {
		var p cameras.Proposal
		q := url.Values{"township": {in.Township}, "village": {in.Village}}
		if err := c.do(ctx, http.MethodGet, "/api/v1/sites/next-id?"+q.Encode(), nil, &p); err != nil {
			return reportAPIError(stderr, "add", err)
		}
		in.ID = p.ID
	}
	var out cameraView
	if err := c.do(ctx, http.MethodPost, "/api/v1/cameras", in, &out); err != nil {
		return reportAPIError(stderr, "add", err)
	}
	fmt.Fprintf(stdout, "created camera %s (%s, %s / %s)\n", out.ID, out.Name, out.Township, out.Village)
	return 0
}

func runCameraList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camera list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, cameraUsage) }
	server, token := serverFlags(fs)
	q := url.Values{}
	filters := map[string]*string{}
	for _, name := range []string{"township", "village", "enabled", "online", "q"} {
		filters[name] = fs.String(name, "", "filter: "+name)
	}
	asJSON := fs.Bool("json", false, "print the API's JSON")
	if _, err := parseInterspersed(fs, args); err != nil {
		return 2
	}
	for name, v := range filters {
		if *v != "" {
			q.Set(name, *v)
		}
	}
	var out struct {
		Cameras []json.RawMessage `json:"cameras"`
	}
	c := newAPIClient(*server, *token)
	if err := c.do(ctx, http.MethodGet, "/api/v1/cameras?"+q.Encode(), nil, &out); err != nil {
		return reportAPIError(stderr, "list", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(out)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTOWNSHIP\tVILLAGE\tENABLED\tONLINE\tSOURCE")
	for _, raw := range out.Cameras {
		var v cameraView
		_ = json.Unmarshal(raw, &v)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%t\t%s\n", v.ID, v.Name, v.Township, v.Village, v.Enabled, v.Online, v.Source)
	}
	_ = tw.Flush()
	return 0
}

func runCameraRm(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camera rm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, cameraUsage) }
	server, token := serverFlags(fs)
	ids, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(ids) == 0 {
		fmt.Fprintf(stderr, "xueliang camera rm: want at least one camera ID\n\n%s", cameraUsage)
		return 2
	}
	c := newAPIClient(*server, *token)
	code := 0
	for _, id := range ids {
		if err := c.do(ctx, http.MethodDelete, "/api/v1/cameras/"+url.PathEscape(id), nil, nil); err != nil {
			code = reportAPIError(stderr, "rm "+id, err)
			continue
		}
		fmt.Fprintf(stdout, "removed camera %s (its footage is kept)\n", id)
	}
	return code
}

func runCameraImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("camera import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, cameraUsage) }
	server, token := serverFlags(fs)
	dryRun := fs.Bool("dry-run", false, "validate and print the per-row report; change nothing")
	batch := fs.Int("batch", importBatch, "rows per upsert request")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 || *batch < 1 {
		fmt.Fprintf(stderr, "xueliang camera import: want exactly one FILE.csv\n\n%s", cameraUsage)
		return 2
	}
	f, err := os.Open(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "xueliang camera import: %v\n", err)
		return 2
	}
	rows, failed, err := cameras.ReadCSV(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "xueliang camera import: %s: %v\n", pos[0], err)
		return 2
	}
	c := newAPIClient(*server, *token)

	// 1. Validate every row: a dry run on the server (the same checks as
	// the import itself) in requests of checkBatch rows, any file size.
	// IDs repeated within the file are found here across the requests, as
	// the server finds them within one.
	var check []cameras.RowResult
	for i := 0; i < len(rows); i += checkBatch {
		var rep cameras.ImportReport
		part := rows[i:min(i+checkBatch, len(rows))]
		if err := c.do(ctx, http.MethodPost, "/api/v1/cameras/import?dry_run=true", map[string]any{"rows": part}, &rep); err != nil {
			return reportAPIError(stderr, "import", err)
		}
		if len(rep.Rows) != len(part) {
			fmt.Fprintf(stderr, "xueliang camera import: the server checked %d rows of %d\n", len(rep.Rows), len(part))
			return 1
		}
		check = append(check, rep.Rows...)
	}
	for i, first := range cameras.DuplicateIDs(rows) {
		check[i].MarkDuplicate(first)
	}
	var good []cameras.ImportRow
	var planned cameras.ImportReport
	for i, res := range check {
		if res.Outcome == cameras.Failed {
			failed = append(failed, res)
			continue
		}
		good = append(good, rows[i])
		switch res.Outcome {
		case cameras.Created:
			planned.Created++
		case cameras.Updated:
			planned.Updated++
		case cameras.Unchanged:
			planned.Unchanged++
		}
	}
	printFailures(stdout, failed)
	if *dryRun {
		fmt.Fprintf(stdout, "dry run: %d rows: would create %d, update %d, leave %d unchanged; %d rows failed\n",
			len(rows)+countUnread(failed, rows), planned.Created, planned.Updated, planned.Unchanged, len(failed))
		if len(failed) > 0 {
			return 1
		}
		return 0
	}

	// 2. Upsert the valid rows in batches.
	var done cameras.ImportReport
	bar := newProgress(stderr, len(good))
	for i := 0; i < len(good); i += *batch {
		part := good[i:min(i+*batch, len(good))]
		var rep cameras.ImportReport
		if err := c.do(ctx, http.MethodPost, "/api/v1/cameras/import", map[string]any{"rows": part}, &rep); err != nil {
			bar.done()
			fmt.Fprintf(stdout, "summary: created %d, updated %d, unchanged %d, failed %d (stopped after %d of %d valid rows)\n",
				done.Created, done.Updated, done.Unchanged, len(failed), i, len(good))
			return reportAPIError(stderr, "import", err)
		}
		var late []cameras.RowResult
		for _, res := range rep.Rows {
			if res.Outcome == cameras.Failed {
				late = append(late, res)
			}
		}
		printFailures(stdout, late)
		failed = append(failed, late...)
		done.Created += rep.Created
		done.Updated += rep.Updated
		done.Unchanged += rep.Unchanged
		bar.add(len(part))
	}
	bar.done()
	fmt.Fprintf(stdout, "summary: created %d, updated %d, unchanged %d, failed %d\n", done.Created, done.Updated, done.Unchanged, len(failed))
	if len(failed) > 0 {
		return 1
	}
	return 0
}

// countUnread is the number of failures that are not in rows (CSV rows
// that could not be read).
func countUnread(failed []cameras.RowResult, rows []cameras.ImportRow) int {
	n := 0
	in := map[int]bool{}
	for _, r := range rows {
		in[r.Row] = true
	}
	for _, f := range failed {
		if !in[f.Row] {
			n++
		}
	}
	return n
}

// printFailures prints one line per failed row, in row order:
// "row 12  id 41142600001320000001  lat: want -90..90 degrees, got 95".
func printFailures(w io.Writer, failed []cameras.RowResult) {
	sort.SliceStable(failed, func(i, j int) bool { return failed[i].Row < failed[j].Row })
	for _, f := range failed {
		id := f.ID
		if id == "" {
			id = "-"
		}
		fmt.Fprintf(w, "row %d\tid %s\t%s\n", f.Row, id, f.Error)
	}
}

// progress is a one-line progress bar on a writer (stderr).
type progress struct {
	w          io.Writer
	total, n   int
	start      time.Time
	lastRender time.Time
}

func newProgress(w io.Writer, total int) *progress {
	p := &progress{w: w, total: total, start: time.Now()}
	p.render()
	return p
}

func (p *progress) add(n int) {
	p.n += n
	if time.Since(p.lastRender) > 100*time.Millisecond || p.n >= p.total {
		p.render()
	}
}

func (p *progress) render() {
	p.lastRender = time.Now()
	const width = 30
	filled := width
	if p.total > 0 {
		filled = p.n * width / p.total
	}
	fmt.Fprintf(p.w, "\rimporting [%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		p.n, p.total, time.Since(p.start).Round(100*time.Millisecond))
}

func (p *progress) done() {
	p.render()
	fmt.Fprintln(p.w)
}
