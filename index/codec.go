package index

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

// The event codec: a compact binary form of event.Event used inside raw
// frames. Each event is a presence bitmap (uvarint) followed by the present
// fields in bit order; absent fields cost nothing, which matters because a
// log has no flow fields and a flow no syslog header. Strings are a uvarint
// length and the bytes; times are whole seconds relative to the block's base
// (zig-zag varint, small within a block) plus a uvarint nanosecond part, so
// every time.Time that has a Unix form round-trips exactly (returned in UTC).
// The ID is not stored: it is derived from the block's place (see eventID).
//
// Decoding works on a string holding the whole decompressed block, so each
// decoded string field is a substring of it and costs no allocation; only
// SD maps allocate.

// Presence bits, in encoding order. Never reorder: it is the on-disk format.
const (
	fTime = 1 << iota
	fReceived
	fKind
	fSourceIP
	fDevice
	fSegment
	fCategory
	fOwner
	fHost
	fApp
	fProcID
	fMsgID
	fFacility
	fSeverity
	fMessage
	fSD
	fSrcIP
	fDstIP
	fSrcPort
	fDstPort
	fProto
	fBytes
	fPackets
	fSrcSegment
	fDstSegment
	fSrcDevice
	fDstDevice
	fFlowVersion
	fEnd
	fFlows
	fRaw
	fParseError
	fTruncated
)

// errCorrupt reports an encoded event that does not decode.
var errCorrupt = errors.New("corrupt event encoding")

// encodeEvent appends the encoding of ev to dst, times relative to baseSec.
func encodeEvent(dst []byte, ev *event.Event, baseSec int64) []byte {
	var bits uint64
	set := func(cond bool, bit uint64) {
		if cond {
			bits |= bit
		}
	}
	set(!ev.Time.IsZero(), fTime)
	set(!ev.Received.IsZero(), fReceived)
	set(ev.Kind != "", fKind)
	set(ev.SourceIP != "", fSourceIP)
	set(ev.Device != "", fDevice)
	set(ev.Segment != "", fSegment)
	set(ev.Category != "", fCategory)
	set(ev.Owner != "", fOwner)
	set(ev.Host != "", fHost)
	set(ev.App != "", fApp)
	set(ev.ProcID != "", fProcID)
	set(ev.MsgID != "", fMsgID)
	set(ev.Facility != 0, fFacility)
	set(ev.Severity != 0, fSeverity)
	set(ev.Message != "", fMessage)
	set(ev.SD != nil, fSD)
	set(ev.SrcIP != "", fSrcIP)
	set(ev.DstIP != "", fDstIP)
	set(ev.SrcPort != 0, fSrcPort)
	set(ev.DstPort != 0, fDstPort)
	set(ev.Proto != "", fProto)
	set(ev.Bytes != 0, fBytes)
	set(ev.Packets != 0, fPackets)
	set(ev.SrcSegment != "", fSrcSegment)
	set(ev.DstSegment != "", fDstSegment)
	set(ev.SrcDevice != "", fSrcDevice)
	set(ev.DstDevice != "", fDstDevice)
	set(ev.FlowVersion != 0, fFlowVersion)
	set(!ev.End.IsZero(), fEnd)
	set(ev.Flows != 0, fFlows)
	set(ev.Raw != "", fRaw)
	set(ev.ParseError != "", fParseError)
	set(ev.Truncated, fTruncated)

	dst = binary.AppendUvarint(dst, bits)
	putTime := func(t time.Time) {
		dst = binary.AppendVarint(dst, t.Unix()-baseSec)
		dst = binary.AppendUvarint(dst, uint64(t.Nanosecond()))
	}
	putStr := func(bit uint64, s string) {
		if bits&bit != 0 {
			dst = binary.AppendUvarint(dst, uint64(len(s)))
			dst = append(dst, s...)
		}
	}
	putInt := func(bit uint64, n int) {
		if bits&bit != 0 {
			dst = binary.AppendVarint(dst, int64(n))
		}
	}
	putUint := func(bit uint64, n uint64) {
		if bits&bit != 0 {
			dst = binary.AppendUvarint(dst, n)
		}
	}
	if bits&fTime != 0 {
		putTime(ev.Time)
	}
	if bits&fReceived != 0 {
		putTime(ev.Received)
	}
	putStr(fKind, ev.Kind)
	putStr(fSourceIP, ev.SourceIP)
	putStr(fDevice, ev.Device)
	putStr(fSegment, ev.Segment)
	putStr(fCategory, ev.Category)
	putStr(fOwner, ev.Owner)
	putStr(fHost, ev.Host)
	putStr(fApp, ev.App)
	putStr(fProcID, ev.ProcID)
	putStr(fMsgID, ev.MsgID)
	putInt(fFacility, ev.Facility)
	putInt(fSeverity, ev.Severity)
	putStr(fMessage, ev.Message)
	if bits&fSD != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(ev.SD)))
		for id, params := range ev.SD {
			putStr(fSD, id)
			dst = binary.AppendUvarint(dst, uint64(len(params)))
			for k, v := range params {
				putStr(fSD, k)
				putStr(fSD, v)
			}
		}
	}
	putStr(fSrcIP, ev.SrcIP)
	putStr(fDstIP, ev.DstIP)
	putInt(fSrcPort, ev.SrcPort)
	putInt(fDstPort, ev.DstPort)
	putStr(fProto, ev.Proto)
	putUint(fBytes, ev.Bytes)
	putUint(fPackets, ev.Packets)
	putStr(fSrcSegment, ev.SrcSegment)
	putStr(fDstSegment, ev.DstSegment)
	putStr(fSrcDevice, ev.SrcDevice)
	putStr(fDstDevice, ev.DstDevice)
	putInt(fFlowVersion, ev.FlowVersion)
	if bits&fEnd != 0 {
		putTime(ev.End)
	}
	putUint(fFlows, ev.Flows)
	putStr(fRaw, ev.Raw)
	putStr(fParseError, ev.ParseError)
	return dst
}

