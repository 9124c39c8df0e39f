package main

// Issue 3's acceptance through the real binary: softflowd reads a pcap the
// test writes and exports it as NetFlow v5, v9 and IPFIX to `segwatch
// serve`; every flow must then be found through /api/v1/search with the
// pcap's addresses, ports, protocol, segments and IP-level byte and packet
// totals, and /api/v1/traffic must hold the same totals per segment pair.
// A second test throws hostile datagrams at the server and checks that they
// are counted, that memory stays bounded and that good exports still work.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
	"github.com/segwatch/segwatch/ingest/netflow/flowtest"
)

// nfConfig is a site with three segments; the pcap's flows run between
// cameras and servers both ways, from office to cameras, to public
// addresses and from a private address outside every segment. %s is the
// netflow section.
const nfConfig = `
retention_days: 90
segments:
  - {name: cameras, kind: iot,    cidrs: [10.20.0.0/24]}
  - {name: servers, kind: server, cidrs: [10.30.0.0/24]}
  - {name: office,  kind: office, cidrs: [10.10.0.0/24]}
policy:
  - {from: cameras, to: servers, ports: [tcp/554, tcp/443]}
categories:
  camera:   {silent_after: 10m, criticality: high}
  recorder: {silent_after: 1h,  criticality: high}
devices:
  - {name: cam-lobby-01, ip: 10.20.0.11, category: camera,   owner: facilities@example.com}
  - {name: nvr-01,       ip: 10.30.0.5,  category: recorder, owner: it@example.com}
%s`

// segment is what SPEC §4 says src_segment/dst_segment must be for a of
// nfConfig: the configured segment, external for public addresses, empty
// for private ones outside every segment.
func nfSegment(a netip.Addr) string {
	for _, s := range []struct{ name, cidr string }{
		{"cameras", "10.20.0.0/24"}, {"servers", "10.30.0.0/24"}, {"office", "10.10.0.0/24"},
	} {
		if netip.MustParsePrefix(s.cidr).Contains(a) {
			return s.name
		}
	}
	if a.IsPrivate() || a.IsLoopback() {
		return ""
	}
	return event.SegmentExternal
}

// trafficName is the segment's name in /api/v1/traffic, where the empty
// segment is "unknown" (index/traffic.SegmentUnknown).
func trafficName(seg string) string {
	if seg == "" {
		return "unknown"
	}
	return seg
}

// nfFlows are flowtest.Conversations plus one from the office segment to
// the camera, so that every kind of segment pair of nfConfig is exported.
func nfFlows() []flowtest.Flow {
	return append(flowtest.Conversations(), flowtest.Flow{Src: netip.MustParseAddr("10.10.0.20"),
		Dst: netip.MustParseAddr("10.20.0.11"), SrcPort: 52000, DstPort: 80, Proto: 6, Packets: 6, PayloadLen: 50})
}

// nfStart is the pcap's first packet time: two to three minutes ago, ten
// seconds into a minute, so that the flows (a few hundred ms long) share
// one aggregation minute and lie well inside the default search range.
func nfStart() time.Time {
	return time.Now().Add(-2 * time.Minute).Truncate(time.Minute).Add(10 * time.Second)
}

// writeFlowPcap writes flows as a pcap (flowtest.WritePcap).
func writeFlowPcap(t testing.TB, path string, start time.Time, flows []flowtest.Flow) {
	t.Helper()
	if err := flowtest.WritePcap(path, start, flows); err != nil {
		t.Fatal(err)
	}
}

// runSoftflowd makes softflowd read pcap and export it to addr as NetFlow
// version; it returns once every flow is exported.
func runSoftflowd(t testing.TB, pcap, addr string, version int) {
	t.Helper()
	bin := requireTool(t, "softflowd")
	if err := flowtest.Softflowd(context.Background(), bin, t.TempDir(), pcap, addr, version); err != nil {
		t.Fatal(err)
	}
}

// flowResult is a search answer decoded into the event schema itself, so
// that every SPEC §4 flow field (flow_version, end, src_device…) is seen.
type flowResult struct {
	Total int           `json:"total"`
	Hits  []event.Event `json:"hits"`
}

