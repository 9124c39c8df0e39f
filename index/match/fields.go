package match

import (
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

// fieldType says how a field is indexed in block documents and compared in
// Match.
type fieldType int

const (
	typeKeyword fieldType = iota // whole value, case-insensitive
	typeText                     // tokens of the message analyzer
	typeNumber                   // integer with :N and range syntax
	typeTime                     // date ranges only
	typeBool                     // "true" / "false"
	typeSD                       // sd.<id>.<param>
)

// numEncoding is how a number becomes block-document terms. Both encodings
// turn a numeric range into a range of terms, so Block stays a superset.
type numEncoding int

const (
	// numPadded indexes the exact value as a fixed-width decimal keyword, so
	// that term order is numeric order: exact for small domains (ports,
	// severity).
	numPadded numEncoding = iota
	// numBucket indexes only bits.Len64(value) (the power-of-two bucket):
	// large counters (bytes, packets, flows) would otherwise add a distinct
	// term per event; a range selects whole buckets and Match refines.
	numBucket
)

// field is one searchable event field. Exactly one of the accessor
// functions is set, according to typ.
type field struct {
	name string
	typ  fieldType
	// indexed is false for fields left out of block documents (id,
	// received): queries on them select every block and Match decides.
	indexed bool
	str     func(ev *event.Event) string
	num     func(ev *event.Event) (uint64, bool)
	tim     func(ev *event.Event) time.Time
	boolean func(ev *event.Event) bool
	enc     numEncoding
	width   int    // numPadded: digits
	max     uint64 // numPadded: largest indexable value (values above are clamped)
}

func flowNum(get func(ev *event.Event) uint64) func(ev *event.Event) (uint64, bool) {
	return func(ev *event.Event) (uint64, bool) {
		if ev.Kind != event.KindFlow {
			return 0, false
		}
		return get(ev), true
	}
}

func logNum(get func(ev *event.Event) int) func(ev *event.Event) (uint64, bool) {
	return func(ev *event.Event) (uint64, bool) {
		v := get(ev)
		if ev.Kind != event.KindLog || v < 0 {
			return 0, false
		}
		return uint64(v), true
	}
}

func kw(name string, get func(ev *event.Event) string) *field {
	return &field{name: name, typ: typeKeyword, indexed: true, str: get}
}

// fields is the field table: the event JSON names of SPEC §4. A number is
// present only on the kind of event it belongs to (severity on logs whose
// severity is known, ports and counters on flows), so severity:<=3 never
// matches a flow.
var fields = []*field{
	{name: "id", typ: typeKeyword, str: func(ev *event.Event) string { return ev.ID }},
	{name: "time", typ: typeTime, indexed: true, tim: func(ev *event.Event) time.Time { return ev.Time }},
	{name: "received", typ: typeTime, tim: func(ev *event.Event) time.Time { return ev.Received }},
	kw("kind", func(ev *event.Event) string { return ev.Kind }),
	kw("source_ip", func(ev *event.Event) string { return ev.SourceIP }),
	kw("device", func(ev *event.Event) string { return ev.Device }),
	kw("segment", func(ev *event.Event) string { return ev.Segment }),
	kw("category", func(ev *event.Event) string { return ev.Category }),
	kw("owner", func(ev *event.Event) string { return ev.Owner }),
	kw("host", func(ev *event.Event) string { return ev.Host }),
	kw("app", func(ev *event.Event) string { return ev.App }),
	kw("procid", func(ev *event.Event) string { return ev.ProcID }),
	kw("msgid", func(ev *event.Event) string { return ev.MsgID }),
	{name: "facility", typ: typeNumber, indexed: true, enc: numPadded, width: 2, max: 99,
		num: logNum(func(ev *event.Event) int { return ev.Facility })},
	{name: "severity", typ: typeNumber, indexed: true, enc: numPadded, width: 1, max: 9,
		num: logNum(func(ev *event.Event) int { return ev.Severity })},
	{name: "message", typ: typeText, indexed: true, str: func(ev *event.Event) string { return ev.Message }},
	{name: "sd", typ: typeSD, indexed: true},
	kw("src_ip", func(ev *event.Event) string { return ev.SrcIP }),
	kw("dst_ip", func(ev *event.Event) string { return ev.DstIP }),
	{name: "src_port", typ: typeNumber, indexed: true, enc: numPadded, width: 5, max: 99999,
		num: flowNum(func(ev *event.Event) uint64 { return uint64(max(ev.SrcPort, 0)) })},
	{name: "dst_port", typ: typeNumber, indexed: true, enc: numPadded, width: 5, max: 99999,
		num: flowNum(func(ev *event.Event) uint64 { return uint64(max(ev.DstPort, 0)) })},
	kw("proto", func(ev *event.Event) string { return ev.Proto }),
	{name: "bytes", typ: typeNumber, indexed: true, enc: numBucket,
		num: flowNum(func(ev *event.Event) uint64 { return ev.Bytes })},
	{name: "packets", typ: typeNumber, indexed: true, enc: numBucket,
		num: flowNum(func(ev *event.Event) uint64 { return ev.Packets })},
	kw("src_segment", func(ev *event.Event) string { return ev.SrcSegment }),
	kw("dst_segment", func(ev *event.Event) string { return ev.DstSegment }),
	kw("src_device", func(ev *event.Event) string { return ev.SrcDevice }),
	kw("dst_device", func(ev *event.Event) string { return ev.DstDevice }),
	{name: "flow_version", typ: typeNumber, indexed: true, enc: numPadded, width: 2, max: 99,
		num: flowNum(func(ev *event.Event) uint64 { return uint64(max(ev.FlowVersion, 0)) })},
	{name: "flows", typ: typeNumber, indexed: true, enc: numBucket,
		num: flowNum(func(ev *event.Event) uint64 { return ev.Flows })},
	{name: "parse_error", typ: typeText, indexed: true, str: func(ev *event.Event) string { return ev.ParseError }},
	{name: "truncated", typ: typeBool, indexed: true, boolean: func(ev *event.Event) bool { return ev.Truncated }},
}

// fieldByName indexes fields by name.
var fieldByName = func() map[string]*field {
	m := make(map[string]*field, len(fields))
	for _, f := range fields {
		m[f.name] = f
	}
	return m
}()

// defaultFields are the fields an unqualified term or phrase searches.
var defaultFields = []*field{
	fieldByName["message"], fieldByName["host"], fieldByName["app"], fieldByName["device"],
	fieldByName["source_ip"], fieldByName["src_ip"], fieldByName["dst_ip"],
}

// Names of the block-document fields that are not event fields.
const (
	fieldMinTime = "min_time"
	fieldMaxTime = "max_time"
)

// numTerm renders v as the block-document term of f.
func (f *field) numTerm(v uint64) string {
	if f.enc == numBucket {
		return bucketTerm(bits.Len64(v))
	}
	return padded(min(v, f.max), f.width)
}

func bucketTerm(b int) string {
	const digits = "0123456789"
	return string([]byte{digits[b/10], digits[b%10]})
}

// padded renders v with at least width digits (zero padded on the left).
func padded(v uint64, width int) string {
	s := strconv.FormatUint(v, 10)
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}

// severityNames lets severity:err and severity:<=warning work.
var severityNames = map[string]uint64{
	"emerg": 0, "emergency": 0, "panic": 0,
	"alert": 1,
	"crit":  2, "critical": 2,
	"err": 3, "error": 3,
	"warning": 4, "warn": 4,
	"notice": 5,
	"info":   6, "informational": 6,
	"debug": 7,
}
