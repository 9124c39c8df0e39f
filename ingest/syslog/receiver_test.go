package syslog

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

func TestUDPAndEnrichment(t *testing.T) {
	h := start(t, localCfg(), 1000, nil)
	c, err := net.Dial("udp", h.r.Addrs().UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write(t, c, "<34>1 2026-12-03T18:00:00Z cam-01 sshd 42 - - Failed password\n")
	write(t, c, "<13>Dec  3 18:00:00 cam-01 app: second")
	evs := h.collect(2)
	m := byMessage(evs)
	e := m["Failed password"]
	if e.Host != "cam-01" || e.App != "sshd" || e.Severity != 2 || e.SourceIP != "127.0.0.1" ||
		e.Segment != "lab" || e.Device != "loopback-device" || e.Owner != "ops@example.com" || e.Category != "camera" ||
		e.Raw != "<34>1 2026-12-03T18:00:00Z cam-01 sshd 42 - - Failed password\n" {
		t.Errorf("udp event: %+v", e)
	}
	if _, ok := m["second"]; !ok {
		t.Errorf("second datagram missing: %v", m)
	}
	if n := h.counter(`segwatch_syslog_messages_received_total{transport="udp"}`); n != 2 {
		t.Errorf("received udp = %d, want 2", n)
	}
}

func TestTCPFramingPerConnection(t *testing.T) {
	h := start(t, localCfg(), 1000, nil)
	addr := h.r.Addrs().TCP
	octetConn := dialTCP(t, addr)
	lfConn := dialTCP(t, addr)
	bad := dialTCP(t, addr)

	write(t, octetConn, octet("<14>1 - host a - - - octet one")+octet("<14>1 - host a - - - octet\ntwo"))
	write(t, lfConn, "<13>Dec  3 18:00:00 host b: lf one\n<13>Dec  3 18:00:00 host b: lf ")
	h.collect(3)
	// The rest of a split frame, in a later write.
	write(t, lfConn, "two\n")
	three := octet("<14>1 - host a - - - octet three")
	write(t, octetConn, three[:20])
	time.Sleep(10 * time.Millisecond) // let the first half be read alone
	write(t, octetConn, three[20:])

	write(t, bad, "99999999999 x")
	closedByPeer(t, bad)
	if n := h.counter(dropped(ReasonBadFrame)); n != 1 {
		t.Errorf("bad_frame = %d, want 1", n)
	}
	// The other connections keep working after the bad one is gone.
	write(t, lfConn, "<13>Dec  3 18:00:00 host b: lf three\n")
	write(t, octetConn, octet("<14>1 - host a - - - octet four"))
	m := byMessage(h.collect(7))
	for _, want := range []string{"octet one", "octet\ntwo", "octet three", "octet four", "lf one", "lf two", "lf three"} {
		if _, ok := m[want]; !ok {
			t.Errorf("missing %q in %v", want, m)
		}
	}
}

func TestTruncatedAndGarbageOverTCP(t *testing.T) {
	h := start(t, localCfg(), 1000, nil)
	c := dialTCP(t, h.r.Addrs().TCP)
	big := "<14>1 - host app - - - " + strings.Repeat("z", 70<<10)
	write(t, c, octet(big)+octet("\x00\xff garbage \x01")+octet("<14>1 - host app - - - after"))
	evs := h.collect(3)
	if !evs[0].Truncated || len(evs[0].Raw) != DefaultMaxMessageBytes || evs[0].Host != "host" {
		t.Errorf("70 KiB message: truncated=%v raw %d bytes host %q", evs[0].Truncated, len(evs[0].Raw), evs[0].Host)
	}
	if evs[1].ParseError == "" || evs[1].Message != "\x00\xff garbage \x01" || evs[1].Severity != event.NoSeverity {
		t.Errorf("garbage: %+v", evs[1])
	}
	if evs[2].Message != "after" {
		t.Errorf("message after the big one: %q", evs[2].Message)
	}
	if n := h.counter("segwatch_syslog_parse_errors_total"); n != 1 {
		t.Errorf("parse errors = %d, want 1", n)
	}
}

func TestManyConnections(t *testing.T) {
	const n = 1000
	cfg := localCfg()
	cfg.MaxConnectionsPerSource = n // every test connection comes from 127.0.0.1
	h := start(t, cfg, 10*n, nil)
	addr := h.r.Addrs().TCP.String()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
		conns[i] = c
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			fmt.Fprintf(c, "<13>Dec  3 18:00:00 host app: conn %d\n", i)
		})
	}
	wg.Wait()
	m := byMessage(h.collect(n))
	for i := range n {
		if _, ok := m[fmt.Sprintf("conn %d", i)]; !ok {
			t.Fatalf("message of connection %d missing", i)
		}
	}
}

