// Package probetest runs the camera simulator (cmd/camsim) for the tests of
// the probe and of its HTTP/CLI front ends: build it once in TestMain with
// Build, start one per test (or per package) with Start.
package probetest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// RepoRoot returns the module root (the directory holding go.mod), found by
// walking up from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Build compiles cmd/camsim into dir and returns the binary's path.
func Build(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "camsim")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/camsim")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build camsim: %v\n%s", err, out.String())
	}
	return bin, nil
}

// Camsim is a running simulator.
type Camsim struct {
	// URL is the RTSP base, e.g. rtsp://127.0.0.1:41234 (append "/cam1").
	URL string
	// Host is host:port.
	Host string

	cmd  *exec.Cmd
	done chan struct{}
	log  syncBuffer
}

// Start runs bin (see Run) for one test: it is stopped at the end of the
// test, and its log is printed when the test fails.
func Start(tb testing.TB, bin string, args ...string) *Camsim {
	tb.Helper()
	sim, err := Run(bin, args...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		sim.Stop()
		if tb.Failed() {
			tb.Logf("--- camsim log ---\n%s", sim.Log())
		}
	})
	return sim
}

// Run starts bin on 127.0.0.1:0 with the repository's clips and clip
// script plus args, and waits for its ready line. Call Stop when done.
func Run(bin string, args ...string) (*Camsim, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	args = append([]string{"-listen", "127.0.0.1:0",
		"-clips", filepath.Join(root, "testdata", "clips"),
		"-script", filepath.Join(root, "scripts", "gen-clip.sh")}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	sim := &Camsim{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &sim.log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = cmd.Wait(); close(sim.done) }()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			sim.log.Write([]byte(line + "\n"))
			if rest, ok := strings.CutPrefix(line, "camsim: ready "); ok {
				select {
				case ready <- strings.TrimSpace(rest):
				default:
				}
			}
		}
	}()
	select {
	case u := <-ready:
		sim.URL, sim.Host = u, strings.TrimPrefix(u, "rtsp://")
		return sim, nil
	case <-sim.done:
		return nil, fmt.Errorf("camsim %s exited before it was ready:\n%s", strings.Join(args, " "), sim.log.String())
	case <-time.After(90 * time.Second):
		sim.Stop()
		return nil, fmt.Errorf("camsim %s not ready after 90 s:\n%s", strings.Join(args, " "), sim.log.String())
	}
}

// Stop interrupts camsim and waits for it (killing it after 10 s).
func (c *Camsim) Stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// Log returns camsim's output so far (stderr logs and stdout).
func (c *Camsim) Log() string { return c.log.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
