package netflow

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/segwatch/segwatch/index/traffic"
	"github.com/segwatch/segwatch/ingest/queue"
)

// benchPackets returns a template packet and a data packet of 30 IPv4
// records (a full NetFlow export packet) for version 9 or 10.
func benchPackets(version uint16) (tmpl, data []byte) {
	p := &packet{version: version, domain: 1, export: time.Now(), uptime: 100_000}
	p.template(300, v4Template...)
	tmpl = p.bytes()
	var recs []byte
	for i := range 30 {
		recs = append(recs, v4Record("10.20.0.11", "10.30.0.5", uint16(40000+i), 554, 6, 1500, 3, 90_000, 99_000)...)
	}
	p = &packet{version: version, domain: 1, export: time.Now(), uptime: 100_000}
	p.set(300, recs)
	return tmpl, p.bytes()
}

func benchDecode(b *testing.B, tmpl, data []byte) {
	d := NewDecoder(time.Hour, 16, 16)
	now := time.Now()
	if tmpl != nil {
		if _, _, err := d.Decode(tmpl, exporterA, now, nil); err != nil {
			b.Fatal(err)
		}
	}
	var flows []Flow
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var err error
		flows, _, err = d.Decode(data, exporterA, now, flows[:0])
		if err != nil || len(flows) == 0 {
			b.Fatal(err, len(flows))
		}
		n += len(flows)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "flows/s")
}

// BenchmarkDecode measures the decoder alone on one core (30-record
// packets for v9/IPFIX; 30 records for v5).
func BenchmarkDecode(b *testing.B) {
	b.Run("v5", func(b *testing.B) { benchDecode(b, nil, v5Packet(30, 0)) })
	b.Run("v9", func(b *testing.B) { t, d := benchPackets(9); benchDecode(b, t, d) })
	b.Run("ipfix", func(b *testing.B) { t, d := benchPackets(10); benchDecode(b, t, d) })
	b.Run("softflowd-ipfix", func(b *testing.B) {
		pkt, err := os.ReadFile(filepath.Join("testdata", "softflowd-v10-0.bin"))
		if err != nil {
			b.Fatal(err)
		}
		benchDecode(b, nil, pkt)
	})
}

// BenchmarkHandle measures one datagram through decode, normalization,
// inventory enrichment, the traffic rollup and aggregation (no socket).
func BenchmarkHandle(b *testing.B) {
	for _, agg := range []time.Duration{0, time.Minute} {
		b.Run("aggregate="+agg.String(), func(b *testing.B) {
			store := traffic.New(b.TempDir())
			if err := store.Open(); err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			cfg := DefaultConfig()
			cfg.Aggregate = agg
			set := metrics.NewSet()
			r, err := New(cfg, Deps{Sink: &countingSink{}, Metrics: set, Inventory: testInventory(b), Traffic: store})
			if err != nil {
				b.Fatal(err)
			}
			tmpl, data := benchPackets(10)
			r.handle(tmpl, exporterA, nil)
			var flows []Flow
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				flows = r.handle(data, exporterA, flows[:0])
			}
			n := set.GetOrCreateCounter(`segwatch_netflow_flows_received_total`).Get()
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "flows/s")
		})
	}
}

// BenchmarkUDPEndToEnd sends IPFIX datagrams over loopback to a running
// receiver whose queue a consumer drains, and reports the flows that came
// out of the queue per second (datagrams the kernel dropped count as lost,
// not as throughput).
func BenchmarkUDPEndToEnd(b *testing.B) {
	store := traffic.New(b.TempDir())
	if err := store.Open(); err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	q := queue.New(100_000)
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Aggregate = 0
	set := metrics.NewSet()
	r, err := New(cfg, Deps{Sink: q, Metrics: set, Inventory: testInventory(b), Traffic: store})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	consumed := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-q.Ready():
				for _, batch := range q.Drain(10_000) {
					n += len(batch)
				}
			case <-ctx.Done():
				for _, batch := range q.Drain(1 << 30) {
					n += len(batch)
				}
				consumed <- n
				return
			}
		}
	}()
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(r.Addr().String())))
	if err != nil {
		b.Fatal(err)
	}
	tmpl, data := benchPackets(10)
	conn.Write(tmpl)
	time.Sleep(50 * time.Millisecond) // let the template arrive before data
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if _, err := conn.Write(data); err != nil {
			b.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // let the socket buffer drain
	elapsed := time.Since(start)       // sending and draining
	cancel()
	<-done
	n := <-consumed
	b.ReportMetric(float64(n)/elapsed.Seconds(), "flows/s")
	b.ReportMetric(float64(n)/float64(30*b.N), "delivered")
}
