package main

// A property test of the HTTP API against the real server: a seeded
// generator sends a few thousand random requests (methods, the OpenAPI
// document's routes with random path parameters, random paths, query
// strings, headers and JSON bodies mutated from valid ones, with and
// without a token of each role) over raw TCP, so that binary and
// duplicated headers reach the server as sent. Properties: no 5xx but the
// documented ones, no panic in the server's log, /healthz still answers,
// and no audit row over its cap.
//
// Every URL a request can make the server dial (probe url, camera
// main_url/sub_url, import rows) is one of safeURLs: loopback only.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"xueliang/cmd/xueliang/internal/audit"
)

// auditRowCap bounds the text of one audit row (user, role, remote,
// method, path, action, camera, detail together): the audit package's
// field caps.
const auditRowCap = audit.MaxEntryBytes

// propertyRegID is the registry camera the generator names.
const propertyRegID = "41142600001320000001"

// apiRoute is one method and path of docs/openapi.yaml.
type apiRoute struct{ method, path string }

func openAPIRoutes(t *testing.T) []apiRoute {
	t.Helper()
	b, err := os.ReadFile(repoPath("docs/openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var out []apiRoute
	for p, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "post", "put", "patch", "delete":
				out = append(out, apiRoute{strings.ToUpper(m), p})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].method+out[i].path < out[j].method+out[j].path })
	if len(out) < 20 {
		t.Fatalf("%d routes in docs/openapi.yaml", len(out))
	}
	return out
}

// openAPI5xx are the 5xx answers docs/openapi.yaml documents, by "METHOD
// route" (e.g. 503 of a replay while the store is down).
func openAPI5xx(t *testing.T) map[string][]int {
	t.Helper()
	b, err := os.ReadFile(repoPath("docs/openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]any `yaml:"responses"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string][]int{}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			for code := range op.Responses {
				if n, err := strconv.Atoi(code); err == nil && n >= 500 {
					out[strings.ToUpper(m)+" "+p] = append(out[strings.ToUpper(m)+" "+p], n)
				}
			}
		}
	}
	if len(out["GET /api/v1/cameras/{id}/replay.mp4"]) == 0 {
		t.Fatalf("docs/openapi.yaml documents no 5xx for replay: %v", out)
	}
	return out
}

// routeOf returns the OpenAPI route a raw request target names, or "".
func routeOf(routes []apiRoute, method, target string) string {
	p, _, _ := strings.Cut(target, "?")
	segs := strings.Split(p, "/")
	if method == "HEAD" {
		// net/http's ServeMux answers HEAD with the GET handler, so a
		// HEAD's documented answers are its GET's.
		method = "GET"
	}
	for _, r := range routes {
		if r.method != method {
			continue
		}
		rs := strings.Split(r.path, "/")
		if len(rs) != len(segs) {
			continue
		}
		ok := true
		for i := range rs {
			if !strings.HasPrefix(rs[i], "{") && rs[i] != segs[i] {
				ok = false
				break
			}
		}
		if ok {
			return r.method + " " + r.path
		}
	}
	return ""
}

// gen makes random requests from a seeded generator.
type gen struct {
	rng       *rand.Rand
	routes    []apiRoute
	host      string
	tokens    []string // one per role, the bootstrap token and garbage
	throwaway []string // sessions for logout
	safeURLs  []string
	now       time.Time
}

type rawRequest struct {
	method, target string
	raw            []byte
	desc           string // short, for failure messages
}

func (g *gen) pick(xs ...string) string { return xs[g.rng.IntN(len(xs))] }

func (g *gen) chance(p float64) bool { return g.rng.Float64() < p }

// word is a random short string: never "panic" (the log is searched for
// it) and never "://" (only safeURLs are URLs).
func (g *gen) word() string {
	const alpha = "abcdefghijklmnoqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
	n := 1 + g.rng.IntN(12)
	b := make([]byte, n)
	for i := range b {
		b[i] = alpha[g.rng.IntN(len(alpha))]
	}
	return string(b)
}

