package netflow

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/segwatch/segwatch/ingest/event"
)

type refusingSink struct{}

func (refusingSink) Put(context.Context, []event.Event) error { return context.Canceled }
func (refusingSink) TryPut([]event.Event) bool                { return false }

func TestQueueFullCounted(t *testing.T) {
	set := metrics.NewSet()
	cfg := DefaultConfig()
	cfg.Aggregate = 0
	r, err := New(cfg, Deps{Sink: refusingSink{}, Metrics: set, Now: func() time.Time { return recvTime }})
	if err != nil {
		t.Fatal(err)
	}
	r.handle(v5Packet(3, 0), exporterA, nil)
	if n := set.GetOrCreateCounter(`segwatch_events_dropped_total{reason="queue_full"}`).Get(); n != 3 {
		t.Errorf("dropped %d, want 3", n)
	}
	if n := set.GetOrCreateCounter(`segwatch_netflow_flows_received_total`).Get(); n != 3 {
		t.Errorf("flows received %d, want 3", n)
	}
}

// TestShutdownFlushesAggregates: flows still in an open minute are
// delivered (with Put) when Run's context ends.
func TestShutdownFlushesAggregates(t *testing.T) {
	rig := startRig(t, DefaultConfig())
	conn, err := net.Dial("udp", rig.r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(v5Packet(4, 0)); err != nil {
		t.Fatal(err)
	}
	rig.waitFlows(t, 4)
	rig.stop()
	evs := rig.events()
	// Four identical records (same ports): one aggregate of four flows.
	if len(evs) != 1 || evs[0].Flows != 4 || evs[0].Bytes != 4000 || evs[0].Packets != 8 || evs[0].SrcPort != 40000 || evs[0].ID == "" {
		t.Fatalf("aggregates %+v", evs)
	}
	res, err := rig.store.Query(time.Now().Add(-time.Hour), time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matrix) != 1 || res.Matrix[0].Flows != 4 || res.Matrix[0].Bytes != 4000 || res.Matrix[0].From != "cameras" {
		t.Errorf("traffic %+v", res.Matrix)
	}
}

// panickySink panics on its first TryPut: the receiver must count the
// panic and go on with the next datagram.
type panickySink struct {
	countingSink
	panicked bool
}

func (s *panickySink) TryPut(evs []event.Event) bool {
	if !s.panicked {
		s.panicked = true
		panic("boom")
	}
	return s.countingSink.TryPut(evs)
}

func TestPanicRecovered(t *testing.T) {
	set := metrics.NewSet()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Aggregate = 0
	sink := &panickySink{}
	r, err := New(cfg, Deps{Sink: sink, Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	conn, err := net.Dial("udp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	flows := set.GetOrCreateCounter(`segwatch_netflow_flows_received_total`)
	for i, want := range []uint64{1, 2} {
		if _, err := conn.Write(v5Packet(1, 0)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for flows.Get() < want {
			if time.Now().After(deadline) {
				t.Fatalf("datagram %d: %d flows received", i, flows.Get())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := set.GetOrCreateCounter(`segwatch_netflow_decode_errors_total{reason="panic"}`).Get(); n != 1 {
		t.Errorf("panics counted %d, want 1", n)
	}
	if sink.n != 1 {
		t.Errorf("sink got %d events after the panic, want 1", sink.n)
	}
}
