package ui

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/segwatch/segwatch/index"
	"github.com/segwatch/segwatch/ui/auth"
)

// serve runs fx.srv on a real socket until the test ends and checks that
// Run then returns nil.
func serve(t testing.TB, fx *fixture) string {
	t.Helper()
	if err := fx.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fx.srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return fx.srv.Addr()
}

func get(t *testing.T, c *http.Client, u string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRunRealSocket(t *testing.T) {
	fx := newFixture(t, Config{Addr: "127.0.0.1:0"})
	if fx.srv.Addr() != "" {
		t.Error("Addr before Listen is not empty")
	}
	addr := serve(t, fx)
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr = %q", addr)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	if code, body := get(t, c, "http://"+addr+"/healthz"); code != 200 || body != `{"status":"ok"}` {
		t.Errorf("healthz: %d %s", code, body)
	}
	code, body := get(t, c, "http://"+addr+"/metrics")
	if code != 200 || !strings.Contains(body, `segwatch_http_requests_total{route="/healthz",code="200"} 1`) {
		t.Errorf("metrics: %d\n%s", code, grepLines(body, "segwatch_http"))
	}
	if code, _ := get(t, c, "http://"+addr+"/api/v1/search"); code != 401 {
		t.Errorf("search without token over the socket: %d", code)
	}
	if code, _ := get(t, c, "http://"+addr+"/api/v1/search", "Authorization", "Bearer "+fx.tokens[auth.RoleViewer]); code != 200 {
		t.Errorf("search with token over the socket: %d", code)
	}

	// A second server on the same address fails at Listen, before Run.
	other, err := New(Config{Addr: addr}, Deps{Logger: fx.srv.log, Metrics: fx.ms, Auth: fx.store, Search: fx.search})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Listen(); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("Listen on a taken address: %v", err)
	}
}

func TestRunWithoutListen(t *testing.T) {
	fx := newFixture(t, Config{Addr: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fx.srv.Run(ctx) }()
	// Run binds by itself; wait for the address without asserting a time.
	var addr string
	for addr == "" {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		addr = fx.srv.Addr()
		time.Sleep(time.Millisecond)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	var code int
	for range 1000 { // the listener is bound, fiber may not serve yet
		resp, err := c.Get("http://" + addr + "/healthz")
		if err == nil {
			code = resp.StatusCode
			resp.Body.Close()
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code != 200 {
		t.Errorf("healthz: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestRunCancelledAtOnce covers a shutdown that races the start of serving:
// Run must still return.
func TestRunCancelledAtOnce(t *testing.T) {
	for range 20 {
		fx := newFixture(t, Config{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() { done <- fx.srv.Run(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return for a cancelled context")
		}
	}
}

// TestTrustedProxies checks that X-Forwarded-For counts only from a trusted
// proxy (both requests come from 127.0.0.1).
func TestTrustedProxies(t *testing.T) {
	f := func(trusted []string, want string) {
		t.Helper()
		fx := newFixture(t, Config{TrustedProxies: trusted})
		fx.srv.app.Get("/test/ip", func(c *fiber.Ctx) error { return c.SendString(c.IP()) })
		addr := serve(t, fx)
		_, got := get(t, &http.Client{Timeout: 10 * time.Second}, "http://"+addr+"/test/ip", "X-Forwarded-For", "203.0.113.7")
		if got != want {
			t.Errorf("trusted %v: c.IP() = %q, want %q", trusted, got, want)
		}
	}
	f(nil, "127.0.0.1")
	f([]string{"192.0.2.0/24"}, "127.0.0.1")
	f([]string{"127.0.0.1"}, "203.0.113.7")
	f([]string{"127.0.0.0/8"}, "203.0.113.7")
}

// TestTLS serves HTTPS with a throwaway certificate; the session cookie is
// Secure there.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	fx := newFixture(t, Config{TLSCert: certFile, TLSKey: keyFile})
	if err := fx.store.AddUser(context.Background(), "bob", auth.RoleViewer, "bobs password"); err != nil {
		t.Fatal(err)
	}
	addr := serve(t, fx)
	pool := x509.NewCertPool()
	certPEM, err := os.ReadFile(certFile)
	if err != nil || !pool.AppendCertsFromPEM(certPEM) {
		t.Fatalf("read back certificate: %v", err)
	}
	c := &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if code, body := get(t, c, "https://"+addr+"/healthz"); code != 200 || body != `{"status":"ok"}` {
		t.Errorf("healthz over TLS: %d %s", code, body)
	}
	resp, err := c.PostForm("https://"+addr+"/login", url.Values{"name": {"bob"}, "password": {"bobs password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || !strings.Contains(strings.ToLower(resp.Header.Get("Set-Cookie")), "secure") {
		t.Errorf("login over TLS: %d Set-Cookie %q (want Secure)", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
	// Plain HTTP to the TLS port gets nothing useful.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && string(b) == `{"status":"ok"}` {
			t.Error("the TLS listener answered plain HTTP")
		}
	}
}

func writeSelfSigned(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// BenchmarkSearchRequest is one authenticated search over a real socket:
// HTTP parsing, the SQLite token lookup, parameter parsing and the JSON of
// 100 hits from a fake Searcher.
func BenchmarkSearchRequest(b *testing.B) {
	fx := newFixture(b, Config{})
	fx.search.res = index.Result{Total: 1000, Hits: benchHits(100)}
	addr := serve(b, fx)
	c := &http.Client{Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/search?q=failed&from=now-1h", nil)
	req.Header.Set("Authorization", "Bearer "+fx.tokens[auth.RoleViewer])
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