// str is a random string value: words, unicode, control bytes, huge.
func (g *gen) str() string {
	switch g.rng.IntN(9) {
	case 0:
		return ""
	case 1:
		return "雪亮摄像头" + g.word()
	case 2:
		return "\x00\x01\x7f" + g.word() + "\xff\xfe"
	case 3:
		return strings.Repeat("A", 1<<(10+g.rng.IntN(8))) // 1 KiB .. 128 KiB
	case 4:
		return "' OR 1=1; --"
	case 5:
		return "../../../etc/passwd"
	case 6:
		return "%00%2F%zz"
	default:
		return g.word()
	}
}

func (g *gen) timeStr() string {
	switch g.rng.IntN(7) {
	case 0:
		return g.now.Add(-time.Duration(g.rng.IntN(60)) * time.Second).UTC().Format(time.RFC3339Nano)
	case 1:
		return g.now.Add(time.Duration(g.rng.IntN(3600)-1800) * time.Second).Format(time.RFC3339)
	case 2:
		return "0001-01-01T00:00:00Z"
	case 3:
		return "9999-12-31T23:59:59Z"
	case 4:
		return strconv.FormatInt(g.rng.Int64(), 10)
	case 5:
		return "-292277022657-01-27T08:29:52Z"
	default:
		return g.str()
	}
}

func (g *gen) pathParam(name string) string {
	switch name {
	case "{id}":
		switch g.rng.IntN(10) {
		case 0, 1, 2:
			return "cam1"
		case 3:
			return propertyRegID
		case 4:
			return g.word()
		case 5:
			return url.PathEscape(g.str())
		case 6:
			return strings.Repeat("x", 65+g.rng.IntN(5000))
		case 7:
			return strconv.Itoa(g.rng.IntN(1000) - 10)
		case 8:
			return "%2e%2e"
		default:
			return "18446744073709551616"
		}
	default: // {name}
		switch g.rng.IntN(4) {
		case 0:
			return "wang"
		case 1:
			return "nobody"
		case 2:
			return url.PathEscape(g.str())
		default:
			return g.word()
		}
	}
}

var queryNames = []string{"from", "to", "format", "skip", "township", "village", "enabled", "online", "q",
	"removed", "limit", "camera", "user", "type", "case", "gaps", "dry_run", "action", "offset"}

func (g *gen) query() string {
	if g.chance(0.3) {
		return ""
	}
	v := url.Values{}
	for range 1 + g.rng.IntN(4) {
		name := queryNames[g.rng.IntN(len(queryNames))]
		if g.chance(0.1) {
			name = g.word()
		}
		var val string
		switch name {
		case "from", "to":
			val = g.timeStr()
		case "format":
			val = g.pick("mp4", "fmp4", "", "MP4", g.word())
		case "enabled", "online", "removed", "dry_run", "skip", "gaps":
			val = g.pick("true", "false", "1", "yes", "")
		case "limit", "offset":
			val = g.pick("0", "-1", "10", "100000", "9223372036854775808", "1e3")
		default:
			val = g.str()
		}
		v.Add(name, val)
	}
	q := v.Encode()
	if g.chance(0.05) {
		q += "&%zz=%&&=" // undecodable
	}
	return "?" + q
}

func (g *gen) target() (string, apiRoute, bool) {
	if g.chance(0.15) {
		switch g.rng.IntN(5) {
		case 0:
			return "/api/v1/" + g.word() + g.query(), apiRoute{}, false
		case 1:
			return "/" + url.PathEscape(g.str()), apiRoute{}, false
		case 2:
			return "/api/v1/cameras/" + g.word() + "/" + g.word() + "/" + g.word(), apiRoute{}, false
		case 3:
			return "//api/v1/cameras/../me", apiRoute{}, false
		default:
			return "*", apiRoute{}, false
		}
	}
	r := g.routes[g.rng.IntN(len(g.routes))]
	segs := strings.Split(r.path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			segs[i] = g.pathParam(s)
		}
	}
	q := g.query()
	if g.chance(0.5) {
		q = g.validQuery(r)
	}
	return strings.Join(segs, "/") + q, r, true
}

