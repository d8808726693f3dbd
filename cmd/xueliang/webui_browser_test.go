package main

// The web console in a real browser: chromedp drives Debian's chromium
// headless (as root: no sandbox) against the real server, reaching nothing
// but 127.0.0.1. Helpers shared by the webui_*_test.go files.

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// consoleBrowser starts headless chromium at 1920×1080 and returns a
// chromedp context for one tab; it is closed when the test ends.
func consoleBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromium.bin); err != nil {
		t.Fatalf("%s is required (make test installs it): %v", chromium.bin, err)
	}
	dir := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium.bin),
		chromedp.UserDataDir(dir),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1920, 1080),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("lang", "zh-CN"),
		// Nothing but the test server: every other host resolves nowhere.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.ProxyServer("direct://"),
		chromedp.Env("HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Starts the browser; the viewport is the video wall's 1920×1080.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1920, 1080)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// browse runs actions with a timeout.
func browse(t *testing.T, ctx context.Context, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		if shot, err := chromedp.Run(sctx, chromedp.CaptureScreenshot()); err == nil {
			p := filepath.Join(t.TempDir(), "failure.png")
			_ = os.WriteFile(p, shot, 0o644)
			t.Logf("screenshot of the failure: %s", p)
		}
		t.Fatalf("browser: %v", err)
	}
}

// browseValue runs one action that returns a value, with a timeout.
func browseValue[T any](t *testing.T, ctx context.Context, timeout time.Duration, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// screenshot writes the page as docs/screenshots/name.png (committed; the
// README shows them).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	browse(t, ctx, 10*time.Second, chromedp.Sleep(300*time.Millisecond))
	data := browseValue(t, ctx, 30*time.Second, chromedp.CaptureScreenshot())
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if w := browseValue(t, ctx, 5*time.Second, chromedp.Evaluate[int](`innerWidth`)); cfg.Width != w {
		t.Errorf("screenshot %s is %d px wide, the viewport %d", name, cfg.Width, w)
	}
	// Written to docs/ only by `make screenshots` (a plain test run would
	// leave the committed pictures changed after every run).
	dir := t.TempDir()
	if os.Getenv("XUELIANG_SCREENSHOTS") == "docs" {
		dir = repoPath(filepath.Join("docs", "screenshots"))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// consoleLogin opens the console and logs in as user.
func consoleLogin(t *testing.T, ctx context.Context, s *testServer, user, password string) {
	t.Helper()
	browse(t, ctx, 30*time.Second,
		chromedp.Navigate(s.base+"/#/login"),
		chromedp.WaitVisible(chromedp.ID("login-user")),
		chromedp.SendKeys(chromedp.ID("login-user"), user),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("logout")),
	)
}

// until waits until the JavaScript expression is true in the page.
func until(expr string) chromedp.Action[chromedp.Void] {
	p := chromedp.Poll[bool](expr)
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := p(ctx, t)
		return chromedp.Void{}, err
	}
}
