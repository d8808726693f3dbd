package metrics

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const rulesDir = "../../../../configs/prometheus"

// wantAlerts are the alerts the operations guide documents.
var wantAlerts = []string{"CameraDown", "CameraFlapping", "RecordingStalled", "UploadBacklogGrowing",
	"SpoolNearlyFull", "StorageErrors", "IndexErrors", "ClockSkew", "LoginBruteForce", "RecordingStoppedDiskFull", "RetentionLagging",
	"CameraBelowRetentionTarget"}

// TestAlertRules checks the alerting rules with promtool and runs their
// unit tests (alerts_test.yml), after checking that every alert has an
// annotated rule, a section in docs/operations.md, and tests where it fires
// and where it does not.
func TestAlertRules(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				For         string            `yaml:"for"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, rulesDir+"/alerts.yml", &rules)
	var got []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			got = append(got, r.Alert)
			if r.Annotations["summary"] == "" || !strings.Contains(r.Annotations["description"], "$labels.instance") {
				t.Errorf("%s: summary and a description naming the instance are required", r.Alert)
			}
			if strings.Contains(r.Annotations["summary"]+r.Annotations["description"], "$labels.camera") &&
				!strings.Contains(r.Annotations["description"], "$labels.township") {
				t.Errorf("%s: a per-camera description must name the township too", r.Alert)
			}
			if r.For == "" {
				t.Errorf("%s: no for:", r.Alert)
			}
		}
	}
	slices.Sort(got)
	want := slices.Clone(wantAlerts)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("alerts.yml has %v, want %v", got, want)
	}

	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, rulesDir+"/alerts_test.yml", &tests)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	ops, err := os.ReadFile("../../../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range wantAlerts {
		if !fires[a] || !quiet[a] {
			t.Errorf("alerts_test.yml: %s needs a case where it fires (%v) and one where it does not (%v)", a, fires[a], quiet[a])
		}
		if !strings.Contains(string(ops), "### "+a) {
			t.Errorf("docs/operations.md has no section ### %s", a)
		}
	}

	runPromtool(t, rulesDir, nil, "check", "rules", "alerts.yml")
	runPromtool(t, rulesDir, nil, "check", "config", "prometheus.yml")
	out := runPromtool(t, rulesDir, nil, "test", "rules", "alerts_test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules did not report SUCCESS:\n%s", out)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
