package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sendWithLogger feeds lines to one logger process (one line, one message;
// over TCP all go through one connection).
func sendWithLogger(t *testing.T, lines []string, args ...string) {
	t.Helper()
	logger := requireTool(t, "logger")
	cmd := exec.Command(logger, args...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logger %v: %v: %s", args, err, out)
	}
}

// TestSyslogThreeWays is issue 2's main acceptance: 1,000 RFC 5424 messages
// over TCP with octet counting, 1,000 RFC 3164 over UDP and 1,000 over TCP
// LF-framed, each with a unique word, are all found with the right fields.
func TestSyslogThreeWays(t *testing.T) {
	s := startServer(t, "")
	port := strconv.Itoa(s.syslogPort)
	host, _ := os.Hostname()
	if i := strings.IndexByte(host, '.'); i > 0 {
		host = host[:i]
	}
	const n = 1000
	type batch struct {
		app      string
		severity int
		args     []string
	}
	batches := []batch{
		{"e2e5424", 3, []string{"--tcp", "--octet-count", "--rfc5424", "-p", "local0.err"}},
		{"e2eudp", 4, []string{"--udp", "--rfc3164", "-p", "auth.warning"}},
		{"e2etcplf", 6, []string{"--tcp", "--rfc3164", "-p", "daemon.info"}},
	}
	start := time.Now().Add(-2 * time.Second)
	for _, b := range batches {
		lines := make([]string, n)
		for i := range lines {
			lines[i] = fmt.Sprintf("door event %s uniq%sw%04d from 10.20.0.11", b.app, b.app, i)
		}
		args := append([]string{"-n", "127.0.0.1", "-P", port, "-t", b.app}, b.args...)
		if b.app == "e2eudp" {
			// UDP has no flow control: send in slices so that the kernel's
			// receive buffer is never the thing under test here.
			for i := 0; i < n; i += 100 {
				sendWithLogger(t, lines[i:i+100], args...)
			}
			continue
		}
		sendWithLogger(t, lines, args...)
	}
	end := time.Now().Add(2 * time.Second)
	for _, b := range batches {
		r := s.waitTotal("app:"+b.app, n)
		if r.Total != n || len(r.Hits) != n {
			t.Fatalf("app:%s: total %d, %d hits, want %d", b.app, r.Total, len(r.Hits), n)
		}
		seen := map[string]bool{}
		for _, h := range r.Hits {
			if h.Host != host || h.App != b.app || h.Severity == nil || *h.Severity != b.severity ||
				h.Segment != "lab" || h.Kind != "log" || h.SourceIP != "127.0.0.1" {
				t.Fatalf("app:%s: wrong fields: %+v (want host %q severity %d segment lab)", b.app, h, host, b.severity)
			}
			if h.Time.Before(start) || h.Time.After(end) {
				t.Fatalf("app:%s: time %s outside [%s, %s]", b.app, h.Time, start, end)
			}
			for _, w := range strings.Fields(h.Message) {
				if strings.HasPrefix(w, "uniq") {
					seen[w] = true
				}
			}
		}
		if len(seen) != n {
			t.Fatalf("app:%s: %d distinct unique words, want %d", b.app, len(seen), n)
		}
		// Every unique word is found by itself, exactly once: spot-check.
		for _, i := range []int{0, 1, 499, 998, 999} {
			w := fmt.Sprintf("uniq%sw%04d", b.app, i)
			r := s.search(w, nil)
			if r.Total != 1 || len(r.Hits) != 1 || !strings.Contains(r.Hits[0].Message, w) {
				t.Fatalf("search %s: total %d hits %+v", w, r.Total, r.Hits)
			}
		}
	}
	// The contract's example query shape: a field filter, a numeric range and a phrase.
	r := s.search(`segment:lab severity:<=3 "door event e2e5424"`, nil)
	if r.Total != n {
		t.Fatalf("phrase + filters: total %d, want %d", r.Total, n)
	}
	if len(r.Hits[0].Fragments) == 0 || !strings.Contains(strings.Join(r.Hits[0].Fragments, " "), "<mark>") {
		t.Fatalf("no highlighted fragments: %+v", r.Hits[0])
	}
	// Paging and order.
	p1 := s.search("app:e2etcplf", url.Values{"limit": {"10"}, "order": {"asc"}})
	p2 := s.search("app:e2etcplf", url.Values{"limit": {"10"}, "offset": {"10"}, "order": {"asc"}})
	if p1.Total != n || len(p1.Hits) != 10 || len(p2.Hits) != 10 || p2.Hits[0].Time.Before(p1.Hits[9].Time) ||
		p1.Hits[0].ID == p2.Hits[0].ID {
		t.Fatalf("paging: %d/%d hits", len(p1.Hits), len(p2.Hits))
	}
	if got := s.metric(`segwatch_syslog_messages_received_total{transport="udp"}`); got < n {
		t.Fatalf("udp received metric %v < %d", got, n)
	}
}

// TestSyslogBadInput: a 70 KiB message is stored truncated, garbage is kept
// with parse_error, a bogus octet count closes only that connection.
func TestSyslogBadInput(t *testing.T) {
	s := startServer(t, "")
	port := strconv.Itoa(s.syslogPort)
	long := "bigmsg " + strings.Repeat("x", 70*1024)
	sendWithLogger(t, []string{long}, "--tcp", "--octet-count", "--rfc5424", "-S", "100000", "-n", "127.0.0.1", "-P", port, "-t", "bigapp")
	r := s.waitTotal("app:bigapp", 1)
	h := r.Hits[0]
	if !h.Truncated || len(h.Raw) != 65536 || !strings.HasPrefix(h.Message, "bigmsg xxx") {
		t.Fatalf("70 KiB message: truncated=%v raw %d bytes message %.20q", h.Truncated, len(h.Raw), h.Message)
	}

	u, err := net.Dial("udp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte("\x00\xff\xfegarbagetoken\x01\x02 not syslog at all")
	u.Write(garbage)
	u.Close()
	r = s.waitTotal("garbagetoken", 1)
	// JSON cannot carry invalid UTF-8: those bytes come back as U+FFFD.
	if r.Hits[0].ParseError == "" || !strings.HasSuffix(r.Hits[0].Raw, "garbagetoken\x01\x02 not syslog at all") {
		t.Fatalf("garbage: %+v", r.Hits[0])
	}

	good, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	fmt.Fprintf(good, "<13>Dec  3 10:00:00 host1 goodapp: before bogus\n")
	s.waitTotal("app:goodapp", 1)

	bad, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	bad.Write([]byte("99999999999 x"))
	bad.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bad.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection with a bogus octet count was not closed")
	}
	bad.Close()
	fmt.Fprintf(good, "<13>Dec  3 10:00:01 host1 goodapp: after bogus\n")
	s.waitTotal("app:goodapp", 2)
	if got := s.metric(`segwatch_events_dropped_total{reason="bad_frame"}`); got < 1 {
		t.Fatalf("bad_frame drops = %v, want >= 1", got)
	}
}

// TestRestartKeepsEvents: what was received before SIGTERM is searchable
// after a restart.
func TestRestartKeepsEvents(t *testing.T) {
	s := startServer(t, "")
	port := strconv.Itoa(s.syslogPort)
	lines := make([]string, 500)
	for i := range lines {
		lines[i] = fmt.Sprintf("restart check %d", i)
	}
	sendWithLogger(t, lines, "--tcp", "--octet-count", "--rfc5424", "-n", "127.0.0.1", "-P", port, "-t", "restartapp")
	s.waitTotal("app:restartapp", 500)
	s.stop()
	s.start()
	r := s.search("app:restartapp", nil)
	if r.Total != 500 {
		t.Fatalf("after restart: total %d, want 500", r.Total)
	}
	if _, err := os.Stat(filepath.Join(s.data, "index")); err != nil {
		t.Fatalf("no index dir: %v", err)
	}
}

// TestAuth: every /api/v1 call needs a token; health and metrics are open.
func TestAuth(t *testing.T) {
	s := startServer(t, "")
	for _, tok := range []string{"", "sw_not_a_real_token"} {
		if code := s.do("GET", "/api/v1/search?q=x", tok, nil, nil); code != 401 {
			t.Fatalf("search with token %q: status %d, want 401", tok, code)
		}
	}
	if code := s.do("GET", "/healthz", "", nil, nil); code != 200 {
		t.Fatalf("/healthz: %d", code)
	}
	if code := s.do("GET", "/metrics", "", nil, nil); code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	viewer := s.createToken("viewer", "v")
	if code := s.do("GET", "/api/v1/search?q=x", viewer, nil, nil); code != 200 {
		t.Fatalf("viewer search: %d", code)
	}
}

// TestStartupErrors: a bad flag, a bad config or a port in use exits 2 with
// one line on stderr, before anything is written to the data dir.
func TestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	badCfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badCfg, []byte("segments:\n  - {name: a, cidrs: [10.0.0.0/33]}\n"), 0o644)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bad flag", []string{"serve", "--data", data, "--no-such-flag"}, "no-such-flag"},
		{"bad config", []string{"serve", "--data", data, "--config", badCfg}, "segments[0].cidrs[0]"},
		{"missing config", []string{"serve", "--data", data, "--config", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"http port in use", []string{"serve", "--data", data, "--http", busyAddr, "--syslog-udp", free(), "--syslog-tcp", free(), "--netflow", free()}, busyAddr},
		{"syslog port in use", []string{"serve", "--data", data, "--syslog-tcp", busyAddr, "--syslog-udp", "off", "--netflow", "off", "--http", free()}, busyAddr},
		{"bad address", []string{"serve", "--data", data, "--http", "127.0.0.1:99999"}, "99999"},
		{"unknown command", []string{"frobnicate"}, "frobnicate"},
		{"token bad role", []string{"token", "create", "--data", data, "--role", "god", "--name", "x"}, "god"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := segwatch(t, "", c.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, stderr)
			}
			if strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || !strings.Contains(stderr, c.want) {
				t.Fatalf("stderr %q: want one line naming %q", stderr, c.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Fatalf("data dir was created: %v", err)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, _, code := segwatch(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "segwatch ") {
		t.Fatalf("version: %d %q", code, out)
	}
}
