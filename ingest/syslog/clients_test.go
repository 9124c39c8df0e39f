package syslog

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// needTool returns the path of a real syslog client, skipping the test when
// it is missing on a developer machine; in CI a missing tool is a failure.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (package %s); CI must have it", name, pkg)
		}
		t.Skipf("%s not installed (apt-get install %s); skipped outside CI", name, pkg)
	}
	return p
}

func portOf(a net.Addr) string {
	_, port, _ := net.SplitHostPort(a.String())
	return port
}

// TestLogger sends 1000 messages with util-linux logger over each framing
// and checks that every one arrives with host, app, severity and time.
func TestLogger(t *testing.T) {
	logger := needTool(t, "logger", "bsdutils")
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	short, _, _ := strings.Cut(hostname, ".")
	const n = 1000
	for _, tc := range []struct {
		name, transport string
		args            []string
		severity        int
	}{
		{"udp-3164", TransportUDP, []string{"--udp", "--rfc3164", "-p", "local3.warning"}, 4},
		{"tcp-lf-3164", TransportTCP, []string{"--tcp", "--rfc3164", "-p", "user.err"}, 3},
		{"tcp-octet-5424", TransportTCP, []string{"--tcp", "--octet-count", "--rfc5424", "-i", "-p", "daemon.crit", "--msgid", "M1"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, localCfg(), 2*n, nil)
			addr := h.r.Addrs().TCP
			if tc.transport == TransportUDP {
				addr = h.r.Addrs().UDP
			}
			var in strings.Builder
			for i := range n {
				fmt.Fprintf(&in, "word%s%d the quick message\n", strings.ReplaceAll(tc.name, "-", ""), i)
			}
			before := time.Now().Add(-time.Second)
			args := append([]string{"-n", "127.0.0.1", "-P", portOf(addr), "-t", "segapp"}, tc.args...)
			cmd := exec.Command(logger, args...)
			cmd.Stdin = strings.NewReader(in.String())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("logger: %v: %s", err, out)
			}
			m := byMessage(h.collect(n))
			for i := range n {
				msg := fmt.Sprintf("word%s%d the quick message", strings.ReplaceAll(tc.name, "-", ""), i)
				e, ok := m[msg]
				if !ok {
					t.Fatalf("message %d missing (got %d)", i, len(m))
				}
				if e.Host != hostname && e.Host != short || e.App != "segapp" || e.Severity != tc.severity ||
					e.ParseError != "" || e.Time.Before(before.Truncate(time.Second)) || e.Time.After(time.Now().Add(time.Second)) ||
					e.Segment != "lab" || e.SourceIP != "127.0.0.1" {
					t.Fatalf("message %d: host %q app %q severity %d time %v parse_error %q segment %q raw %q",
						i, e.Host, e.App, e.Severity, e.Time, e.ParseError, e.Segment, e.Raw)
				}
				if tc.name == "tcp-octet-5424" && (e.MsgID != "M1" || e.ProcID == "" || e.SD["timeQuality"] == nil) {
					t.Fatalf("5424 fields: msgid %q procid %q sd %v", e.MsgID, e.ProcID, e.SD)
				}
			}
			if got := h.counter(fmt.Sprintf(`segwatch_syslog_messages_received_total{transport=%q}`, tc.transport)); got != n {
				t.Errorf("received %d, want %d", got, n)
			}
		})
	}
}

// TestLoggen sends a burst with syslog-ng's loggen over TCP.
func TestLoggen(t *testing.T) {
	loggen := needTool(t, "loggen", "syslog-ng-core")
	cfg := localCfg()
	cfg.RateBurst = -1 // no limit
	h := start(t, cfg, 100000, nil)
	const n = 5000
	cmd := exec.Command(loggen, "--stream", "--inet", "--rate", "50000", "--number", fmt.Sprint(n),
		"--size", "300", "127.0.0.1", portOf(h.r.Addrs().TCP))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("loggen: %v: %s", err, out)
	}
	evs := h.collect(n)
	bad := 0
	for _, e := range evs {
		if e.ParseError != "" || e.Severity < 0 || e.Host == "" {
			bad++
			if bad < 3 {
				t.Errorf("loggen event not parsed: %+v", e)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d loggen events not parsed", bad, len(evs))
	}
}