// validQuery is a query the route accepts: recorded windows for replay
// and timeline, filters for lists.
func (g *gen) validQuery(r apiRoute) string {
	v := url.Values{}
	switch {
	case strings.HasSuffix(r.path, "/replay.mp4"):
		start := g.now.Add(-time.Duration(1000+g.rng.IntN(10000)) * time.Millisecond)
		v.Set("from", start.UTC().Format(time.RFC3339Nano))
		v.Set("to", start.Add(time.Duration(100+g.rng.IntN(8000))*time.Millisecond).UTC().Format(time.RFC3339Nano))
		v.Set("format", g.pick("mp4", "fmp4"))
	case strings.HasSuffix(r.path, "/timeline"):
		v.Set("from", g.now.Add(-time.Minute).UTC().Format(time.RFC3339))
		v.Set("to", g.now.Add(time.Minute).UTC().Format(time.RFC3339))
	case r.path == "/api/v1/cameras":
		v.Set(g.pick("township", "village", "q", "enabled", "online", "removed"), g.pick("会亭镇", "true", "cam"))
	case r.path == "/api/v1/audit":
		v.Set(g.pick("camera", "user", "limit", "from"), g.pick("cam1", "wang", "10", g.now.Format(time.RFC3339)))
	case r.path == "/api/v1/cameras/import":
		v.Set("dry_run", g.pick("true", "false"))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

func (g *gen) safeURL() string { return g.safeURLs[g.rng.IntN(len(g.safeURLs))] }

// template is a valid body for the route, as a JSON value.
func (g *gen) template(r apiRoute) any {
	cam := func(withID bool) map[string]any {
		m := map[string]any{
			"name": "gate " + g.word(), "township": g.pick("会亭镇", "车站镇"), "village": "V" + g.word(),
			"lat": 34.4, "lon": 116.1, "main_url": g.safeURL(), "username": "admin", "password": "hik12345",
			"transport": g.pick("tcp", "udp"), "motion": g.chance(0.5), "enabled": g.chance(0.2),
		}
		if g.chance(0.3) {
			m["sub_url"] = g.safeURL()
		}
		if withID {
			m["id"] = g.pick(propertyRegID, fmt.Sprintf("411426000013200001%02d", g.rng.IntN(20)), g.word())
		}
		return m
	}
	region := func() any {
		if g.chance(0.5) {
			return map[string]any{"polygon": []any{[]any{0.1, 0.1}, []any{0.9, 0.1}, []any{0.5, 0.8}}}
		}
		return map[string]any{"cells": map[string]any{"cols": 4, "rows": 3, "set": []any{0, 5, 11}}}
	}
	switch r.method + " " + r.path {
	case "POST /api/v1/cameras":
		return cam(true)
	case "PUT /api/v1/cameras/{id}":
		return cam(false)
	case "PATCH /api/v1/cameras/{id}":
		m := cam(false)
		for k := range m {
			if g.chance(0.6) {
				delete(m, k)
			}
		}
		return m
	case "POST /api/v1/cameras/import":
		var rows []any
		for range 1 + g.rng.IntN(3) {
			c := cam(true)
			row := map[string]any{}
			for k, v := range c {
				row[k] = fmt.Sprint(v)
			}
			rows = append(rows, row)
		}
		return map[string]any{"rows": rows}
	case "POST /api/v1/cameras/{id}/motion/search", "POST /api/v1/motion/search":
		m := map[string]any{"from": g.now.Add(-time.Hour).Format(time.RFC3339), "to": g.now.Format(time.RFC3339),
			"region": region(), "min_duration": "1s", "limit": 50}
		if r.path == "/api/v1/motion/search" {
			m["cameras"] = []any{"cam1", propertyRegID}
		}
		return m
	case "POST /api/v1/probe":
		return map[string]any{"url": g.safeURL(), "user": "admin", "password": "pw", "timeout": g.pick("2s", "1s", "3")}
	case "POST /api/v1/login":
		return map[string]any{"user": g.pick("wang", "prop-operator", "nobody"), "password": g.pick("wrong password", "a long password")}
	case "POST /api/v1/users":
		return map[string]any{"name": "u" + g.word(), "role": g.pick("operator", "auditor", "installer", "admin", "root"),
			"password": "a long password " + g.word(), "townships": []any{"会亭镇"}}
	case "PATCH /api/v1/users/{name}":
		return map[string]any{"role": g.pick("operator", "auditor"), "townships": []any{"车站镇"}, "disabled": g.chance(0.3)}
	case "POST /api/v1/tokens":
		return map[string]any{"name": g.word(), "ttl": g.pick("1h", "720h", "", "-1h", "100000000h"), "user": g.pick("", "wang")}
	case "POST /api/v1/logout":
		return map[string]any{}
	case "PUT /api/v1/layouts/{name}":
		return map[string]any{"grid": []int{1, 4, 9, 16, 2}[g.rng.IntN(5)], "cameras": []any{"cam1", "", propertyRegID}, "tour_seconds": []int{0, 10, 1}[g.rng.IntN(3)]}
	}
	return nil
}

var urlKeys = map[string]bool{"url": true, "main_url": true, "sub_url": true}

// value is a random JSON value (no URL strings).
func (g *gen) value(depth int) any {
	switch g.rng.IntN(9) {
	case 0:
		return nil
	case 1:
		return g.chance(0.5)
	case 2:
		return g.pick("0", "-1", "1e308", "3.5", "100000000000000000000", "-0")
	case 3:
		return float64(g.rng.IntN(1<<20) - 1<<19)
	case 4, 5:
		return g.str()
	case 6:
		if depth > 3 {
			return nil
		}
		a := []any{}
		for range g.rng.IntN(4) {
			a = append(a, g.value(depth+1))
		}
		return a
	case 7:
		if depth > 3 {
			return nil
		}
		m := map[string]any{}
		for range g.rng.IntN(4) {
			m[g.word()] = g.value(depth + 1)
		}
		return m
	default:
		return g.timeStr()
	}
}

// mutate changes a JSON value in place-ish and returns it; URL keys only
// ever get safe URLs.
func (g *gen) mutate(v any, depth int) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch {
			case g.chance(0.1):
				delete(x, k)
			case urlKeys[k]:
				if g.chance(0.2) {
					x[k] = g.safeURL()
				}
			case g.chance(0.15):
				x[k] = g.value(depth + 1)
			default:
				x[k] = g.mutate(e, depth+1)
			}
		}
		if g.chance(0.1) {
			x[g.word()] = g.value(depth + 1)
		}
		return x
	case []any:
		if len(x) > 0 && g.chance(0.2) {
			x = x[:g.rng.IntN(len(x))]
		}
		for i := range x {
			x[i] = g.mutate(x[i], depth+1)
		}
		if depth < 4 && g.chance(0.1) { // long arrays (polygons of up to 2000 points)
			for range g.rng.IntN(2000) {
				x = append(x, []any{g.rng.Float64()*3 - 1, g.rng.Float64()*3 - 1})
			}
		}
		return x
	}
	if g.chance(0.1) {
		return g.value(depth + 1)
	}
	return v
}

