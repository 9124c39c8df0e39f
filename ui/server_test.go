package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/segwatch/segwatch/index"
	"github.com/segwatch/segwatch/ui/auth"
)

// fakeSearcher records the last request and answers with res or err.
type fakeSearcher struct {
	mu    sync.Mutex
	last  index.Request
	calls int
	res   index.Result
	err   error
}

func (f *fakeSearcher) Search(_ context.Context, r index.Request) (index.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last, f.calls = r, f.calls+1
	return f.res, f.err
}

func (f *fakeSearcher) lastRequest() (index.Request, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.calls
}

// queryErr is a Searcher error blaming the query.
type queryErr struct{ msg string }

func (e queryErr) Error() string      { return e.msg }
func (e queryErr) InvalidQuery() bool { return true }

var testNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

type fixture struct {
	srv    *Server
	store  *auth.Store
	search *fakeSearcher
	ms     *metrics.Set
	ready  bool
	tokens map[auth.Role]string
	logs   *bytes.Buffer
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	store, err := auth.Open(context.Background(), filepath.Join(t.TempDir(), "segwatch.db"), auth.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{store: store, search: &fakeSearcher{}, ms: metrics.NewSet(), ready: true,
		tokens: map[auth.Role]string{}, logs: &bytes.Buffer{}}
	for _, r := range []auth.Role{auth.RoleViewer, auth.RoleAnalyst, auth.RoleAdmin} {
		tok, err := store.CreateToken(context.Background(), "t-"+string(r), r)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[r] = tok
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logMu, f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.srv, err = New(cfg, Deps{
		Logger: logger, Metrics: f.ms, Auth: store, Search: f.search,
		Ready: func() bool { return f.ready }, Now: func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// do sends a request through app.Test and returns status, headers and body.
func (f *fixture) do(t *testing.T, method, target, token string, body io.Reader, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.srv.app.Test(req, 10_000)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// jsonError decodes {"error": ...} and fails when the body is not that.
func jsonError(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error == "" {
		t.Fatalf("body %q is not a JSON error", b)
	}
	return e.Error
}

func TestNewValidates(t *testing.T) {
	store, err := auth.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"), auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	good := Deps{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.NewSet(), Auth: store, Search: &fakeSearcher{}}
	f := func(cfg Config, deps Deps, wantErr string) {
		t.Helper()
		_, err := New(cfg, deps)
		if wantErr == "" && err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
		if wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("New(%+v) err = %v, want containing %q", cfg, err, wantErr)
		}
	}
	f(Config{Addr: ":0"}, good, "")
	f(Config{}, good, "empty listen address")
	f(Config{Addr: ":0", TrustedProxies: []string{"10.0.0.0/8", "192.0.2.1", "::1"}}, good, "")
	f(Config{Addr: ":0", TrustedProxies: []string{"proxy.example"}}, good, "trusted proxy")
	f(Config{Addr: ":0", TLSCert: "a.pem"}, good, "both")
	f(Config{Addr: ":0", TLSCert: "/nonexistent.pem", TLSKey: "/nonexistent.key"}, good, "load TLS")
	noAuth := good
	noAuth.Auth = nil
	f(Config{Addr: ":0"}, noAuth, "required")
}

func TestAPIAuthentication(t *testing.T) {
	fx := newFixture(t, Config{})
	f := func(method, target, token string, want int, hdr ...string) {
		t.Helper()
		code, h, b := fx.do(t, method, target, token, nil, hdr...)
		if code != want {
			t.Errorf("%s %s (token %.6s…): status %d, want %d; body %s", method, target, token, code, want, b)
		}
		if code >= 400 {
			jsonError(t, b)
			if !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
				t.Errorf("%s %s: error Content-Type %q", method, target, h.Get("Content-Type"))
			}
		}
		if code == 401 && h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: 401 without WWW-Authenticate", method, target)
		}
	}
	viewer, analyst, admin := fx.tokens[auth.RoleViewer], fx.tokens[auth.RoleAnalyst], fx.tokens[auth.RoleAdmin]
	unknown := auth.TokenPrefix + strings.Repeat("x", len(viewer)-len(auth.TokenPrefix))

	f("GET", "/api/v1/search", "", 401)
	f("GET", "/api/v1/search", unknown, 401)
	f("GET", "/api/v1/search", "garbage", 401)
	f("GET", "/api/v1/search", "", 401, "Authorization", "Basic "+viewer)
	f("GET", "/api/v1/search", "", 401, "Authorization", "Bearer")
	f("GET", "/api/v1/search", "", 401, "Cookie", SessionCookie+"=sws_forged")
	f("GET", "/api/v1/search", viewer, 200)
	f("GET", "/api/v1/search", "", 200, "Authorization", "bearer "+viewer) // scheme is case-insensitive
	f("GET", "/api/v1/whoami", analyst, 200)
	// Writes need analyst; management needs admin.
	f("DELETE", "/api/v1/tokens/t-viewer", viewer, 403)
	f("DELETE", "/api/v1/tokens/t-viewer", analyst, 403)
	f("GET", "/api/v1/tokens", viewer, 403)
	f("GET", "/api/v1/tokens", analyst, 403)
	f("GET", "/api/v1/tokens", admin, 200)
	f("GET", "/api/v1/users", analyst, 403)
	f("GET", "/api/v1/users", admin, 200)
	f("DELETE", "/api/v1/tokens/nope", admin, 404)
	f("DELETE", "/api/v1/tokens/t-viewer", admin, 204)
	f("GET", "/api/v1/search", viewer, 401) // just revoked
	f("GET", "/api/v1/nope", analyst, 404)
	f("GET", "/nope", "", 404)
	// Open endpoints.
	f("GET", "/healthz", "", 200)
	f("GET", "/metrics", "", 200)

	// The failures were counted.
	var buf bytes.Buffer
	fx.ms.WritePrometheus(&buf)
	if !strings.Contains(buf.String(), "segwatch_http_auth_failures_total 7") {
		t.Errorf("auth failures not counted as 7:\n%s", grepLines(buf.String(), "auth_failures"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestTokenManagementAPI(t *testing.T) {
	fx := newFixture(t, Config{})
	admin := fx.tokens[auth.RoleAdmin]
	code, _, b := fx.do(t, "POST", "/api/v1/tokens", admin, strings.NewReader(`{"name":"grafana","role":"viewer"}`), "Content-Type", "application/json")
	if code != 201 {
		t.Fatalf("create token: %d %s", code, b)
	}
	var created struct{ Name, Role, Token string }
	if err := json.Unmarshal(b, &created); err != nil || created.Role != "viewer" || !strings.HasPrefix(created.Token, auth.TokenPrefix) {
		t.Fatalf("create token answer %s (%v)", b, err)
	}
	if code, _, b := fx.do(t, "GET", "/api/v1/whoami", created.Token, nil); code != 200 || !strings.Contains(string(b), `"name":"grafana"`) {
		t.Errorf("new token: %d %s", code, b)
	}
	f := func(body string, want int) {
		t.Helper()
		code, _, b := fx.do(t, "POST", "/api/v1/tokens", admin, strings.NewReader(body), "Content-Type", "application/json")
		if code != want {
			t.Errorf("POST tokens %s: %d, want %d (%s)", body, code, want, b)
		}
		if code >= 400 {
			jsonError(t, b)
		}
	}
	f(`{"name":"grafana","role":"viewer"}`, 409)
	f(`{"name":"x","role":"root"}`, 400)
	f(`{"name":"has space","role":"viewer"}`, 400)
	f(`{"name":"x","role":"viewer","extra":1}`, 400)
	f(`not json`, 400)
	code, _, b = fx.do(t, "GET", "/api/v1/tokens", admin, nil)
	if code != 200 || strings.Contains(string(b), created.Token) || !strings.Contains(string(b), `"grafana"`) {
		t.Errorf("list tokens: %d %s (must list names, never tokens)", code, b)
	}
}

func TestHealthz(t *testing.T) {
	fx := newFixture(t, Config{})
	fx.ready = false
	code, _, b := fx.do(t, "GET", "/healthz", "", nil)
	if code != 503 || string(b) != `{"status":"starting"}` {
		t.Errorf("not ready: %d %s", code, b)
	}
	fx.ready = true
	code, _, b = fx.do(t, "GET", "/healthz", "", nil)
	if code != 200 || string(b) != `{"status":"ok"}` {
		t.Errorf("ready: %d %s", code, b)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	fx := newFixture(t, Config{})
	fx.ms.GetOrCreateCounter(`segwatch_events_indexed_total`).Add(3)
	fx.do(t, "GET", "/healthz", "", nil)
	code, h, b := fx.do(t, "GET", "/metrics", "", nil)
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", code, h.Get("Content-Type"))
	}
	for _, want := range []string{
		"segwatch_events_indexed_total 3",
		`segwatch_http_requests_total{route="/healthz",code="200"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestRequestLogging(t *testing.T) {
	fx := newFixture(t, Config{})
	fx.do(t, "GET", "/api/v1/whoami", fx.tokens[auth.RoleViewer], nil)
	logs := fx.logs.String()
	if !strings.Contains(logs, "level=DEBUG") || !strings.Contains(logs, "path=/api/v1/whoami") || !strings.Contains(logs, "principal=t-viewer") {
		t.Errorf("request log missing; got:\n%s", logs)
	}
	if strings.Contains(logs, fx.tokens[auth.RoleViewer]) {
		t.Error("token leaked into the log")
	}
}

// TestLoginFlow walks the UI: redirect to login, a wrong then a right
// password, the cookie's attributes, the API through the cookie, the
// cross-origin guard, and logout.
func TestLoginFlow(t *testing.T) {
	fx := newFixture(t, Config{})
	ctx := context.Background()
	if err := fx.store.AddUser(ctx, "alice", auth.RoleAdmin, "correct horse"); err != nil {
		t.Fatal(err)
	}

	code, h, _ := fx.do(t, "GET", "/search?q=x", "", nil)
	if code != 303 || h.Get("Location") != "/login?next=%2Fsearch%3Fq%3Dx" {
		t.Fatalf("anonymous page: %d Location %q", code, h.Get("Location"))
	}
	code, h, b := fx.do(t, "GET", "/login", "", nil)
	if code != 200 || !strings.Contains(string(b), `name="password"`) || h.Get("Content-Security-Policy") == "" {
		t.Fatalf("login page: %d CSP %q", code, h.Get("Content-Security-Policy"))
	}

	form := func(name, pw, next string) io.Reader {
		return strings.NewReader(url.Values{"name": {name}, "password": {pw}, "next": {next}}.Encode())
	}
	ct := []string{"Content-Type", "application/x-www-form-urlencoded"}
	code, h, b = fx.do(t, "POST", "/login", "", form("alice", "wrong password", "/"), ct...)
	if code != 401 || h.Get("Set-Cookie") != "" || !strings.Contains(string(b), "Wrong name or password") {
		t.Errorf("wrong password: %d cookie %q", code, h.Get("Set-Cookie"))
	}
	code, _, _ = fx.do(t, "POST", "/login", "", form("alice", "correct horse", "/"), append(ct, "Origin", "https://evil.example")...)
	if code != 403 {
		t.Errorf("cross-origin login: %d, want 403", code)
	}
	code, h, _ = fx.do(t, "POST", "/login", "", form("alice", "correct horse", "//evil.example/"), ct...)
	if code != 303 || h.Get("Location") != "/" {
		t.Fatalf("login: %d Location %q (an off-site next must become /)", code, h.Get("Location"))
	}
	setCookie := h.Get("Set-Cookie")
	for _, want := range []string{SessionCookie + "=sws_", "HttpOnly", "SameSite=Strict", "path=/"} {
		if !strings.Contains(strings.ToLower(setCookie), strings.ToLower(want)) {
			t.Errorf("Set-Cookie %q lacks %q", setCookie, want)
		}
	}
	if strings.Contains(strings.ToLower(setCookie), "secure") {
		t.Errorf("Set-Cookie %q is Secure over plain HTTP", setCookie)
	}
	cookie := strings.Split(setCookie, ";")[0]

	code, _, b = fx.do(t, "GET", "/", "", nil, "Cookie", cookie)
	if code != 200 || !strings.Contains(string(b), "alice") || !strings.Contains(string(b), "/static/search.js") {
		t.Errorf("search page with session: %d", code)
	}
	if code, _, b := fx.do(t, "GET", "/api/v1/whoami", "", nil, "Cookie", cookie); code != 200 || !strings.Contains(string(b), `"via":"session"`) {
		t.Errorf("API with session: %d %s", code, b)
	}
	body := `{"name":"x1","role":"viewer"}`
	code, _, _ = fx.do(t, "POST", "/api/v1/tokens", "", strings.NewReader(body), "Cookie", cookie, "Content-Type", "application/json", "Origin", "https://evil.example")
	if code != 403 {
		t.Errorf("cross-origin write with session: %d, want 403", code)
	}
	code, _, _ = fx.do(t, "POST", "/api/v1/tokens", "", strings.NewReader(body), "Cookie", cookie, "Content-Type", "application/json", "Sec-Fetch-Site", "same-origin")
	if code != 201 {
		t.Errorf("same-origin write with session: %d, want 201", code)
	}

	code, h, _ = fx.do(t, "POST", "/logout", "", nil, "Cookie", cookie)
	if code != 303 || !strings.Contains(h.Get("Set-Cookie"), SessionCookie+"=;") {
		t.Errorf("logout: %d Set-Cookie %q", code, h.Get("Set-Cookie"))
	}
	if code, _, _ := fx.do(t, "GET", "/api/v1/whoami", "", nil, "Cookie", cookie); code != 401 {
		t.Errorf("API after logout: %d, want 401", code)
	}
}

func TestStaticFiles(t *testing.T) {
	fx := newFixture(t, Config{})
	for _, p := range []string{"/static/app.css", "/static/search.js", "/static/favicon.svg"} {
		code, _, b := fx.do(t, "GET", p, "", nil)
		if code != 200 || len(b) == 0 {
			t.Errorf("%s: %d, %d bytes", p, code, len(b))
		}
	}
}

func TestSafeNext(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
	f("", "/")
	f("/search?q=a", "/search?q=a")
	f("//evil.example", "/")
	f("/\\evil.example", "/")
	f("https://evil.example", "/")
	f("/login?next=/x", "/")
	f("/a\r\nSet-Cookie: x", "/")
}

var errBoom = errors.New("disk on fire")
