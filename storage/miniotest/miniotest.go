// Package miniotest runs a real MinIO server for tests.
//
//	srv := miniotest.Start(t)         // plain HTTP on 127.0.0.1
//	srv := miniotest.StartTLS(t)      // HTTPS with a throw-away CA (srv.CAFile)
//	... use srv.Endpoint, srv.AccessKey, srv.SecretKey ...
//	srv.Stop()    // simulate an outage (the process is killed)
//	srv.Restart() // same port, same data directory
//	srv := miniotest.StartDrives(t, 4) // one server, 4 erasure-coded drives
//	srv.LoseDrive(0)                   // the drive's directory becomes a file
//	online, offline, err := srv.DriveHealth() // MinIO's own view of its drives
//	srv.ReplaceDrive(0)                // a fresh empty drive in its place
//
// The server binary is found with exec.LookPath("minio"), then in
// $(go env GOPATH)/bin. When it is missing the test fails (it is never
// skipped); `make test` installs it with
//
//	scripts/deps.sh go-tool minio github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
//
// The server listens on 127.0.0.1 only, keeps its data in a t.TempDir(), has
// random root credentials, the console, update checks and call-home turned
// off, and is killed in t.Cleanup. Its output goes to a log file whose tail
// is printed when the test fails.
package miniotest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// installHint is printed when the server binary is missing.
const installHint = "the MinIO server binary is missing; `make test` installs it " +
	"(scripts/deps.sh go-tool minio github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c)"

// startTimeout bounds the wait for /minio/health/live.
const startTimeout = 30 * time.Second