func searchFlows(s *server, q string) flowResult {
	s.t.Helper()
	v := url.Values{"q": {q}, "limit": {"10000"}}
	var r flowResult
	if code := s.get("/api/v1/search?"+v.Encode(), &r); code != 200 {
		s.t.Fatalf("search %q: status %d", q, code)
	}
	return r
}

// waitFlows polls until q has at least want hits, then waits a moment
// longer and returns the answer, so that a surplus (duplicates) shows.
// After a minute it returns what it has, for the caller to judge.
func waitFlows(s *server, q string, want int) flowResult {
	s.t.Helper()
	const wait = time.Minute
	deadline := time.Now().Add(wait)
	var r flowResult
	for r = searchFlows(s, q); r.Total < want; r = searchFlows(s, q) {
		if time.Now().After(deadline) {
			s.t.Logf("search %q: total %d after %v, want %d", q, r.Total, wait, want)
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	return searchFlows(s, q)
}

// totals are the byte, packet and flow counts of a flow or segment pair.
type totals struct{ Bytes, Packets, Flows uint64 }

func (a totals) times(n uint64) totals { return totals{a.Bytes * n, a.Packets * n, a.Flows * n} }

// pcapPairs sums the pcap's flows per (from, to) traffic segment name.
func pcapPairs(flows []flowtest.Flow) map[[2]string]totals {
	m := map[[2]string]totals{}
	for _, f := range flows {
		k := [2]string{trafficName(nfSegment(f.Src)), trafficName(nfSegment(f.Dst))}
		v := m[k]
		v.Bytes += f.IPBytes()
		v.Packets += uint64(f.Packets)
		v.Flows++
		m[k] = v
	}
	return m
}

// trafficMatrix reads /api/v1/traffic over the last hour.
func trafficMatrix(s *server) map[[2]string]totals {
	s.t.Helper()
	var r struct {
		Segments []string `json:"segments"`
		Matrix   []struct {
			From    string `json:"from"`
			To      string `json:"to"`
			Bytes   uint64 `json:"bytes"`
			Packets uint64 `json:"packets"`
			Flows   uint64 `json:"flows"`
		} `json:"matrix"`
	}
	q := url.Values{"from": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)},
		"to": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}}
	if code := s.get("/api/v1/traffic?"+q.Encode(), &r); code != 200 {
		s.t.Fatalf("traffic: status %d", code)
	}
	m := map[[2]string]totals{}
	for _, c := range r.Matrix {
		k := [2]string{c.From, c.To}
		if _, dup := m[k]; dup {
			s.t.Errorf("traffic matrix: pair %v twice", k)
		}
		m[k] = totals{c.Bytes, c.Packets, c.Flows}
	}
	return m
}

func pairsString(m map[[2]string]totals) string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s->%s:%d/%d/%d", k[0], k[1], v.Bytes, v.Packets, v.Flows))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// checkRawFlow compares one raw (unaggregated) flow event with the pcap.
func checkRawFlow(t *testing.T, f flowtest.Flow, ev event.Event, version int, start time.Time) {
	t.Helper()
	what := fmt.Sprintf("v%d %s:%d->%s:%d/%s", version, f.Src, f.SrcPort, f.Dst, f.DstPort, event.ProtoName(f.Proto))
	if ev.Kind != event.KindFlow || ev.FlowVersion != version || ev.Flows != 1 || ev.ID == "" || ev.SourceIP != "127.0.0.1" {
		t.Errorf("%s: kind %q flow_version %d flows %d id %q source_ip %q", what, ev.Kind, ev.FlowVersion, ev.Flows, ev.ID, ev.SourceIP)
	}
	if ev.SrcIP != f.Src.String() || ev.DstIP != f.Dst.String() || ev.SrcPort != int(f.SrcPort) ||
		ev.DstPort != int(f.DstPort) || ev.Proto != event.ProtoName(f.Proto) {
		t.Errorf("%s: got %s:%d->%s:%d/%s", what, ev.SrcIP, ev.SrcPort, ev.DstIP, ev.DstPort, ev.Proto)
	}
	if ev.Bytes != f.IPBytes() || ev.Packets != uint64(f.Packets) {
		t.Errorf("%s: %d bytes %d packets, pcap holds %d and %d", what, ev.Bytes, ev.Packets, f.IPBytes(), f.Packets)
	}
	if ev.SrcSegment != nfSegment(f.Src) || ev.DstSegment != nfSegment(f.Dst) {
		t.Errorf("%s: segments %q->%q, want %q->%q", what, ev.SrcSegment, ev.DstSegment, nfSegment(f.Src), nfSegment(f.Dst))
	}
	// Packets are 10 ms apart from start; v9 headers carry whole seconds,
	// so its times may be up to 1 s early, plus the few milliseconds
	// between softflowd's reads of the clock for unix_secs and for the
	// uptime (seen: 1.004 s). A wrong unit or zone is off by far more.
	if d := ev.Time.Sub(start); d < -1200*time.Millisecond || d > 2*time.Second || ev.End.Before(ev.Time) {
		t.Errorf("%s: time %v end %v, pcap starts %v", what, ev.Time, ev.End, start)
	}
}

