package main

import (
	"os/exec"
	"strings"
	"testing"
)

// importRules say which xueliang packages a part of the tree must not
// import (non-test imports; tests may use real components from anywhere,
// e.g. the reconcile tests record real segments with ingest/segmenter).
// Imports flow one way: storage/recording is the shared vocabulary;
// storage knows nothing of the index or ingest; ingest writes through
// interfaces it declares, in recording types; the index maps its rows to
// those types; replay asks the index through its own interface; only
// cmd/xueliang wires them together.
var importRules = []struct {
	pkg       string   // the package, or a prefix ending in "/..."
	forbidden []string // packages or prefixes ("/...") it must not import
	except    []string // allowed despite forbidden
}{
	{"xueliang/storage/recording", []string{"xueliang/..."}, nil},
	{"xueliang/storage/...", []string{"xueliang/index", "xueliang/ingest/...", "xueliang/cmd/..."}, nil},
	{"xueliang/ingest/...", []string{"xueliang/index", "xueliang/cmd/...", "xueliang/storage/..."}, []string{"xueliang/storage/recording"}},
	{"xueliang/index", []string{"xueliang/ingest/...", "xueliang/cmd/...", "xueliang/storage/..."}, []string{"xueliang/storage/recording"}},
	{"xueliang/cmd/xueliang/internal/replay", []string{"xueliang/index", "xueliang/ingest/..."}, nil},
}

// matches reports whether path is pattern or, for "p/...", p or under it.
func matches(pattern, path string) bool {
	if p, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == p || strings.HasPrefix(path, p+"/")
	}
	return path == pattern
}

// violations returns "pkg imports dep" for every rule broken by imports
// (package → its non-test imports).
func violations(imports map[string][]string) []string {
	var out []string
	for pkg, deps := range imports {
		for _, r := range importRules {
			if !matches(r.pkg, pkg) {
				continue
			}
			for _, d := range deps {
				bad := false
				for _, f := range r.forbidden {
					bad = bad || matches(f, d)
				}
				for _, e := range r.except {
					bad = bad && !matches(e, d)
				}
				if bad && d != pkg {
					out = append(out, pkg+" imports "+d)
				}
			}
		}
	}
	return out
}

func TestImportsFlowOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "xueliang/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	imports := map[string][]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
	}
	if _, ok := imports["xueliang/storage/recording"]; !ok || len(imports) < 20 {
		t.Fatalf("go list returned %d packages", len(imports))
	}
	for _, v := range violations(imports) {
		t.Error(v)
	}
	// The rules themselves catch what they should.
	for _, tc := range []struct {
		pkg, dep string
		bad      bool
	}{
		{"xueliang/storage/spool", "xueliang/index", true},
		{"xueliang/storage/reconcile", "xueliang/ingest/segmenter", true},
		{"xueliang/ingest/segmenter", "xueliang/index", true},
		{"xueliang/ingest", "xueliang/storage/local", true},
		{"xueliang/ingest", "xueliang/storage/recording", false},
		{"xueliang/index", "xueliang/storage/recording", false},
		{"xueliang/storage/recording", "xueliang/storage", true},
		{"xueliang/cmd/xueliang/internal/replay", "xueliang/index", true},
		{"xueliang/cmd/xueliang/internal/api", "xueliang/index", false},
	} {
		got := len(violations(map[string][]string{tc.pkg: {tc.dep}})) > 0
		if got != tc.bad {
			t.Errorf("rule for %s importing %s: violation %v, want %v", tc.pkg, tc.dep, got, tc.bad)
		}
	}
}