// Server is a running (or stopped) MinIO server owned by one test.
type Server struct {
	// Endpoint is host:port of the S3 API, always on 127.0.0.1.
	Endpoint string
	// AccessKey and SecretKey are the (random) root credentials.
	AccessKey string
	SecretKey string
	// Secure is true for a server started by StartTLS.
	Secure bool
	// CAFile is the PEM file of the CA that signed the server certificate
	// (StartTLS only; empty otherwise).
	CAFile string

	t        testing.TB
	bin      string
	dataDir  string
	certsDir string
	logPath  string
	console  string

	drives int // 0: one directory (no erasure coding)

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start starts a plain-HTTP MinIO server and registers its shutdown with
// t.Cleanup. It fails the test when the server does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartTLS is Start with HTTPS: a fresh CA and a certificate for 127.0.0.1
// are generated, and CAFile names the CA for clients to trust.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

// StartDrives is Start with n ≥ 4 drives (directories) in one server
// process: MinIO erasure-codes every object over them (EC:2 for 4 drives),
// so that a lost drive (LoseDrive) costs neither reads nor writes.
func StartDrives(t testing.TB, n int) *Server {
	t.Helper()
	if n < 4 {
		t.Fatalf("miniotest: erasure coding needs at least 4 drives, got %d", n)
	}
	return startWith(t, false, n)
}

// Drives returns the drive directories of a StartDrives server.
func (s *Server) Drives() []string {
	var d []string
	for i := 1; i <= s.drives; i++ {
		d = append(d, filepath.Join(s.dataDir, fmt.Sprintf("d%d", i)))
	}
	return d
}

// LoseDrive takes drive i (0-based) away from the running server: its
// directory and objects are removed and a plain file takes its place, so
// that MinIO can neither read it nor recreate it (a dead disk).
func (s *Server) LoseDrive(i int) {
	s.t.Helper()
	d := s.Drives()[i]
	if err := os.RemoveAll(d); err != nil {
		s.t.Fatalf("miniotest: lose drive: %v", err)
	}
	if err := os.WriteFile(d, []byte("lost drive\n"), 0o400); err != nil {
		s.t.Fatalf("miniotest: lose drive: %v", err)
	}
}

// ReplaceDrive puts a fresh, empty drive in the place of drive i (0-based),
// as an operator swapping a dead disk does: MinIO formats it and heals
// the objects onto it in the background.
func (s *Server) ReplaceDrive(i int) {
	s.t.Helper()
	d := s.Drives()[i]
	if err := os.RemoveAll(d); err != nil {
		s.t.Fatalf("miniotest: replace drive: %v", err)
	}
	if err := os.Mkdir(d, 0o700); err != nil {
		s.t.Fatalf("miniotest: replace drive: %v", err)
	}
}

// DriveHealth is the number of drives the server itself reports online
// and offline: the drives' state in its admin info (GET
// /minio/admin/v3/info, what `mc admin info` shows, signed with the root
// credentials). Unlike its Prometheus metrics, cached for a minute, the
// answer is fresh.
func (s *Server) DriveHealth() (online, offline int, err error) {
	client := s.httpClient()
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/minio/admin/v3/info", nil)
	if err != nil {
		return 0, 0, err
	}
	sum := sha256.Sum256(nil)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	req = signer.SignV4(*req, s.AccessKey, s.SecretKey, "", "us-east-1")
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("admin info: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("admin info: status %d: %s %v", resp.StatusCode, b, err)
	}
	var info struct {
		Servers []struct {
			Drives []struct {
				Endpoint string `json:"endpoint"`
				State    string `json:"state"`
			} `json:"drives"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return 0, 0, fmt.Errorf("admin info: %w", err)
	}
	for _, srv := range info.Servers {
		for _, d := range srv.Drives {
			if d.State == "ok" {
				online++
			} else {
				offline++
			}
		}
	}
	if online+offline == 0 {
		return 0, 0, fmt.Errorf("admin info lists no drive: %s", b)
	}
	return online, offline, nil
}

func start(t testing.TB, secure bool) *Server {
	t.Helper()
	return startWith(t, secure, 0)
}

func startWith(t testing.TB, secure bool, drives int) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	dir := t.TempDir()
	s := &Server{
		AccessKey: "test-" + randomHex(t, 8),
		SecretKey: randomHex(t, 20),
		Secure:    secure,
		t:         t,
		bin:       bin,
		dataDir:   filepath.Join(dir, "data"),
		certsDir:  filepath.Join(dir, "certs"),
		logPath:   filepath.Join(dir, "minio.log"),
		drives:    drives,
	}
	for _, d := range append([]string{s.dataDir, s.certsDir}, s.Drives()...) {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("miniotest: %v", err)
		}
	}
	if secure {
		s.CAFile = filepath.Join(dir, "ca.crt")
		if err := writeCerts(s.certsDir, s.CAFile); err != nil {
			t.Fatalf("miniotest: generate certificates: %v", err)
		}
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			s.logTail()
		}
	})
	// A port picked by listening on :0 may be taken by someone else before
	// MinIO binds it; try a few.
	var lastErr error
	for range 3 {
		s.Endpoint, s.console = freePort(t), freePort(t)
		if lastErr = s.launch(); lastErr == nil {
			return s
		}
		s.Stop()
	}
	s.logTail()
	t.Fatalf("miniotest: start minio: %v", lastErr)
	return nil
}

// Stop kills the server and waits for it to exit. It does nothing when the
// server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// Restart starts the server again on the same port and data directory and
// waits until it is live. It does nothing when the server is running. Call
// it from the test goroutine: it fails the test when the server does not
// come back.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		return
	}
	var err error
	// The port was just released; a quick retry covers a slow kernel.
	for range 3 {
		if err = s.launch(); err == nil {
			return
		}
		s.Stop()
		time.Sleep(200 * time.Millisecond)
	}
	s.logTail()
	s.t.Fatalf("miniotest: restart minio: %v", err)
}

// Pid returns the MinIO process's id (0 while it is stopped), for
// benchmarks that measure its CPU.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// URL returns the base URL of the S3 API (http:// or https://).
func (s *Server) URL() string {
	if s.Secure {
		return "https://" + s.Endpoint
	}
	return "http://" + s.Endpoint
}

// launch starts the process and waits for it to be live.
func (s *Server) launch() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return nil
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "\n=== miniotest: starting minio on %s at %s\n", s.Endpoint, time.Now().Format(time.RFC3339Nano))
	data := s.dataDir
	if s.drives > 0 {
		// MinIO's ellipsis form: one server, drives d1 … dN.
		data = filepath.Join(s.dataDir, fmt.Sprintf("d{1...%d}", s.drives))
	}
	cmd := exec.Command(s.bin, "server",
		"--address", s.Endpoint,
		"--console-address", s.console,
		"--certs-dir", s.certsDir,
		data)
	cmd.Env = append(filteredEnv(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
		"MINIO_CI_CD=on",
		"HOME="+filepath.Dir(s.dataDir),
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.mu.Unlock()
		return fmt.Errorf("run %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return s.waitLive(done)
}

// waitLive polls /minio/health/live until it answers 200, the process exits
// or startTimeout passes. An erasure-coded server is live before its drives
// are formatted: it waits for /minio/health/cluster (write quorum) instead.
func (s *Server) waitLive(exited <-chan struct{}) error {
	client := s.httpClient()
	defer client.CloseIdleConnections()
	probe := "/minio/health/live"
	if s.drives > 0 {
		probe = "/minio/health/cluster"
	}
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+probe, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		cancel()
		if err == nil && resp.StatusCode == http.StatusOK {
			return nil
		}
		select {
		case <-exited:
			return errors.New("minio exited during start-up")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio not live after %v", startTimeout)
		}
	}
}

func (s *Server) httpClient() *http.Client {
	tr := &http.Transport{}
	if s.Secure {
		pool := x509.NewCertPool()
		if pem, err := os.ReadFile(s.CAFile); err == nil {
			pool.AppendCertsFromPEM(pem)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr}
}

// logTail prints the last lines of the server log.
func (s *Server) logTail() {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		s.t.Logf("miniotest: no server log: %v", err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	s.t.Logf("miniotest: tail of %s:\n%s", s.logPath, strings.Join(lines, "\n"))
}

// findBinary locates the minio server binary.
func findBinary() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var candidates []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
			candidates = append(candidates, filepath.Join(p, "bin", "minio"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, "go", "bin", "minio"))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	return "", errors.New(installHint)
}

// filteredEnv is the environment without MINIO_* variables, so that the
// developer's own settings do not leak into the test server.
func filteredEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return env
}

// freePort returns 127.0.0.1:port for a port that was free a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("miniotest: find a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	return hex.EncodeToString(b)
}

// writeCerts writes a fresh CA to caFile and a server certificate for
// 127.0.0.1 signed by it to certsDir/public.crt and private.key, where
// MinIO looks for them.
func writeCerts(certsDir, caFile string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "miniotest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	write := func(path, typ string, der []byte) error {
		var buf bytes.Buffer
		if err := pem.Encode(&buf, &pem.Block{Type: typ, Bytes: der}); err != nil {
			return err
		}
		return os.WriteFile(path, buf.Bytes(), 0o600)
	}
	return errors.Join(
		write(caFile, "CERTIFICATE", caDER),
		write(filepath.Join(certsDir, "public.crt"), "CERTIFICATE", der),
		write(filepath.Join(certsDir, "private.key"), "PRIVATE KEY", keyDER),
	)
}