// TestNetflowSoftflowdEndToEnd is issue 3's acceptance over the real binary.
func TestNetflowSoftflowdEndToEnd(t *testing.T) {
	requireTool(t, "softflowd")
	flows := nfFlows()
	start := nfStart()
	pcap := filepath.Join(t.TempDir(), "acceptance.pcap")
	writeFlowPcap(t, pcap, start, flows)
	want := pcapPairs(flows)

	// One server receives all three exports from the same exporter address
	// (templates of v9 and IPFIX must not mix), so each flow is indexed
	// three times, once per version, and the traffic matrix holds exactly
	// three times the pcap's totals.
	t.Run("raw", func(t *testing.T) {
		s := startServer(t, fmt.Sprintf(nfConfig, "netflow: {aggregate: 0}\n"))
		addr := fmt.Sprintf("127.0.0.1:%d", s.flowPort)
		seen := map[string]bool{}
		for _, version := range []int{5, 9, 10} {
			runSoftflowd(t, pcap, addr, version)
			r := waitFlows(s, fmt.Sprintf("kind:flow flow_version:%d", version), len(flows))
			if r.Total != len(flows) || len(r.Hits) != len(flows) {
				t.Fatalf("v%d: total %d, %d hits, want %d", version, r.Total, len(r.Hits), len(flows))
			}
			byKey := map[string]event.Event{}
			for _, ev := range r.Hits {
				k := fmt.Sprintf("%s:%d->%s:%d/%s", ev.SrcIP, ev.SrcPort, ev.DstIP, ev.DstPort, ev.Proto)
				if _, dup := byKey[k]; dup {
					t.Errorf("v%d: flow %s twice", version, k)
				}
				byKey[k] = ev
				if seen[ev.ID] {
					t.Errorf("v%d: id %s reused", version, ev.ID)
				}
				seen[ev.ID] = true
			}
			for _, f := range flows {
				k := fmt.Sprintf("%s:%d->%s:%d/%s", f.Src, f.SrcPort, f.Dst, f.DstPort, event.ProtoName(f.Proto))
				ev, ok := byKey[k]
				if !ok {
					t.Errorf("v%d: flow %s missing", version, k)
					continue
				}
				checkRawFlow(t, f, ev, version, start)
			}
			ev := byKey["10.20.0.11:40000->10.30.0.5:554/tcp"]
			if ev.Device != "cam-lobby-01" || ev.SrcDevice != "cam-lobby-01" || ev.DstDevice != "nvr-01" ||
				ev.Segment != "cameras" || ev.Category != "camera" || ev.Owner != "facilities@example.com" {
				t.Errorf("v%d: inventory enrichment: %+v", version, ev)
			}
		}

		// Every flow is found by its own fields, once per version.
		for _, f := range flows {
			q := fmt.Sprintf("kind:flow src_ip:%s dst_ip:%s src_port:%d dst_port:%d proto:%s",
				f.Src, f.Dst, f.SrcPort, f.DstPort, event.ProtoName(f.Proto))
			if r := searchFlows(s, q); r.Total != 3 {
				t.Errorf("%s: total %d, want 3", q, r.Total)
			}
		}
		// Segment filters find each configured pair's flows.
		for k, v := range want {
			if k[0] == "unknown" || k[1] == "unknown" {
				continue // the empty segment cannot be named in a query
			}
			q := fmt.Sprintf("kind:flow src_segment:%s dst_segment:%s", k[0], k[1])
			if r := searchFlows(s, q); uint64(r.Total) != 3*v.Flows {
				t.Errorf("%s: total %d, want %d", q, r.Total, 3*v.Flows)
			}
		}
		if r := searchFlows(s, "kind:flow"); r.Total != 3*len(flows) {
			t.Errorf("kind:flow: total %d, want %d", r.Total, 3*len(flows))
		}

		wantPairs := map[[2]string]totals{}
		for k, v := range want {
			wantPairs[k] = v.times(3)
		}
		if got := trafficMatrix(s); pairsString(got) != pairsString(wantPairs) {
			t.Errorf("traffic matrix\n got %s\nwant %s", pairsString(got), pairsString(wantPairs))
		}
		for _, v := range []string{"5", "9", "10"} {
			if s.metric(`segwatch_netflow_packets_received_total{version="`+v+`"}`) == 0 {
				t.Errorf("packets_received_total{version=%q} is 0", v)
			}
		}
		if n := s.metric(`segwatch_netflow_flows_received_total`); n != float64(3*len(flows)) {
			t.Errorf("flows_received_total %v, want %d", n, 3*len(flows))
		}
		for _, reason := range []string{"truncated", "version", "malformed", "no_template", "bad_template", "panic"} {
			if n := s.metric(`segwatch_netflow_decode_errors_total{reason="` + reason + `"}`); n != 0 {
				t.Errorf("decode_errors_total{reason=%q} = %v on a clean export", reason, n)
			}
		}
	})

	// With the default one-minute aggregation, flows are summed per
	// (exporter, src, dst, dst_port, proto, start minute) and indexed when
	// the minute closes or at shutdown. The test does not wait for the
	// minute: it stops the server (SIGTERM must flush the open aggregates
	// into the index) and starts it again on the same data directory.
	t.Run("aggregated", func(t *testing.T) {
		s := startServer(t, fmt.Sprintf(nfConfig, ""))
		runSoftflowd(t, pcap, fmt.Sprintf("127.0.0.1:%d", s.flowPort), 10)
		// The rollup counts flows as they arrive, before aggregation.
		deadline := time.Now().Add(30 * time.Second)
		for s.metric(`segwatch_netflow_flows_received_total`) < float64(len(flows)) {
			if time.Now().After(deadline) {
				t.Fatalf("flows_received_total %v after 30s, want %d", s.metric(`segwatch_netflow_flows_received_total`), len(flows))
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The receiver counts a packet's flows before adding them to the
		// rollup one by one, so the matrix may lag the counter briefly.
		for got := trafficMatrix(s); pairsString(got) != pairsString(want); got = trafficMatrix(s) {
			if time.Now().After(deadline) {
				t.Fatalf("traffic matrix before shutdown\n got %s\nwant %s", pairsString(got), pairsString(want))
			}
			time.Sleep(50 * time.Millisecond)
		}
		s.stop()
		s.start()

		type aggKey struct {
			src, dst string
			dstPort  int
			proto    string
		}
		wantAgg := map[aggKey]totals{}
		for _, f := range flows {
			k := aggKey{f.Src.String(), f.Dst.String(), int(f.DstPort), event.ProtoName(f.Proto)}
			v := wantAgg[k]
			v.Bytes += f.IPBytes()
			v.Packets += uint64(f.Packets)
			v.Flows++
			wantAgg[k] = v
		}
		r := waitFlows(s, "kind:flow", len(wantAgg))
		if r.Total != len(wantAgg) {
			t.Fatalf("kind:flow after restart: total %d, want %d aggregates", r.Total, len(wantAgg))
		}
		gotAgg := map[aggKey]totals{}
		for _, ev := range r.Hits {
			k := aggKey{ev.SrcIP, ev.DstIP, ev.DstPort, ev.Proto}
			if _, dup := gotAgg[k]; dup {
				t.Errorf("aggregate %+v twice", k)
			}
			gotAgg[k] = totals{ev.Bytes, ev.Packets, ev.Flows}
			if ev.FlowVersion != 10 || ev.SrcSegment != nfSegment(netip.MustParseAddr(ev.SrcIP)) ||
				ev.DstSegment != nfSegment(netip.MustParseAddr(ev.DstIP)) {
				t.Errorf("aggregate %+v: flow_version %d segments %q->%q", k, ev.FlowVersion, ev.SrcSegment, ev.DstSegment)
			}
			// Two RTSP flows with different source ports: one aggregate
			// whose source port is no longer meaningful.
			if k == (aggKey{"10.20.0.11", "10.30.0.5", 554, "tcp"}) && ev.SrcPort != 0 {
				t.Errorf("RTSP aggregate: src_port %d, want 0", ev.SrcPort)
			}
		}
		if fmt.Sprint(gotAgg) != fmt.Sprint(wantAgg) {
			t.Errorf("aggregates\n got %v\nwant %v", gotAgg, wantAgg)
		}
		// The rollup survived the restart unchanged.
		if got := trafficMatrix(s); pairsString(got) != pairsString(want) {
			t.Errorf("traffic matrix after restart\n got %s\nwant %s", pairsString(got), pairsString(want))
		}
	})
}

// nfPacket builds NetFlow v9 (version 9) and IPFIX (version 10) datagrams
// by hand, so that the hostile cases are exactly what the test says.
type nfPacket struct {
	version uint16
	domain  uint32
	sets    [][]byte
}

func (p *nfPacket) set(id uint16, body []byte) *nfPacket {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(body)))
	p.sets = append(p.sets, append(b, body...))
	return p
}

