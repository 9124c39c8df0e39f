package netflow

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func fixtures(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	names, _ := filepath.Glob(filepath.Join("testdata", "softflowd-*.bin"))
	if len(names) == 0 {
		t.Fatal("no softflowd fixtures in testdata/")
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(n)] = b
	}
	return out
}

func checkFlows(t *testing.T, what string, flows []Flow) {
	t.Helper()
	for _, f := range flows {
		if !f.Src.IsValid() || !f.Dst.IsValid() || !f.Exporter.IsValid() {
			t.Errorf("%s: flow with invalid address %+v", what, f)
		}
	}
}

// TestTruncatedPackets cuts every fixture at every length, decoding with
// no templates and with the fixture's templates already known.
func TestTruncatedPackets(t *testing.T) {
	for name, pkt := range fixtures(t) {
		warm := NewDecoder(time.Hour, 16, 16)
		if _, _, err := warm.Decode(pkt, exporterA, recvTime, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for n := range len(pkt) {
			for _, d := range []*Decoder{NewDecoder(time.Hour, 16, 16), warm} {
				flows, _, err := d.Decode(pkt[:n], exporterA, recvTime, nil)
				var de *DecodeError
				if errors.As(err, &de) && de.Reason == ReasonPanic {
					t.Fatalf("%s cut at %d: panic %v", name, n, err)
				}
				checkFlows(t, name, flows)
				if pkt[1] == 5 && (err == nil || len(flows) != 0) {
					t.Errorf("%s cut at %d: %d flows, err %v; want truncated", name, n, len(flows), err)
				}
			}
		}
	}
	// A v5 header claiming 65535 records in a short packet is refused
	// before anything is allocated for them.
	pkt := v5Packet(1, 0)
	binary.BigEndian.PutUint16(pkt[2:], 65535)
	_, _, err := NewDecoder(0, 1, 1).Decode(pkt, exporterA, recvTime, nil)
	var de *DecodeError
	if !errors.As(err, &de) || de.Reason != ReasonTruncated {
		t.Errorf("v5 count past end: %v, want truncated", err)
	}
}

func TestZeroLengthTemplateField(t *testing.T) {
	for _, version := range []uint16{9, 10} {
		d := NewDecoder(time.Hour, 16, 16)
		// Every field zero-length: a record of size 0 would make goflow2's
		// data loop spin forever; the template is refused.
		p := &packet{version: version, domain: 1, export: recvTime, uptime: 1000}
		p.template(256, field{8, 0}, field{12, 0})
		p.set(256, make([]byte, 64))
		flows, st, err := decodeOne(t, d, p.bytes())
		if err != nil || len(flows) != 0 || st.TemplatesRejected != 1 || st.NoTemplate != 1 {
			t.Errorf("v%d all zero-length: %d flows, %+v, %v", version, len(flows), st, err)
		}
		// Options template likewise.
		p = &packet{version: version, domain: 1, export: recvTime, uptime: 1000}
		b := binary.BigEndian.AppendUint16(nil, 257)
		if version == 9 {
			b = append(b, 0, 0, 0, 4, 0, 34, 0, 0) // no scope, samplingInterval length 0
			p.set(1, b)
		} else {
			b = append(b, 0, 1, 0, 1, 0, 149, 0, 0) // one zero-length scope
			p.set(3, b)
		}
		p.set(257, make([]byte, 16))
		if _, st, _ := decodeOne(t, d, p.bytes()); st.TemplatesRejected != 1 {
			t.Errorf("v%d zero-length options template: %+v", version, st)
		}
		// One zero-length field among sized ones is harmless.
		p = &packet{version: version, domain: 1, export: recvTime, uptime: 1000}
		p.template(258, append([]field{{61, 0}}, v4Template...)...)
		p.set(258, v4Record("10.0.0.1", "10.0.0.2", 1, 2, 6, 10, 1, 0, 0))
		if flows, st, err := decodeOne(t, d, p.bytes()); err != nil || len(flows) != 1 || flows[0].Bytes != 10 {
			t.Errorf("v%d one zero-length field: %+v %+v %v", version, flows, st, err)
		}
	}
}

func TestFieldLengthPastEnd(t *testing.T) {
	d := NewDecoder(time.Hour, 16, 16)
	// A variable-length field (RFC 7011 §7) claiming 200 bytes in a
	// record that ends after 5.
	p := &packet{version: 10, domain: 1, export: recvTime}
	p.template(256, append(v4Template[:7:7], field{82, 0xffff})...)
	rec := v4Record("10.0.0.1", "10.0.0.2", 1, 2, 6, 10, 1, 0, 0)[:21]
	p.set(256, append(rec, 200, 'e', 't', 'h', '0'))
	flows, _, _ := decodeOne(t, d, p.bytes())
	checkFlows(t, "varlen", flows)

	// A set whose length runs past the end of the packet.
	p = &packet{version: 9, domain: 1, export: recvTime, uptime: 1000}
	p.template(300, v4Template...)
	p.set(300, v4Record("10.0.0.1", "10.0.0.2", 1, 2, 6, 10, 1, 0, 0))
	pkt := p.bytes()
	binary.BigEndian.PutUint16(pkt[len(pkt)-len(p.sets[1])+2:], 4000)
	flows, _, _ = decodeOne(t, d, pkt)
	checkFlows(t, "set length", flows)

	// A template declaring a 16-byte IPv4 address, and 3-byte counters:
	// addresses of the wrong size are not used, odd counters are.
	p = &packet{version: 9, domain: 1, export: recvTime, uptime: 1000}
	p.template(301, field{8, 16}, field{12, 4}, field{1, 3})
	p.set(301, append(make([]byte, 16), 10, 0, 0, 2, 0, 1, 0))
	flows, _, _ = decodeOne(t, d, p.bytes())
	if len(flows) != 0 {
		t.Errorf("16-byte IPv4 address: %+v", flows)
	}

	// A template whose field count runs past the set.
	p = &packet{version: 9, domain: 1, export: recvTime, uptime: 1000}
	p.set(0, []byte{1, 44, 0x7f, 0xff, 0, 8, 0, 4})
	if _, _, err := decodeOne(t, d, p.bytes()); err == nil {
		t.Error("template past set end: no error")
	}
}

// TestTemplateFlood sends 10,000 distinct template ids (and then 10,000
// exporters): the templates held stay bounded.
func TestTemplateFlood(t *testing.T) {
	const maxTemplates, maxExporters = 64, 32
	d := NewDecoder(time.Hour, maxTemplates, maxExporters)
	for batch := range 10 {
		p := &packet{version: 9, domain: 1, export: recvTime, uptime: 1000}
		for i := range 1000 {
			p.template(uint16(256+batch*1000+i), field{8, 4}, field{12, 4}, field{1, 4})
		}
		if _, _, err := decodeOne(t, d, p.bytes()); err != nil {
			t.Fatal(err)
		}
		if e, n := d.Templates(); e != 1 || n > maxTemplates {
			t.Fatalf("after %d templates: %d exporters, %d templates held", (batch+1)*1000, e, n)
		}
	}
	// The newest templates are the ones kept.
	p := &packet{version: 9, domain: 1, export: recvTime, uptime: 1000}
	p.set(256+9999, make([]byte, 12))
	if flows, st, _ := decodeOne(t, d, p.bytes()); st.NoTemplate != 0 || len(flows) != 1 {
		t.Errorf("newest template: %d flows, %+v", len(flows), st)
	}
	// Many domains of one exporter share its bound.
	for dom := range 1000 {
		p := &packet{version: 10, domain: uint32(dom), export: recvTime}
		p.template(256, field{8, 4})
		decodeOne(t, d, p.bytes())
	}
	if _, n := d.Templates(); n > maxTemplates {
		t.Errorf("1000 domains: %d templates held", n)
	}
	// Many exporters.
	p = &packet{version: 10, domain: 1, export: recvTime}
	p.template(256, field{8, 4})
	pkt := p.bytes()
	for i := range 10_000 {
		a := netip.AddrFrom4([4]byte{10, 99, byte(i >> 8), byte(i)})
		d.Decode(pkt, a, recvTime, nil)
	}
	if e, n := d.Templates(); e > maxExporters || n > maxExporters*maxTemplates {
		t.Errorf("10,000 exporters: %d exporters, %d templates held", e, n)
	}
	// One template of a very large field count is refused.
	d = NewDecoder(time.Hour, 4, 4)
	p = &packet{version: 9, domain: 1, export: recvTime, uptime: 1000}
	fields := make([]field, 1000)
	for i := range fields {
		fields[i] = field{1, 4}
	}
	p.template(256, fields...)
	if _, st, _ := decodeOne(t, d, p.bytes()); st.TemplatesRejected != 1 {
		t.Errorf("1000-field template with a 256-field budget: %+v", st)
	}
}

// TestReceiverHostile sends bad packets to a running receiver over UDP:
// each is counted with its reason and the receiver goes on.
func TestReceiverHostile(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Aggregate = 0
	cfg.MaxTemplatesPerExporter = 32
	rig := startRig(t, cfg)
	conn, err := net.Dial("udp", rig.r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(b []byte) {
		t.Helper()
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(name string, n uint64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for rig.counter(name) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s = %d, want %d", name, rig.counter(name), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	send([]byte{0, 5, 0})
	wait(`segwatch_netflow_decode_errors_total{reason="truncated"}`, 1)
	send([]byte{0, 7, 0, 0})
	wait(`segwatch_netflow_decode_errors_total{reason="version"}`, 1)
	data := (&packet{version: 9, domain: 1, export: time.Now(), uptime: 1000}).set(256, make([]byte, 12)).bytes()
	send(data)
	wait(`segwatch_netflow_decode_errors_total{reason="no_template"}`, 1)
	zero := (&packet{version: 9, domain: 1, export: time.Now(), uptime: 1000}).template(256, field{8, 0}).bytes()
	send(zero)
	wait(`segwatch_netflow_decode_errors_total{reason="bad_template"}`, 1)
	// 10,000 template ids in 10 datagrams.
	for batch := range 10 {
		p := &packet{version: 10, domain: 1, export: time.Now()}
		for i := range 1000 {
			p.template(uint16(256+batch*1000+i), field{8, 4}, field{12, 4})
		}
		send(p.bytes())
	}
	wait(`segwatch_netflow_templates_evicted_total`, 10_000-32)
	if _, n := rig.r.dec.Templates(); n > 32 {
		t.Errorf("%d templates held, bound 32", n)
	}
	// Still receiving: a good v5 packet gives a flow.
	send(v5Packet(1, 0))
	rig.waitFlows(t, 1)
	wait(`segwatch_netflow_packets_received_total{version="5"}`, 2)
}
