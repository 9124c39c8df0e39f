package main

// End-to-end ingest benchmarks against the real binary: `segwatch simulate`
// sends syslog at full rate over TCP (octet counting) from a second process;
// the benchmark reports wall events/s until the last event is searchable,
// events per server CPU-second until then (/proc/PID/stat) and over the
// server's whole life including the final flush (rusage), peak RSS (VmHWM)
// and bytes on disk per event after a clean shutdown. Run with
//   go test -run '^$' -bench EndToEnd -benchtime 1x ./cmd/segwatch
// (`make bench` includes it). Figures depend on the machine; compare ratios.

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procCPU returns user+system CPU seconds of pid.
func procCPU(t testing.TB, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ is 100 on Linux
}

// procPeakRSS returns VmHWM of pid in MiB.
func procPeakRSS(t testing.TB, pid int) float64 { return procStatusMiB(t, pid, "VmHWM") }

// procStatusMiB returns the kB field key (VmRSS, VmHWM…) of
// /proc/PID/status in MiB.
func procStatusMiB(t testing.TB, pid int, key string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb / 1024
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

// lifeCPU returns the CPU seconds (user+system) of the stopped server over
// its whole life, from its rusage; 0 if the system does not say.
func lifeCPU(s *server) float64 {
	if ru, ok := s.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return 0
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func BenchmarkEndToEndSyslogTCP(b *testing.B) {
	benchEndToEnd(b, "tcp", 300_000, 1_000_000)
}

// BenchmarkEndToEndSyslogUDP50k sends 50k datagrams/s for 10 s and reports
// how many the server dropped (target: none).
func BenchmarkEndToEndSyslogUDP50k(b *testing.B) {
	benchEndToEnd(b, "udp", 500_000, 50_000)
}

// BenchmarkEndToEndBurst50kTCP sends 50k events/s over TCP for 60 s: the
// target is no loss (backpressure) and a short catch-up after the sender
// stops (catchup-s).
func BenchmarkEndToEndBurst50kTCP(b *testing.B) {
	benchEndToEnd(b, "tcp", 3_000_000, 50_000)
}

func benchEndToEnd(b *testing.B, transport string, n int, rate int) {
	for i := 0; i < b.N; i++ {
		s := startServer(b, "", "--netflow", "off", "--log-level", "warn")
		pid := s.cmd.Process.Pid
		cpu0 := procCPU(b, pid)
		start := time.Now()
		cmd := exec.Command(binPath, "simulate", "--syslog", fmt.Sprintf("127.0.0.1:%d", s.syslogPort),
			"--transport", transport, "--netflow", "off", "--devices", "2000",
			"--rate", strconv.Itoa(rate), "--count", strconv.Itoa(n), "--duration", "0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("simulate: %v: %s", err, out)
		}
		sent := time.Since(start)
		// Wait until the count stops growing (UDP may lose some) or all arrived.
		var got int
		for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); {
			r := s.search("", nil)
			if r.Total >= n {
				got = r.Total
				break
			}
			if r.Total == got && transport == "udp" && time.Since(start) > sent+5*time.Second {
				break
			}
			got = r.Total
			time.Sleep(200 * time.Millisecond)
		}
		wall := time.Since(start)
		cpu := procCPU(b, pid) - cpu0
		rss := procPeakRSS(b, pid)
		dropped := s.metric(`segwatch_events_dropped_total{reason="queue_full"}`)
		s.stop()
		// Events are searchable once in memory and the journal; blocks
		// that did not fill are sealed and indexed later (FlushAge, or the
		// flush at shutdown). The server's whole life, that flush
		// included, is the honest cost per event.
		life := lifeCPU(s)
		if life == 0 {
			life = cpu
		}
		size := dirSize(filepath.Join(s.data, "index"))
		b.ReportMetric(float64(got)/wall.Seconds(), "events/s")
		b.ReportMetric(float64(got)/cpu, "events/CPU-s-until-searchable")
		b.ReportMetric(float64(got)/life, "events/CPU-s")
		b.ReportMetric(float64(size)/float64(got), "B/event")
		b.ReportMetric(rss, "peakRSS-MiB")
		b.ReportMetric(float64(n-got), "lost")
		b.ReportMetric(dropped, "queue_full")
		b.ReportMetric(sent.Seconds(), "send-s")
		b.ReportMetric((wall - sent).Seconds(), "catchup-s")
	}
}

// BenchmarkEndToEndNetflow sends NetFlow v5 from `segwatch simulate` (30
// records a datagram) to a server indexing raw flows (aggregate 0, so
// every record is an event) and reports flows/s until the last one is
// searchable, flows per server CPU-second over its whole life, and how
// many UDP lost (target: none at this rate).
func BenchmarkEndToEndNetflow(b *testing.B) {
	for i := 0; i < b.N; i++ {
		s := startServer(b, strings.Replace(testConfig, "syslog:", "netflow: {aggregate: 0}\nsyslog:", 1), "--log-level", "warn")
		start := time.Now()
		cmd := exec.Command(binPath, "simulate", "--syslog", "off", "--netflow", fmt.Sprintf("127.0.0.1:%d", s.flowPort),
			"--devices", "2000", "--rate", "40000", "--count", "400000", "--duration", "0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("simulate: %v: %s", err, out)
		}
		var logs, flows int
		if _, err := fmt.Sscanf(string(out), "sent %d syslog messages and %d flow records", &logs, &flows); err != nil || flows == 0 {
			b.Fatalf("simulate said %q", out)
		}
		sent := time.Since(start)
		var got int
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			r := s.search("kind:flow", url.Values{"limit": {"1"}})
			if r.Total >= flows || (r.Total == got && time.Since(start) > sent+5*time.Second) {
				got = r.Total
				break
			}
			got = r.Total
		}
		wall := time.Since(start)
		s.stop()
		b.ReportMetric(float64(got)/wall.Seconds(), "flows/s")
		b.ReportMetric(float64(got)/lifeCPU(s), "flows/CPU-s")
		b.ReportMetric(float64(flows-got), "lost")
		b.ReportMetric(float64(flows), "sent")
	}
}