// template adds a template set with one template of (type, length) fields.
func (p *nfPacket) template(id uint16, fields ...[2]uint16) *nfPacket {
	return p.templates(map[uint16][][2]uint16{id: fields})
}

// templates adds one template set holding every template of ts.
func (p *nfPacket) templates(ts map[uint16][][2]uint16) *nfPacket {
	ids := make([]int, 0, len(ts))
	for id := range ts {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	var b []byte
	for _, id := range ids {
		fields := ts[uint16(id)]
		b = binary.BigEndian.AppendUint16(b, uint16(id))
		b = binary.BigEndian.AppendUint16(b, uint16(len(fields)))
		for _, f := range fields {
			b = binary.BigEndian.AppendUint16(b, f[0])
			b = binary.BigEndian.AppendUint16(b, f[1])
		}
	}
	setID := uint16(0)
	if p.version == 10 {
		setID = 2
	}
	return p.set(setID, b)
}

func (p *nfPacket) bytes() []byte {
	be := binary.BigEndian
	b := be.AppendUint16(nil, p.version)
	if p.version == 9 {
		b = be.AppendUint16(b, uint16(len(p.sets)))
		b = be.AppendUint32(b, 1000) // sysuptime, ms
		b = be.AppendUint32(b, uint32(time.Now().Unix()))
		b = be.AppendUint32(b, 1) // sequence
		b = be.AppendUint32(b, p.domain)
	} else {
		n := 16
		for _, s := range p.sets {
			n += len(s)
		}
		b = be.AppendUint16(b, uint16(n))
		b = be.AppendUint32(b, uint32(time.Now().Unix()))
		b = be.AppendUint32(b, 1)
		b = be.AppendUint32(b, p.domain)
	}
	for _, s := range p.sets {
		b = append(b, s...)
	}
	return b
}

// v4Fields is a plain IPv4 flow template: src, dst, ports, proto, octets,
// packets (record length 21).
var v4Fields = [][2]uint16{{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {1, 4}, {2, 4}}

// captureSoftflowd returns the datagrams softflowd sends for pcap.
func captureSoftflowd(t *testing.T, pcap string, version int) [][]byte {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadBuffer(1 << 20)
	runSoftflowd(t, pcap, conn.LocalAddr().String(), version)
	var out [][]byte
	buf := make([]byte, 65535)
	for {
		// softflowd has exited: everything it sent is in the buffer.
		_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		out = append(out, append([]byte(nil), buf[:n]...))
	}
	if len(out) == 0 {
		t.Fatalf("softflowd -v %d sent nothing", version)
	}
	return out
}

// netflowMetrics returns every segwatch_netflow_* sample of /metrics.
func netflowMetrics(s *server) map[string]float64 {
	s.t.Helper()
	resp, err := http.Get(s.url("/metrics"))
	if err != nil {
		s.t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		s.t.Fatal(err)
	}
	m := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "segwatch_netflow_") && !strings.HasPrefix(line, "segwatch_events_dropped_total") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			s.t.Fatalf("metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

// received sums segwatch_netflow_packets_received_total over versions.
func received(m map[string]float64) float64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, "segwatch_netflow_packets_received_total{") {
			n += v
		}
	}
	return n
}

