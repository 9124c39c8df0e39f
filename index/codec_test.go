package index

import (
	"reflect"
	"testing"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

func codecCases() []event.Event {
	t0 := time.Date(2026, 12, 3, 10, 4, 5, 123456789, time.UTC)
	return []event.Event{
		{}, // everything zero, including times
		{Time: t0, Kind: event.KindLog, Facility: event.NoSeverity, Severity: event.NoSeverity, Message: "garbage", ParseError: "no header", Raw: "garbage"},
		{
			Time: t0, Received: t0.Add(1500 * time.Millisecond), Kind: event.KindLog, SourceIP: "10.20.0.11",
			Device: "cam-lobby-01", Segment: "cameras", Category: "camera", Owner: "facilities@example.com",
			Host: "cam-lobby-01", App: "sshd", ProcID: "4242", MsgID: "ID47", Facility: 4, Severity: 0,
			Message: "Failed password for root from 203.0.113.5 port 5555 ssh2",
			SD: map[string]map[string]string{
				"origin":            {"ip": "10.20.0.11", "software": "axis"},
				"meta@32473":        {"sequenceId": "12"},
				"empty@1":           {},
				"unicode\u00e9\x00": {"k": "v\xff"},
			},
			Raw: "<34>1 ...", Truncated: true,
		},
		{
			Time: t0.Add(-48 * time.Hour), Received: t0, Kind: event.KindFlow, SourceIP: "10.0.0.2",
			Facility: event.NoSeverity, Severity: event.NoSeverity,
			SrcIP: "10.20.0.11", DstIP: "10.30.0.5", SrcPort: 51514, DstPort: 554, Proto: "tcp",
			Bytes: 1 << 40, Packets: 1<<64 - 1, SrcSegment: "cameras", DstSegment: "servers",
			SrcDevice: "cam-lobby-01", DstDevice: "nvr-01", FlowVersion: 10, End: t0.Add(time.Minute), Flows: 17,
		},
		{Time: time.Unix(0, 1).UTC(), Received: time.Date(1969, 7, 20, 20, 17, 0, 999999999, time.UTC), SD: map[string]map[string]string{}, SrcPort: -3},
		{Time: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), End: time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC)},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	cases := codecCases()
	for _, base := range []int64{0, cases[2].Time.Unix(), -1 << 40} {
		var buf []byte
		for i := range cases {
			buf = encodeEvent(buf, &cases[i], base)
		}
		got, err := decodeEvents(nil, string(buf), len(cases), base)
		if err != nil {
			t.Fatalf("base %d: decode: %v", base, err)
		}
		for i := range cases {
			if !reflect.DeepEqual(got[i], cases[i]) {
				t.Errorf("base %d case %d:\n got %#v\nwant %#v", base, i, got[i], cases[i])
			}
		}
		// One byte short or one too many must be refused, never accepted.
		if _, err := decodeEvents(nil, string(buf[:len(buf)-1]), len(cases), base); err == nil {
			t.Errorf("base %d: truncated block decoded", base)
		}
		if _, err := decodeEvents(nil, string(buf)+"x", len(cases), base); err == nil {
			t.Errorf("base %d: block with trailing bytes decoded", base)
		}
	}
}

// Decoding does not allocate for events without SD (strings are views).
func TestCodecDecodeAllocs(t *testing.T) {
	ev := codecCases()[3]
	buf := string(encodeEvent(nil, &ev, 0))
	dst := make([]event.Event, 0, 1)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = decodeEvents(dst[:0], buf, 1, 0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("decode allocates %v times per event, want 0", allocs)
	}
}

func FuzzDecode(f *testing.F) {
	cases := codecCases()
	var buf []byte
	for i := range cases {
		buf = encodeEvent(buf, &cases[i], 1000)
	}
	f.Add(buf, uint16(len(cases)), int64(1000))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint16(1), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, count uint16, base int64) {
		evs, err := decodeEvents(nil, string(data), int(count), base)
		if err != nil {
			return
		}
		// What decodes must re-encode to something that decodes the same.
		var again []byte
		for i := range evs {
			again = encodeEvent(again, &evs[i], base)
		}
		evs2, err := decodeEvents(nil, string(again), len(evs), base)
		if err != nil {
			t.Fatalf("re-encoded block does not decode: %v", err)
		}
		if !reflect.DeepEqual(evs, evs2) {
			t.Fatalf("re-encode changed events")
		}
	})
}

func TestIDs(t *testing.T) {
	d := dayOf(time.Date(2026, 12, 3, 23, 59, 59, 0, time.UTC))
	id := eventID(idPrefix(d, 0x1a2b), 0x3f)
	if id != "20261203-1a2b-3f" {
		t.Fatalf("id = %q", id)
	}
	gd, gb, gi, ok := parseEventID(id)
	if !ok || gd != d || gb != 0x1a2b || gi != 0x3f {
		t.Fatalf("parse %q = %v %x %x %v", id, gd, gb, gi, ok)
	}
	for _, bad := range []string{"", "20261203", "20261203-1", "2026120-1-1", "20261203-x-1", "20261203-1-", "20261303-1-1"} {
		if _, _, _, ok := parseEventID(bad); ok {
			t.Errorf("parseEventID(%q) accepted", bad)
		}
	}
	r := blockRef{off: 123456, count: 256, block: 77, minMs: 1764720000123, maxMs: 1764720999999}
	got, ok := parseDocID(docID(r))
	if !ok || got != r {
		t.Fatalf("doc id round trip: %+v %v", got, ok)
	}
	if msFloor(-1) != -1 || msCeil(1) != 1 || msCeil(2e6) != 2 || msFloor(1999999) != 1 {
		t.Fatal("ms rounding")
	}
	if dayOf(time.Unix(-1, 0)) != -1 || dayOf(time.Unix(86399, 0)) != 0 {
		t.Fatal("dayOf")
	}
}
