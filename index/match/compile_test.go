package match

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

func TestCompileErrors(t *testing.T) {
	f := func(q, wantMsg string) {
		t.Helper()
		_, err := Compile(q)
		var qe *Error
		if !errors.As(err, &qe) {
			t.Errorf("Compile(%q) = %v, want *Error", q, err)
			return
		}
		if !strings.Contains(err.Error(), wantMsg) {
			t.Errorf("Compile(%q) = %q, want it to mention %q", q, err, wantMsg)
		}
	}
	f(`"unterminated`, "unterminated quote")
	f(`host:`, "syntax error")
	f(`foo:bar`, `unknown field "foo"`)
	f(`host:>5`, "not a numeric field")
	f(`severity:high`, "not a number")
	f(`dst_port:abc`, "not a number")
	f(`time:2026`, "takes a range")
	f(`host:>"2026-01-01"`, "not a time field")
	f(`truncated:maybe`, "true or false")
	f(`sd.origin:x`, "sd.<id>.<param>")
	f(`cam~1`, "fuzzy")
	f(`host:/a$/`, "regular expression")
	f(`host:/(/`, "regular expression")
	f(`severity:1?`, "wildcards only test presence")
	f(`bytes:/1.*/`, "regular expressions apply")
	f(`time:>"not a date"`, "invalid time")
}

func TestMatchAll(t *testing.T) {
	for q, want := range map[string]bool{
		"": true, "  ": true, "*": true, "* *": true, "+*": true, "host:x *": false, "* OR host:x": true,
		"host:x": false, "-host:x": false, "* -host:x": false, "severity:*": false,
	} {
		c, err := Compile(q)
		if err != nil {
			t.Fatalf("Compile(%q): %v", q, err)
		}
		if c.MatchAll() != want {
			t.Errorf("Compile(%q).MatchAll() = %v, want %v", q, c.MatchAll(), want)
		}
		if c.String() != q {
			t.Errorf("String() = %q, want %q", c.String(), q)
		}
	}
}

// TestMatch covers the semantics on hand-made events, beside the generated
// ones of TestDifferential.
func TestMatch(t *testing.T) {
	log := event.Event{
		ID: "x1", Kind: event.KindLog, Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		SourceIP: "10.20.0.11", Host: "CAM-01", App: "sshd", Facility: 4, Severity: 3,
		Message: "Failed password for root from 203.0.113.9 port 4242 ssh2; src=10.20.0.11:443 failed.",
		SD:      map[string]map[string]string{"Origin": {"IP": "10.20.0.11"}, "a.b": {"c": "dotted"}},
	}
	flow := event.Event{
		ID: "x2", Kind: event.KindFlow, Time: log.Time, SourceIP: "10.0.0.1", SrcIP: "10.20.0.11",
		DstIP: "10.30.0.5", DstPort: 0, Proto: "icmp", Bytes: 1 << 40, Packets: 3, FlowVersion: 10,
		Severity: event.NoSeverity, Facility: event.NoSeverity,
	}
	f := func(q string, wantLog, wantFlow bool) {
		t.Helper()
		c, err := Compile(q)
		if err != nil {
			t.Errorf("Compile(%q): %v", q, err)
			return
		}
		if got := c.Match(&log); got != wantLog {
			t.Errorf("%q on log = %v, want %v", q, got, wantLog)
		}
		if got := c.Match(&flow); got != wantFlow {
			t.Errorf("%q on flow = %v, want %v", q, got, wantFlow)
		}
	}
	f(`host:cam-01`, true, false)
	f(`host:CAM-0`, false, false)
	f(`10.20.0.11`, true, true)
	f(`message:"10.20.0.11:443 failed"`, true, false)
	f(`message:"failed 10.20.0.11"`, false, false)
	f(`"password for root"`, true, false)
	f(`"for password"`, false, false)
	f(`severity:<=3`, true, false)
	f(`severity:<3`, false, false)
	f(`severity:err`, true, false)
	f(`dst_port:0`, false, true)
	f(`bytes:>=1099511627776`, false, true)
	f(`bytes:>1099511627776`, false, false)
	f(`sd.origin.ip:10.20.0.11`, true, false)
	f(`sd.ORIGIN.ip:10.20.0.*`, true, false)
	f(`sd.a.b.c:DOTTED`, true, false)
	f(`sd.a.b:x`, false, false)
	f(`+kind:flow +proto:icmp`, false, true)
	f(`+kind:flow proto:tcp`, false, false) // plain clauses are required (AND), unlike bleve
	f(`kind:flow proto:tcp`, false, false)
	f(`kind:flow OR proto:tcp`, false, true)
	f(`kind:log OR kind:flow`, true, true)
	f(`-kind:flow`, true, false)
	f(`-kind:flow -kind:log`, false, false)
	f(`time:>="2026-12-01T10:00:00Z"`, true, true)
	f(`time:>"2026-12-01T10:00:00Z"`, false, false)
	f(`time:<="2026-12-01T10:00:00Z"`, true, true)
	f(`time:<"2026-12-01T10:00:00Z"`, false, false)
	f(`ssh*`, true, false)
	f(`/203\.0\.113\.[0-9]+/`, true, false)
	f(`message:/SSH2/`, false, false) // regexps see lower-cased text
	f(`message:*`, true, false)
	f(`message:"!!"`, false, false)
	f(`flow_version:10`, false, true)
	f(`id:X2`, false, true)
}

