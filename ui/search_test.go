package ui

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/segwatch/segwatch/index"
	"github.com/segwatch/segwatch/ingest/event"
	"github.com/segwatch/segwatch/ui/auth"
)

func TestParseSearchParams(t *testing.T) {
	now := testNow
	f := func(query string, want index.Request) {
		t.Helper()
		v, err := url.ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseSearchParams(v.Get, now)
		if err != nil {
			t.Errorf("%q: %v", query, err)
			return
		}
		if got.Query != want.Query || !got.From.Equal(want.From) || !got.To.Equal(want.To) ||
			got.Limit != want.Limit || got.Offset != want.Offset || got.Order != want.Order {
			t.Errorf("%q:\n got %+v\nwant %+v", query, got, want)
		}
	}
	day := now.Add(-24 * time.Hour)
	f("", index.Request{From: day, To: now, Limit: 100, Order: "desc"})
	f("q=%20%20", index.Request{From: day, To: now, Limit: 100, Order: "desc"})
	f("q=segment:cameras+severity:<%3D3+%22login+failed%22&limit=10000&offset=200&order=asc",
		index.Request{Query: `segment:cameras severity:<=3 "login failed"`, From: day, To: now, Limit: 10000, Offset: 200, Order: "asc"})
	t1 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	f("from=2026-12-01T08:00:00Z&to=2026-12-01T09:00:00.5Z", index.Request{From: t1, To: t1.Add(time.Hour + 500*time.Millisecond), Limit: 100, Order: "desc"})
	f("from=2026-12-01T09:00:00%2B01:00", index.Request{From: t1, To: now, Limit: 100, Order: "desc"})
	f("from=2026-12-01", index.Request{From: t1.Add(-8 * time.Hour), To: now, Limit: 100, Order: "desc"})
	f("from=now-1h", index.Request{From: now.Add(-time.Hour), To: now, Limit: 100, Order: "desc"})
	f("from=now-7d&to=now-1d", index.Request{From: now.Add(-7 * 24 * time.Hour), To: now.Add(-24 * time.Hour), Limit: 100, Order: "desc"})
	f("from=now-2w&to=now%2B90m", index.Request{From: now.Add(-14 * 24 * time.Hour), To: now.Add(90 * time.Minute), Limit: 100, Order: "desc"})
	// Only "to": the default range ends there.
	f("to=2026-12-01T08:00:00Z", index.Request{From: t1.Add(-24 * time.Hour), To: t1, Limit: 100, Order: "desc"})
}

func TestParseSearchParamsErrors(t *testing.T) {
	f := func(query, param string) {
		t.Helper()
		v, _ := url.ParseQuery(query)
		_, err := parseSearchParams(v.Get, testNow)
		pe, ok := err.(*ParamError)
		if !ok || pe.Param != param {
			t.Errorf("%q: err = %v, want a ParamError for %q", query, err, param)
		}
	}
	f("limit=0", "limit")
	f("limit=10001", "limit")
	f("limit=-5", "limit")
	f("limit=ten", "limit")
	f("limit=1e3", "limit")
	f("offset=-1", "offset")
	f("offset=100001", "offset")
	f("offset=x", "offset")
	f("order=newest", "order")
	f("order=DESC", "order")
	f("from=yesterday", "from")
	f("from=2026-13-01T00:00:00Z", "from")
	f("from=now*1h", "from")
	f("from=now-", "from")
	f("from=now-1y", "from")
	f("from=now-99999999h", "from")
	f("to=12:00", "to")
	f("from=2026-12-03T12:00:00Z&to=2026-12-03T12:00:00Z", "from") // empty range
	f("from=now&to=now-1h", "from")
	f("q=segment:", "q")
	f("q=severity:<%3Dx", "q")
	f("q=%22unterminated", "q")
	f("q="+strings.Repeat("a", MaxQueryBytes+1), "q")
	f("q=%ff%fe", "q")
}

