package netflow

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

var (
	exporterA = netip.MustParseAddr("192.0.2.1")
	recvTime  = time.Date(2026, 12, 1, 12, 5, 0, 0, time.UTC)
)

// packet builds NetFlow v9 / IPFIX packets for the tests.
type packet struct {
	version uint16
	domain  uint32
	export  time.Time
	uptime  uint32 // v9 only
	sets    [][]byte
}

type field struct{ typ, length uint16 }

func (p *packet) template(id uint16, fields ...field) *packet {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, uint16(len(fields)))
	for _, f := range fields {
		b = binary.BigEndian.AppendUint16(b, f.typ)
		b = binary.BigEndian.AppendUint16(b, f.length)
	}
	setID := uint16(0)
	if p.version == 10 {
		setID = 2
	}
	return p.set(setID, b)
}

// optionsTemplate adds a v9 options template with one 4-byte scope
// (system, type 1) and the given options.
func (p *packet) optionsTemplate(id uint16, options ...field) *packet {
	b := binary.BigEndian.AppendUint16(nil, id)
	if p.version == 9 {
		b = binary.BigEndian.AppendUint16(b, 4)
		b = binary.BigEndian.AppendUint16(b, uint16(4*len(options)))
		b = binary.BigEndian.AppendUint16(b, 1)
		b = binary.BigEndian.AppendUint16(b, 4)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(1+len(options)))
		b = binary.BigEndian.AppendUint16(b, 1)
		b = binary.BigEndian.AppendUint16(b, 149) // observationDomainId scope
		b = binary.BigEndian.AppendUint16(b, 4)
	}
	for _, f := range options {
		b = binary.BigEndian.AppendUint16(b, f.typ)
		b = binary.BigEndian.AppendUint16(b, f.length)
	}
	setID := uint16(1)
	if p.version == 10 {
		setID = 3
	}
	return p.set(setID, b)
}

func (p *packet) set(id uint16, body []byte) *packet {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(body)))
	p.sets = append(p.sets, append(b, body...))
	return p
}

func (p *packet) bytes() []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, p.version)
	if p.version == 9 {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.sets)))
		b = binary.BigEndian.AppendUint32(b, p.uptime)
		b = binary.BigEndian.AppendUint32(b, uint32(p.export.Unix()))
		b = binary.BigEndian.AppendUint32(b, 1)
		b = binary.BigEndian.AppendUint32(b, p.domain)
	} else {
		n := 16
		for _, s := range p.sets {
			n += len(s)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = binary.BigEndian.AppendUint32(b, uint32(p.export.Unix()))
		b = binary.BigEndian.AppendUint32(b, 1)
		b = binary.BigEndian.AppendUint32(b, p.domain)
	}
	for _, s := range p.sets {
		b = append(b, s...)
	}
	return b
}

// v4Record is a data record for v4Template.
func v4Record(src, dst string, sport, dport uint16, proto uint8, octets, pkts, first, last uint32) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := append([]byte{}, s[:]...)
	b = append(b, d[:]...)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = append(b, proto)
	b = binary.BigEndian.AppendUint32(b, octets)
	b = binary.BigEndian.AppendUint32(b, pkts)
	b = binary.BigEndian.AppendUint32(b, first)
	b = binary.BigEndian.AppendUint32(b, last)
	return b
}

var v4Template = []field{{8, 4}, {12, 4}, {7, 2}, {11, 2}, {4, 1}, {1, 4}, {2, 4}, {22, 4}, {21, 4}}

func decodeOne(t *testing.T, d *Decoder, pkt []byte) ([]Flow, Stats, error) {
	t.Helper()
	flows, st, err := d.Decode(pkt, exporterA, recvTime, nil)
	var de *DecodeError
	if errors.As(err, &de) && de.Reason == ReasonPanic {
		t.Fatalf("decoder panicked: %v", err)
	}
	return flows, st, err
}