func errCounter(reason string) string {
	return `segwatch_netflow_decode_errors_total{reason="` + reason + `"}`
}

// vmRSS returns the resident set of pid in MiB.
func vmRSS(t testing.TB, pid int) float64 { return procStatusMiB(t, pid, "VmRSS") }

// TestNetflowHostileEndToEnd throws malformed datagrams at the real server
// from one exporter address: each is received and counted with its reason,
// nothing panics, the template flood is bounded in memory, and a good
// softflowd export afterwards is still indexed in full.
func TestNetflowHostileEndToEnd(t *testing.T) {
	requireTool(t, "softflowd")
	s := startServer(t, fmt.Sprintf(nfConfig, "netflow: {aggregate: 0}\n"))
	start := nfStart()
	pcap := filepath.Join(t.TempDir(), "hostile.pcap")
	writeFlowPcap(t, pcap, start, nfFlows())

	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", s.flowPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var sent float64
	send := func(b []byte) {
		t.Helper()
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	// settle waits until the server has taken in every datagram sent so
	// far and returns the counters then. Senders pause for it every few
	// hundred datagrams, so the socket buffer never overflows and every
	// datagram is accounted for.
	settle := func() map[string]float64 {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			m := netflowMetrics(s)
			if received(m) == sent {
				return m
			}
			if received(m) > sent || time.Now().After(deadline) {
				t.Fatalf("packets_received_total sums to %v, sent %v\n%s", received(m), sent, s.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	delta := func(before, after map[string]float64, name string) float64 { return after[name] - before[name] }

	// Truncated packets: every proper prefix of what softflowd really sends,
	// for each version. A cut v5 packet never holds a whole header plus the
	// records it announces, so each is a truncation error.
	m0 := settle()
	var v5Cuts float64
	for _, version := range []int{5, 9, 10} {
		for _, pkt := range captureSoftflowd(t, pcap, version) {
			for n := range len(pkt) {
				send(pkt[:n])
				if version == 5 {
					v5Cuts++
				}
				if int(sent)%200 == 0 {
					settle()
				}
			}
		}
	}
	m1 := settle()
	if d := delta(m0, m1, errCounter("truncated")); d < v5Cuts {
		t.Errorf("truncated: +%v for %v cut v5 packets (and more cut v9/IPFIX ones)", d, v5Cuts)
	}
	t.Logf("%v truncated datagrams: truncated +%v, malformed +%v, no_template +%v, bad_template +%v, flows +%v", sent,
		delta(m0, m1, errCounter("truncated")), delta(m0, m1, errCounter("malformed")), delta(m0, m1, errCounter("no_template")),
		delta(m0, m1, errCounter("bad_template")), delta(m0, m1, "segwatch_netflow_flows_received_total"))

	// A v9 and an IPFIX template whose fields are all zero-length (a record
	// of size 0 would make a decoder loop forever): refused and counted.
	send((&nfPacket{version: 9, domain: 1}).template(400, [2]uint16{8, 0}, [2]uint16{12, 0}).bytes())
	send((&nfPacket{version: 10, domain: 1}).template(400, [2]uint16{8, 0}, [2]uint16{12, 0}).bytes())
	m2 := settle()
	if d := delta(m1, m2, errCounter("bad_template")); d != 2 {
		t.Errorf("zero-length templates: bad_template +%v, want 2", d)
	}

	// Data without a template, v9 and IPFIX.
	send((&nfPacket{version: 9, domain: 1}).set(60000, make([]byte, 21)).bytes())
	send((&nfPacket{version: 10, domain: 1}).set(60000, make([]byte, 21)).bytes())
	m3 := settle()
	if d := delta(m2, m3, errCounter("no_template")); d != 2 {
		t.Errorf("data without template: no_template +%v, want 2", d)
	}

	// A template whose field count runs past its set (a field length
	// past the end): counted as truncated. Lengths past the end inside
	// data sets are TestNetflowLengthPastEndDropped's subject.
	send((&nfPacket{version: 9, domain: 2}).set(0, []byte{1, 46, 0x7f, 0xff, 0, 8, 0, 4}).bytes())
	m4 := settle()
	if d := delta(m3, m4, errCounter("truncated")) + delta(m3, m4, errCounter("malformed")); d != 1 {
		t.Errorf("template past its set: truncated+malformed +%v, want 1", d)
	}

	// 10,000 distinct template ids from one exporter, as v9 and as IPFIX,
	// 1,000 per datagram: at most MaxTemplatesPerExporter (256) are held,
	// the rest are evicted as they come.
	rssBefore := vmRSS(t, s.cmd.Process.Pid)
	for _, version := range []uint16{9, 10} {
		for batch := range 10 {
			ts := map[uint16][][2]uint16{}
			for i := range 1000 {
				ts[uint16(1000+batch*1000+i)] = [][2]uint16{{8, 4}, {12, 4}, {1, 4}}
			}
			send((&nfPacket{version: version, domain: 7}).templates(ts).bytes())
		}
		settle()
	}
	m5 := settle()
	rssAfter := vmRSS(t, s.cmd.Process.Pid)
	if d := delta(m4, m5, "segwatch_netflow_templates_evicted_total"); d < 20_000-256 || d > 20_000+256 {
		t.Errorf("template flood: %v evicted, want 20,000 less at most 256 held", d)
	}
	if rssAfter > 300 {
		t.Errorf("VmRSS %.0f MiB after the template flood (%.0f before), want < 300", rssAfter, rssBefore)
	}
	t.Logf("VmRSS %.1f MiB before the flood, %.1f after, peak %.1f", rssBefore, rssAfter, procPeakRSS(t, s.cmd.Process.Pid))

	if n := m5[errCounter("panic")]; n != 0 {
		t.Errorf("%v panics recovered", n)
	}
	var health struct{ Status string }
	if code := s.get("/healthz", &health); code != 200 || health.Status != "ok" {
		t.Fatalf("healthz: %d %+v", code, health)
	}

	// A good export afterwards, from the same exporter address, of flows
	// the truncated packets cannot have produced: all of it is indexed. It
	// has eight flows: softflowd's first v9 packet holds seven flow sets
	// before its data, see TestNetflowSoftflowdFewFlows.
	var good []flowtest.Flow
	for _, f := range nfFlows() {
		f.Src, f.Dst = remap(f.Src), remap(f.Dst)
		good = append(good, f)
	}
	goodPcap := filepath.Join(t.TempDir(), "good.pcap")
	writeFlowPcap(t, goodPcap, start, good)
	for _, version := range []int{5, 9, 10} {
		runSoftflowd(t, goodPcap, fmt.Sprintf("127.0.0.1:%d", s.flowPort), version)
		for _, f := range good {
			q := fmt.Sprintf("kind:flow flow_version:%d src_ip:%s dst_ip:%s src_port:%d", version, f.Src, f.Dst, f.SrcPort)
			r := waitFlows(s, q, 1)
			if r.Total != 1 || len(r.Hits) != 1 {
				t.Errorf("%s: total %d, want 1", q, r.Total)
				continue
			}
			ev := r.Hits[0]
			checkRawFlow(t, f, ev, version, start)
		}
	}
}

// remap moves the pcap's inventoried hosts to other addresses of the same
// segments, so that a second pcap's flows are told apart from the first's.
func remap(a netip.Addr) netip.Addr {
	switch a.String() {
	case "10.20.0.11":
		return netip.MustParseAddr("10.20.0.77")
	case "10.30.0.5":
		return netip.MustParseAddr("10.30.0.66")
	}
	return a
}

// TestNetflowSoftflowdFewFlows exports one and three flows. softflowd
// 1.1.0 puts the number of flows into the v9 header's count, while its
// first packet also carries six template and options sets before the data
// set; goflow2 reads only count sets, so a small v9 export must still be
// decoded in full (RFC 3954 says count is the number of records, which
// exporters get wrong; a collector should read to the end of the packet).
func TestNetflowSoftflowdFewFlows(t *testing.T) {
	requireTool(t, "softflowd")
	start := nfStart()
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d flows", n), func(t *testing.T) {
			flows := nfFlows()[:n]
			pcap := filepath.Join(t.TempDir(), "few.pcap")
			writeFlowPcap(t, pcap, start, flows)
			s := startServer(t, fmt.Sprintf(nfConfig, "netflow: {aggregate: 0}\n"))
			for _, version := range []int{5, 10, 9} {
				before := s.metric("segwatch_netflow_flows_received_total")
				runSoftflowd(t, pcap, fmt.Sprintf("127.0.0.1:%d", s.flowPort), version)
				// softflowd has exited, its datagrams are on their way:
				// wait for them to be decoded, briefly when they yield
				// nothing (the bug this test is about).
				deadline := time.Now().Add(3 * time.Second)
				got := 0.0
				for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if got = s.metric("segwatch_netflow_flows_received_total") - before; got >= float64(n) {
						break
					}
				}
				if got != float64(n) {
					t.Errorf("softflowd -v %d, %d flows: %v decoded", version, n, got)
					continue
				}
				for _, f := range flows {
					q := fmt.Sprintf("kind:flow flow_version:%d src_ip:%s dst_ip:%s src_port:%d", version, f.Src, f.Dst, f.SrcPort)
					r := waitFlows(s, q, 1)
					if r.Total != 1 || len(r.Hits) != 1 {
						t.Errorf("%s: total %d, want 1", q, r.Total)
						continue
					}
					checkRawFlow(t, f, r.Hits[0], version, start)
				}
			}
		})
	}
}

