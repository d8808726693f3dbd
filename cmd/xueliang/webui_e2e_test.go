package main

// The web console against the real server (+ camsim where it shows
// cameras): one server per test function, pages as subtests.

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWebUIServed loads / in chromium: the embedded console starts (its
// script ran under the server's CSP) and shows the login form.
func TestWebUIServed(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "")
	ctx := consoleBrowser(t)
	browse(t, ctx, 30*time.Second, chromedp.Navigate(srv.base+"/"), chromedp.WaitVisible(chromedp.ID("login-user")))
	title := browseValue(t, ctx, 10*time.Second, chromedp.Title())
	form := browseValue(t, ctx, 10*time.Second, chromedp.Text(chromedp.CSS("form.login h1")))
	if !strings.Contains(title, "雪亮") || form != "登录" {
		t.Fatalf("title %q, form heading %q", title, form)
	}
}