func TestDecodeV9(t *testing.T) {
	d := NewDecoder(30*time.Minute, 16, 16)
	export := recvTime.Add(-time.Second)
	p := &packet{version: 9, domain: 7, export: export, uptime: 100_000}
	p.template(300, v4Template...)
	p.set(300, append(v4Record("10.20.0.11", "10.30.0.5", 40000, 554, 6, 1500, 10, 40_000, 99_000),
		v4Record("10.20.0.11", "8.8.8.8", 5353, 53, 17, 80, 1, 99_500, 99_500)...))
	flows, st, err := decodeOne(t, d, p.bytes())
	if err != nil || st.Version != 9 || len(flows) != 2 {
		t.Fatalf("flows %d, stats %+v, err %v", len(flows), st, err)
	}
	f := flows[0]
	if f.Src.String() != "10.20.0.11" || f.Dst.String() != "10.30.0.5" || f.SrcPort != 40000 || f.DstPort != 554 ||
		f.Proto != 6 || f.Bytes != 1500 || f.Packets != 10 || f.Version != 9 || f.Exporter != exporterA || f.SamplingRate != 1 {
		t.Errorf("flow %+v", f)
	}
	if want := export.Add(-60 * time.Second); !f.Start.Equal(want) {
		t.Errorf("start %v, want %v", f.Start, want)
	}
	if want := export.Add(-time.Second); !f.End.Equal(want) {
		t.Errorf("end %v, want %v", f.End, want)
	}

	// Data alone, with the template from the earlier packet; another
	// domain of the same exporter does not see it.
	p = &packet{version: 9, domain: 7, export: export, uptime: 100_000}
	p.set(300, v4Record("10.20.0.11", "10.30.0.5", 1, 2, 6, 1, 1, 1, 1))
	if flows, _, err := decodeOne(t, d, p.bytes()); err != nil || len(flows) != 1 {
		t.Errorf("data after template: %d flows, %v", len(flows), err)
	}
	p.domain = 8
	flows, st, err = decodeOne(t, d, p.bytes())
	if err != nil || len(flows) != 0 || st.NoTemplate != 1 {
		t.Errorf("other domain: %d flows, stats %+v, err %v", len(flows), st, err)
	}
	// Nor does another exporter.
	p.domain = 7
	flows, st, _ = d.Decode(p.bytes(), netip.MustParseAddr("192.0.2.2"), recvTime, nil)
	if len(flows) != 0 || st.NoTemplate != 1 {
		t.Errorf("other exporter: %d flows, stats %+v", len(flows), st)
	}
}

func TestDecodeIPFIXAbsoluteTimesAndV6(t *testing.T) {
	d := NewDecoder(30*time.Minute, 16, 16)
	p := &packet{version: 10, domain: 1, export: recvTime}
	p.template(256, field{27, 16}, field{28, 16}, field{7, 2}, field{11, 2}, field{4, 1}, field{1, 8}, field{2, 8}, field{152, 8}, field{153, 8})
	src, dst := netip.MustParseAddr("2001:db8::1").As16(), netip.MustParseAddr("2001:db8::2").As16()
	rec := append(src[:], dst[:]...)
	rec = binary.BigEndian.AppendUint16(rec, 443)
	rec = binary.BigEndian.AppendUint16(rec, 8443)
	rec = append(rec, 6)
	rec = binary.BigEndian.AppendUint64(rec, 1<<33) // > 4 GiB: 8-byte counters
	rec = binary.BigEndian.AppendUint64(rec, 5)
	rec = binary.BigEndian.AppendUint64(rec, uint64(recvTime.Add(-time.Minute).UnixMilli()))
	rec = binary.BigEndian.AppendUint64(rec, uint64(recvTime.Add(-time.Second).UnixMilli()))
	p.set(256, rec)
	flows, _, err := decodeOne(t, d, p.bytes())
	if err != nil || len(flows) != 1 {
		t.Fatalf("%d flows, %v", len(flows), err)
	}
	f := flows[0]
	if f.Src.String() != "2001:db8::1" || f.Bytes != 1<<33 || f.Version != 10 ||
		!f.Start.Equal(recvTime.Add(-time.Minute)) || !f.End.Equal(recvTime.Add(-time.Second)) {
		t.Errorf("flow %+v", f)
	}
}

