package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process of the harness.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startProc starts bin with args, logging stdout+stderr to dir/name.log.
// When ready is not nil it waits (≤ timeout) for a stdout line for which it
// returns true.
func startProc(dir, name, bin string, env []string, ready func(string) bool, timeout time.Duration, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout io.ReadCloser
	if ready != nil {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, err
		}
	} else {
		cmd.Stdout = logf
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	readyc := make(chan struct{})
	if ready != nil {
		go func() {
			sc := bufio.NewScanner(stdout)
			seen := false
			for sc.Scan() {
				fmt.Fprintln(logf, sc.Text())
				if !seen && ready(sc.Text()) {
					seen = true
					close(readyc)
				}
			}
		}()
	}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if ready != nil {
		select {
		case <-readyc:
		case <-p.done:
			return nil, fmt.Errorf("%s exited during start-up (log %s)", name, logPath)
		case <-time.After(timeout):
			p.stop()
			return nil, fmt.Errorf("%s not ready after %v (log %s)", name, timeout, logPath)
		}
	}
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, then SIGKILL after 10 s, and waits.
func (p *proc) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// procStat is the CPU time (user+system, seconds) and RSS (bytes) of pid.
type procStat struct {
	CPU float64
	RSS int64
}

var clkTck = 100.0 // USER_HZ; 100 on every Linux we run on

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+2:])
	// fields after the comm: state(0) ... utime(11) stime(12) ... rss(21)
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	rss, _ := strconv.ParseInt(f[21], 10, 64)
	return procStat{CPU: (ut + st) / clkTck, RSS: rss * int64(os.Getpagesize())}, nil
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// minio is a MinIO server started the way storage/miniotest does.
type minio struct {
	*proc
	Endpoint, AccessKey, SecretKey string
	dir                            string // scratch root; data in dir/minio-data
}

func findMinio() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	out, _ := exec.Command("go", "env", "GOPATH").Output()
	for _, d := range filepath.SplitList(strings.TrimSpace(string(out))) {
		p := filepath.Join(d, "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("minio server binary not found (make deps-test installs it)")
}

func startMinio(dir string) (*minio, error) {
	m := &minio{Endpoint: freeAddr(), AccessKey: "bench-" + randHex(6), SecretKey: randHex(20), dir: dir}
	if err := os.MkdirAll(filepath.Join(dir, "minio-data"), 0o700); err != nil {
		return nil, err
	}
	return m, m.launch()
}

// launch starts the MinIO process on m's address, keys and data.
func (m *minio) launch() error {
	bin, err := findMinio()
	if err != nil {
		return err
	}
	env := []string{"MINIO_ROOT_USER=" + m.AccessKey, "MINIO_ROOT_PASSWORD=" + m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CALLHOME_ENABLE=off", "MINIO_CI_CD=on", "HOME=" + m.dir}
	// --no-compat: MinIO skips the MD5 of every PUT body it would
	// otherwise compute for S3-style ETags. xueliang never reads an ETag as
	// an MD5 (it sends and verifies x-amz-checksum-sha256), and the MD5 is
	// about a third of MinIO's CPU under this load (docs/operations.md
	// recommends the flag for sites).
	m.proc, err = startProc(m.dir, "minio", bin, env, nil, 0, "server", "--no-compat", "--address", m.Endpoint,
		"--console-address", freeAddr(), filepath.Join(m.dir, "minio-data"))
	if err != nil {
		return err
	}
	if err := waitHTTP("http://"+m.Endpoint+"/minio/health/live", 30*time.Second); err != nil {
		m.stop()
		return fmt.Errorf("minio: %w", err)
	}
	return nil
}

// restart stops MinIO and starts a new process on the same address, keys
// and data (the objects stay).
func (m *minio) restart() error {
	m.stop()
	return m.launch()
}

func waitHTTP(url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v", url, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrapeToken is the server's auth.metrics_token (every endpoint but
// /healthz needs a token).
const scrapeToken = "xlbench-scrape-token"

// scrape returns the sum over all series of each metric family in /metrics.
func scrape(base string) (map[string]float64, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+scrapeToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		name := l
		if i := strings.IndexAny(l, "{ "); i >= 0 {
			name = l[:i]
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}
