package netflow

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"
	"time"
)

// testFlow is one synthetic conversation written to a pcap: Packets
// packets of PayloadLen bytes each from Src:SrcPort to Dst:DstPort.
type testFlow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8 // 6 or 17
	Packets          int
	PayloadLen       int
}

// ipLen is the IP total length of one packet of f.
func (f testFlow) ipLen() int {
	l4 := 8
	if f.Proto == 6 {
		l4 = 20
	}
	return 20 + l4 + f.PayloadLen
}

// ipBytes is what an exporter must report for f: the sum of IP total lengths.
func (f testFlow) ipBytes() uint64 { return uint64(f.Packets * f.ipLen()) }

// writePcap writes flows as a classic (microsecond) pcap with Ethernet
// framing; the packets of all flows are interleaved 10 ms apart from start.
func writePcap(t testing.TB, path string, start time.Time, flows []testFlow) {
	t.Helper()
	var out []byte
	out = binary.LittleEndian.AppendUint32(out, 0xa1b2c3d4)
	out = binary.LittleEndian.AppendUint16(out, 2)
	out = binary.LittleEndian.AppendUint16(out, 4)
	out = binary.LittleEndian.AppendUint32(out, 0)     // thiszone
	out = binary.LittleEndian.AppendUint32(out, 0)     // sigfigs
	out = binary.LittleEndian.AppendUint32(out, 65535) // snaplen
	out = binary.LittleEndian.AppendUint32(out, 1)     // Ethernet
	ts := start
	left := make([]int, len(flows))
	for i, f := range flows {
		left[i] = f.Packets
	}
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
			pkt := ethFrame(f, seq)
			out = binary.LittleEndian.AppendUint32(out, uint32(ts.Unix()))
			out = binary.LittleEndian.AppendUint32(out, uint32(ts.Nanosecond()/1000))
			out = binary.LittleEndian.AppendUint32(out, uint32(len(pkt)))
			out = binary.LittleEndian.AppendUint32(out, uint32(len(pkt)))
			out = append(out, pkt...)
			ts = ts.Add(10 * time.Millisecond)
		}
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func ethFrame(f testFlow, seq uint32) []byte {
	b := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00}
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(f.ipLen()))
	binary.BigEndian.PutUint16(ip[4:], uint16(seq))
	ip[8] = 64
	ip[9] = f.Proto
	s, d := f.Src.As4(), f.Dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	b = append(b, ip...)
	var l4 []byte
	if f.Proto == 6 {
		l4 = make([]byte, 20)
		binary.BigEndian.PutUint32(l4[4:], seq)
		l4[12] = 5 << 4
		l4[13] = 0x18 // PSH|ACK: no SYN/FIN/RST so softflowd keeps the flow open until it ends
	} else {
		l4 = make([]byte, 8)
		binary.BigEndian.PutUint16(l4[4:], uint16(8+f.PayloadLen))
	}
	binary.BigEndian.PutUint16(l4[0:], f.SrcPort)
	binary.BigEndian.PutUint16(l4[2:], f.DstPort)
	b = append(b, l4...)
	return append(b, make([]byte, f.PayloadLen)...)
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
