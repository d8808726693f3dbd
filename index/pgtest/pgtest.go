// Package pgtest runs a real PostgreSQL server for tests.
//
//	srv := pgtest.Start(t)      // initdb into a temp dir, postgres on 127.0.0.1
//	url := srv.NewDatabase(t)   // a fresh database, dropped at cleanup
//	srv.Stop()                  // simulate an outage (fast shutdown)
//	srv.Restart()               // same port, same data directory
//
// Launch starts the same cluster outside a test (benchmarks); Close stops
// and removes it.
//
// The binaries are Debian's (package postgresql): the highest
// /usr/lib/postgresql/*/bin/initdb, or initdb on PATH. When they are missing
// the test fails (it is never skipped); `make test` installs the package.
//
// As root, the cluster belongs to the postgres user: initdb runs through
// `runuser -u postgres --`, and the server is started with the postgres
// user's credentials directly (so that Stop signals the server itself, not
// a runuser parent). The cluster lives in a directory of its own under
// os.TempDir() (t.TempDir() is private to root), listens on 127.0.0.1 on a
// free port with trust authentication, keeps its Unix socket in that
// directory, runs with fsync off, and is stopped and removed in t.Cleanup.
// Its log's tail is printed when the test fails. The Debian system cluster
// is never touched.
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// installHint is printed when PostgreSQL is missing.
const installHint = "PostgreSQL is missing; `make test` installs it (Debian package postgresql, " +
	"scripts/deps.sh apt postgresql)"

// startTimeout bounds the wait for the server to accept connections.
const startTimeout = 60 * time.Second

// Server is a running (or stopped) PostgreSQL cluster owned by one test.
type Server struct {
	// Port is the TCP port on 127.0.0.1.
	Port int

	t       testing.TB
	bin     string // directory of initdb and postgres
	dir     string // root of everything (data, socket, log)
	dataDir string
	logPath string
	cred    *syscall.Credential // nil when not root

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}

	dbs atomic.Int64
	// durable keeps PostgreSQL's default durability (fsync,
	// synchronous_commit, full_page_writes on); tests turn them off.
	durable bool
	// settings are extra "name=value" server settings (Launch).
	settings []string
}

// Start runs initdb and starts the server; it fails the test when either
// does not work.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := launchCluster(t, false)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			s.logTail()
		}
		s.Close()
	})
	return s
}

// Launch is Start for programs that are not tests (xlbench's PostgreSQL
// index benchmark): the same cluster, errors returned instead of failing a
// test; the caller stops and removes it with Close. With durable, the
// server keeps PostgreSQL's default fsync, synchronous_commit and
// full_page_writes (as a site runs it) instead of the tests' fast settings.
// Each of settings is a "name=value" server setting (postgres -c), e.g.
// "shared_buffers=2GB". Restart and NewDatabase need a Server from Start;
// use CreateDatabase.
func Launch(durable bool, settings ...string) (*Server, error) {
	return launchCluster(nil, durable, settings...)
}

// Close stops the server and removes its directory (data included).
func (s *Server) Close() {
	s.Stop()
	_ = os.RemoveAll(s.dir)
}

// LogTail returns the last 4,000 bytes of the server log.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// CreateDatabase creates an empty database name and returns its URL.
func (s *Server) CreateDatabase(name string) (string, error) {
	if err := s.exec(fmt.Sprintf(`CREATE DATABASE %q`, name)); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

func launchCluster(t testing.TB, durable bool, settings ...string) (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{t: t, bin: bin, dir: dir, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "postgres.log"), durable: durable, settings: settings}
	fail := func(err error) (*Server, error) {
		tail := s.LogTail()
		s.Close()
		if tail != "" {
			return nil, fmt.Errorf("%w\npostgres log tail:\n%s", err, tail)
		}
		return nil, err
	}
	if os.Geteuid() == 0 {
		cred, err := postgresUser()
		if err != nil {
			return fail(err)
		}
		s.cred = cred
		// The postgres user must reach dir and own it.
		if err := os.Chmod(dir, 0o755); err != nil {
			return fail(err)
		}
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	if err := s.initdb(); err != nil {
		return fail(err)
	}
	var lastErr error
	for range 3 {
		if s.Port, lastErr = freePort(); lastErr != nil {
			return fail(lastErr)
		}
		if lastErr = s.launch(); lastErr == nil {
			return s, nil
		}
		s.Stop()
	}
	return fail(fmt.Errorf("start postgres: %w", lastErr))
}

func findBin() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return majorOf(matches[i]) > majorOf(matches[j]) })
	for _, m := range matches {
		if _, err := os.Stat(filepath.Join(filepath.Dir(m), "postgres")); err == nil {
			return filepath.Dir(m), nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no initdb in /usr/lib/postgresql/*/bin or on PATH: %s", installHint)
}

func majorOf(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres user (%s): %w", installHint, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("postgres user has uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// initdb creates the cluster: trust authentication, superuser postgres.
func (s *Server) initdb() error {
	args := []string{filepath.Join(s.bin, "initdb"), "-D", s.dataDir, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync"}
	if s.cred != nil {
		args = append([]string{"runuser", "-u", "postgres", "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Stop shuts the server down (fast shutdown, then SIGKILL after 10 s) and
// waits for it to exit. It does nothing when the server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

// Restart starts the stopped server again on the same port and data
// directory. It does nothing when the server is running; it fails the test
// when the server does not come back.
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for range 3 {
		if err = s.launch(); err == nil {
			return
		}
		s.Stop()
		time.Sleep(200 * time.Millisecond)
	}
	s.logTail()
	s.t.Fatalf("pgtest: restart postgres: %v", err)
}

// URL returns the connection URL of database name.
func (s *Server) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, name)
}

// NewDatabase creates an empty database and returns its URL; the database
// is dropped at cleanup (while the server runs).
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%s", s.dbs.Add(1), sanitize(t.Name()))
	if err := s.exec(fmt.Sprintf(`CREATE DATABASE %q`, name)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		running := s.cmd != nil
		s.mu.Unlock()
		if running {
			_ = s.exec(fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, name))
		}
	})
	return s.URL(name)
}

func (s *Server) exec(stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, stmt)
	return err
}

func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out) > 40 {
		out = out[len(out)-40:]
	}
	return out
}

// launch starts the server process and waits until it accepts connections.
func (s *Server) launch() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return nil
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "\n=== pgtest: starting postgres on 127.0.0.1:%d at %s\n", s.Port, time.Now().Format(time.RFC3339Nano))
	args := []string{"-D", s.dataDir, "-k", s.dir, "-p", strconv.Itoa(s.Port),
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"}
	if !s.durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for _, kv := range s.settings {
		args = append(args, "-c", kv)
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.mu.Unlock()
		return fmt.Errorf("run postgres: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-done:
			return fmt.Errorf("postgres exited before accepting connections: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not accepting connections after %s: %w", startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) logTail() {
	if s.t != nil {
		s.t.Logf("pgtest: postgres log tail:\n%s", s.LogTail())
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
