package netflow

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/segwatch/segwatch/index/traffic"
	"github.com/segwatch/segwatch/ingest/event"
	"github.com/segwatch/segwatch/ingest/inventory"
	"github.com/segwatch/segwatch/ingest/netflow/flowtest"
	"github.com/segwatch/segwatch/ingest/queue"
)

var update = flag.Bool("update", false, "capture softflowd packets into testdata/ and the FuzzDecode corpus")

const softflowdPath = "/usr/sbin/softflowd"

// needSoftflowd skips without softflowd, except in CI where its absence
// is a failure (the acceptance test must not vanish silently).
func needSoftflowd(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(softflowdPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("softflowd is required in CI (apt-get install softflowd): %v", err)
		}
		t.Skipf("softflowd not installed (%v); install the Debian package to run this test", err)
	}
}

func testInventory(t testing.TB) *inventory.Holder {
	t.Helper()
	pfx := netip.MustParsePrefix
	inv, err := inventory.New([]inventory.Segment{
		{Name: "cameras", Kind: "iot", Prefixes: []netip.Prefix{pfx("10.20.0.0/24")}},
		{Name: "servers", Kind: "server", Prefixes: []netip.Prefix{pfx("10.30.0.0/24")}},
	}, []inventory.Device{
		{Name: "cam-lobby-01", IP: netip.MustParseAddr("10.20.0.11"), Category: "camera", Owner: "facilities@example.com"},
		{Name: "nvr-01", IP: netip.MustParseAddr("10.30.0.5"), Category: "server", Owner: "it@example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return inventory.NewHolder(inv)
}

// pcapFlows are the conversations of the acceptance pcap
// (flowtest.Conversations): between the two configured segments both ways,
// to public addresses, and from a private address outside every segment.
func pcapFlows() []flowtest.Flow { return flowtest.Conversations() }

// writePcap writes flows as a pcap (flowtest.WritePcap).
func writePcap(t testing.TB, path string, start time.Time, flows []flowtest.Flow) {
	t.Helper()
	if err := flowtest.WritePcap(path, start, flows); err != nil {
		t.Fatal(err)
	}
}

type pairTotal struct{ bytes, packets, flows uint64 }

func segOf(h *inventory.Holder, a netip.Addr) string {
	s := h.Load().SegmentOf(a)
	if s == "" {
		return traffic.SegmentUnknown
	}
	return s
}

// runSoftflowd makes softflowd read pcap and export it to addr with the
// given NetFlow version; it returns once every flow is exported.
func runSoftflowd(t *testing.T, pcap, addr string, version int) {
	t.Helper()
	if err := flowtest.Softflowd(context.Background(), softflowdPath, t.TempDir(), pcap, addr, version); err != nil {
		t.Fatal(err)
	}
}

type testRig struct {
	r       *Receiver
	q       *queue.Queue
	store   *traffic.Store
	set     *metrics.Set
	inv     *inventory.Holder
	cancel  context.CancelFunc
	done    chan error
	drained []event.Event
}

func startRig(t *testing.T, cfg Config) *testRig {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	store := traffic.New(t.TempDir())
	if err := store.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	rig := &testRig{q: queue.New(1 << 20), store: store, set: metrics.NewSet(), inv: testInventory(t), done: make(chan error, 1)}
	var err error
	rig.r, err = New(cfg, Deps{Metrics: rig.set, Inventory: rig.inv, Sink: rig.q, Traffic: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := rig.r.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rig.cancel = cancel
	go func() { rig.done <- rig.r.Run(ctx) }()
	t.Cleanup(rig.stop)
	return rig
}

func (g *testRig) stop() {
	if g.cancel != nil {
		g.cancel()
		g.cancel = nil
		<-g.done
	}
}

func (g *testRig) counter(name string) uint64 {
	return g.set.GetOrCreateCounter(name).Get()
}

// waitFlows waits until the receiver has decoded n flows (softflowd has
// exited, so they are in flight or in the socket buffer).
func (g *testRig) waitFlows(t *testing.T, n uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for g.counter(`segwatch_netflow_flows_received_total`) < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d flows, want %d", g.counter(`segwatch_netflow_flows_received_total`), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *testRig) events() []event.Event {
	for _, b := range g.q.Drain(1 << 30) {
		g.drained = append(g.drained, b...)
	}
	return g.drained
}

type flowKey struct {
	src, dst         string
	srcPort, dstPort int
	proto            string
}

func TestSoftflowdRawAllVersions(t *testing.T) {
	needSoftflowd(t)
	flows := pcapFlows()
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	pcap := filepath.Join(t.TempDir(), "acceptance.pcap")
	writePcap(t, pcap, start, flows)

	for _, version := range []int{5, 9, 10} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Aggregate = 0
			rig := startRig(t, cfg)
			runSoftflowd(t, pcap, rig.r.Addr().String(), version)
			rig.waitFlows(t, uint64(len(flows)))
			rig.stop()

			got := map[flowKey]event.Event{}
			for _, ev := range rig.events() {
				k := flowKey{ev.SrcIP, ev.DstIP, ev.SrcPort, ev.DstPort, ev.Proto}
				if _, dup := got[k]; dup {
					t.Errorf("flow %+v twice", k)
				}
				got[k] = ev
			}
			if len(got) != len(flows) {
				t.Errorf("%d events, want %d", len(got), len(flows))
			}
			want := map[[2]string]pairTotal{}
			for _, f := range flows {
				k := flowKey{f.Src.String(), f.Dst.String(), int(f.SrcPort), int(f.DstPort), event.ProtoName(f.Proto)}
				ev, ok := got[k]
				if !ok {
					t.Errorf("flow %+v missing", k)
					continue
				}
				if ev.Kind != event.KindFlow || ev.FlowVersion != version || ev.Flows != 1 || ev.ID == "" {
					t.Errorf("%+v: kind %q version %d flows %d id %q", k, ev.Kind, ev.FlowVersion, ev.Flows, ev.ID)
				}
				if ev.Bytes != f.IPBytes() || ev.Packets != uint64(f.Packets) {
					t.Errorf("%+v: %d bytes %d packets, want %d and %d", k, ev.Bytes, ev.Packets, f.IPBytes(), f.Packets)
				}
				if ev.SourceIP != "127.0.0.1" {
					t.Errorf("%+v: source_ip %q", k, ev.SourceIP)
				}
				if ev.SrcSegment != rig.inv.Load().SegmentOf(f.Src) || ev.DstSegment != rig.inv.Load().SegmentOf(f.Dst) {
					t.Errorf("%+v: segments %q -> %q", k, ev.SrcSegment, ev.DstSegment)
				}
				// The pcap's packets are 10 ms apart; times are exported
				// in ms (v5/v9) relative to the export.
				if d := ev.Time.Sub(start); d < -time.Second || d > 2*time.Second || ev.End.Before(ev.Time) {
					t.Errorf("%+v: time %v end %v, pcap starts %v", k, ev.Time, ev.End, start)
				}
				pk := [2]string{segOf(rig.inv, f.Src), segOf(rig.inv, f.Dst)}
				pt := want[pk]
				pt.bytes += f.IPBytes()
				pt.packets += uint64(f.Packets)
				pt.flows++
				want[pk] = pt
			}
			if ev := got[flowKey{"10.20.0.11", "10.30.0.5", 40000, 554, "tcp"}]; ev.SrcDevice != "cam-lobby-01" || ev.DstDevice != "nvr-01" ||
				ev.Device != "cam-lobby-01" || ev.Owner != "facilities@example.com" || ev.Category != "camera" {
				t.Errorf("enrichment: %+v", ev)
			}
			if ev := got[flowKey{"10.20.0.11", "198.51.100.7", 40001, 443, "tcp"}]; ev.DstSegment != event.SegmentExternal {
				t.Errorf("public address: dst_segment %q", ev.DstSegment)
			}

			res, err := rig.store.Query(start.Add(-time.Hour), time.Now().Add(time.Hour), 0)
			if err != nil {
				t.Fatal(err)
			}
			gotPairs := map[[2]string]pairTotal{}
			for _, c := range res.Matrix {
				gotPairs[[2]string{c.From, c.To}] = pairTotal{c.Bytes, c.Packets, c.Flows}
			}
			if fmt.Sprint(sortedPairs(gotPairs)) != fmt.Sprint(sortedPairs(want)) {
				t.Errorf("traffic matrix\n got %v\nwant %v", sortedPairs(gotPairs), sortedPairs(want))
			}
			if n := rig.counter(`segwatch_netflow_packets_received_total{version="` + strconv.Itoa(version) + `"}`); n == 0 {
				t.Error("packets_received_total not counted")
			}
			for _, reason := range []string{ReasonTruncated, ReasonMalformed, ReasonNoTemplate, ReasonBadTemplate, ReasonPanic} {
				if n := rig.counter(`segwatch_netflow_decode_errors_total{reason="` + reason + `"}`); n != 0 {
					t.Errorf("decode errors %s: %d", reason, n)
				}
			}
		})
	}
}

func sortedPairs(m map[[2]string]pairTotal) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s->%s:%d/%d/%d", k[0], k[1], v.bytes, v.packets, v.flows))
	}
	sort.Strings(out)
	return out
}

