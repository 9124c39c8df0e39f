// Package event defines the one normalized event schema that every input
// (syslog, NetFlow/IPFIX) is turned into and that the index, the detectors
// and the API share. It depends on the standard library only, so every other
// package may import it and it imports none of them.
package event

import (
	"encoding/json"
	"time"
)

// Kinds of event.
const (
	KindLog  = "log"
	KindFlow = "flow"
)

// Segment names with a fixed meaning besides the configured ones.
const (
	// SegmentExternal is the segment of every public (non-private) address.
	SegmentExternal = "external"
)

// NoSeverity marks a log event whose severity is unknown (a message that did
// not parse) and every flow event. JSON omits the field then.
const NoSeverity = -1

// Event is one normalized log line or (aggregated) flow record. Field names
// and meanings are the contract of SPEC §4; JSON tags are the API names.
type Event struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Received time.Time `json:"received"`
	Kind     string    `json:"kind"`
	SourceIP string    `json:"source_ip,omitempty"`

	// Enrichment from the inventory, matched by address (source_ip for logs,
	// src_ip then dst_ip for flows). Empty when unknown.
	Device   string `json:"device,omitempty"`
	Segment  string `json:"segment,omitempty"`
	Category string `json:"category,omitempty"`
	Owner    string `json:"owner,omitempty"`

	// Syslog header.
	Host     string `json:"host,omitempty"`
	App      string `json:"app,omitempty"`
	ProcID   string `json:"procid,omitempty"`
	MsgID    string `json:"msgid,omitempty"`
	Facility int    `json:"-"` // 0-23, or NoSeverity when unknown
	Severity int    `json:"-"` // 0-7, or NoSeverity when unknown
	Message  string `json:"message,omitempty"`
	// SD is RFC 5424 structured data: element id -> param -> value.
	SD map[string]map[string]string `json:"sd,omitempty"`

	// Flow fields.
	SrcIP       string    `json:"src_ip,omitempty"`
	DstIP       string    `json:"dst_ip,omitempty"`
	SrcPort     int       `json:"src_port,omitempty"`
	DstPort     int       `json:"dst_port,omitempty"`
	Proto       string    `json:"proto,omitempty"`
	Bytes       uint64    `json:"bytes,omitempty"`
	Packets     uint64    `json:"packets,omitempty"`
	SrcSegment  string    `json:"src_segment,omitempty"`
	DstSegment  string    `json:"dst_segment,omitempty"`
	SrcDevice   string    `json:"src_device,omitempty"`
	DstDevice   string    `json:"dst_device,omitempty"`
	FlowVersion int       `json:"flow_version,omitempty"`
	End         time.Time `json:"-"`
	Flows       uint64    `json:"flows,omitempty"`

	Raw        string `json:"raw,omitempty"`
	ParseError string `json:"parse_error,omitempty"`
	Truncated  bool   `json:"truncated,omitempty"`
}

// wire adds the fields whose JSON form depends on the kind: severity 0 is a
// real value for logs but meaningless for flows, and a zero end time means
// "not a flow".
type wire struct {
	*alias
	Facility *int       `json:"facility,omitempty"`
	Severity *int       `json:"severity,omitempty"`
	End      *time.Time `json:"end,omitempty"`
}

type alias Event

// MarshalJSON renders the SPEC §4 form: facility and severity only when
// known, end only for flows.
func (e Event) MarshalJSON() ([]byte, error) {
	w := wire{alias: (*alias)(&e)}
	if e.Facility >= 0 && e.Kind == KindLog {
		f := e.Facility
		w.Facility = &f
	}
	if e.Severity >= 0 && e.Kind == KindLog {
		s := e.Severity
		w.Severity = &s
	}
	if !e.End.IsZero() {
		t := e.End
		w.End = &t
	}
	return json.Marshal(w)
}

// UnmarshalJSON is the inverse of MarshalJSON; absent facility and severity
// become NoSeverity.
func (e *Event) UnmarshalJSON(b []byte) error {
	w := wire{alias: (*alias)(e)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	e.Facility, e.Severity = NoSeverity, NoSeverity
	if w.Facility != nil {
		e.Facility = *w.Facility
	}
	if w.Severity != nil {
		e.Severity = *w.Severity
	}
	if w.End != nil {
		e.End = *w.End
	}
	return nil
}

// ProtoName returns the lower-case IANA name of an IP protocol number, or the
// number as text when it has no common name (SPEC §4).
func ProtoName(n uint8) string {
	switch n {
	case 1:
		return "icmp"
	case 2:
		return "igmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 41:
		return "ipv6"
	case 47:
		return "gre"
	case 50:
		return "esp"
	case 51:
		return "ah"
	case 58:
		return "ipv6-icmp"
	case 89:
		return "ospf"
	case 103:
		return "pim"
	case 112:
		return "vrrp"
	case 132:
		return "sctp"
	}
	return itoa(int(n))
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [3]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
