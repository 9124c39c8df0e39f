package syslog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/segwatch/segwatch/ingest/event"
	"github.com/segwatch/segwatch/ingest/inventory"
	"github.com/segwatch/segwatch/ingest/queue"
)

// waitFor bounds every wait in these tests: generous, because the machine
// is shared, and only a failure waits that long.
const waitFor = 20 * time.Second

type harness struct {
	t    *testing.T
	r    *Receiver
	q    *queue.Queue
	set  *metrics.Set
	stop func()
	got  []event.Event
}

func testInventory(t *testing.T) *inventory.Holder {
	t.Helper()
	inv, err := inventory.New(
		[]inventory.Segment{{Name: "lab", Kind: "iot", Prefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
		[]inventory.Device{{Name: "loopback-device", IP: netip.MustParseAddr("127.0.0.1"), Category: "camera", Owner: "ops@example.com"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return inventory.NewHolder(inv)
}

// start runs a receiver on 127.0.0.1 port 0 with a real queue of qsize
// events (or sink, when not nil). It stops at the end of the test and fails
// the test if Run does not return nil.
func start(t *testing.T, cfg Config, qsize int, sink Sink) *harness {
	t.Helper()
	h := &harness{t: t, q: queue.New(qsize), set: metrics.NewSet()}
	if sink == nil {
		sink = h.q
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := New(cfg, Deps{Logger: logger, Metrics: h.set, Inventory: testInventory(t), Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Listen(); err != nil {
		t.Fatal(err)
	}
	h.r = r
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(waitFor):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(h.stop)
	return h
}

// testWriter sends the receiver's log to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func localCfg() Config {
	cfg := DefaultConfig()
	cfg.UDPAddr, cfg.TCPAddr = "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

// collect drains the queue until it has taken n events in all (including
// earlier calls), failing the test if they do not come.
func (h *harness) collect(n int) []event.Event {
	h.t.Helper()
	deadline := time.After(waitFor)
	for len(h.got) < n {
		for _, b := range h.q.Drain(1 << 20) {
			h.got = append(h.got, b...)
		}
		if len(h.got) >= n {
			break
		}
		select {
		case <-h.q.Ready():
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			h.t.Fatalf("got %d events, want %d", len(h.got), n)
		}
	}
	return h.got
}

// counter reads a metric of the harness's set.
func (h *harness) counter(name string) uint64 {
	return h.set.GetOrCreateCounter(name).Get()
}

func dropped(reason string) string { return `segwatch_events_dropped_total{reason="` + reason + `"}` }

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dialTCP(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// closedByPeer waits until the server closes c.
func closedByPeer(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitFor))
	var b [64]byte
	for {
		_, err := c.Read(b[:])
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open")
		}
		return
	}
}

func octet(msg string) string { return fmt.Sprintf("%d %s", len(msg), msg) }

func byMessage(evs []event.Event) map[string]event.Event {
	m := make(map[string]event.Event, len(evs))
	for _, e := range evs {
		m[e.Message] = e
	}
	return m
}

func newSet() *metrics.Set { return metrics.NewSet() }

// discard is a sink that keeps nothing.
type discard struct{}

func (discard) Put(context.Context, []event.Event) error { return nil }
func (discard) TryPut([]event.Event) bool                { return true }
