package netflow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
)

// Flow is one exported flow record, decoded but not yet enriched. Bytes
// and Packets are already multiplied by the sampling rate.
type Flow struct {
	Exporter         netip.Addr
	Version          int // 5, 9 or 10 (IPFIX)
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8
	Bytes, Packets   uint64
	SamplingRate     uint64 // 1 when not sampled
	// Start and End are the flow's first and last packet as the exporter
	// reported them; zero when the record carries no usable time.
	Start, End time.Time
}

// Reasons a packet, or part of one, was not decoded; they are the values
// of the reason label of segwatch_netflow_decode_errors_total.
const (
	ReasonTruncated   = "truncated"    // shorter than its header or records say
	ReasonVersion     = "version"      // not NetFlow v5, v9 or IPFIX
	ReasonMalformed   = "malformed"    // goflow2 refused a set
	ReasonNoTemplate  = "no_template"  // data set whose template is unknown or expired
	ReasonBadTemplate = "bad_template" // template refused (no sized field, too large)
	ReasonPanic       = "panic"        // the decoder panicked; the packet was dropped
)

// DecodeError is a decode failure with its reason (one of the Reason
// constants).
type DecodeError struct {
	Reason string
	Err    error
}

// Error says the reason and the underlying failure.
func (e *DecodeError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns the underlying failure (often goflow2's).
func (e *DecodeError) Unwrap() error { return e.Err }

// Stats tells what Decode skipped inside a packet it otherwise decoded.
type Stats struct {
	Version           int
	NoTemplate        int // data sets skipped for want of a template
	TemplatesRejected int
}

// Decoder decodes NetFlow v5, v9 and IPFIX packets with goflow2's
// decoders, keeping templates and options state per exporter address and
// observation domain. It is safe for concurrent use.
type Decoder struct {
	store *templateStore
}

// NewDecoder returns a decoder whose templates expire after timeout (0:
// never) and which holds at most maxTemplates templates per exporter and
// maxExporters exporters.
func NewDecoder(timeout time.Duration, maxTemplates, maxExporters int) *Decoder {
	return &Decoder{store: newTemplateStore(timeout, max(maxTemplates, 1), max(maxExporters, 1))}
}

// Templates returns the number of exporters and templates held.
func (d *Decoder) Templates() (exporters, templates int) { return d.store.counts() }

// Expire drops templates not refreshed within the timeout as of now and
// returns how many it dropped.
func (d *Decoder) Expire(now time.Time) int { return d.store.expire(now) }

// Decode decodes one export packet from exporter received at now and
// appends its flows to out. A panic inside the decoders is recovered and
// returned as a DecodeError with ReasonPanic; flows decoded before an error
// are still returned (they are sound: each set is checked on its own).
func (d *Decoder) Decode(pkt []byte, exporter netip.Addr, now time.Time, out []Flow) (_ []Flow, st Stats, err error) {
	n0 := len(out)
	defer func() {
		if r := recover(); r != nil {
			out = out[:n0]
			err = &DecodeError{ReasonPanic, fmt.Errorf("%v", r)}
		}
	}()
	exporter = exporter.Unmap()
	if len(pkt) < 2 {
		return out, st, &DecodeError{ReasonTruncated, errors.New("no version")}
	}
	switch v := binary.BigEndian.Uint16(pkt); v {
	case 5:
		st.Version = 5
		out, err = decodeV5(pkt, exporter, out)
		return out, st, err
	case 9, 10:
		st.Version = int(v)
		return d.decodeTemplated(pkt, exporter, now, out, st)
	default:
		return out, st, &DecodeError{ReasonVersion, fmt.Errorf("version %d", v)}
	}
}

const (
	v5HeaderLen = 24
	v5RecordLen = 48
)

func decodeV5(pkt []byte, exporter netip.Addr, out []Flow) ([]Flow, error) {
	if len(pkt) < v5HeaderLen {
		return out, &DecodeError{ReasonTruncated, fmt.Errorf("v5 header: %d bytes", len(pkt))}
	}
	// goflow2 allocates the count from the header before it reads records
	// and leaves missing records zero: check the length first.
	count := int(binary.BigEndian.Uint16(pkt[2:]))
	if len(pkt) < v5HeaderLen+count*v5RecordLen {
		return out, &DecodeError{ReasonTruncated, fmt.Errorf("v5: %d records in %d bytes", count, len(pkt))}
	}
	var p netflowlegacy.PacketNetFlowV5
	if err := netflowlegacy.DecodeMessageVersion(bytes.NewBuffer(pkt), &p); err != nil {
		return out, &DecodeError{ReasonMalformed, fmt.Errorf("decode v5: %w", err)}
	}
	rate := uint64(p.SamplingInterval & 0x3fff) // top two bits: sampling mode
	if rate == 0 {
		rate = 1
	}
	exportMs := int64(p.UnixSecs)*1000 + int64(p.UnixNSecs/1e6)
	for _, r := range p.Records {
		out = append(out, Flow{
			Exporter:     exporter,
			Version:      5,
			Src:          v4(uint32(r.SrcAddr)),
			Dst:          v4(uint32(r.DstAddr)),
			SrcPort:      r.SrcPort,
			DstPort:      r.DstPort,
			Proto:        r.Proto,
			Bytes:        uint64(r.DOctets) * rate,
			Packets:      uint64(r.DPkts) * rate,
			SamplingRate: rate,
			Start:        uptimeTime(exportMs, p.SysUptime, r.First),
			End:          uptimeTime(exportMs, p.SysUptime, r.Last),
		})
	}
	return out, nil
}

func v4(a uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a)
	return netip.AddrFrom4(b)
}

// uptimeTime converts a switched time (ms of exporter uptime) to wall time:
// the flow happened uptime-at ms before the export. The uint32 subtraction
// is the one the counter's wrap-around (every 49.7 days) needs; exporters
// such as softflowd also send "negative" times this way.
func uptimeTime(exportMs int64, uptime, at uint32) time.Time {
	return time.UnixMilli(exportMs - int64(uptime-at)).UTC()
}

// IPFIX/v9 information elements used (RFC 7012 / IANA IPFIX registry).
const (
	ieOctetDeltaCount     = 1
	iePacketDeltaCount    = 2
	ieProtocol            = 4
	ieSrcPort             = 7
	ieSrcV4               = 8
	ieDstPort             = 11
	ieDstV4               = 12
	ieLastSwitched        = 21
	ieFirstSwitched       = 22
	ieSrcV6               = 27
	ieDstV6               = 28
	ieSamplingInterval    = 34
	ieSamplerRandomIntv   = 50
	ieOctetTotalCount     = 85
	iePacketTotalCount    = 86
	ieStartSeconds        = 150
	ieEndSeconds          = 151
	ieStartMilliseconds   = 152
	ieEndMilliseconds     = 153
	ieStartMicroseconds   = 154
	ieEndMicroseconds     = 155
	ieStartNanoseconds    = 156
	ieEndNanoseconds      = 157
	ieSystemInitTimeMs    = 160
	ieSamplingPacketIntv  = 305
	ieSamplingPacketSpace = 306
	ntpEpochOffset        = 2208988800 // seconds from 1900 to 1970
)

func (d *Decoder) decodeTemplated(pkt []byte, exporter netip.Addr, now time.Time, out []Flow, st Stats) ([]Flow, Stats, error) {
	view := &exporterView{s: d.store, addr: exporter, now: now}
	if err := d.checkSets(pkt, st.Version, exporter, now); err != nil {
		return out, st, err
	}
	if st.Version == 9 {
		// goflow2 reads as many sets as the header's count, but RFC 3954's
		// count is records, and exporters (softflowd) fill in the number of
		// flows: a small export then loses its data set silently. Read to
		// the end of the packet instead; checkSets vouched for its sets.
		pkt = bytes.Clone(pkt)
		binary.BigEndian.PutUint16(pkt[2:], 0xffff)
	}
	var v9 netflow.NFv9Packet
	var ipfix netflow.IPFIXPacket
	derr := netflow.DecodeMessageVersion(bytes.NewBuffer(pkt), view, &v9, &ipfix)
	st.TemplatesRejected = view.rejected

	var (
		sets     []any
		exportMs int64
		uptime   uint32
		hasUp    bool
		dk       domainKey
	)
	if st.Version == 9 {
		sets, dk = v9.FlowSets, domainKey{9, v9.SourceId}
		exportMs, uptime, hasUp = int64(v9.UnixSeconds)*1000, v9.SystemUptime, true
	} else {
		sets, dk = ipfix.FlowSets, domainKey{10, ipfix.ObservationDomainId}
		exportMs = int64(ipfix.ExportTime) * 1000
	}
	for _, set := range sets {
		switch s := set.(type) {
		case netflow.RawFlowSet:
			st.NoTemplate++
		case netflow.OptionsDataFlowSet:
			for _, r := range s.Records {
				var o record
				o.parse(r.ScopesValues)
				o.parse(r.OptionsValues)
				if o.sampling() > 1 || o.sysInitMs > 0 {
					d.store.setDomain(exporter, now, dk, o.sampling(), o.sysInitMs)
				}
			}
		case netflow.DataFlowSet:
			ds := d.store.domain(exporter, dk)
			up, ok := uptime, hasUp
			if !ok && ds.sysInitMs > 0 {
				// IPFIX relative times count from systemInitTimeMilliseconds
				// (options data); derive the uptime at export from it.
				up, ok = uint32(exportMs-ds.sysInitMs), true
			}
			for _, r := range s.Records {
				var rec record
				rec.parse(r.Values)
				f, fok := rec.flow(exporter, st.Version, exportMs, up, ok, ds.sampling)
				if fok {
					out = append(out, f)
				}
			}
		}
	}
	if derr != nil {
		if errors.Is(derr, netflow.ErrorTemplateNotFound) {
			// goflow2 joins template misses and goes on; a real failure
			// stops it and is returned alone.
			return out, st, nil
		}
		reason := ReasonMalformed
		if errors.Is(derr, io.ErrUnexpectedEOF) {
			reason = ReasonTruncated
		}
		return out, st, &DecodeError{reason, derr}
	}
	return out, st, nil
}

// Header lengths of v9 and IPFIX export packets.
const (
	v9HeaderLen    = 20
	ipfixHeaderLen = 16
)

// checkSets walks the set headers of a v9 or IPFIX packet and refuses a
// packet whose sets do not tile it: a set shorter than its own header or
// running past the end (goflow2 would decode what is there and return
// garbage). IPFIX data sets whose template has variable-length fields are
// walked record by record too, since a field length past its record is
// otherwise cut short without an error.
func (d *Decoder) checkSets(pkt []byte, version int, exporter netip.Addr, now time.Time) error {
	hdr, end := v9HeaderLen, len(pkt)
	if version == 10 {
		hdr = ipfixHeaderLen
		if len(pkt) >= 4 {
			if l := int(binary.BigEndian.Uint16(pkt[2:])); l >= hdr && l <= len(pkt) {
				end = l
			} else {
				return &DecodeError{ReasonTruncated, fmt.Errorf("ipfix: message length %d, datagram %d bytes", l, len(pkt))}
			}
		}
	}
	if len(pkt) < hdr {
		return &DecodeError{ReasonTruncated, fmt.Errorf("header: %d bytes", len(pkt))}
	}
	var domain uint32
	if version == 10 {
		domain = binary.BigEndian.Uint32(pkt[12:])
	} else {
		domain = binary.BigEndian.Uint32(pkt[16:])
	}
	var local map[uint16][]uint16 // IPFIX templates defined earlier in this packet
	for off := hdr; off < end; {
		if end-off < 4 {
			// Fewer bytes than a set header: padding is only allowed inside sets.
			return &DecodeError{ReasonTruncated, fmt.Errorf("set header at %d: %d bytes left", off, end-off)}
		}
		id := binary.BigEndian.Uint16(pkt[off:])
		n := int(binary.BigEndian.Uint16(pkt[off+2:]))
		if n < 4 || off+n > end {
			return &DecodeError{ReasonTruncated, fmt.Errorf("set %d at %d: length %d, %d bytes left", id, off, n, end-off)}
		}
		if version == 10 && id == 2 {
			local = ipfixTemplateLengths(pkt[off+4:off+n], local)
		}
		if version == 10 && id >= 256 {
			lengths, ok := local[id]
			if !ok {
				lengths = d.storedLengths(exporter, now, domain, id)
			}
			if err := checkVarRecords(pkt[off+4:off+n], lengths); err != nil {
				return err
			}
		}
		off += n
	}
	return nil
}

// ipfixTemplateLengths adds the field lengths of the IPFIX template
// records in set to m (RFC 7011 §3.4.1); it stops quietly at anything
// malformed, which the decoder then reports.
func ipfixTemplateLengths(set []byte, m map[uint16][]uint16) map[uint16][]uint16 {
	for off := 0; off+4 <= len(set); {
		id, count := binary.BigEndian.Uint16(set[off:]), int(binary.BigEndian.Uint16(set[off+2:]))
		off += 4
		var lengths []uint16
		for i := 0; i < count; i++ {
			if off+4 > len(set) {
				return m
			}
			typ, l := binary.BigEndian.Uint16(set[off:]), binary.BigEndian.Uint16(set[off+2:])
			off += 4
			if typ&0x8000 != 0 {
				off += 4 // enterprise number
			}
			lengths = append(lengths, l)
		}
		if m == nil {
			m = map[uint16][]uint16{}
		}
		m[id] = lengths
	}
	return m
}

// storedLengths returns the field lengths of a known IPFIX data template.
func (d *Decoder) storedLengths(exporter netip.Addr, now time.Time, domain uint32, id uint16) []uint16 {
	t, ok := d.store.get(exporter, now, templateKey{version: 10, domain: domain, template: id})
	if !ok {
		return nil // counted as no_template by the decoder
	}
	tr, ok := t.(netflow.TemplateRecord)
	if !ok {
		return nil // options templates: fixed lengths here
	}
	lengths := make([]uint16, len(tr.Fields))
	for i, f := range tr.Fields {
		lengths[i] = f.Length
	}
	return lengths
}

// checkVarRecords walks the records of an IPFIX data set whose template
// has variable-length fields (RFC 7011 §7): a length running past the set
// makes the packet truncated. Trailing bytes shorter than a minimal record
// are padding.
func checkVarRecords(set []byte, lengths []uint16) error {
	variable, min := false, 0
	for _, l := range lengths {
		if l == 0xffff {
			variable = true
			min++
		} else {
			min += int(l)
		}
	}
	if !variable || min == 0 {
		return nil
	}
	past := &DecodeError{ReasonTruncated, errors.New("ipfix: variable-length field past its set")}
	for off := 0; len(set)-off >= min; {
		for _, fl := range lengths {
			l := int(fl)
			if fl == 0xffff {
				if off >= len(set) {
					return past
				}
				l = int(set[off])
				off++
				if l == 255 {
					if off+2 > len(set) {
						return past
					}
					l = int(binary.BigEndian.Uint16(set[off:]))
					off += 2
				}
			}
			if off+l > len(set) {
				return past
			}
			off += l
		}
	}
	return nil
}

// record gathers the fields of one data or options record.
type record struct {
	src, dst               netip.Addr
	srcPort, dstPort       uint16
	proto                  uint8
	bytes, packets         uint64
	haveBytes, havePackets bool
	first, last            uint32
	haveFirst, haveLast    bool
	startMs, endMs         int64
	samplingIntv           uint64
	samplingSpace          uint64
	sysInitMs              int64
}

// beUint reads a big-endian unsigned integer of 1-8 bytes ("reduced-size
// encoding", RFC 7011 §6.2). A value of another length is ignored: a field
// length past the packet end leaves goflow2 with a short slice.
func beUint(v any) (uint64, bool) {
	b, ok := v.([]byte)
	if !ok || len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n, true
}

func addr(v any, size int) (netip.Addr, bool) {
	b, ok := v.([]byte)
	if !ok || len(b) != size {
		return netip.Addr{}, false
	}
	a, _ := netip.AddrFromSlice(b)
	return a, true
}

// ntpMs converts a 64-bit NTP timestamp (dateTimeMicroseconds /
// dateTimeNanoseconds, RFC 7011 §6.1.9-10) to Unix milliseconds.
func ntpMs(n uint64) int64 {
	sec := int64(n>>32) - ntpEpochOffset
	frac := int64((n & 0xffffffff) * 1000 >> 32)
	return sec*1000 + frac
}

func (r *record) parse(fields []netflow.DataField) {
	for _, f := range fields {
		if f.PenProvided {
			continue // enterprise-specific (incl. IPFIX reverse direction): not used
		}
		switch f.Type {
		case ieSrcV4:
			r.src, _ = addr(f.Value, 4)
		case ieDstV4:
			r.dst, _ = addr(f.Value, 4)
		case ieSrcV6:
			if a, ok := addr(f.Value, 16); ok {
				r.src = a
			}
		case ieDstV6:
			if a, ok := addr(f.Value, 16); ok {
				r.dst = a
			}
		default:
			n, ok := beUint(f.Value)
			if !ok {
				continue
			}
			switch f.Type {
			case ieOctetDeltaCount:
				r.bytes, r.haveBytes = n, true
			case ieOctetTotalCount:
				if !r.haveBytes {
					r.bytes = n
				}
			case iePacketDeltaCount:
				r.packets, r.havePackets = n, true
			case iePacketTotalCount:
				if !r.havePackets {
					r.packets = n
				}
			case ieProtocol:
				r.proto = uint8(n)
			case ieSrcPort:
				r.srcPort = uint16(n)
			case ieDstPort:
				r.dstPort = uint16(n)
			case ieFirstSwitched:
				r.first, r.haveFirst = uint32(n), true
			case ieLastSwitched:
				r.last, r.haveLast = uint32(n), true
			case ieStartSeconds:
				r.startMs = int64(n) * 1000
			case ieEndSeconds:
				r.endMs = int64(n) * 1000
			case ieStartMilliseconds:
				r.startMs = int64(n)
			case ieEndMilliseconds:
				r.endMs = int64(n)
			case ieStartMicroseconds, ieStartNanoseconds:
				r.startMs = ntpMs(n)
			case ieEndMicroseconds, ieEndNanoseconds:
				r.endMs = ntpMs(n)
			case ieSamplingInterval, ieSamplerRandomIntv, ieSamplingPacketIntv:
				r.samplingIntv = n
			case ieSamplingPacketSpace:
				r.samplingSpace = n
			case ieSystemInitTimeMs:
				r.sysInitMs = int64(n)
			}
		}
	}
}

// sampling is the number of packets each sampled one stands for: the
// interval, or (interval+space)/interval for systematic count-based
// sampling (RFC 5476 samplingPacketInterval/Space).
func (r *record) sampling() uint64 {
	if r.samplingIntv == 0 {
		return 0
	}
	if r.samplingSpace == 0 {
		return r.samplingIntv
	}
	return (r.samplingIntv + r.samplingSpace) / r.samplingIntv
}

// flow turns a data record into a Flow; ok is false for a record without
// both addresses (e.g. a set of some other kind of record).
func (r *record) flow(exporter netip.Addr, version int, exportMs int64, uptime uint32, haveUptime bool, domainRate uint64) (Flow, bool) {
	if !r.src.IsValid() || !r.dst.IsValid() {
		return Flow{}, false
	}
	rate := r.sampling()
	if rate == 0 {
		rate = domainRate
	}
	if rate == 0 {
		rate = 1
	}
	f := Flow{
		Exporter:     exporter,
		Version:      version,
		Src:          r.src.Unmap(),
		Dst:          r.dst.Unmap(),
		SrcPort:      r.srcPort,
		DstPort:      r.dstPort,
		Proto:        r.proto,
		Bytes:        r.bytes * rate,
		Packets:      r.packets * rate,
		SamplingRate: rate,
	}
	switch {
	case r.startMs != 0:
		f.Start = time.UnixMilli(r.startMs).UTC()
	case r.haveFirst && haveUptime:
		f.Start = uptimeTime(exportMs, uptime, r.first)
	}
	switch {
	case r.endMs != 0:
		f.End = time.UnixMilli(r.endMs).UTC()
	case r.haveLast && haveUptime:
		f.End = uptimeTime(exportMs, uptime, r.last)
	}
	return f, true
}
