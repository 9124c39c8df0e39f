package syslog

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

var testNow = time.Date(2026, 12, 3, 19, 30, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	opts := ParseOptions{}
	f := func(input string, want event.Event) {
		t.Helper()
		got := Parse([]byte(input), testNow, opts)
		want.Kind = event.KindLog
		want.Received = testNow
		if want.Time.IsZero() {
			want.Time = testNow
		}
		if want.Raw == "" {
			want.Raw = input
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%.80q)\n got  %+v\n want %+v", input, got, want)
		}
	}
	at := func(s string) time.Time {
		t.Helper()
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC()
	}

	// RFC 5424 with structured data and a BOM (RFC 5424 §6.5 example 3).
	f("<165>1 2026-12-03T18:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"] \xEF\xBB\xBFAn application event log entry...\n",
		event.Event{Time: at("2026-12-03T18:14:15.003Z"), Host: "mymachine.example.com", App: "evntslog", MsgID: "ID47",
			Facility: 20, Severity: 5, Message: "An application event log entry...",
			SD: map[string]map[string]string{
				"exampleSDID@32473":     {"iut": "3", "eventSource": "Application", "eventID": "1011"},
				"examplePriority@32473": {"class": "high"},
			}})
	// RFC 5424 with every NILVALUE: time is the received time.
	f("<14>1 - - - - - -", event.Event{Facility: 1, Severity: 6})
	f("<14>1 - - - - - - hello", event.Event{Facility: 1, Severity: 6, Message: "hello"})
	// RFC 5424 with a zone offset; procid; time normalized to UTC.
	f("<34>1 2026-12-03T20:00:00.5+01:00 cam-01 sshd 4242 - - Failed password for root",
		event.Event{Time: at("2026-12-03T19:00:00.5Z"), Host: "cam-01", App: "sshd", ProcID: "4242", Facility: 4, Severity: 2, Message: "Failed password for root"})
	// RFC 5424 with bad structured data: header kept, message is the raw text.
	f("<165>1 2026-12-03T18:14:15Z host app - - [bad sd",
		event.Event{Time: at("2026-12-03T18:14:15Z"), Host: "host", App: "app", Facility: 20, Severity: 5,
			Message:    "<165>1 2026-12-03T18:14:15Z host app - - [bad sd",
			ParseError: "rfc5424: expecting a structured data parameter (`key=\"value\"`, both part from 1 to max 32 US-ASCII characters; key cannot contain `=`, ` `, `]`, and `\"`, while value cannot contain `]`, backslash, and `\"` unless escaped) [col 48]",
			SD:         nil})

	// RFC 3164: host, tag, pid.
	f("<34>Dec  3 18:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8",
		event.Event{Time: at("2026-12-03T18:14:15Z"), Host: "mymachine", App: "su", ProcID: "230", Facility: 4, Severity: 2,
			Message: "'su root' failed for lonvick on /dev/pts/8"})
	// RFC 3164 without hostname.
	f("<13>Dec  3 18:00:00 app: hello\r\n",
		event.Event{Time: at("2026-12-03T18:00:00Z"), App: "app", Facility: 1, Severity: 5, Message: "hello"})
	// RFC 3164 without tag.
	f("<13>Dec  3 18:00:00 host hello world",
		event.Event{Time: at("2026-12-03T18:00:00Z"), Host: "host", Facility: 1, Severity: 5, Message: "hello world"})
	// RFC 3164 with an RFC 3339 timestamp (rsyslog, many IoT stacks).
	f("<13>2026-12-03T10:00:00.123+01:00 host app[1]: hi\x00",
		event.Event{Time: at("2026-12-03T09:00:00.123Z"), Host: "host", App: "app", ProcID: "1", Facility: 1, Severity: 5, Message: "hi"})
	// RFC 3164 with an ISO local time without zone (syslog-ng loggen).
	f("<38>2026-12-03T18:44:48 localhost prg00000[1234]: seq: 0000000001",
		event.Event{Time: at("2026-12-03T18:44:48Z"), Host: "localhost", App: "prg00000", ProcID: "1234", Facility: 4, Severity: 6,
			Message: "seq: 0000000001"})
	f("<38>2026-12-03T18:44:48.25 host app: fraction",
		event.Event{Time: at("2026-12-03T18:44:48.25Z"), Host: "host", App: "app", Facility: 4, Severity: 6, Message: "fraction"})
	// RFC 3164 from December received in January: last year.
	func() {
		saved := testNow
		testNow = time.Date(2027, 1, 1, 0, 0, 30, 0, time.UTC)
		defer func() { testNow = saved }()
		f("<13>Dec 31 23:59:50 host app: late",
			event.Event{Time: at("2026-12-31T23:59:50Z"), Host: "host", App: "app", Facility: 1, Severity: 5, Message: "late"})
	}()
	// Cisco IOS: message counter, "*" unsynchronized clock, millisecond stamp.
	f("<189>237: *Dec  3 18:46:03.295: %SYS-5-CONFIG_I: Configured from console by console",
		event.Event{Time: at("2026-12-03T18:46:03.295Z"), App: "%SYS-5-CONFIG_I", Facility: 23, Severity: 5,
			Message: "Configured from console by console"})
	f("<189>Dec  3 18:46:03: %LINK-3-UPDOWN: Interface Gi0/1, changed state to up",
		event.Event{Time: at("2026-12-03T18:46:03Z"), App: "%LINK-3-UPDOWN", Facility: 23, Severity: 5,
			Message: "Interface Gi0/1, changed state to up"})

	// No PRI: kept whole, parse error, severity unknown.
	f("just a line of text\n", event.Event{Facility: event.NoSeverity, Severity: event.NoSeverity,
		Message: "just a line of text", ParseError: "no PRI: not a syslog header"})
	// PRI but no header: PRI is still readable.
	f("<13>hello world", event.Event{Facility: 1, Severity: 5, Message: "<13>hello world",
		ParseError: "rfc3164: expecting a sequence number (from 1 to max 255 digits) [col 4]"})
	// Garbage bytes.
	f("\x00\xff\xfe<garbage>\x01", event.Event{Facility: event.NoSeverity, Severity: event.NoSeverity,
		Message: "\x00\xff\xfe<garbage>\x01", ParseError: "no PRI: not a syslog header"})
	f("", event.Event{Facility: event.NoSeverity, Severity: event.NoSeverity, ParseError: "no PRI: not a syslog header"})
	f("<192>1 - - - - - - x", event.Event{Facility: event.NoSeverity, Severity: event.NoSeverity,
		Message: "<192>1 - - - - - - x", ParseError: "no PRI: not a syslog header"})

	// Far-future and ancient timestamps: the received time is used.
	f("<14>1 2031-01-01T00:00:00Z host app - - - from the future",
		event.Event{Host: "host", App: "app", Facility: 1, Severity: 6, Message: "from the future"})
	f("<14>1 1970-01-01T00:00:00Z host app - - - unset clock",
		event.Event{Host: "host", App: "app", Facility: 1, Severity: 6, Message: "unset clock"})
	f("<14>1 2026-12-04T19:00:00Z host app - - - 23.5 h ahead is fine",
		event.Event{Time: at("2026-12-04T19:00:00Z"), Host: "host", App: "app", Facility: 1, Severity: 6, Message: "23.5 h ahead is fine"})

	// Timezone option for RFC 3164 stamps.
	opts.Timezone = time.FixedZone("CET", 3600)
	f("<13>Dec  3 19:00:00 host app: local time",
		event.Event{Time: at("2026-12-03T18:00:00Z"), Host: "host", App: "app", Facility: 1, Severity: 5, Message: "local time"})
	// A short MaxAge makes an older stamp distrusted.
	opts.MaxAge = time.Hour
	f("<13>Dec  3 10:00:00 host app: old",
		event.Event{Host: "host", App: "app", Facility: 1, Severity: 5, Message: "old"})
}

func TestParseTruncated(t *testing.T) {
	body := strings.Repeat("x", 70<<10)
	raw := "<14>1 2026-12-03T18:00:00Z host app - - - " + body
	ev := Parse([]byte(raw), testNow, ParseOptions{})
	if !ev.Truncated {
		t.Error("70 KiB message not marked truncated")
	}
	if len(ev.Raw) != DefaultMaxMessageBytes || ev.Raw != raw[:DefaultMaxMessageBytes] {
		t.Errorf("raw is %d bytes, want the first %d", len(ev.Raw), DefaultMaxMessageBytes)
	}
	if ev.Host != "host" || ev.App != "app" || ev.ParseError != "" || !strings.HasPrefix(ev.Message, "xxx") {
		t.Errorf("truncated message lost its header: host %q app %q parse_error %q", ev.Host, ev.App, ev.ParseError)
	}
	ev = Parse([]byte(raw[:DefaultMaxMessageBytes]), testNow, ParseOptions{})
	if ev.Truncated {
		t.Error("message of exactly MaxMessageBytes marked truncated")
	}
}