func (g *gen) body(r apiRoute, known bool) []byte {
	var tmpl any
	if known {
		tmpl = g.template(r)
	}
	if tmpl == nil || g.chance(0.08) {
		switch g.rng.IntN(6) {
		case 0:
			return nil
		case 1:
			b := make([]byte, g.rng.IntN(4096))
			for i := range b {
				b[i] = byte(g.rng.IntN(256))
			}
			return b
		case 2:
			n := 1 + g.rng.IntN(20000)
			return []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
		case 3:
			return []byte(`{"a":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat("}", 5001))
		case 4:
			return []byte("null")
		default:
			b, _ := json.Marshal(g.value(0))
			return b
		}
	}
	if g.chance(0.5) {
		tmpl = g.mutate(tmpl, 0)
	}
	b, err := json.Marshal(tmpl)
	if err != nil {
		panic(err)
	}
	// Byte-level damage only where no URL can come out of it.
	if !bytes.Contains(b, []byte("url")) && !bytes.Contains(b, []byte("://")) && len(b) > 2 && g.chance(0.3) {
		switch g.rng.IntN(4) {
		case 0:
			b = b[:g.rng.IntN(len(b))]
		case 1:
			b[g.rng.IntN(len(b))] = byte(g.rng.IntN(256))
		case 2:
			b = append(b[:len(b)-1], []byte(`,"name":"dup","name":"dup2"}`)...) // duplicated keys
		default:
			b = append(b, []byte(`{"trailing":true}`)...)
		}
	}
	return b
}

func (g *gen) request() rawRequest {
	target, r, known := g.target()
	method := r.method
	if !known || g.chance(0.15) {
		method = g.pick("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "get", "G\x01T")
	}
	body := g.body(r, known && method == r.method)
	var h bytes.Buffer
	fmt.Fprintf(&h, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, g.host)
	tok := g.tokens[g.rng.IntN(len(g.tokens))]
	if strings.HasPrefix(target, "/api/v1/logout") && len(g.throwaway) > 0 {
		// Logging out revokes the session: only throwaway ones.
		tok = g.throwaway[g.rng.IntN(len(g.throwaway))]
	}
	switch {
	case tok == "":
	case g.chance(0.05):
		fmt.Fprintf(&h, "Authorization: bearer %s\r\nAuthorization: Bearer garbage\r\n", tok) // duplicated
	default:
		fmt.Fprintf(&h, "Authorization: Bearer %s\r\n", tok)
	}
	if body != nil || g.chance(0.1) {
		fmt.Fprintf(&h, "Content-Type: %s\r\n", g.pick("application/json", "text/csv", "multipart/form-data; boundary=x", "\x01\x02"))
	}
	for range g.rng.IntN(3) {
		switch g.rng.IntN(7) {
		case 0:
			fmt.Fprintf(&h, "X-Forwarded-For: %s\r\n", g.pick("1.2.3.4", "::1, 10.0.0.1", g.word()))
		case 1:
			fmt.Fprintf(&h, "X-Huge: %s\r\n", strings.Repeat("h", 1<<(10+g.rng.IntN(11)))) // 1 KiB .. 1 MiB
		case 2:
			fmt.Fprintf(&h, "X-Binary: \x01\x7f\x80\xfe\xff%s\r\n", g.word())
		case 3:
			for range 100 + g.rng.IntN(400) {
				fmt.Fprintf(&h, "X-Many-%s: 1\r\n", g.word())
			}
		case 4:
			fmt.Fprintf(&h, "Range: bytes=%d-%d\r\n", g.rng.IntN(1000), g.rng.IntN(100000))
		case 5:
			fmt.Fprintf(&h, "Cookie: %s\r\n", g.str())
		default:
			fmt.Fprintf(&h, "Accept-Encoding: gzip, %s\r\n", g.word())
		}
	}
	switch {
	case body != nil && g.chance(0.05):
		fmt.Fprintf(&h, "Content-Length: %d\r\nContent-Length: %d\r\n\r\n", len(body), len(body)+1)
	case body != nil && g.chance(0.1):
		fmt.Fprintf(&h, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body)
		body = nil
	case body != nil:
		fmt.Fprintf(&h, "Content-Length: %d\r\n\r\n", len(body))
	default:
		h.WriteString("\r\n")
	}
	h.Write(body)
	desc := fmt.Sprintf("%s %s", method, target)
	if len(desc) > 200 {
		desc = desc[:200] + "…"
	}
	if body != nil {
		b := string(body)
		if len(b) > 200 {
			b = b[:200] + "…"
		}
		desc += " body " + strconv.Quote(b)
	}
	return rawRequest{method: method, target: target, raw: h.Bytes(), desc: desc}
}

// send writes one raw request and returns the status (0: no HTTP answer,
// which is not a property violation by itself: net/http closes some
// malformed requests without one).
func send(addr string, rq rawRequest) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	go func() { _, _ = c.Write(rq.raw) }() // the server may answer before reading it all
	method := rq.method
	if method != http.MethodHead {
		method = http.MethodGet
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// login creates a user with the role (with the bootstrap token) and
// returns a session token for it.
func propertyUser(t *testing.T, base, role string) string {
	t.Helper()
	name, pw := "prop-"+role, "property test password "+role
	townships := ""
	if role == "operator" {
		townships = `,"townships":["会亭镇"]`
	}
	body := fmt.Sprintf(`{"name":%q,"role":%q,"password":%q%s}`, name, role, pw, townships)
	resp, err := http.Post(base+"/api/v1/users", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create %s: %d %s", name, resp.StatusCode, b)
	}
	return loginToken(t, base, name, pw)
}

func loginToken(t *testing.T, base, name, pw string) string {
	t.Helper()
	resp, err := anonymousClient.Post(base+"/api/v1/login", "application/json", strings.NewReader(fmt.Sprintf(`{"user":%q,"password":%q}`, name, pw)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.Token == "" {
		t.Fatalf("login %s: %d %v", name, resp.StatusCode, err)
	}
	return out.Token
}

func auditRows(t *testing.T, srv *testServer) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(srv.dataDir, "index.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT count(*) FROM audit`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAPIPropertyRandomRequests: XUELIANG_API_PROPERTY_SEED and
// XUELIANG_API_PROPERTY_REQUESTS override the seed (default 1) and the
// number of requests (default 2500).
func TestAPIPropertyRandomRequests(t *testing.T) {
	t.Parallel() // waits on real time mostly: runs beside the others (Makefile TEST_PARALLEL)
	seed := uint64(1)
	if s := os.Getenv("XUELIANG_API_PROPERTY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = v
	}
	n := 2500
	if s := os.Getenv("XUELIANG_API_PROPERTY_REQUESTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		n = v
	}
	rtsp, _ := startCamsim(t, "-cameras", "1", "-camera", "cam1:size=240x180")
	srv := startServer(t, fmt.Sprintf("recording:\n  segment_duration: 10s\ncameras:\n  - id: cam1\n    url: %s/cam1\n    township: 会亭镇\n", rtsp))
	serverStart := time.Now()
	addr := strings.TrimPrefix(srv.base, "http://")

	// A registry camera and a user the generator names in its paths.
	for path, body := range map[string]string{
		"/api/v1/cameras": `{"id":"` + propertyRegID + `","name":"gate","township":"会亭镇","village":"张庄村","main_url":"rtsp://127.0.0.1:1/none","enabled":false}`,
		"/api/v1/users":   `{"name":"wang","role":"operator","password":"a long password","townships":["会亭镇"]}`,
	} {
		resp, err := http.Post(srv.base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
	}
	// The admin last: once an admin exists the bootstrap token may stop
	// working (#22 point 3).
	var tokens []string
	for _, role := range []string{"auditor", "operator", "installer", "admin"} {
		tokens = append(tokens, propertyUser(t, srv.base, role))
	}
	tokens = append(tokens, tokens...) // a valid token in most requests
	var throwaway []string
	for range 3 {
		throwaway = append(throwaway, loginToken(t, srv.base, "wang", "a long password"))
	}
	throwaway = append(throwaway, "", "xl_notavalidtoken")
	tokens = append(tokens, testBootstrapToken, "", "", "xl_notavalidtoken", strings.Repeat("x", 70000), "\x00\xff")
	// Some footage to replay (the generator's windows are in the last 11 s).
	if d := time.Until(serverStart.Add(13 * time.Second)); d > 0 {
		time.Sleep(d)
	}

	g := &gen{
		rng: rand.New(rand.NewPCG(seed, 0x22)), routes: openAPIRoutes(t), host: addr, tokens: tokens, throwaway: throwaway, now: time.Now(),
		safeURLs: []string{
			rtsp + "/cam1", "rtsp://127.0.0.1:1/none", "rtsp://127.0.0.1:1/none", "rtsp://127.0.0.1:1/none",
			"rtsp://" + addr + "/", // the server's own HTTP port
			"rtsp://user:p%40ss@127.0.0.1:1/x", "rtsps://127.0.0.1:1/", "http://127.0.0.1:1/", "rtsp://[::1]:1/",
			"rtsp://127.0.0.1:99999/", "rtsp://127.0.0.1:1/" + strings.Repeat("a", 5000), "", "rtsp://", "not a url",
		},
	}
	setupRows := auditRows(t, srv)
	genStart := time.Now()
	reqs := make([]rawRequest, n)
	for i := range reqs {
		reqs[i] = g.request()
	}
	// Whatever the seed, the attacks of #22 point 1: an anonymous login
	// with a 900 KB query, and a 200 KB camera ID. Until the audit caps
	// (branch i22a) are merged, the first stores a 900 KB audit row and
	// the audit check below fails.
	body := `{"user":"wang","password":"wrong password"}`
	for _, target := range []string{
		"/api/v1/login?camera=" + strings.Repeat("c", 900<<10),
		"/api/v1/cameras/" + strings.Repeat("i", 200<<10) + "/timeline",
	} {
		raw := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", target, addr, len(body), body)
		reqs = append(reqs, rawRequest{method: "POST", target: target, raw: []byte(raw), desc: "POST " + target[:40] + "…"})
	}
	n = len(reqs)
	t.Logf("seed %d: %d requests generated in %v", seed, n, time.Since(genStart).Round(time.Millisecond))
	sendStart := time.Now()

	type result struct {
		status int
		err    error
	}
	results := make([]result, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				st, err := send(addr, reqs[i])
				results[i] = result{st, err}
			}
		}()
	}
	wg.Wait()
	t.Logf("sent in %v", time.Since(sendStart).Round(time.Millisecond))

	documented5xx := openAPI5xx(t)
	counts := map[int]int{}
	bad := 0
	for i, r := range results {
		counts[r.status]++
		if r.status < 500 {
			continue
		}
		if slices.Contains(documented5xx[routeOf(g.routes, reqs[i].method, reqs[i].target)], r.status) {
			continue
		}
		bad++
		if bad <= 20 {
			t.Errorf("request %d (seed %d): undocumented %d: %s", i, seed, r.status, reqs[i].desc)
		}
	}
	t.Logf("statuses: %v", counts)
	if counts[0] > n/4 {
		t.Errorf("%d of %d requests got no HTTP answer", counts[0], n)
	}

	// The server survived: it answers, and its log has no panic.
	resp, err := anonymousClient.Get(srv.base + "/healthz")
	if err != nil {
		t.Fatalf("healthz after the run: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz after the run: %d", resp.StatusCode)
	}
	select {
	case <-srv.proc.done:
		t.Fatal("the server exited")
	default:
	}
	logb, err := os.ReadFile(srv.proc.log)
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?i).{0,200}panic.{0,300}`).Find(logb); m != nil {
		t.Errorf("the server log has a panic: %q", m)
	}

	// No audit row over its cap (read from the table itself).
	db, err := sql.Open("sqlite", "file:"+filepath.Join(srv.dataDir, "index.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, maxRow, maxUser, maxCamera, maxDetail, maxPath int64
	err = db.QueryRowContext(context.Background(), `SELECT count(*),
		coalesce(max(length(user)+length(role)+length(remote)+length(method)+length(path)+length(action)+length(camera)+length(detail)), 0),
		coalesce(max(length(user)), 0), coalesce(max(length(camera)), 0), coalesce(max(length(detail)), 0), coalesce(max(length(path)), 0)
		FROM audit`).Scan(&rows, &maxRow, &maxUser, &maxCamera, &maxDetail, &maxPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("audit: %d rows, longest %d bytes (user %d, camera %d, detail %d, path %d)", rows, maxRow, maxUser, maxCamera, maxDetail, maxPath)
	if rows <= setupRows {
		t.Errorf("no audit rows written by the run (%d before, %d after)", setupRows, rows)
	}
	if maxRow > auditRowCap {
		t.Errorf("an audit row of %d bytes (user %d, camera %d, detail %d, path %d), cap %d", maxRow, maxUser, maxCamera, maxDetail, maxPath, auditRowCap)
	}
}