func TestConnectionLimits(t *testing.T) {
	cfg := localCfg()
	cfg.MaxConnections, cfg.MaxConnectionsPerSource = 3, 2
	h := start(t, cfg, 100, nil)
	addr := h.r.Addrs().TCP
	a, b := dialTCP(t, addr), dialTCP(t, addr)
	write(t, a, "<13>Dec  3 18:00:00 host app: a\n")
	write(t, b, "<13>Dec  3 18:00:00 host app: b\n")
	h.collect(2) // both admitted
	over := dialTCP(t, addr)
	closedByPeer(t, over)
	if n := h.counter(dropped(ReasonTooManyConnections)); n != 1 {
		t.Errorf("too_many_connections = %d, want 1", n)
	}
	// A slot frees when a connection ends.
	a.Close()
	eventually(t, "the closed connection to be released", func() bool {
		return h.set.GetOrCreateGauge("segwatch_syslog_connections", nil).Get() == 1
	})
	c := dialTCP(t, addr)
	write(t, c, "<13>Dec  3 18:00:00 host app: c\n")
	h.collect(3)

	// Another source may still connect up to the total limit of 3.
	other := dialFrom(t, "127.0.0.2", addr)
	write(t, other, "<13>Dec  3 18:00:00 host app: other source\n")
	h.collect(4)
	third := dialFrom(t, "127.0.0.3", addr)
	closedByPeer(t, third)
	if n := h.counter(dropped(ReasonTooManyConnections)); n != 2 {
		t.Errorf("too_many_connections = %d, want 2", n)
	}
}

