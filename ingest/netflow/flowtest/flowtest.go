// Package flowtest makes real NetFlow for tests and benchmarks: it writes
// synthetic conversations as a pcap and has softflowd, a real exporter,
// turn that pcap into v5, v9 or IPFIX datagrams. The unit tests of
// ingest/netflow and the end-to-end tests of cmd/segwatch share it, so both
// feed the same well-formed packets and know the same exporter quirks.
package flowtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// Flow is one conversation: Packets packets of PayloadLen payload bytes
// each, from Src:SrcPort to Dst:DstPort over TCP (6) or UDP (17). Addresses
// are IPv4.
type Flow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8
	Packets          int
	PayloadLen       int
}

// IPLen is the IP total length of one packet of f.
func (f Flow) IPLen() int {
	l4 := 8
	if f.Proto == 6 {
		l4 = 20
	}
	return 20 + l4 + f.PayloadLen
}

// IPBytes is what an exporter must report for f: the sum of IP total
// lengths (NetFlow counts layer-3 octets, not Ethernet frames).
func (f Flow) IPBytes() uint64 { return uint64(f.Packets * f.IPLen()) }

// WritePcap writes flows to path as a classic microsecond pcap with
// Ethernet framing, the packets of all flows interleaved 10 ms apart from
// start. TCP packets carry PSH|ACK only (no SYN, FIN or RST), so softflowd
// keeps each flow open until the end of the file and exports it as one
// record.
func WritePcap(path string, start time.Time, flows []Flow) error {
	le := binary.LittleEndian
	var out []byte
	out = le.AppendUint32(out, 0xa1b2c3d4)
	out = le.AppendUint16(out, 2)
	out = le.AppendUint16(out, 4)
	out = le.AppendUint32(out, 0)     // thiszone
	out = le.AppendUint32(out, 0)     // sigfigs
	out = le.AppendUint32(out, 65535) // snaplen
	out = le.AppendUint32(out, 1)     // Ethernet
	left := make([]int, len(flows))
	for i, f := range flows {
		left[i] = f.Packets
	}
	ts := start
	var seq uint32
	for more := true; more; {
		more = false
		for i, f := range flows {
			if left[i] == 0 {
				continue
			}
			left[i]--
			more = true
			seq++
			pkt := frame(f, seq)
			out = le.AppendUint32(out, uint32(ts.Unix()))
			out = le.AppendUint32(out, uint32(ts.Nanosecond()/1000))
			out = le.AppendUint32(out, uint32(len(pkt)))
			out = le.AppendUint32(out, uint32(len(pkt)))
			out = append(out, pkt...)
			ts = ts.Add(10 * time.Millisecond)
		}
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return fmt.Errorf("write pcap: %w", err)
	}
	return nil
}

// frame is one Ethernet frame of f with IP id and TCP sequence seq.
func frame(f Flow, seq uint32) []byte {
	be := binary.BigEndian
	b := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00}
	ip := make([]byte, 20)
	ip[0] = 0x45
	be.PutUint16(ip[2:], uint16(f.IPLen()))
	be.PutUint16(ip[4:], uint16(seq))
	ip[8] = 64
	ip[9] = f.Proto
	s, d := f.Src.As4(), f.Dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	be.PutUint16(ip[10:], checksum(ip))
	b = append(b, ip...)
	var l4 []byte
	if f.Proto == 6 {
		l4 = make([]byte, 20)
		be.PutUint32(l4[4:], seq)
		l4[12] = 5 << 4
		l4[13] = 0x18 // PSH|ACK
	} else {
		l4 = make([]byte, 8)
		be.PutUint16(l4[4:], uint16(8+f.PayloadLen))
	}
	be.PutUint16(l4[0:], f.SrcPort)
	be.PutUint16(l4[2:], f.DstPort)
	b = append(b, l4...)
	return append(b, make([]byte, f.PayloadLen)...)
}

func checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Softflowd runs the softflowd binary bin on pcap, exporting to addr
// (host:port) as NetFlow version 5, 9 or 10 (IPFIX), and returns once it
// has read the whole file and exported every flow. dir must be an empty
// directory of the caller's (a temp dir): softflowd 1.1.0 blocks in
// accept() on its control socket instead of reading the pcap when the -c
// path is longer than about 12 characters (Debian's build), so the socket
// gets a short relative path inside dir. After 30 s, or when ctx ends,
// softflowd is killed: a hang becomes an error, not a stuck test.
func Softflowd(ctx context.Context, bin, dir, pcap, addr string, version int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-d", "-r", pcap, "-n", addr, "-v", strconv.Itoa(version), "-c", "ctl", "-p", "pid")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("softflowd -v %d: %v\n%s", version, err, out)
	}
	return nil
}

// Conversations are the flows of the acceptance pcaps: between a camera
// (10.20.0.11) and a recorder (10.30.0.5) both ways over TCP and UDP, to
// public addresses, and from a private address outside the tests' segments
// (192.168.1.9). The decoder fixtures in ingest/netflow/testdata were
// captured from softflowd exporting exactly these: change them together.
func Conversations() []Flow {
	a := netip.MustParseAddr
	return []Flow{
		{Src: a("10.20.0.11"), Dst: a("10.30.0.5"), SrcPort: 40000, DstPort: 554, Proto: 6, Packets: 20, PayloadLen: 100},
		{Src: a("10.30.0.5"), Dst: a("10.20.0.11"), SrcPort: 554, DstPort: 40000, Proto: 6, Packets: 10, PayloadLen: 900},
		{Src: a("10.20.0.11"), Dst: a("10.30.0.5"), SrcPort: 40002, DstPort: 554, Proto: 6, Packets: 3, PayloadLen: 10},
		{Src: a("10.20.0.11"), Dst: a("10.30.0.5"), SrcPort: 41000, DstPort: 514, Proto: 17, Packets: 4, PayloadLen: 200},
		{Src: a("10.20.0.11"), Dst: a("198.51.100.7"), SrcPort: 40001, DstPort: 443, Proto: 6, Packets: 5, PayloadLen: 300},
		{Src: a("10.30.0.5"), Dst: a("8.8.8.8"), SrcPort: 5353, DstPort: 53, Proto: 17, Packets: 3, PayloadLen: 40},
		{Src: a("192.168.1.9"), Dst: a("10.30.0.5"), SrcPort: 50000, DstPort: 22, Proto: 6, Packets: 2, PayloadLen: 0},
	}
}