func TestDecodeSampling(t *testing.T) {
	// v5: the header's sampling interval (low 14 bits; top 2 the mode).
	pkt := v5Packet(1, 0x4000|100)
	flows, _, err := NewDecoder(0, 1, 1).Decode(pkt, exporterA, recvTime, nil)
	if err != nil || len(flows) != 1 || flows[0].Bytes != 100*1000 || flows[0].Packets != 100*2 || flows[0].SamplingRate != 100 {
		t.Fatalf("v5 sampled: %+v %v", flows, err)
	}

	// v9: options data with samplingInterval (34) for the domain.
	d := NewDecoder(30*time.Minute, 16, 16)
	p := &packet{version: 9, domain: 3, export: recvTime, uptime: 10_000}
	p.optionsTemplate(257, field{34, 4})
	p.template(300, v4Template...)
	opt := binary.BigEndian.AppendUint32(nil, 0) // scope value
	opt = binary.BigEndian.AppendUint32(opt, 64)
	p.set(257, opt)
	p.set(300, v4Record("10.0.0.1", "10.0.0.2", 1, 2, 17, 100, 1, 9000, 9500))
	flows, _, err = decodeOne(t, d, p.bytes())
	if err != nil || len(flows) != 1 || flows[0].Bytes != 6400 || flows[0].Packets != 64 {
		t.Fatalf("v9 options sampling: %+v %v", flows, err)
	}
	// IPFIX: samplingPacketInterval/Space (305/306) in the data record:
	// 1 of every 10 packets.
	p = &packet{version: 10, domain: 3, export: recvTime}
	p.template(256, append(v4Template[:7:7], field{305, 4}, field{306, 4})...)
	rec := v4Record("10.0.0.1", "10.0.0.2", 1, 2, 17, 100, 1, 0, 0)[:21]
	rec = binary.BigEndian.AppendUint32(rec, 1)
	rec = binary.BigEndian.AppendUint32(rec, 9)
	p.set(256, rec)
	flows, _, err = decodeOne(t, d, p.bytes())
	if err != nil || len(flows) != 1 || flows[0].Bytes != 1000 || flows[0].SamplingRate != 10 {
		t.Fatalf("ipfix packet sampling: %+v %v", flows, err)
	}
}

func v5Packet(count int, sampling uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, 5)
	b = binary.BigEndian.AppendUint16(b, uint16(count))
	b = binary.BigEndian.AppendUint32(b, 50_000)                  // uptime
	b = binary.BigEndian.AppendUint32(b, uint32(recvTime.Unix())) // secs
	b = binary.BigEndian.AppendUint32(b, 0)                       // nsecs
	b = binary.BigEndian.AppendUint32(b, 1)                       // sequence
	b = append(b, 0, 0)                                           // engine
	b = binary.BigEndian.AppendUint16(b, sampling)                // sampling
	for range count {
		r := make([]byte, v5RecordLen)
		copy(r[0:], []byte{10, 20, 0, 11})
		copy(r[4:], []byte{10, 30, 0, 5})
		binary.BigEndian.PutUint32(r[16:], 2)      // packets
		binary.BigEndian.PutUint32(r[20:], 1000)   // octets
		binary.BigEndian.PutUint32(r[24:], 40_000) // first
		binary.BigEndian.PutUint32(r[28:], 49_000) // last
		binary.BigEndian.PutUint16(r[32:], 40000)
		binary.BigEndian.PutUint16(r[34:], 554)
		r[38] = 6
		b = append(b, r...)
	}
	return b
}

