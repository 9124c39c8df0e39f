package ui

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/segwatch/segwatch/index"
	"github.com/segwatch/segwatch/ingest/event"
	"github.com/segwatch/segwatch/ui/auth"
)

// chromium returns the browser's path, or skips the test (fails it under CI,
// where a skipped browser test would hide a broken UI).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found (set CHROMIUM); CI must run the browser tests")
	}
	t.Skip("no Chromium found (set CHROMIUM to run the browser smoke test)")
	return ""
}

// dumpDOM loads url in headless Chromium, lets its scripts and fetches run
// (virtual time), and returns the resulting DOM.
func dumpDOM(t *testing.T, bin, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=10000", "--dump-dom", url)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}

func screenshot(t *testing.T, bin, url, file string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(), "--hide-scrollbars",
		"--window-size=1280,600", "--virtual-time-budget=10000", "--screenshot="+file, url).CombinedOutput()
	if err != nil {
		t.Errorf("screenshot: %v\n%s", err, out)
	}
}

// TestBrowserSearchPage loads the search page in real Chromium with a
// session, so the embedded JS runs against the API: the table must show
// both hits, the highlight as a <mark>, the flow line, and nothing from a
// hostile fragment may become markup.
func TestBrowserSearchPage(t *testing.T) {
	bin := chromium(t)
	fx := newFixture(t, Config{})
	ctx := context.Background()
	if err := fx.store.AddUser(ctx, "ana", auth.RoleAnalyst, "ana password"); err != nil {
		t.Fatal(err)
	}
	// A test-only door: Chromium cannot fill the login form from the
	// command line, so hand it a session and send it to the page.
	fx.srv.app.Get("/test/session", func(c *fiber.Ctx) error {
		sess, err := fx.store.CreateSession(c.UserContext(), "ana")
		if err != nil {
			return err
		}
		// The server checks the session against the fixture's fixed
		// clock; Chromium checks the cookie's expiry against the real one,
		// so it gets a real future (sess.Expires made this test fail
		// from 12 h after testNow on).
		fx.srv.setSessionCookie(c, sess.ID, time.Now().Add(time.Hour))
		return c.Redirect("/?q=login", fiber.StatusSeeOther)
	})
	t0 := testNow.Add(-time.Minute)
	fx.search.res = index.Result{Total: 2, Took: 3 * time.Millisecond, Hits: []index.Hit{
		{Event: event.Event{ID: "l1", Time: t0, Kind: event.KindLog, Device: "cam-lobby-01", Host: "cam-lobby-01",
			App: "sshd", Facility: 4, Severity: 3, Message: "login failed"},
			Fragments: []string{`<mark>login</mark> failed &lt;img src=x onerror=alert(1)&gt;`}},
		{Event: event.Event{ID: "f1", Time: t0, Kind: event.KindFlow, SrcIP: "10.10.0.5", DstIP: "10.20.0.11",
			SrcPort: 51000, DstPort: 22, Proto: "tcp", Bytes: 1200, Packets: 10,
			Facility: event.NoSeverity, Severity: event.NoSeverity}},
	}}
	addr := serve(t, fx)

	dom := dumpDOM(t, bin, "http://"+addr+"/test/session")
	for _, want := range []string{
		`<mark>login</mark>`,
		`Events 1–2 of 2`,
		`10.10.0.5:51000 → 10.20.0.11:22 tcp`,
		`sev sev-3`,
		`cam-lobby-01`,
		`&lt;img src=x onerror=alert(1)&gt;`, // shown as text
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if strings.Contains(dom, "<img src=\"x\"") || strings.Contains(dom, "<img src=x") {
		t.Error("a fragment's escaped markup became a real element")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
	req, calls := fx.search.lastRequest()
	if calls == 0 || req.Query != "login" || req.Limit != 100 || req.Order != "desc" {
		t.Errorf("the page searched with %+v (%d calls)", req, calls)
	}
	if got := req.To.Sub(req.From); got != 24*time.Hour {
		t.Errorf("default range %v, want 24h", got)
	}

	// UI_SCREENSHOT=DIR keeps a picture of the page for a human to look at.
	if dir := os.Getenv("UI_SCREENSHOT"); dir != "" {
		screenshot(t, bin, "http://"+addr+"/test/session", filepath.Join(dir, "search.png"))
		screenshot(t, bin, "http://"+addr+"/login", filepath.Join(dir, "login.png"))
	}

	// Without a session the browser ends on the login form.
	login := dumpDOM(t, bin, "http://"+addr+"/search")
	if !strings.Contains(login, `name="password"`) {
		t.Errorf("anonymous browser did not land on the login form:\n%s", login)
	}
}