// TestSoftflowdAggregated checks the minute aggregates: two camera->server
// RTSP flows (different source ports) become one event with their sums,
// and the shutdown flush delivers every aggregate.
func TestSoftflowdAggregated(t *testing.T) {
	needSoftflowd(t)
	flows := pcapFlows()
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	pcap := filepath.Join(t.TempDir(), "acceptance.pcap")
	writePcap(t, pcap, start, flows)

	rig := startRig(t, DefaultConfig())
	runSoftflowd(t, pcap, rig.r.Addr().String(), 10)
	rig.waitFlows(t, uint64(len(flows)))
	rig.stop() // flushes the open aggregates

	type aggKey struct {
		src, dst string
		dstPort  int
		proto    string
	}
	want := map[aggKey]pairTotal{}
	for _, f := range flows {
		k := aggKey{f.Src.String(), f.Dst.String(), int(f.DstPort), event.ProtoName(f.Proto)}
		w := want[k]
		w.bytes += f.IPBytes()
		w.packets += uint64(f.Packets)
		w.flows++
		want[k] = w
	}
	got := map[aggKey]pairTotal{}
	for _, ev := range rig.events() {
		k := aggKey{ev.SrcIP, ev.DstIP, ev.DstPort, ev.Proto}
		g := got[k]
		g.bytes += ev.Bytes
		g.packets += ev.Packets
		g.flows += ev.Flows
		got[k] = g
		if k.dstPort == 554 && k.src == "10.20.0.11" {
			if ev.Flows != 2 || ev.SrcPort != 0 {
				t.Errorf("RTSP aggregate: flows %d src_port %d, want 2 and 0", ev.Flows, ev.SrcPort)
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("aggregates\n got %v\nwant %v", got, want)
	}
}

// TestCaptureFixtures (with -update) stores the packets softflowd sends
// for the acceptance pcap, as decoder fixtures and FuzzDecode seeds.
func TestCaptureFixtures(t *testing.T) {
	if !*update {
		t.Skip("run with -update to capture softflowd packets")
	}
	needSoftflowd(t)
	pcap := filepath.Join(t.TempDir(), "fixture.pcap")
	writePcap(t, pcap, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), pcapFlows())
	for _, version := range []int{5, 9, 10} {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		runSoftflowd(t, pcap, conn.LocalAddr().String(), version)
		buf := make([]byte, 65535)
		for i := 0; ; i++ {
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				break
			}
			name := fmt.Sprintf("softflowd-v%d-%d", version, i)
			if err := os.WriteFile(filepath.Join("testdata", name+".bin"), buf[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			corpus := "go test fuzz v1\n[]byte(" + strconv.Quote(string(buf[:n])) + ")\n"
			if err := os.WriteFile(filepath.Join("testdata", "fuzz", "FuzzDecode", name), []byte(corpus), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		conn.Close()
	}
}