func TestTimeKey(t *testing.T) {
	f := func(tm time.Time, want string) {
		t.Helper()
		if got := TimeKey(tm); got != want {
			t.Errorf("TimeKey(%v) = %q, want %q", tm, got, want)
		}
	}
	f(time.Unix(0, 0), "0000000000000")
	f(time.Unix(-5, 0), "0000000000000")
	f(time.Date(2026, 12, 1, 0, 0, 0, 999999, time.UTC), "1796083200000")
	f(time.Date(2026, 12, 1, 0, 0, 1, 1000000, time.UTC), "1796083201001")
	f(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), "9999999999999")
	a, b := TimeKey(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), TimeKey(time.Date(2026, 1, 1, 0, 0, 0, 1e6, time.UTC))
	if !(a < b) {
		t.Errorf("time keys not ordered: %s %s", a, b)
	}
}

func TestBlockDoc(t *testing.T) {
	evs := []event.Event{
		{Kind: event.KindLog, Time: time.UnixMilli(2000), Host: "CAM-01", App: "sshd", Severity: 3, Facility: 4,
			Message: "Login failed: Login", SD: map[string]map[string]string{"Origin": {"ip": "10.0.0.1"}}, Truncated: true},
		{Kind: event.KindLog, Time: time.UnixMilli(1000), Host: "cam-01", App: "sshd", Severity: 3, Facility: event.NoSeverity,
			Message: "login ok"},
		{Kind: event.KindFlow, Time: time.UnixMilli(3000), SrcIP: "10.0.0.1", DstPort: 443, Bytes: 1500, Packets: 2, Flows: 1,
			FlowVersion: 9, Proto: "tcp", Severity: event.NoSeverity, Facility: event.NoSeverity},
	}
	doc := BlockDoc(evs).(map[string]any)
	want := map[string]any{
		"min_time": "0000000001000", "max_time": "0000000003000",
		"kind": []string{"log", "flow"}, "host": []string{"cam-01"}, "app": []string{"sshd"},
		"severity": []string{"3"}, "facility": []string{"04"}, "message": []string{"login", "failed", "ok"},
		"sd": []string{"origin.ip=10.0.0.1"}, "truncated": []string{"true"}, "src_ip": []string{"10.0.0.1"},
		"dst_port": []string{"00443"}, "src_port": []string{"00000"}, "bytes": []string{"11"},
		"packets": []string{"02"}, "flows": []string{"01"}, "flow_version": []string{"09"}, "proto": []string{"tcp"},
		"ip_count": "10.0.0.1", // the flow's src_ip; sd is not a default field
	}
	for k, v := range want {
		switch v := v.(type) {
		case string:
			if doc[k] != v {
				t.Errorf("%s = %v, want %v", k, doc[k], v)
			}
		case []string:
			got, _ := doc[k].([]string)
			if strings.Join(got, ",") != strings.Join(v, ",") {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
	}
	if len(doc) != len(want) {
		t.Errorf("doc has %d fields, want %d: %v", len(doc), len(want), doc)
	}
	// A reused builder gives the same document and forgets the previous one.
	var b BlockBuilder
	b.Doc(evs)
	d2 := b.Doc(evs[1:2])
	if _, ok := d2["dst_port"]; ok || d2["min_time"] != "0000000001000" {
		t.Errorf("reused builder kept old terms: %v", d2)
	}
}

func TestHighlight(t *testing.T) {
	f := func(q, msg string, want ...string) {
		t.Helper()
		c, err := Compile(q)
		if err != nil {
			t.Fatal(err)
		}
		got := c.Highlight(msg)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("Highlight(%q, %q) = %q, want %q", q, msg, got, want)
		}
	}
	f(`failed`, "Login FAILED for <root>", "Login <mark>FAILED</mark> for &lt;root&gt;")
	f(`"login failed"`, "x login  failed y", "x <mark>login  failed</mark> y")
	f(`host:x`, "login failed")
	f(`-failed`, "login failed")
	f(`message:fail*`, "failed & failure", "<mark>failed</mark> &amp; <mark>failure</mark>")
	f(`+kind:log +message:"10.0.0.1:22"`, "from 10.0.0.1:22 ok", "from <mark>10.0.0.1:22</mark> ok")
	long := strings.Repeat("lorem ipsum ", 30) + "needle" + strings.Repeat(" dolor sit", 30)
	got, _ := Compile("needle")
	frags := got.Highlight(long)
	if len(frags) != 1 || !strings.Contains(frags[0], "<mark>needle</mark>") || !strings.HasPrefix(frags[0], "…") ||
		!strings.HasSuffix(frags[0], "…") || len(frags[0]) > 250 {
		t.Errorf("long message fragments = %q", frags)
	}
	many := strings.Repeat("needle "+strings.Repeat("x", 200)+" ", 10)
	if n := len(got.Highlight(many)); n != 3 {
		t.Errorf("got %d fragments, want at most 3", n)
	}
}

// TestIPCountExact: for every IPv4 address in a realistic block (in
// messages, as source, flow ends, and as a host name), its frequency in the
// block's ip_count value equals the number of events the unqualified query
// for it matches. This is what lets the store count such a query from
// Bleve's term frequencies instead of decoding blocks.
func TestIPCountExact(t *testing.T) {
	evs := genEvents(3000, 7)
	// Addresses as whole host names, repeated in the message, and in a
	// message with upper-case letters around them.
	evs[1].Host, evs[1].Message = "10.20.0.11", "from 10.20.0.11 to 10.20.0.11"
	evs[2].Message = "SRC=10.20.0.11,DST=10.30.0.5"
	evs[3].Device = "10.30.0.5"
	doc := BlockDoc(evs).(map[string]any)
	freq := map[string]int{}
	for _, tok := range strings.Fields(doc[FieldIPCount].(string)) {
		freq[tok]++
	}
	if len(freq) < 50 {
		t.Fatalf("only %d distinct addresses in ip_count: the data set does not test much", len(freq))
	}
	for ip, n := range freq {
		for _, text := range []string{ip, `"` + ip + `"`} {
			q, err := Compile(text)
			if err != nil {
				t.Fatal(err)
			}
			field, term, ok := q.CountTerm()
			if !ok || field != FieldIPCount || term != ip {
				t.Fatalf("%s: CountTerm = %q %q %v", text, field, term, ok)
			}
			want := 0
			for i := range evs {
				if q.Match(&evs[i]) {
					want++
				}
			}
			if n != want {
				t.Errorf("%s: ip_count frequency %d, Match accepts %d events", text, n, want)
			}
		}
	}
	// Not countable: anything but one unqualified IPv4 address.
	for _, text := range []string{"src_ip:10.20.0.11", "10.20.0.11 app:sshd", "-10.20.0.11", "10.20.0.*",
		"10.20.0.11 OR 10.20.0.12", "cam-01", "010.20.0.11", "10.20.0", `"10.20.0.11 port"`, "::1"} {
		q, err := Compile(text)
		if err != nil {
			continue
		}
		if _, _, ok := q.CountTerm(); ok {
			t.Errorf("%s: countable", text)
		}
	}
}