func TestDecodeTemplateExpiry(t *testing.T) {
	d := NewDecoder(time.Minute, 16, 16)
	p := &packet{version: 10, domain: 1, export: recvTime}
	p.template(256, v4Template...)
	if _, _, err := d.Decode(p.bytes(), exporterA, recvTime, nil); err != nil {
		t.Fatal(err)
	}
	data := (&packet{version: 10, domain: 1, export: recvTime}).set(256, v4Record("10.0.0.1", "10.0.0.2", 1, 2, 6, 1, 1, 0, 0)).bytes()
	if flows, _, _ := d.Decode(data, exporterA, recvTime.Add(59*time.Second), nil); len(flows) != 1 {
		t.Errorf("before timeout: %d flows", len(flows))
	}
	if flows, st, _ := d.Decode(data, exporterA, recvTime.Add(61*time.Second), nil); len(flows) != 0 || st.NoTemplate != 1 {
		t.Errorf("after timeout: %d flows, %+v", len(flows), st)
	}
	// Expire sweeps templates never asked for again.
	if _, _, err := d.Decode(p.bytes(), exporterA, recvTime, nil); err != nil {
		t.Fatal(err)
	}
	if n := d.Expire(recvTime.Add(2 * time.Minute)); n != 1 {
		t.Errorf("Expire dropped %d, want 1", n)
	}
	if e, n := d.Templates(); e != 0 || n != 0 {
		t.Errorf("after Expire: %d exporters, %d templates", e, n)
	}
	// IPFIX withdrawal (a template with no fields).
	d.Decode(p.bytes(), exporterA, recvTime, nil)
	w := (&packet{version: 10, domain: 1, export: recvTime}).template(256).bytes()
	if _, _, err := d.Decode(w, exporterA, recvTime, nil); err != nil {
		t.Fatal(err)
	}
	if _, n := d.Templates(); n != 0 {
		t.Errorf("after withdrawal: %d templates", n)
	}
}

// TestDecodeFixtures decodes the packets softflowd sent for the acceptance
// pcap (captured with -update; flows of 2026-12-01 12:00 UTC).
func TestDecodeFixtures(t *testing.T) {
	want := map[flowKey]uint64{}
	for _, f := range pcapFlows() {
		want[flowKey{f.Src.String(), f.Dst.String(), int(f.SrcPort), int(f.DstPort), event.ProtoName(f.Proto)}] = f.IPBytes()
	}
	pcapStart := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, v := range []int{5, 9, 10} {
		pkt, err := os.ReadFile(filepath.Join("testdata", "softflowd-v"+strconv.Itoa(v)+"-0.bin"))
		if err != nil {
			t.Fatal(err)
		}
		flows, st, err := NewDecoder(time.Hour, 16, 16).Decode(pkt, exporterA, recvTime, nil)
		if err != nil || st.Version != v || st.NoTemplate != 0 || st.TemplatesRejected != 0 {
			t.Fatalf("v%d: stats %+v, err %v", v, st, err)
		}
		got := map[flowKey]uint64{}
		for _, f := range flows {
			got[flowKey{f.Src.String(), f.Dst.String(), int(f.SrcPort), int(f.DstPort), event.ProtoName(f.Proto)}] = f.Bytes
			// The pcap lasts 0.2 s; v9 headers carry whole seconds, so
			// its times may be up to a second early.
			if f.Start.Before(pcapStart.Add(-time.Second)) || f.End.After(pcapStart.Add(time.Second)) || f.End.Before(f.Start) {
				t.Errorf("v%d: %v..%v, pcap starts %v", v, f.Start, f.End, pcapStart)
			}
		}
		if len(got) != len(want) {
			t.Errorf("v%d: %d flows, want %d", v, len(got), len(want))
		}
		for k, b := range want {
			if got[k] != b {
				t.Errorf("v%d: %+v: %d bytes, want %d", v, k, got[k], b)
			}
		}
	}
}
