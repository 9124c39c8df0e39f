package main

// The end-to-end tests drive the real binary: it is built once in TestMain,
// started with `segwatch serve` on 127.0.0.1 ports, fed by real clients
// (logger, loggen, softflowd) and queried through the HTTP API with a token
// made by `segwatch token create`.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "segwatch-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "segwatch")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build segwatch:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTool returns the path of an external client, skipping the test
// when it is missing on a developer's machine but failing under CI, where
// .ci/run installs it (a silently skipped test there would hide a gap).
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run must install it", name)
		}
		t.Skipf("%s is not installed (apt-get install it to run this test)", name)
	}
	return p
}

// freePort returns a port that was free on 127.0.0.1 for both TCP and UDP
// a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// server is one running `segwatch serve`.
type server struct {
	t          testing.TB
	data       string
	config     string
	syslogPort int // UDP and TCP
	flowPort   int
	httpPort   int
	cmd        *exec.Cmd
	stderr     *syncBuffer
	token      string
	exited     chan error
}

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

// testConfig is a site whose "lab" segment holds 127.0.0.0/8, so that
// messages sent from this machine land in a known segment.
const testConfig = `
retention_days: 90
segments:
  - {name: lab,     kind: iot,    cidrs: [127.0.0.0/8]}
  - {name: cameras, kind: iot,    cidrs: [10.20.0.0/24]}
  - {name: servers, kind: server, cidrs: [10.30.0.0/24]}
  - {name: office,  kind: office, cidrs: [10.10.0.0/24]}
policy:
  - {from: cameras, to: servers, ports: [tcp/554, tcp/443]}
categories:
  camera: {silent_after: 10m, criticality: high}
devices:
  - {name: cam-lobby-01, ip: 10.20.0.11, category: camera, owner: facilities@example.com}
syslog:
  rate_limit: {burst: 1000000, interval: 1s}
`

// startServer writes cfg (testConfig when empty) and starts segwatch serve
// with fresh ports, waiting until /healthz answers.
func startServer(t testing.TB, cfg string, extra ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{t: t, data: filepath.Join(dir, "data"), config: filepath.Join(dir, "segwatch.yaml")}
	if cfg == "" {
		cfg = testConfig
	}
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.syslogPort, s.flowPort, s.httpPort = freePort(t), freePort(t), freePort(t)
	s.start(extra...)
	t.Cleanup(s.stop)
	s.token = s.createToken("analyst", "e2e")
	return s
}

func (s *server) args(extra ...string) []string {
	a := []string{"serve", "--config", s.config, "--data", s.data,
		"--syslog-udp", fmt.Sprintf("127.0.0.1:%d", s.syslogPort),
		"--syslog-tcp", fmt.Sprintf("127.0.0.1:%d", s.syslogPort),
		"--netflow", fmt.Sprintf("127.0.0.1:%d", s.flowPort),
		"--http", fmt.Sprintf("127.0.0.1:%d", s.httpPort)}
	return append(a, extra...)
}

func (s *server) start(extra ...string) {
	t := s.t
	t.Helper()
	s.stderr = &syncBuffer{}
	s.cmd = exec.Command(binPath, s.args(extra...)...)
	s.cmd.Stderr = s.stderr
	s.cmd.Stdout = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.exited = make(chan error, 1)
	go func() { s.exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.exited:
			s.exited <- err
			t.Fatalf("segwatch serve exited early: %v\n%s", err, s.stderr)
		default:
		}
		resp, err := http.Get(s.url("/healthz"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("segwatch serve not healthy after 30s:\n%s", s.stderr)
}

// stop sends SIGTERM and checks for exit status 0 within 10 s (SPEC §1).
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	t := s.t
	select {
	case err := <-s.exited:
		s.exited <- err
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		s.exited <- err
		if err != nil {
			t.Errorf("segwatch serve exited with %v after SIGTERM:\n%s", err, s.stderr)
		}
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Errorf("segwatch serve did not exit within 10s of SIGTERM:\n%s", s.stderr)
	}
}

func (s *server) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", s.httpPort, path)
}

// segwatch runs a CLI command of the binary and returns stdout.
func segwatch(t testing.TB, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func (s *server) createToken(role, name string) string {
	out, errs, code := segwatch(s.t, "", "token", "create", "--data", s.data, "--role", role, "--name", name)
	if code != 0 {
		s.t.Fatalf("token create: exit %d: %s", code, errs)
	}
	return strings.TrimSpace(out)
}

// get performs an authenticated GET and decodes JSON into v; it returns the
// status code.
func (s *server) get(path string, v any) int {
	s.t.Helper()
	return s.do("GET", path, s.token, nil, v)
}

func (s *server) do(method, path, token string, body any, v any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url(path), rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && len(b) > 0 {
		if err := json.Unmarshal(b, v); err != nil {
			s.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// hit is an event as the search API returns it.
type hit struct {
	ID         string                       `json:"id"`
	Time       time.Time                    `json:"time"`
	Received   time.Time                    `json:"received"`
	Kind       string                       `json:"kind"`
	SourceIP   string                       `json:"source_ip"`
	Device     string                       `json:"device"`
	Segment    string                       `json:"segment"`
	Host       string                       `json:"host"`
	App        string                       `json:"app"`
	MsgID      string                       `json:"msgid"`
	Facility   *int                         `json:"facility"`
	Severity   *int                         `json:"severity"`
	Message    string                       `json:"message"`
	SD         map[string]map[string]string `json:"sd"`
	Raw        string                       `json:"raw"`
	ParseError string                       `json:"parse_error"`
	Truncated  bool                         `json:"truncated"`
	SrcIP      string                       `json:"src_ip"`
	DstIP      string                       `json:"dst_ip"`
	SrcPort    int                          `json:"src_port"`
	DstPort    int                          `json:"dst_port"`
	Proto      string                       `json:"proto"`
	Bytes      uint64                       `json:"bytes"`
	Packets    uint64                       `json:"packets"`
	SrcSegment string                       `json:"src_segment"`
	DstSegment string                       `json:"dst_segment"`
	Flows      uint64                       `json:"flows"`
	Fragments  []string                     `json:"fragments"`
}

type searchResult struct {
	Total  int     `json:"total"`
	TookMS float64 `json:"took_ms"`
	Hits   []hit   `json:"hits"`
}

func (s *server) search(q string, extra url.Values) searchResult {
	s.t.Helper()
	v := url.Values{"q": {q}, "limit": {"10000"}}
	for k, vs := range extra {
		v[k] = vs
	}
	var r searchResult
	if code := s.get("/api/v1/search?"+v.Encode(), &r); code != 200 {
		s.t.Fatalf("search %q: status %d", q, code)
	}
	return r
}

// waitTotal polls a search until it reports want hits (events are
// searchable as soon as the pipeline has them, but that is asynchronous to
// the sender).
func (s *server) waitTotal(q string, want int) searchResult {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var r searchResult
	for time.Now().Before(deadline) {
		r = s.search(q, nil)
		if r.Total >= want {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("search %q: total %d after 60s, want %d\n%s", q, r.Total, want, s.stderr)
	return r
}

// metric returns the value of one Prometheus sample line from /metrics.
func (s *server) metric(name string) float64 {
	s.t.Helper()
	resp, err := http.Get(s.url("/metrics"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			var v float64
			fmt.Sscanf(strings.TrimPrefix(line, name+" "), "%g", &v)
			return v
		}
	}
	return 0
}
