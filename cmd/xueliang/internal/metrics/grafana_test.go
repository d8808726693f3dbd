package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// promqlIdent matches identifiers in a PromQL expression; label matchers,
// strings and grouping lists are removed before it is applied.
var (
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlBraces   = regexp.MustCompile(`\{[^}]*\}`)
	promqlStrings  = regexp.MustCompile(`"[^"]*"`)
	promqlRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
)

// metricNames returns the names in expr that look like metric names of
// ours or of the Go/process collectors.
func metricNames(expr string) []string {
	e := promqlStrings.ReplaceAllString(expr, " ")
	e = promqlBraces.ReplaceAllString(e, " ")
	e = promqlRanges.ReplaceAllString(e, " ")
	e = promqlGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, id := range promqlIdent.FindAllString(e, -1) {
		if strings.HasPrefix(id, "xueliang_") || strings.HasPrefix(id, "go_") || strings.HasPrefix(id, "process_") {
			out = append(out, id)
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string]string{
		`sum by (camera) (rate(xueliang_camera_reconnects_total{camera=~"$camera"}[5m]))`:                         "xueliang_camera_reconnects_total",
		`histogram_quantile(0.95, sum by (le) (rate(xueliang_upload_duration_seconds_bucket[$__rate_interval])))`: "xueliang_upload_duration_seconds_bucket",
		`label_values(xueliang_camera_up{township=~"$township"}, camera)`:                                         "xueliang_camera_up",
		`a_metric_of_someone_else / xueliang_spool_bytes`:                                                         "xueliang_spool_bytes",
	} {
		if got := strings.Join(metricNames(expr), ","); got != want {
			t.Errorf("metricNames(%s) = %s, want %s", expr, got, want)
		}
	}
}

// checkDashboard parses the Grafana dashboard and checks that every panel
// has queries and that they (and the template variables) only reference
// metric names present in exposed.
func checkDashboard(t *testing.T, path string, exposed map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Type    string   `json:"type"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"` // rows
	}
	var dash struct {
		Title      string  `json:"title"`
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("dashboard title %q uid %q", dash.Title, dash.UID)
	}
	var exprs []string
	panels := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			panels++
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if len(metricNames(tg.Expr)) == 0 {
					t.Errorf("panel %q: query %q references no metric", p.Title, tg.Expr)
				}
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	walk(dash.Panels)
	if panels < 5 {
		t.Errorf("%d panels", panels)
	}
	for _, v := range dash.Templating.List {
		switch q := v.Query.(type) {
		case string:
			exprs = append(exprs, q)
		case map[string]any:
			if s, ok := q["query"].(string); ok {
				exprs = append(exprs, s)
			}
		}
	}
	for _, e := range exprs {
		for _, name := range metricNames(e) {
			if !exposed[name] {
				t.Errorf("dashboard query %q uses %s, which the server does not expose", e, name)
			}
		}
	}
}
