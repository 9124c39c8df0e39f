package syslog

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/segwatch/segwatch/ingest/event"
)

// countSink counts and discards.
type countSink struct{ n atomic.Int64 }

func (s *countSink) Put(_ context.Context, evs []event.Event) error {
	s.n.Add(int64(len(evs)))
	return nil
}

func (s *countSink) TryPut(evs []event.Event) bool {
	s.n.Add(int64(len(evs)))
	return true
}

// benchReceiver runs a receiver into a countSink; stop (also run at
// cleanup) shuts it down.
func benchReceiver(b *testing.B) (r *Receiver, sink *countSink, stop func()) {
	b.Helper()
	sink = &countSink{}
	cfg := localCfg()
	cfg.RateBurst = -1 // no limit
	r, err := New(cfg, Deps{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.NewSet(), Sink: sink})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				b.Error(err)
			}
		})
	}
	b.Cleanup(stop)
	return r, sink, stop
}

func waitCount(b *testing.B, s *countSink, n int64) {
	deadline := time.Now().Add(time.Minute)
	for s.n.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d events arrived", s.n.Load(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

const benchMsg3164 = "<34>Dec  3 18:14:15 cam-lobby-01 sshd[230]: Failed password for invalid user admin from 10.10.0.5 port 52811 ssh2"

// BenchmarkTCPReceive measures receive + frame + parse + enrich over one
// LF-framed TCP connection into a discarding sink.
func BenchmarkTCPReceive(b *testing.B) {
	r, sink, _ := benchReceiver(b)
	c, err := net.Dial("tcp", r.Addrs().TCP.String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const chunk = 1000
	buf := []byte(strings.Repeat(benchMsg3164+"\n", chunk))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sent := 0
	for sent < b.N {
		k := min(chunk, b.N-sent)
		if _, err := c.Write(buf[:k*(len(benchMsg3164)+1)]); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	waitCount(b, sink, int64(b.N))
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkUDPReceive measures receive + parse + enrich of datagrams into
// a discarding sink, keeping at most window datagrams in flight so that
// the socket buffer never overflows.
func BenchmarkUDPReceive(b *testing.B) {
	r, sink, _ := benchReceiver(b)
	c, err := net.Dial("udp", r.Addrs().UDP.String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const window = 2000
	msg := []byte(benchMsg3164)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		for int64(i)-sink.n.Load() >= window {
			time.Sleep(50 * time.Microsecond)
		}
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	waitCount(b, sink, int64(b.N))
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkUDPBurst sends 50,000 datagrams within one second (the issue 4
// target rate) and reports how many were lost before the receiver read
// them (kernel buffer overflow), per run.
func BenchmarkUDPBurst(b *testing.B) {
	const n, rate = 50000, 50000
	msg := []byte(benchMsg3164)
	var lost int64
	for b.Loop() {
		r, sink, stop := benchReceiver(b)
		c, err := net.Dial("udp", r.Addrs().UDP.String())
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := range n {
			if i%1000 == 0 {
				// Pace to the target rate in steps of 1000 datagrams.
				if d := time.Until(start.Add(time.Duration(i) * time.Second / rate)); d > 0 {
					time.Sleep(d)
				}
			}
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
		// Wait until the count stops moving.
		for last := int64(-1); sink.n.Load() != last; {
			last = sink.n.Load()
			time.Sleep(50 * time.Millisecond)
		}
		lost += n - sink.n.Load()
		stop()
	}
	b.ReportMetric(float64(lost)/float64(b.N), "lost/run")
}
