package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseMinimal(t *testing.T) {
	cfg, err := Parse([]byte(`
listen: 127.0.0.1:8080
data_dir: ./data
recording:
  segment_duration: 60s
cameras:
  - id: cam1
    url: rtsp://127.0.0.1:8554/cam1
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Recording.SegmentDuration != time.Minute || len(cfg.Cameras) != 1 {
		t.Fatalf("unexpected config %+v", cfg)
	}
	if cfg.Cameras[0].Name != "cam1" || cfg.Cameras[0].Transport != "tcp" {
		t.Fatalf("camera defaults not filled: %+v", cfg.Cameras[0])
	}
	if cfg.Index.Path != filepath.Join("data", "index.db") {
		t.Fatalf("index path %q", cfg.Index.Path)
	}
}

// Segment closes are staggered unless the file turns it off.
func TestStaggerDefault(t *testing.T) {
	for _, c := range []struct {
		yaml string
		want bool
	}{
		{"cameras: []\n", true},
		{"recording:\n  stagger_segments: false\n", false},
	} {
		cfg, err := Parse([]byte(c.yaml), nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Recording.StaggerSegments != c.want {
			t.Errorf("%q: stagger_segments %v, want %v", c.yaml, cfg.Recording.StaggerSegments, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string // every substring must appear
	}{
		{"unknown top key", "listne: x\n", []string{`unknown key "listne"`}},
		{"unknown nested key", "recording:\n  segment_duraton: 1s\n", []string{`unknown key "segment_duraton" (in recording)`}},
		{"unknown camera key", "cameras:\n  - id: a\n    url: rtsp://h/p\n    pasword: x\n", []string{`unknown key "pasword" (in camera)`}},
		{"bad duration", "recording:\n  segment_duration: soon\n", []string{"parse"}},
		{"pprof on a public address", "debug:\n  pprof_listen: 0.0.0.0:6060\n", []string{"debug.pprof_listen: must be a loopback address"}},
		{"commit window too long", "index:\n  commit_window: 5s\n", []string{"index.commit_window: want [0, 1s]"}},
		{"postgres url not a url", "index:\n  postgres_url: host=db user=x password=hunter2\n", []string{"index.postgres_url: want postgres://"}},
		{"postgres url other scheme", "index:\n  postgres_url: mysql://db/x\n", []string{"index.postgres_url: want postgres://"}},
		{"rtsp listen without port", "live:\n  rtsp_listen: 127.0.0.1\n", []string{"live.rtsp_listen: want host:port"}},
		{"rtsp listen on the api address", "listen: 127.0.0.1:8080\nlive:\n  rtsp_listen: 127.0.0.1:8080\n", []string{"live.rtsp_listen: must differ from listen"}},
		{"pprof without port", "debug:\n  pprof_listen: 127.0.0.1\n", []string{"debug.pprof_listen: want host:port"}},
		{
			"every problem at once",
			"listen: nope\nlog_level: loud\nrecording:\n  segment_duration: 1s\n  transport: sctp\ncameras:\n  - id: ''\n    url: http://x\n  - id: a\n    url: rtsp://h/1\n  - id: a\n    url: rtsp://h/2\n",
			[]string{"listen:", "log_level:", "recording.segment_duration:", "recording.transport:", "cameras[0].id:", "cameras[0].url:", `cameras[2].id: duplicate id "a"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), nil)
			if err == nil {
				t.Fatal("want error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestPostgresURL: a valid URL is taken (also from the environment), and
// a rejected one is never echoed (it may hold a password).
func TestPostgresURL(t *testing.T) {
	cfg, err := Parse([]byte("index:\n  postgres_url: postgres://xl@db.example:5432/xueliang?sslmode=require\n"), nil)
	if err != nil || cfg.Index.PostgresURL != "postgres://xl@db.example:5432/xueliang?sslmode=require" {
		t.Fatalf("%+v %v", cfg.Index, err)
	}
	cfg, err = Parse(nil, []string{"XUELIANG_INDEX_POSTGRES_URL=postgresql://xl:pw@10.0.0.5/xueliang"})
	if err != nil || cfg.Index.PostgresURL != "postgresql://xl:pw@10.0.0.5/xueliang" {
		t.Fatalf("env: %+v %v", cfg.Index, err)
	}
	_, err = Parse([]byte("index:\n  postgres_url: \"postgres://xl:hunter2@/x\"\n"), nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("URL without host: %v", err)
	}
}

func TestEnvOverrides(t *testing.T) {
	cfg, err := Parse([]byte("listen: 127.0.0.1:8080\n"), []string{
		"XUELIANG_LISTEN=127.0.0.1:9999",
		"XUELIANG_RECORDING_SEGMENT_DURATION=30s",
		"XUELIANG_UPLOAD_WORKERS=4",
		"XUELIANG_LIVE_RTSP_LISTEN=127.0.0.1:8554",
		"XUELIANG_BOOTSTRAP_TOKEN=0123456789abcdef-boot",
		"PATH=/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9999" || cfg.Recording.SegmentDuration != 30*time.Second || cfg.Upload.Workers != 4 {
		t.Fatalf("env not applied: %+v", cfg)
	}
	if cfg.Live.RTSPListen != "127.0.0.1:8554" {
		t.Fatalf("XUELIANG_LIVE_RTSP_LISTEN not applied: %q", cfg.Live.RTSPListen)
	}
	if c, err := Parse(nil, nil); err != nil || c.Live.RTSPListen != "" {
		t.Fatalf("live.rtsp_listen defaults to %q (%v), want off", c.Live.RTSPListen, err)
	}
	if cfg.Auth.BootstrapToken != "0123456789abcdef-boot" {
		t.Fatalf("XUELIANG_BOOTSTRAP_TOKEN not applied: %q", cfg.Auth.BootstrapToken)
	}
	if _, err := Parse(nil, []string{"XUELIANG_BOOTSTRAP_TOKEN=short"}); err == nil || !strings.Contains(err.Error(), "auth.bootstrap_token") {
		t.Fatalf("want a short bootstrap token rejected, got %v", err)
	}
	if _, err := Parse(nil, []string{"XUELIANG_UPLOAD_WORKERS=many"}); err == nil || !strings.Contains(err.Error(), "XUELIANG_UPLOAD_WORKERS") {
		t.Fatalf("want env error naming the variable, got %v", err)
	}
}

// TestConfigsDir loads every file shipped in configs/.
func TestConfigsDir(t *testing.T) {
	files, err := filepath.Glob("../../../../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no config files found: %v", err)
	}
	for _, f := range files {
		if _, err := Load(f, nil); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestS3Config(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(keyFile, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte("storage:\n  s3:\n    endpoint: 127.0.0.1:9000\n    access_key: admin\n    secret_key_file: "+keyFile+"\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.S3.Bucket != "xueliang" {
		t.Errorf("bucket default %q", cfg.Storage.S3.Bucket)
	}
	a, s, err := cfg.S3Credentials()
	if err != nil || a != "admin" || s != "s3cr3t" {
		t.Errorf("credentials %q %q %v", a, s, err)
	}
	_, err = Parse([]byte("storage:\n  s3:\n    endpoint: nope\n    access_key: a\n    access_key_file: f\n"), nil)
	for _, w := range []string{"storage.s3.endpoint", "storage.s3.access_key", "storage.s3.secret_key"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not mention %s", err, w)
		}
	}
	// Secrets can come from the environment instead of the file.
	cfg, err = Parse([]byte("storage:\n  s3:\n    endpoint: 127.0.0.1:9000\n"), []string{
		"XUELIANG_STORAGE_S3_ACCESS_KEY=a", "XUELIANG_STORAGE_S3_SECRET_KEY=b"})
	if err != nil || cfg.Storage.S3.SecretKey != "b" {
		t.Errorf("env secrets: %v %+v", err, cfg.Storage.S3)
	}
}

func TestDebugPprofLoopback(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:6060", "[::1]:0", "localhost:6060"} {
		c, err := Parse([]byte("debug:\n  pprof_listen: \""+addr+"\"\n"), nil)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if c.Debug.PprofListen != addr {
			t.Errorf("PprofListen = %q, want %q", c.Debug.PprofListen, addr)
		}
	}
}

func TestIndexCommitWindow(t *testing.T) {
	c, err := Parse([]byte(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Index.CommitWindow != 100*time.Millisecond {
		t.Errorf("default commit window %v", c.Index.CommitWindow)
	}
	c, err = Parse([]byte("index:\n  commit_window: 0s\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Index.CommitWindow != 0 {
		t.Errorf("commit window %v, want 0 (off)", c.Index.CommitWindow)
	}
}

func TestCameraNetworks(t *testing.T) {
	cfg, err := Parse([]byte("listen: 127.0.0.1:8080\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.CameraPolicy(8080)
	if len(p.Allowed) != 3 || p.Allowed[0].String() != "10.0.0.0/8" || p.Allowed[2].String() != "192.168.0.0/16" {
		t.Fatalf("default allowed networks %v", p.Allowed)
	}
	cfg, err = Parse([]byte("camera_networks:\n  allowed: [127.0.0.0/8]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.CameraNetworks.Allowed; len(got) != 1 || got[0] != "127.0.0.0/8" {
		t.Fatalf("allowed %v: the file's list must replace the default", got)
	}
	_, err = Parse([]byte("camera_networks:\n  allowed: [10.0.0.0/33, nope]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "camera_networks.allowed") || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("bad CIDRs: %v", err)
	}
}

// TestCluster: cluster mode needs the PostgreSQL index, fills node_id from
// the host name, takes the environment, and reports every bad field.
func TestCluster(t *testing.T) {
	const pg = "index:\n  postgres_url: postgres://xl@db.example/xueliang\n"
	cfg, err := Parse([]byte(pg+"cluster:\n  enabled: true\n  advertise_url: http://10.0.0.7:8080\n"), []string{"XUELIANG_CLUSTER_WEIGHT=2.5"})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if k := cfg.Cluster; k.NodeID != host || k.Capacity != 64 || k.Weight != 2.5 || k.LeaseTTL != 5*time.Second {
		t.Errorf("defaults: %+v", k)
	}
	if _, err := Parse([]byte("cluster:\n  enabled: true\n"), nil); err == nil || !strings.Contains(err.Error(), "cluster.enabled: needs index.postgres_url") {
		t.Errorf("without postgres_url: %v", err)
	}
	_, err = Parse([]byte(pg+"cluster:\n  enabled: true\n  node_id: \"a b\"\n  capacity: 0\n  weight: -1\n  lease_ttl: 10ms\n  advertise_url: ftp://x\n"), nil)
	for _, f := range []string{"cluster.node_id", "cluster.capacity", "cluster.weight", "cluster.lease_ttl", "cluster.advertise_url"} {
		if err == nil || !strings.Contains(err.Error(), f+":") {
			t.Errorf("%s not reported: %v", f, err)
		}
	}
	if _, err := Parse([]byte("cluster:\n  enable: true\n"), nil); err == nil || !strings.Contains(err.Error(), `unknown key "enable" (in cluster)`) {
		t.Errorf("unknown key: %v", err)
	}
	// Off: the other fields are not checked.
	if _, err := Parse([]byte("cluster:\n  capacity: 0\n"), nil); err != nil {
		t.Errorf("disabled: %v", err)
	}
}

// TestClusterSecret: cluster.secret_file must be private, long enough,
// with an advertise_url, in cluster mode; fetch_timeout is bounded.
func TestClusterSecret(t *testing.T) {
	const pg = "index:\n  postgres_url: postgres://xl@db.example/xueliang\n"
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", strings.Repeat("k", 44)+"\n", 0o600)
	cluster := func(extra string) string {
		return pg + "cluster:\n  enabled: true\n  advertise_url: http://10.0.0.7:8080\n" + extra
	}
	cfg, err := Parse([]byte(cluster("  secret_file: "+good+"\n")), []string{"XUELIANG_CLUSTER_FETCH_TIMEOUT=2s"})
	if err != nil {
		t.Fatal(err)
	}
	if k := cfg.Cluster; k.SecretFile != good || k.FetchTimeout != 2*time.Second {
		t.Errorf("cluster: %+v", k)
	}
	if cfg, err := Parse([]byte(cluster("")), nil); err != nil || cfg.Cluster.FetchTimeout != 5*time.Second {
		t.Errorf("without a secret (fetch off): %+v %v", cfg.Cluster, err)
	}
	for _, tc := range []struct{ name, cfg, want string }{
		{"missing file", cluster("  secret_file: " + filepath.Join(dir, "none") + "\n"), "cluster.secret_file: stat"},
		{"world-readable", cluster("  secret_file: " + write("open", strings.Repeat("k", 44), 0o644) + "\n"), "chmod 600"},
		{"short", cluster("  secret_file: " + write("short", "k\n", 0o600) + "\n"), "want at least 32"},
		{"no advertise_url", pg + "cluster:\n  enabled: true\n  secret_file: " + good + "\n", "needs cluster.advertise_url"},
		{"cluster off", "cluster:\n  secret_file: " + good + "\n", "cluster.secret_file: needs cluster.enabled"},
		{"fetch_timeout", cluster("  fetch_timeout: 10ms\n"), "cluster.fetch_timeout: want 100ms..1m"},
	} {
		if _, err := Parse([]byte(tc.cfg), nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