// TestNetflowLengthPastEndDropped: a data set whose length runs past the
// end of the datagram, and an IPFIX variable-length field claiming more
// bytes than its record holds, are malformed packets (SPEC §3: counted and
// dropped), not sources of flows.
func TestNetflowLengthPastEndDropped(t *testing.T) {
	s := startServer(t, fmt.Sprintf(nfConfig, "netflow: {aggregate: 0}\n"))
	conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", s.flowPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rec := []byte{10, 20, 0, 11, 10, 30, 0, 5, 0x9c, 0x40, 0x02, 0x2a, 6, 0, 0, 0x03, 0xe8, 0, 0, 0, 2}
	// v9: a valid template, then a data set claiming 4000 bytes of which
	// the datagram holds one 21-byte record.
	p := (&nfPacket{version: 9, domain: 2}).template(300, v4Fields...).set(300, rec)
	pkt := p.bytes()
	binary.BigEndian.PutUint16(pkt[len(pkt)-len(rec)-2:], 4000)
	// IPFIX: interfaceName (82) of variable length, claiming 200 bytes
	// where 4 remain.
	varlen := append(append([][2]uint16{}, v4Fields...), [2]uint16{82, 0xffff})
	pkt2 := (&nfPacket{version: 10, domain: 2}).template(301, varlen...).set(301, append(append([]byte(nil), rec...), 200, 'e', 't', 'h', '0')).bytes()
	for _, b := range [][]byte{pkt, pkt2} {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	var m map[string]float64
	for m = netflowMetrics(s); received(m) < 2; m = netflowMetrics(s) {
		if time.Now().After(deadline) {
			t.Fatalf("datagrams not received: %v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := m[errCounter("truncated")] + m[errCounter("malformed")]; d != 2 {
		t.Errorf("truncated+malformed = %v, want 2", d)
	}
	if n := m["segwatch_netflow_flows_received_total"]; n != 0 {
		t.Errorf("%v flows taken from packets with lengths past their end", n)
	}
}
