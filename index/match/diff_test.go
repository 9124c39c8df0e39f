package match

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/segwatch/segwatch/ingest/event"
)

// Reference implementations for the differential test: deliberately simple
// and independent of the package's code.

var refTokenRE = regexp.MustCompile(`[\p{L}\p{Nd}._-]+`)

func refTokens(s string) []string {
	var out []string
	for _, t := range refTokenRE.FindAllString(s, -1) {
		t = strings.Trim(t, ".-")
		if t != "" {
			out = append(out, strings.ToLower(t))
		}
	}
	return out
}

func refPhrase(s, phrase string) bool {
	hay, need := refTokens(s), refTokens(phrase)
	if len(need) == 0 {
		return false
	}
	for i := 0; i+len(need) <= len(hay); i++ {
		ok := true
		for j := range need {
			if hay[i+j] != need[j] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func refTokenMatch(s string, re *regexp.Regexp) bool {
	for _, t := range refTokens(s) {
		if re.MatchString(t) {
			return true
		}
	}
	return false
}

func eqf(a, b string) bool { return a != "" && strings.EqualFold(a, b) }

// refDefault is the unqualified-term rule: message as text, the default
// keyword fields whole.
func refDefault(ev *event.Event, s string) bool {
	return refPhrase(ev.Message, s) || eqf(ev.Host, s) || eqf(ev.App, s) || eqf(ev.Device, s) ||
		eqf(ev.SourceIP, s) || eqf(ev.SrcIP, s) || eqf(ev.DstIP, s)
}

func isLog(ev *event.Event) bool  { return ev.Kind == event.KindLog }
func isFlow(ev *event.Event) bool { return ev.Kind == event.KindFlow }
func sev(ev *event.Event) int {
	if isLog(ev) {
		return ev.Severity
	}
	return -1
}

type diffCase struct {
	q        string
	want     func(ev *event.Event) bool // nil: no reference, only the superset check
	nonEmpty bool                       // the data set must hold a match
}

func diffCases() []diffCase {
	ts := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	wild := func(p string) *regexp.Regexp {
		p = regexp.QuoteMeta(p)
		p = strings.ReplaceAll(p, `\*`, ".*")
		p = strings.ReplaceAll(p, `\?`, ".")
		return regexp.MustCompile("^(?:" + p + ")$")
	}
	anchored := func(p string) *regexp.Regexp { return regexp.MustCompile("^(?:" + p + ")$") }
	return []diffCase{
		{`host:CAM-01`, func(ev *event.Event) bool { return eqf(ev.Host, "cam-01") }, true},
		{`host:cam-07`, func(ev *event.Event) bool { return eqf(ev.Host, "cam-07") }, true},
		{`HOST:cam-14`, func(ev *event.Event) bool { return eqf(ev.Host, "cam-14") }, true},
		{`app:sshd`, func(ev *event.Event) bool { return ev.App == "sshd" }, true},
		{`+app:sshd +severity:<=3`, func(ev *event.Event) bool { return ev.App == "sshd" && sev(ev) >= 0 && sev(ev) <= 3 }, true},
		{`segment:cameras`, func(ev *event.Event) bool { return ev.Segment == "cameras" }, true},
		{`-segment:cameras`, func(ev *event.Event) bool { return ev.Segment != "cameras" }, true},
		{`kind:flow`, isFlow, true},
		{`kind:LOG`, isLog, true},
		{`"login failed"`, func(ev *event.Event) bool { return refDefault(ev, "login failed") }, true},
		{`message:"login failed"`, func(ev *event.Event) bool { return refPhrase(ev.Message, "login failed") }, true},
		{`message:"failed login"`, func(ev *event.Event) bool { return refPhrase(ev.Message, "failed login") }, true},
		{`message:failed`, func(ev *event.Event) bool { return refPhrase(ev.Message, "failed") }, true},
		{`failed`, func(ev *event.Event) bool { return refDefault(ev, "failed") }, true},
		{`message:"10.20.0.12:443"`, func(ev *event.Event) bool { return refPhrase(ev.Message, "10.20.0.12 443") }, true},
		{`message:10.20.0.12\:443`, func(ev *event.Event) bool { return refPhrase(ev.Message, "10.20.0.12 443") }, true},
		{`10.20.0.11`, func(ev *event.Event) bool { return refDefault(ev, "10.20.0.11") }, true},
		{`src_ip:10.20.0.11`, func(ev *event.Event) bool { return ev.SrcIP == "10.20.0.11" }, true},
		{`dst_ip:203.0.113.*`, func(ev *event.Event) bool { return strings.HasPrefix(ev.DstIP, "203.0.113.") }, true},
		{`dst_port:443`, func(ev *event.Event) bool { return isFlow(ev) && ev.DstPort == 443 }, true},
		{`dst_port:>=1024`, func(ev *event.Event) bool { return isFlow(ev) && ev.DstPort >= 1024 }, true},
		{`src_port:<40000`, func(ev *event.Event) bool { return isFlow(ev) && ev.SrcPort < 40000 }, true},
		{`dst_port:<=80 proto:udp`, func(ev *event.Event) bool { return isFlow(ev) && ev.DstPort <= 80 && ev.Proto == "udp" }, true},
		{`dst_port:<=80 OR proto:udp`, func(ev *event.Event) bool { return isFlow(ev) && ev.DstPort <= 80 || ev.Proto == "udp" }, true},
		{`app:sshd OR app:httpd severity:<=3`, func(ev *event.Event) bool {
			return ev.App == "sshd" || ev.App == "httpd" && sev(ev) >= 0 && sev(ev) <= 3
		}, true},
		{`segment:cameras severity:<=3 "login failed"`, func(ev *event.Event) bool {
			return sev(ev) >= 0 && sev(ev) <= 3 && refDefault(ev, "login failed") && ev.Segment == "cameras"
		}, true},
		{`+proto:tcp +dst_port:22`, func(ev *event.Event) bool { return ev.Proto == "tcp" && ev.DstPort == 22 }, true},
		{`severity:3`, func(ev *event.Event) bool { return sev(ev) == 3 }, true},
		{`severity:<=3`, func(ev *event.Event) bool { return sev(ev) >= 0 && sev(ev) <= 3 }, true},
		{`severity:>5`, func(ev *event.Event) bool { return sev(ev) > 5 }, true},
		{`severity:>=2.5`, func(ev *event.Event) bool { return sev(ev) >= 3 }, true},
		{`severity:err`, func(ev *event.Event) bool { return sev(ev) == 3 }, true},
		{`severity:<0`, func(ev *event.Event) bool { return false }, false},
		{`facility:>=16`, func(ev *event.Event) bool { return isLog(ev) && ev.Facility >= 16 }, true},
		{`bytes:>100000`, func(ev *event.Event) bool { return isFlow(ev) && ev.Bytes > 100000 }, true},
		{`bytes:<=1000`, func(ev *event.Event) bool { return isFlow(ev) && ev.Bytes <= 1000 }, true},
		{`+kind:flow +bytes:>=1024 +bytes:<2048`, func(ev *event.Event) bool { return isFlow(ev) && ev.Bytes >= 1024 && ev.Bytes < 2048 }, true},
		{`packets:>=500`, func(ev *event.Event) bool { return isFlow(ev) && ev.Packets >= 500 }, true},
		{`flows:1`, func(ev *event.Event) bool { return isFlow(ev) && ev.Flows == 1 }, true},
		{`flow_version:10`, func(ev *event.Event) bool { return isFlow(ev) && ev.FlowVersion == 10 }, true},
		{`sd.origin.ip:10.20.0.15`, func(ev *event.Event) bool { return ev.SD["origin"]["ip"] == "10.20.0.15" }, true},
		{`sd.ORIGIN.IP:10.20.0.1*`, func(ev *event.Event) bool { return strings.HasPrefix(ev.SD["origin"]["ip"], "10.20.0.1") }, true},
		{`sd.meta.sequenceId:42`, func(ev *event.Event) bool { return ev.SD["meta"]["sequenceId"] == "42" }, true},
		{`sd.origin.software:axisos`, func(ev *event.Event) bool { return ev.SD["origin"]["software"] == "AxisOS" }, true},
		{`cam-*`, func(ev *event.Event) bool {
			re := wild("cam-*")
			return refTokenMatch(ev.Message, re) || re.MatchString(strings.ToLower(ev.Host)) || re.MatchString(ev.App) ||
				re.MatchString(ev.Device) || re.MatchString(ev.SourceIP) || re.MatchString(ev.SrcIP) || re.MatchString(ev.DstIP)
		}, true},
		{`host:cam-?3`, func(ev *event.Event) bool { return wild("cam-?3").MatchString(strings.ToLower(ev.Host)) }, true},
		{`message:fail*`, func(ev *event.Event) bool { return refTokenMatch(ev.Message, wild("fail*")) }, true},
		{`message:/fail(ed|ure)/`, func(ev *event.Event) bool { return refTokenMatch(ev.Message, anchored("fail(ed|ure)")) }, true},
		{`app:/ss.d/`, func(ev *event.Event) bool { return anchored("ss.d").MatchString(ev.App) }, true},
		{`/10\.30\.0\.1[0-9]/`, func(ev *event.Event) bool {
			re := anchored(`10\.30\.0\.1[0-9]`)
			return refTokenMatch(ev.Message, re) || re.MatchString(ev.SrcIP) || re.MatchString(ev.DstIP) || re.MatchString(ev.SourceIP)
		}, true},
		{`host:*`, func(ev *event.Event) bool { return ev.Host != "" }, true},
		{`severity:*`, func(ev *event.Event) bool { return sev(ev) >= 0 }, true},
		{`bytes:*`, isFlow, true},
		{`+"failed password" -app:sshd`, func(ev *event.Event) bool { return refDefault(ev, "failed password") && ev.App != "sshd" }, true},
		{`-kind:flow -severity:<4`, func(ev *event.Event) bool { return !isFlow(ev) && !(sev(ev) >= 0 && sev(ev) < 4) }, true},
		{`truncated:true`, func(ev *event.Event) bool { return ev.Truncated }, true},
		{`truncated:false`, func(ev *event.Event) bool { return !ev.Truncated }, true},
		{`parse_error:pri`, func(ev *event.Event) bool { return refPhrase(ev.ParseError, "pri") }, true},
		{`message:überhitzung`, func(ev *event.Event) bool { return refPhrase(ev.Message, "überhitzung") }, true},
		{`Lüfter`, func(ev *event.Event) bool { return refDefault(ev, "lüfter") }, true},
		{`message:LÄUFT`, func(ev *event.Event) bool { return refPhrase(ev.Message, "läuft") }, true},
		{`time:>="2026-12-01T00:30:00Z"`, func(ev *event.Event) bool { return !ev.Time.Before(ts("2026-12-01T00:30:00Z")) }, true},
		{`+time:<"2026-12-01T00:10:00Z" +kind:log`, func(ev *event.Event) bool { return ev.Time.Before(ts("2026-12-01T00:10:00Z")) && isLog(ev) }, true},
		{`id:ev000042`, func(ev *event.Event) bool { return ev.ID == "ev000042" }, true},
		{`received:>"2026-12-01T00:30:00Z"`, func(ev *event.Event) bool { return ev.Received.After(ts("2026-12-01T00:30:00Z")) }, true},
		{`owner:facilities@example.com`, func(ev *event.Event) bool { return ev.Owner == "facilities@example.com" }, true},
		{`device:cam-lobby-03`, func(ev *event.Event) bool { return ev.Device == "cam-lobby-03" }, true},
		{`"firmware version 10.12.1"`, func(ev *event.Event) bool { return refPhrase(ev.Message, "firmware version 10.12.1") }, true},
		{`message:"-v check"`, func(ev *event.Event) bool { return refPhrase(ev.Message, "v check") }, true},
		{`+message:for +message:admin`, func(ev *event.Event) bool { return refPhrase(ev.Message, "for") && refPhrase(ev.Message, "admin") }, true},
		{`cameras`, func(ev *event.Event) bool { return refDefault(ev, "cameras") }, false},
		{`*`, func(*event.Event) bool { return true }, true},
		{``, func(*event.Event) bool { return true }, true},
		{`src_segment:cameras -dst_segment:servers`, func(ev *event.Event) bool { return ev.SrcSegment == "cameras" && ev.DstSegment != "servers" }, true},
		{`dst_segment:external`, func(ev *event.Event) bool { return ev.DstSegment == "external" }, true},
		{`message:"b amp b"`, func(ev *event.Event) bool { return refPhrase(ev.Message, "b amp b") }, true},
		{`category:camera`, func(ev *event.Event) bool { return ev.Category == "camera" }, true},
		{`procid:1*`, func(ev *event.Event) bool { return strings.HasPrefix(ev.ProcID, "1") }, true},
		{`msgid:*`, func(ev *event.Event) bool { return ev.MsgID != "" }, false},
		{`proto:ICMP`, func(ev *event.Event) bool { return ev.Proto == "icmp" }, true},
		{`message:10.10.0.5`, func(ev *event.Event) bool { return refPhrase(ev.Message, "10.10.0.5") }, true},
		{`user=root`, func(ev *event.Event) bool { return refDefault(ev, "user=root") }, true},
		{`password^2 ssh2`, func(ev *event.Event) bool { return refDefault(ev, "password") && refDefault(ev, "ssh2") }, true},
		{`password^2 OR ssh2`, func(ev *event.Event) bool { return refDefault(ev, "password") || refDefault(ev, "ssh2") }, true},
		{`"OR" OR message:"a OR b"`, func(ev *event.Event) bool { return refDefault(ev, "or") || refPhrase(ev.Message, "a or b") }, false},
		{`+severity:<=3 +"login failed" +segment:cameras`, func(ev *event.Event) bool {
			return sev(ev) >= 0 && sev(ev) <= 3 && refDefault(ev, "login failed") && ev.Segment == "cameras"
		}, true},
		{`+kind:log -"login failed" -failed`, func(ev *event.Event) bool {
			return isLog(ev) && !refDefault(ev, "login failed") && !refDefault(ev, "failed")
		}, true},
		{`+dst_port:>=0 +src_port:*`, isFlow, true},
		{`message:"!!"`, func(*event.Event) bool { return false }, false},
	}
}

// searchIDs runs q on idx and returns the matching document IDs.
func searchIDs(t testing.TB, idx bleve.Index, q query.Query, n int) map[string]bool {
	t.Helper()
	req := bleve.NewSearchRequestOptions(q, n+1, 0, false)
	req.Score = "none"
	res, err := idx.SearchInContext(context.Background(), req)
	if err != nil {
		t.Fatalf("search %v: %v", q, err)
	}
	out := make(map[string]bool, len(res.Hits))
	for _, h := range res.Hits {
		out[h.ID] = true
	}
	return out
}

// TestDifferential checks, on a few thousand generated events, that Match
// agrees with the reference expectation and that Block selects every block
// holding a match, both for one-event blocks and for blocks of 64.
func TestDifferential(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 800
	}
	evs := genEvents(n, 1)

	bl := blocks(evs, 64)
	blockOf := make([]string, len(evs))
	for b, idxs := range bl {
		for _, i := range idxs {
			blockOf[i] = docID("b", b)
		}
	}
	// Both engines: scorch on disk is what the store runs, NewMemOnly
	// (upsidedown) is what the brief names; their regexp and range
	// searchers differ.
	type engine struct {
		name          string
		single, multi bleve.Index
	}
	var engines []engine
	for _, name := range []string{"scorch", "memonly"} {
		single := newTestIndex(t, name)
		multi := newTestIndex(t, name)
		indexEvents(t, single, evs, 1)
		indexEvents(t, multi, evs, 64)
		engines = append(engines, engine{name, single, multi})
	}

	for _, c := range diffCases() {
		q, err := Compile(c.q)
		if err != nil {
			t.Errorf("%s: %v", c.q, err)
			continue
		}
		count := 0
		for i := range evs {
			ev := &evs[i]
			got := q.Match(ev)
			if c.want != nil && got != c.want(ev) {
				t.Errorf("%s: Match(%s %q host=%q) = %v, want %v", c.q, ev.ID, ev.Message, ev.Host, got, !got)
			}
			if got {
				count++
			}
		}
		var singleHits, multiHits map[string]bool
		for _, e := range engines {
			singleHits = searchIDs(t, e.single, q.Block(), len(evs))
			multiHits = searchIDs(t, e.multi, q.Block(), len(bl))
			for i := range evs {
				if !q.Match(&evs[i]) {
					continue
				}
				if !singleHits[docID("e", i)] {
					t.Errorf("%s: %s one-event Block() misses %s (%q)", c.q, e.name, evs[i].ID, evs[i].Message)
				}
				if !multiHits[blockOf[i]] {
					t.Errorf("%s: %s 64-event Block() misses block %s of %s", c.q, e.name, blockOf[i], evs[i].ID)
				}
			}
		}
		if c.nonEmpty && count == 0 && !testing.Short() { // -short: too few events for every case
			t.Errorf("%s: no event matches: the case tests nothing", c.q)
		}
		if !c.nonEmpty && count != 0 {
			t.Errorf("%s: %d events match, want none", c.q, count)
		}
		t.Logf("%-50s match %5d  one-event candidates %5d  block candidates %3d/%d", c.q, count, len(singleHits), len(multiHits), len(bl))
	}
}

// newTestIndex opens an empty block index: "scorch" on disk in a temporary
// directory (the store's engine) or "memonly".
func newTestIndex(t testing.TB, engine string) bleve.Index {
	t.Helper()
	var idx bleve.Index
	var err error
	if engine == "memonly" {
		idx, err = bleve.NewMemOnly(Mapping())
	} else {
		idx, err = bleve.NewUsing(filepath.Join(t.TempDir(), "bleve"), Mapping(), scorch.Name, scorch.Name, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	return idx
}

// indexEvents indexes evs as blocks of size (document IDs "e%06d" for
// one-event blocks, "b%06d" otherwise, numbered as blocks() does).
func indexEvents(t testing.TB, idx bleve.Index, evs []event.Event, size int) {
	t.Helper()
	var bb BlockBuilder
	batch := idx.NewBatch()
	prefix := "b"
	if size == 1 {
		prefix = "e"
	}
	for b, idxs := range blocks(evs, size) {
		group := make([]event.Event, len(idxs))
		for j, i := range idxs {
			group[j] = evs[i]
		}
		id := docID(prefix, b)
		if size == 1 {
			id = docID(prefix, idxs[0])
		}
		if err := batch.Index(id, bb.Doc(group)); err != nil {
			t.Fatal(err)
		}
	}
	if err := idx.Batch(batch); err != nil {
		t.Fatal(err)
	}
}

func docID(prefix string, i int) string { return prefix + padded(uint64(i), 6) }