func TestSearchAPI(t *testing.T) {
	fx := newFixture(t, Config{})
	tok := fx.tokens[auth.RoleViewer]
	t0 := time.Date(2026, 12, 3, 11, 59, 0, 123456789, time.UTC)
	logEv := event.Event{ID: "l1", Time: t0, Received: t0, Kind: event.KindLog, SourceIP: "10.20.0.11",
		Device: "cam-lobby-01", Segment: "cameras", Host: "cam-lobby-01", App: "sshd",
		Facility: 4, Severity: 0, Message: "login failed for root"}
	flowEv := event.Event{ID: "f1", Time: t0, End: t0.Add(time.Minute), Kind: event.KindFlow, SourceIP: "10.0.0.1",
		SrcIP: "10.10.0.5", DstIP: "10.20.0.11", SrcPort: 51000, DstPort: 22, Proto: "tcp",
		Bytes: 1200, Packets: 10, Flows: 3, FlowVersion: 9, Facility: event.NoSeverity, Severity: event.NoSeverity}
	fx.search.res = index.Result{Total: 1234, Took: 7 * time.Millisecond, Hits: []index.Hit{
		{Event: logEv, Fragments: []string{"<mark>login</mark> failed for &lt;root&gt;"}},
		{Event: flowEv},
	}}

	code, h, b := fx.do(t, "GET", "/api/v1/search?q=login&limit=2&offset=4&order=asc&from=now-1h", tok, nil)
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		t.Fatalf("search: %d %s %s", code, h.Get("Content-Type"), b)
	}
	req, _ := fx.search.lastRequest()
	want := index.Request{Query: "login", From: testNow.Add(-time.Hour), To: testNow, Limit: 2, Offset: 4, Order: "asc"}
	if req.Query != want.Query || !req.From.Equal(want.From) || !req.To.Equal(want.To) || req.Limit != 2 || req.Offset != 4 || req.Order != "asc" {
		t.Errorf("Searcher got %+v, want %+v", req, want)
	}

	var raw struct {
		Total  int                          `json:"total"`
		TookMS int64                        `json:"took_ms"`
		Hits   []map[string]json.RawMessage `json:"hits"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if raw.Total != 1234 || raw.TookMS != 7 || len(raw.Hits) != 2 {
		t.Fatalf("total %d took %d hits %d", raw.Total, raw.TookMS, len(raw.Hits))
	}
	lg, fl := raw.Hits[0], raw.Hits[1]
	if string(lg["severity"]) != "0" || string(lg["facility"]) != "4" {
		t.Errorf("log severity/facility = %s/%s, want 0/4 (0 is a real severity)", lg["severity"], lg["facility"])
	}
	if string(lg["time"]) != `"2026-12-03T11:59:00.123456789Z"` || string(lg["kind"]) != `"log"` || string(lg["device"]) != `"cam-lobby-01"` {
		t.Errorf("log fields: time %s kind %s device %s", lg["time"], lg["kind"], lg["device"])
	}
	var frags []string
	if err := json.Unmarshal(lg["fragments"], &frags); err != nil || len(frags) != 1 || frags[0] != "<mark>login</mark> failed for &lt;root&gt;" {
		t.Errorf("fragments = %s (%v)", lg["fragments"], err)
	}
	if _, ok := fl["severity"]; ok {
		t.Errorf("flow has severity %s", fl["severity"])
	}
	if _, ok := fl["fragments"]; ok {
		t.Error("flow without fragments has a fragments key")
	}
	if string(fl["end"]) != `"2026-12-03T12:00:00.123456789Z"` || string(fl["dst_port"]) != "22" || string(fl["flows"]) != "3" {
		t.Errorf("flow fields: end %s dst_port %s flows %s", fl["end"], fl["dst_port"], fl["flows"])
	}
	// A hit decodes back into the same event.
	var back event.Event
	hit0, _ := json.Marshal(lg)
	if err := json.Unmarshal(hit0, &back); err != nil || back.Severity != 0 || back.Message != logEv.Message {
		t.Errorf("round trip: %+v, %v", back, err)
	}

	// No hits: an empty array, not null.
	fx.search.res = index.Result{}
	_, _, b = fx.do(t, "GET", "/api/v1/search", tok, nil)
	if !strings.Contains(string(b), `"hits":[]`) {
		t.Errorf("empty result %s", b)
	}
}

func TestSearchAPIErrors(t *testing.T) {
	fx := newFixture(t, Config{})
	tok := fx.tokens[auth.RoleViewer]
	f := func(target string, want int, wantInErr string) {
		t.Helper()
		code, _, b := fx.do(t, "GET", target, tok, nil)
		if code != want {
			t.Errorf("%s: %d, want %d (%s)", target, code, want, b)
			return
		}
		if msg := jsonError(t, b); !strings.Contains(msg, wantInErr) {
			t.Errorf("%s: error %q lacks %q", target, msg, wantInErr)
		}
	}
	f("/api/v1/search?limit=20000", 400, "limit")
	f("/api/v1/search?from=bogus", 400, "from")
	f("/api/v1/search?order=sideways", 400, "order")
	_, before := fx.search.lastRequest()
	f("/api/v1/search?q=severity:%3C%3Dhigh", 400, "q: syntax error")
	if _, after := fx.search.lastRequest(); after != before {
		t.Error("Searcher called despite a bad query")
	}
	fx.search.err = queryErr{"unknown field foo"}
	f("/api/v1/search?q=foo:bar", 400, "unknown field foo")
	fx.search.err = errBoom
	f("/api/v1/search", 500, "internal error")
	if !strings.Contains(fx.logs.String(), "disk on fire") {
		t.Error("a 500's cause is not logged")
	}
}

func TestAppendSearchResultEmptyEventEdge(t *testing.T) {
	// Fragments on an event whose JSON is minimal must still be valid JSON.
	b, err := appendSearchResult(nil, 1, 0, []index.Hit{{Event: event.Event{Severity: event.NoSeverity, Facility: event.NoSeverity}, Fragments: []string{"a"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Errorf("invalid JSON %s", b)
	}
}

func FuzzParseSearchParams(f *testing.F) {
	f.Add("", "", "", "", "", "")
	f.Add(`segment:cameras severity:<=3 "login failed"`, "now-1h", "now", "100", "0", "desc")
	f.Add("host:cam*", "2026-12-01T08:00:00Z", "2026-12-02T08:00:00.123+01:00", "10000", "100000", "asc")
	f.Add("a:(b", "now-7d", "2026-12-01", "0", "-1", "x")
	f.Add(`+app:sshd -message:"ok" /re.*gex/ bytes:>1000`, "now+1w", "now-99999h", "1e3", "", "")
	f.Fuzz(func(t *testing.T, q, from, to, limit, offset, order string) {
		vals := map[string]string{"q": q, "from": from, "to": to, "limit": limit, "offset": offset, "order": order}
		r, err := parseSearchParams(func(k string) string { return vals[k] }, testNow)
		if err != nil {
			pe, ok := err.(*ParamError)
			if !ok || vals[pe.Param] == "" && pe.Param != "from" {
				t.Fatalf("error %v is not a ParamError naming a given parameter", err)
			}
			return
		}
		if r.Limit < 1 || r.Limit > MaxLimit || r.Offset < 0 || r.Offset > MaxOffset {
			t.Fatalf("limit %d offset %d out of bounds", r.Limit, r.Offset)
		}
		if !r.From.Before(r.To) {
			t.Fatalf("from %v not before to %v", r.From, r.To)
		}
		if r.Order != index.OrderNewest && r.Order != index.OrderOldest {
			t.Fatalf("order %q", r.Order)
		}
		if len(r.Query) > MaxQueryBytes {
			t.Fatalf("query of %d bytes accepted", len(r.Query))
		}
	})
}

func benchHits(n int) []index.Hit {
	hits := make([]index.Hit, n)
	for i := range hits {
		hits[i] = index.Hit{
			Event: event.Event{ID: "01J0000000000000000000000", Time: testNow, Received: testNow, Kind: event.KindLog,
				SourceIP: "10.20.0.11", Device: "cam-lobby-01", Segment: "cameras", Host: "cam-lobby-01",
				App: "sshd", Facility: 4, Severity: 3, Message: "Failed password for root from 10.10.0.5 port 51000 ssh2"},
			Fragments: []string{"<mark>Failed</mark> password for root from 10.10.0.5 port 51000 ssh2"},
		}
	}
	return hits
}

// BenchmarkAppendSearchResult renders a page of 100 log hits.
func BenchmarkAppendSearchResult(b *testing.B) {
	hits := benchHits(100)
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		var err error
		buf, err = appendSearchResult(buf[:0], 1000, time.Millisecond, hits)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkParseSearchParams(b *testing.B) {
	v := url.Values{"q": {`segment:cameras severity:<=3 "login failed"`}, "from": {"now-1h"}, "limit": {"500"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseSearchParams(v.Get, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