// decoder reads an encoded block held in a string.
type decoder struct {
	s   string
	pos int
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if d.pos >= len(d.s) {
			break
		}
		b := d.s[d.pos]
		d.pos++
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<shift
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	d.err = errCorrupt
	return 0
}

func (d *decoder) varint() int64 {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)-d.pos) {
		d.err = errCorrupt
		return ""
	}
	s := d.s[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return s
}

func (d *decoder) time(baseSec int64) time.Time {
	sec := d.varint() + baseSec
	nsec := d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 {
		d.err = errCorrupt
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// event decodes one event into ev, overwriting every field (ID is left
// empty: the caller derives it).
func (d *decoder) event(ev *event.Event, baseSec int64) error {
	*ev = event.Event{}
	bits := d.uvarint()
	if bits>>33 != 0 {
		d.err = errCorrupt
	}
	str := func(bit uint64, p *string) {
		if bits&bit != 0 {
			*p = d.str()
		}
	}
	num := func(bit uint64, p *int) {
		if bits&bit != 0 {
			*p = int(d.varint())
		}
	}
	unum := func(bit uint64, p *uint64) {
		if bits&bit != 0 {
			*p = d.uvarint()
		}
	}
	if bits&fTime != 0 {
		ev.Time = d.time(baseSec)
	}
	if bits&fReceived != 0 {
		ev.Received = d.time(baseSec)
	}
	str(fKind, &ev.Kind)
	str(fSourceIP, &ev.SourceIP)
	str(fDevice, &ev.Device)
	str(fSegment, &ev.Segment)
	str(fCategory, &ev.Category)
	str(fOwner, &ev.Owner)
	str(fHost, &ev.Host)
	str(fApp, &ev.App)
	str(fProcID, &ev.ProcID)
	str(fMsgID, &ev.MsgID)
	num(fFacility, &ev.Facility)
	num(fSeverity, &ev.Severity)
	str(fMessage, &ev.Message)
	if bits&fSD != 0 {
		n := d.uvarint()
		// Every element costs at least two bytes, which bounds the
		// allocation a corrupt count can cause.
		if n > uint64(len(d.s)-d.pos) {
			d.err = errCorrupt
			n = 0
		}
		ev.SD = make(map[string]map[string]string, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			id := d.str()
			m := d.uvarint()
			if m > uint64(len(d.s)-d.pos) {
				d.err = errCorrupt
				break
			}
			params := make(map[string]string, m)
			for j := uint64(0); j < m && d.err == nil; j++ {
				k := d.str()
				params[k] = d.str()
			}
			ev.SD[id] = params
		}
	}
	str(fSrcIP, &ev.SrcIP)
	str(fDstIP, &ev.DstIP)
	num(fSrcPort, &ev.SrcPort)
	num(fDstPort, &ev.DstPort)
	str(fProto, &ev.Proto)
	unum(fBytes, &ev.Bytes)
	unum(fPackets, &ev.Packets)
	str(fSrcSegment, &ev.SrcSegment)
	str(fDstSegment, &ev.DstSegment)
	str(fSrcDevice, &ev.SrcDevice)
	str(fDstDevice, &ev.DstDevice)
	num(fFlowVersion, &ev.FlowVersion)
	if bits&fEnd != 0 {
		ev.End = d.time(baseSec)
	}
	unum(fFlows, &ev.Flows)
	str(fRaw, &ev.Raw)
	str(fParseError, &ev.ParseError)
	ev.Truncated = bits&fTruncated != 0
	return d.err
}

// decodeEvents decodes count events from an encoded block into dst
// (appending) and fails if the block holds anything else.
func decodeEvents(dst []event.Event, payload string, count int, baseSec int64) ([]event.Event, error) {
	d := decoder{s: payload}
	// A corrupt count must not allocate gigabytes: each event needs a byte.
	if count < 0 || count > len(payload) {
		return dst, errCorrupt
	}
	start := len(dst)
	dst = slices.Grow(dst, count)[:start+count]
	for i := start; i < len(dst); i++ {
		if err := d.event(&dst[i], baseSec); err != nil {
			return dst[:start], err
		}
	}
	if d.pos != len(d.s) {
		return dst[:start], errCorrupt
	}
	return dst, nil
}