// dialFrom connects from another loopback address (Linux routes 127/8).
func dialFrom(t *testing.T, local string, addr net.Addr) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("dial from %s: %v", local, err)
		}
		t.Skipf("cannot dial from %s: %v (skipped outside CI)", local, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestIdleTimeout(t *testing.T) {
	cfg := localCfg()
	cfg.IdleTimeout = 50 * time.Millisecond
	h := start(t, cfg, 100, nil)
	c := dialTCP(t, h.r.Addrs().TCP)
	write(t, c, "<13>Dec  3 18:00:00 host app: before idle\n")
	closedByPeer(t, c)
	if m := byMessage(h.collect(1)); m["before idle"].Message == "" {
		t.Errorf("message before idle lost: %v", m)
	}
}

func TestTCPBackpressureLosesNothing(t *testing.T) {
	const n = 3000
	h := start(t, localCfg(), 10, nil) // a queue far smaller than the burst
	c := dialTCP(t, h.r.Addrs().TCP)
	go func() {
		var sb strings.Builder
		for i := range n {
			fmt.Fprintf(&sb, "<13>Dec  3 18:00:00 host app: msg %d\n", i)
		}
		c.Write([]byte(sb.String()))
	}()
	// The queue fills; the receiver must wait, not drop.
	eventually(t, "the queue to fill", func() bool { return h.q.Len() >= 10 })
	m := byMessage(h.collect(n))
	for i := range n {
		if _, ok := m[fmt.Sprintf("msg %d", i)]; !ok {
			t.Fatalf("msg %d lost", i)
		}
	}
	for _, reason := range []string{ReasonQueueFull, ReasonShutdown, ReasonRateLimited} {
		if v := h.counter(dropped(reason)); v != 0 {
			t.Errorf("dropped %s = %d", reason, v)
		}
	}
}

func TestUDPQueueFullCounted(t *testing.T) {
	h := start(t, localCfg(), 5, nil)
	c, err := net.Dial("udp", h.r.Addrs().UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The first batch fills the (empty) queue, whatever its size; nothing
	// drains it, so every later batch cannot fit.
	fmt.Fprintf(c, "<13>Dec  3 18:00:00 host app: first")
	eventually(t, "the first datagram to be queued", func() bool { return h.q.Len() > 0 })
	const n = 200
	for i := range n {
		fmt.Fprintf(c, "<13>Dec  3 18:00:00 host app: udp %d", i)
	}
	// Every datagram (loopback, a 32 MiB socket buffer: none is lost on
	// the way) is either queued or counted.
	eventually(t, "every datagram to be accounted for", func() bool {
		recv := h.counter(`segwatch_syslog_messages_received_total{transport="udp"}`)
		return recv == n+1 && recv == uint64(h.q.Len())+h.counter(dropped(ReasonQueueFull))
	})
	if h.counter(dropped(ReasonQueueFull)) == 0 {
		t.Errorf("no queue_full drops with a queue of 5 and %d datagrams", n)
	}
}

func TestRateLimit(t *testing.T) {
	cfg := localCfg()
	cfg.RateBurst, cfg.RateInterval = 50, time.Hour // no refill during the test
	h := start(t, cfg, 10000, nil)
	u, err := net.Dial("udp", h.r.Addrs().UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for i := range 100 {
		fmt.Fprintf(u, "<13>Dec  3 18:00:00 host app: udp %d", i)
	}
	eventually(t, "all datagrams to be read", func() bool {
		return h.counter(`segwatch_syslog_messages_received_total{transport="udp"}`) == 100
	})
	if d := h.counter(dropped(ReasonRateLimited)); d != 50 {
		t.Errorf("rate_limited = %d, want 50", d)
	}
	h.collect(50)
	// TCP from the same source (bucket now empty) is slowed, not dropped:
	// stopping the receiver ends the wait and the events are still queued.
	c := dialTCP(t, h.r.Addrs().TCP)
	write(t, c, "<13>Dec  3 18:00:00 host app: tcp over the limit\n")
	eventually(t, "the tcp message to be read", func() bool {
		return h.counter(`segwatch_syslog_messages_received_total{transport="tcp"}`) == 1
	})
	h.stop()
	m := byMessage(h.collect(51))
	if _, ok := m["tcp over the limit"]; !ok {
		t.Errorf("tcp message over the rate limit lost")
	}
}

func TestShutdownQueuesWhatWasRead(t *testing.T) {
	h := start(t, localCfg(), 1000, nil)
	c := dialTCP(t, h.r.Addrs().TCP)
	// Frames read before the shutdown are queued even though the queue's
	// consumer only looks after Run has returned. (A partial last frame is
	// handed over too: the framer tests cover that, here it would depend on
	// when the kernel delivers it.)
	write(t, c, "<13>Dec  3 18:00:00 host app: one\n<13>Dec  3 18:00:00 host app: two\n")
	eventually(t, "the frames to be read", func() bool {
		return h.counter(`segwatch_syslog_messages_received_total{transport="tcp"}`) == 2
	})
	h.stop()
	m := byMessage(h.collect(2))
	if m["one"].Message == "" || m["two"].Message == "" {
		t.Errorf("events lost at shutdown: %v", m)
	}
	if _, err := net.Dial("tcp", h.r.Addrs().TCP.String()); err == nil {
		t.Errorf("listener still accepting after Run returned")
	}
}

// panicSink panics on the first Put, as a bug in a consumer might.
type panicSink struct {
	Sink
	once sync.Once
}

func (p *panicSink) Put(ctx context.Context, evs []event.Event) error {
	first := false
	p.once.Do(func() { first = true })
	if first {
		panic("consumer bug")
	}
	return p.Sink.Put(ctx, evs)
}

func TestPanicInHandlerIsContained(t *testing.T) {
	var h *harness
	ps := &panicSink{}
	h = start(t, localCfg(), 100, ps)
	ps.Sink = h.q
	a := dialTCP(t, h.r.Addrs().TCP)
	write(t, a, "<13>Dec  3 18:00:00 host app: boom\n")
	closedByPeer(t, a)
	if n := h.counter("segwatch_syslog_handler_panics_total"); n != 1 {
		t.Errorf("panics = %d, want 1", n)
	}
	if n := h.counter(dropped(ReasonPanic)); n != 1 {
		t.Errorf("dropped panic = %d, want 1", n)
	}
	b := dialTCP(t, h.r.Addrs().TCP)
	write(t, b, "<13>Dec  3 18:00:00 host app: fine\n")
	if m := byMessage(h.collect(1)); m["fine"].Message == "" {
		t.Errorf("second connection: %v", m)
	}
}

// panicTrySink panics on the first TryPut.
type panicTrySink struct {
	Sink
	once sync.Once
}

func (p *panicTrySink) TryPut(evs []event.Event) bool {
	first := false
	p.once.Do(func() { first = true })
	if first {
		panic("consumer bug")
	}
	return p.Sink.TryPut(evs)
}

func TestUDPPanicIsContained(t *testing.T) {
	ps := &panicTrySink{}
	h := start(t, localCfg(), 100, ps)
	ps.Sink = h.q
	c, err := net.Dial("udp", h.r.Addrs().UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write(t, c, "<13>Dec  3 18:00:00 host app: boom")
	eventually(t, "the panic to be counted", func() bool {
		return h.counter("segwatch_syslog_handler_panics_total") == 1
	})
	if n := h.counter(dropped(ReasonPanic)); n != 1 {
		t.Errorf("dropped panic = %d, want 1", n)
	}
	write(t, c, "<13>Dec  3 18:00:00 host app: fine")
	if m := byMessage(h.collect(1)); m["fine"].Message == "" {
		t.Errorf("after the panic: %v", m)
	}
}

func TestListenFailsFast(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := localCfg()
	cfg.TCPAddr = busy.Addr().String()
	r, err := New(cfg, Deps{Metrics: newSet(), Sink: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Listen()
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Listen on a busy port: %v", err)
	}
	if r.udp != nil {
		t.Errorf("UDP socket left bound after a failed Listen")
	}
}

func TestNewValidates(t *testing.T) {
	f := func(mod func(*Config), want string) {
		t.Helper()
		cfg := localCfg()
		mod(&cfg)
		_, err := New(cfg, Deps{Metrics: newSet(), Sink: discard{}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to mention %q", err, want)
		}
	}
	f(func(c *Config) { c.MaxMessageBytes = 100 }, "max_message_bytes")
	f(func(c *Config) { c.TLSAddr = "127.0.0.1:0" }, "cert and key")
	f(func(c *Config) { c.TLSAddr, c.TLS.Cert, c.TLS.Key = "127.0.0.1:0", "/nonexistent", "/nonexistent" }, "load tls")
	f(func(c *Config) {
		c.TLSAddr, c.TLS.Cert, c.TLS.Key, c.TLS.AllowedPeers = "127.0.0.1:0", "c", "k", []string{"cam.example.com"}
	}, "needs client_ca")
	f(func(c *Config) {
		c.TLSAddr, c.TLS.Cert, c.TLS.Key, c.TLS.AllowedPeers = "127.0.0.1:0", "c", "k", []string{"sha256:zz"}
	}, "fingerprint")
	f(func(c *Config) { c.RateInterval = -time.Second }, "interval")
}

func TestUDPDatagramOverMaxIsTruncated(t *testing.T) {
	cfg := localCfg()
	cfg.MaxMessageBytes = 1000
	h := start(t, cfg, 100, nil)
	c, err := net.Dial("udp", h.r.Addrs().UDP.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "<13>Dec  3 18:00:00 host app: " + strings.Repeat("u", 2000)
	write(t, c, msg)
	write(t, c, msg[:1000])
	evs := h.collect(2)
	if evs[1].Truncated { // two readers: arrival order is not kept
		evs[0], evs[1] = evs[1], evs[0]
	}
	if !evs[0].Truncated || evs[0].Raw != msg[:1000] || evs[0].App != "app" {
		t.Errorf("long datagram: truncated=%v raw %d bytes app %q", evs[0].Truncated, len(evs[0].Raw), evs[0].App)
	}
	if evs[1].Truncated || evs[1].Raw != msg[:1000] {
		t.Errorf("datagram of exactly the limit: truncated=%v", evs[1].Truncated)
	}
	if n := h.counter("segwatch_syslog_messages_truncated_total"); n != 1 {
		t.Errorf("truncated counter = %d, want 1", n)
	}
}
