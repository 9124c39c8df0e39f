package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/segwatch/segwatch/index/match"
	"github.com/segwatch/segwatch/ingest/event"
)

// testNow is the fixed clock of the store tests.
var testNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *clock) now() time.Time            { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration)       { c.ns.Add(int64(d)) }
func (c *clock) set(t time.Time)           { c.ns.Store(t.UnixNano()) }
func testLogger(t testing.TB) *slog.Logger { return slog.New(slog.NewTextHandler(testWriter{t}, nil)) }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func openTestStore(t testing.TB, dir string, c *clock, cfg Config) *Store {
	t.Helper()
	cfg.Dir = dir
	if cfg.Retention == 0 {
		cfg.Retention = 90 * 24 * time.Hour
	}
	s, err := Open(context.Background(), cfg, Deps{Logger: testLogger(t), Metrics: metrics.NewSet(), Now: c.now})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// genEvents makes n events over the 3 days before testNow.
func genEvents(t testing.TB, n int, seed uint64) []event.Event {
	g, err := NewGenerator(GenConfig{Devices: 40, Events: n, Start: testNow.Add(-72 * time.Hour), End: testNow, FlowShare: 0.25, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]event.Event, n)
	for i := range evs {
		g.Next(&evs[i])
	}
	return evs
}

// appendAll appends evs in chunks and checks nothing is refused.
func appendAll(t testing.TB, s *Store, evs []event.Event, chunk int) {
	t.Helper()
	for len(evs) > 0 {
		n := min(chunk, len(evs))
		refused, err := s.Append(evs[:n])
		if err != nil || refused != 0 {
			t.Fatalf("append: refused %d, %v", refused, err)
		}
		evs = evs[n:]
	}
}

// bruteForce is the reference: every event matching q in [from, to), in
// the requested order (ties by ID, which follows the store's tie-break only
// within a block; callers compare sets where ties matter).
func bruteForce(t testing.TB, evs []event.Event, q string, from, to time.Time) []event.Event {
	t.Helper()
	cq, err := match.Compile(q)
	if err != nil {
		t.Fatalf("compile %q: %v", q, err)
	}
	var out []event.Event
	for i := range evs {
		ev := &evs[i]
		if !ev.Time.Before(from) && ev.Time.Before(to) && cq.Match(ev) {
			out = append(out, *ev)
		}
	}
	return out
}

func ids(evs []event.Event) []string {
	out := make([]string, len(evs))
	for i := range evs {
		out[i] = evs[i].ID
	}
	return out
}

func hitIDs(r Result) []string {
	out := make([]string, len(r.Hits))
	for i := range r.Hits {
		out[i] = r.Hits[i].Event.ID
	}
	return out
}

var testQueries = []string{
	"",
	"*",
	"app:sshd",
	"host:CAM-LOBBY-01",
	`"login failed"`,
	"+segment:cameras +severity:<=4",
	"kind:flow +dst_port:554",
	"10.20.0.7",
	"failed -app:sshd",
	"message:firmw*",
	"+kind:log -severity:6",
	"device:nothing-like-this",
}

// checkSearch compares one search with the brute-force answer: exact total,
// the same page of events in the right order.
func checkSearch(t *testing.T, s *Store, all []event.Event, req Request) {
	t.Helper()
	res, err := s.Search(context.Background(), req)
	if err != nil {
		t.Fatalf("search %+v: %v", req, err)
	}
	from, to := req.From, req.To
	if to.IsZero() {
		to = testNow
	}
	if from.IsZero() {
		from = to.Add(-DefaultRange)
	}
	want := bruteForce(t, all, req.Query, from, to)
	if res.Total != len(want) {
		t.Fatalf("search %q [%v, %v): total %d, want %d", req.Query, from, to, res.Total, len(want))
	}
	desc := req.Order != OrderOldest
	sort.SliceStable(want, func(i, j int) bool {
		a, b := want[i].Time, want[j].Time
		if desc {
			return a.After(b)
		}
		return a.Before(b)
	})
	limit := req.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	lo, hi := min(req.Offset, len(want)), min(req.Offset+limit, len(want))
	page := want[lo:hi]
	if len(res.Hits) != len(page) {
		t.Fatalf("search %q: %d hits, want %d", req.Query, len(res.Hits), len(page))
	}
	for i := range page {
		got := res.Hits[i].Event
		if !got.Time.Equal(page[i].Time) {
			t.Fatalf("search %q hit %d: time %v, want %v", req.Query, i, got.Time, page[i].Time)
		}
	}
	// Same events, not only the same times: compare ID sets of the page
	// where no tie crosses the page edges.
	if lo < hi && (lo == 0 || !want[lo-1].Time.Equal(want[lo].Time)) && (hi == len(want) || !want[hi-1].Time.Equal(want[hi].Time)) {
		g, w := hitIDs(res), ids(page)
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			t.Fatalf("search %q: page IDs differ", req.Query)
		}
	}
	for _, h := range res.Hits {
		if h.Event.ID == "" {
			t.Fatalf("hit without ID")
		}
	}
}

func TestSearchAgainstBruteForce(t *testing.T) {
	c := newClock(testNow)
	s := openTestStore(t, t.TempDir(), c, Config{BlockSize: 32, BatchDocs: 8})
	defer s.Close()
	all := genEvents(t, 6000, 1)
	// Part flushed to disk, part committed by size, the rest left in memory
	// (open blocks): searches must see all of it exactly once.
	appendAll(t, s, all[:3000], 500)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, all[3000:], 333)

	ranges := [][2]time.Time{
		{},
		{testNow.Add(-50 * time.Hour), testNow.Add(-49*time.Hour - 17*time.Minute)},
		{testNow.Add(-30 * time.Hour), testNow.Add(-20 * time.Hour)},
		{testNow.Add(-5 * time.Minute), testNow.Add(time.Hour)},
	}
	// The id field works (IDs are derived, not stored: the store must set
	// them before Match).
	if res, err := s.Search(context.Background(), Request{Query: "id:" + all[100].ID, From: testNow.Add(-72 * time.Hour), To: testNow}); err != nil || res.Total != 1 || res.Hits[0].Event.ID != all[100].ID {
		t.Fatalf("id search: %+v, %v", res, err)
	}
	queries := append(testQueries[:len(testQueries):len(testQueries)], "id:"+all[100].ID, `+id:`+all[5000].ID+` +kind:log`)
	for _, q := range queries {
		for _, r := range ranges {
			for _, order := range []string{OrderNewest, OrderOldest} {
				for _, p := range [][2]int{{0, 0}, {7, 13}, {50, 1000}} {
					checkSearch(t, s, all, Request{Query: q, From: r[0], To: r[1], Order: order, Limit: p[0], Offset: p[1]})
				}
			}
		}
	}
}

// Paging through all results visits every match exactly once.
func TestSearchPaging(t *testing.T) {
	c := newClock(testNow)
	s := openTestStore(t, t.TempDir(), c, Config{BlockSize: 16, BatchDocs: 4})
	defer s.Close()
	all := genEvents(t, 2000, 2)
	appendAll(t, s, all, 1000)
	from := testNow.Add(-72 * time.Hour)
	for _, order := range []string{OrderNewest, OrderOldest} {
		seen := map[string]bool{}
		var last time.Time
		for off := 0; ; off += 97 {
			res, err := s.Search(context.Background(), Request{Query: "kind:log", From: from, To: testNow, Limit: 97, Offset: off, Order: order})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Hits) == 0 {
				break
			}
			for _, h := range res.Hits {
				if seen[h.Event.ID] {
					t.Fatalf("%s: %s seen twice", order, h.Event.ID)
				}
				seen[h.Event.ID] = true
				if !last.IsZero() && (order == OrderNewest && h.Event.Time.After(last) || order == OrderOldest && h.Event.Time.Before(last)) {
					t.Fatalf("%s: out of order at offset %d", order, off)
				}
				last = h.Event.Time
			}
		}
		if want := len(bruteForce(t, all, "kind:log", from, testNow)); len(seen) != want {
			t.Fatalf("%s: paged through %d events, want %d", order, len(seen), want)
		}
	}
}

func TestSearchBadQuery(t *testing.T) {
	s := openTestStore(t, t.TempDir(), newClock(testNow), Config{})
	defer s.Close()
	for _, req := range []Request{{Query: `"unterminated`}, {Query: "host:"}, {Query: "nosuchfield:x"}, {Order: "sideways"}, {Offset: MaxWindow}} {
		_, err := s.Search(context.Background(), req)
		var qe *QueryError
		if !errors.As(err, &qe) {
			t.Errorf("%+v: err %v, want a QueryError", req, err)
		}
	}
}

func TestTailSearchableAndGet(t *testing.T) {
	c := newClock(testNow)
	s := openTestStore(t, t.TempDir(), c, Config{FlushAge: time.Hour})
	defer s.Close()
	evs := []event.Event{
		{Time: testNow.Add(-time.Minute), Kind: event.KindLog, SourceIP: "10.20.0.11", Host: "cam-lobby-01", App: "sshd", Facility: 4, Severity: 3, Message: "login failed for user admin"},
		{Time: testNow.Add(-2 * time.Minute), Kind: event.KindLog, SourceIP: "10.20.0.12", Host: "cam-lobby-02", App: "rtspd", Facility: 16, Severity: 6, Message: "stream 1 started"},
	}
	if _, err := s.Append(evs); err != nil {
		t.Fatal(err)
	}
	if evs[0].ID == "" || evs[1].ID == "" || evs[0].ID == evs[1].ID {
		t.Fatalf("IDs not assigned: %q %q", evs[0].ID, evs[1].ID)
	}
	res, err := s.Search(context.Background(), Request{Query: `"login failed"`})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 1 || res.Hits[0].Event.ID != evs[0].ID {
		t.Fatalf("tail event not found: %+v", res)
	}
	if len(res.Hits[0].Fragments) == 0 {
		t.Errorf("no highlight fragments")
	}
	check := func(stage string) {
		for _, want := range evs {
			got, err := s.Get(context.Background(), want.ID)
			if err != nil {
				t.Fatalf("%s: get %s: %v", stage, want.ID, err)
			}
			if got.ID != want.ID || got.Message != want.Message || !got.Time.Equal(want.Time) {
				t.Fatalf("%s: get %s = %+v", stage, want.ID, got)
			}
		}
		for _, id := range []string{"", "x", "20261203-ffff-0", evs[0].ID + "0"} {
			if _, err := s.Get(context.Background(), id); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: get %q: %v, want ErrNotFound", stage, id, err)
			}
		}
	}
	check("memory")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	check("flushed")
}

func TestFlushAge(t *testing.T) {
	c := newClock(testNow)
	s := openTestStore(t, t.TempDir(), c, Config{FlushAge: 10 * time.Second, BatchDocs: 1000})
	defer s.Close()
	all := genEvents(t, 50, 3)
	appendAll(t, s, all, 50)
	sh := s.shards[dayOf(testNow)]
	if len(sh.open) == 0 {
		t.Fatal("no open block")
	}
	c.add(11 * time.Second)
	if err := s.Tick(c.now()); err != nil {
		t.Fatal(err)
	}
	if len(sh.open) != 0 {
		t.Fatalf("%d blocks still open after FlushAge", len(sh.open))
	}
	// Sealed, still in the batch (by size) until the batch is FlushAge old.
	if len(sh.pending) == 0 {
		t.Fatal("nothing pending")
	}
	c.add(11 * time.Second)
	if err := s.Tick(c.now()); err != nil {
		t.Fatal(err)
	}
	if len(sh.pending) != 0 || len(sh.memSnapshot()) != 0 {
		t.Fatal("batch not committed after FlushAge")
	}
	checkSearch(t, s, all, Request{From: testNow.Add(-72 * time.Hour), To: testNow, Limit: 100})
}

func TestOutOfRange(t *testing.T) {
	c := newClock(testNow)
	s := openTestStore(t, t.TempDir(), c, Config{Retention: 48 * time.Hour})
	defer s.Close()
	evs := []event.Event{
		{Time: testNow.Add(-49 * time.Hour), Kind: event.KindLog, ID: "stale"},
		{Time: testNow.Add(-47 * time.Hour), Kind: event.KindLog},
		{Time: testNow.Add(23 * time.Hour), Kind: event.KindLog},
		{Time: testNow.Add(25 * time.Hour), Kind: event.KindLog},
		{Kind: event.KindLog},
	}
	refused, err := s.Append(evs)
	if err != nil {
		t.Fatal(err)
	}
	if refused != 3 || evs[0].ID != "" || evs[1].ID == "" || evs[2].ID == "" || evs[3].ID != "" {
		t.Fatalf("refused %d, ids %q", refused, ids(evs))
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	c := newClock(testNow)
	all := genEvents(t, 3000, 4)
	s := openTestStore(t, dir, c, Config{BlockSize: 64})
	appendAll(t, s, all[:2000], 400)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir, c, Config{BlockSize: 64})
	defer s.Close()
	if got := len(s.Days()); got != 3 {
		t.Fatalf("%d days after restart, want 3", got)
	}
	appendAll(t, s, all[2000:], 400)
	seen := map[string]bool{}
	for _, ev := range all {
		if seen[ev.ID] {
			t.Fatalf("ID %s reused after restart", ev.ID)
		}
		seen[ev.ID] = true
	}
	for _, q := range []string{"", "app:sshd", `"login failed"`} {
		checkSearch(t, s, all, Request{Query: q, From: testNow.Add(-72 * time.Hour), To: testNow, Limit: 500})
	}
	for _, ev := range []event.Event{all[0], all[1999], all[2999]} {
		if got, err := s.Get(context.Background(), ev.ID); err != nil || got.Message != ev.Message {
			t.Fatalf("get %s after restart: %v", ev.ID, err)
		}
	}
}

// A crash can leave a torn frame at the end of raw: open cuts it off and
// everything before it stays searchable; appends continue.
func TestTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(t *testing.T, path string, size int64)
	}{
		{"partial frame", func(t *testing.T, path string, size int64) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// The start of a valid frame, then nothing.
			f.Write(appendFrame(nil, frameHeader{Block: 999, Count: 3}, []byte("xxxxxxxxxxxxxxxxxxx"))[:30])
		}},
		{"garbage", func(t *testing.T, path string, size int64) {
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			defer f.Close()
			f.Write([]byte("\x00\x01garbage that is no frame at all\x2c\x00\x00\x00"))
		}},
		{"corrupt last frame", func(t *testing.T, path string, size int64) {
			f, _ := os.OpenFile(path, os.O_RDWR, 0)
			defer f.Close()
			f.WriteAt([]byte{0xde, 0xad}, size-10)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := newClock(testNow)
			all := genEvents(t, 600, 5)
			day := all[:0:0]
			for _, ev := range all {
				if dayOf(ev.Time) == dayOf(testNow) {
					day = append(day, ev)
				}
			}
			s := openTestStore(t, dir, c, Config{BlockSize: 8})
			appendAll(t, s, day[:len(day)-3], 100)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			// The last block alone, so cutting its frame loses only it.
			appendAll(t, s, day[len(day)-3:], 100)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, dayOf(testNow).dirName(), "raw")
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.cut(t, path, st.Size())
			s = openTestStore(t, dir, c, Config{BlockSize: 8})
			defer s.Close()
			kept := day
			if tc.name == "corrupt last frame" {
				// The corrupted frame holds the last 3 events of one stream
				// (each stream has its own block; find which survived).
				kept = nil
				for _, ev := range day {
					if _, err := s.Get(context.Background(), ev.ID); err == nil {
						kept = append(kept, ev)
					}
				}
				if len(kept) == len(day) || len(kept) < len(day)-3 {
					t.Fatalf("kept %d of %d events", len(kept), len(day))
				}
			}
			st2, _ := os.Stat(path)
			if tc.name != "corrupt last frame" && st2.Size() != st.Size() {
				t.Fatalf("raw is %d bytes after recovery, want %d", st2.Size(), st.Size())
			}
			from := dayOf(testNow).time()
			checkSearch(t, s, kept, Request{From: from, To: testNow, Limit: 1000})
			more := genEvents(t, 10, 6)
			for i := range more {
				more[i].Time = testNow.Add(-time.Duration(i) * time.Second)
			}
			appendAll(t, s, more, 10)
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			checkSearch(t, s, append(kept, more...), Request{From: from, To: testNow.Add(time.Second), Limit: 1000})
		})
	}
}

// Frames written to raw whose documents never reached Bleve (a crash
// before the commit) are indexed again on open.
func TestCatchUp(t *testing.T) {
	dir := t.TempDir()
	c := newClock(testNow)
	all := genEvents(t, 1000, 7)
	s := openTestStore(t, dir, c, Config{BlockSize: 16})
	appendAll(t, s, all[:500], 100)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Keep the Bleve indexes as they are now.
	saved := t.TempDir()
	for _, d := range []string{"2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03"} {
		if err := os.CopyFS(filepath.Join(saved, d), os.DirFS(filepath.Join(dir, d, "bleve"))); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	s = openTestStore(t, dir, c, Config{BlockSize: 16})
	appendAll(t, s, all[500:], 100)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Put the old indexes back: raw now has frames they lack.
	for _, d := range []string{"2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03"} {
		b := filepath.Join(dir, d, "bleve")
		if _, err := os.Stat(filepath.Join(saved, d)); err != nil {
			os.RemoveAll(b) // the day did not exist: its index is rebuilt
			continue
		}
		os.RemoveAll(b)
		if err := os.CopyFS(b, os.DirFS(filepath.Join(saved, d))); err != nil {
			t.Fatal(err)
		}
	}
	s = openTestStore(t, dir, c, Config{BlockSize: 16})
	defer s.Close()
	for _, q := range []string{"", "app:sshd", "kind:flow"} {
		checkSearch(t, s, all, Request{Query: q, From: testNow.Add(-72 * time.Hour), To: testNow, Limit: 2000})
	}
}

func TestDropDay(t *testing.T) {
	dir := t.TempDir()
	c := newClock(testNow)
	s := openTestStore(t, dir, c, Config{})
	defer s.Close()
	all := genEvents(t, 2000, 8)
	appendAll(t, s, all, 500)
	days := s.Days()
	if len(days) != 4 || !days[0].Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("days %v", days)
	}
	if err := s.DropDay(days[1].Add(5 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.DropDay(days[1]); err != nil {
		t.Fatalf("second drop: %v", err)
	}
	if got := s.Days(); len(got) != 3 || !got[1].Equal(days[2]) {
		t.Fatalf("days after drop %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "2026-12-01")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("shard dir still there: %v", err)
	}
	var rest []event.Event
	for _, ev := range all {
		if dayOf(ev.Time) != dayOf(days[1]) {
			rest = append(rest, ev)
		}
	}
	checkSearch(t, s, rest, Request{From: testNow.Add(-72 * time.Hour), To: testNow, Limit: 10})
	// A leftover of an interrupted drop is removed on open.
	if err := os.MkdirAll(filepath.Join(dir, dropPrefix+"2026-11-01", "bleve"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := openTestStore(t, dir, c, Config{})
	defer s2.Close()
	if _, err := os.Stat(filepath.Join(dir, dropPrefix+"2026-11-01")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("drop leftover not removed")
	}
	if len(s2.Days()) != 3 {
		t.Fatalf("days after reopen: %v", s2.Days())
	}
}

// Searches run while the writer appends and seals; run with -race. Every
// search must see a consistent store: a total that never shrinks and hits
// in order.
func TestConcurrentSearchWhileAppending(t *testing.T) {
	c := newClock(testNow)
	s := openTestStore(t, t.TempDir(), c, Config{BlockSize: 16, BatchDocs: 4})
	defer s.Close()
	all := genEvents(t, 2000, 9)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0
			for ctx.Err() == nil {
				res, err := s.Search(ctx, Request{From: testNow.Add(-72 * time.Hour), To: testNow, Limit: 20})
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				if res.Total < last {
					errs <- fmt.Errorf("total went from %d to %d", last, res.Total)
					return
				}
				last = res.Total
				for i := 1; i < len(res.Hits); i++ {
					if res.Hits[i].Event.Time.After(res.Hits[i-1].Event.Time) {
						errs <- errors.New("hits out of order")
						return
					}
				}
				if len(res.Hits) > 0 {
					if _, err := s.Get(ctx, res.Hits[0].Event.ID); err != nil && ctx.Err() == nil {
						errs <- fmt.Errorf("get: %w", err)
						return
					}
				}
			}
		}()
	}
	for i := 0; i < len(all); i += 100 {
		appendAll(t, s, all[i:i+100], 100)
		if i%1000 == 0 {
			c.add(40 * time.Second)
			if err := s.Tick(c.now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c.set(testNow)
	checkSearch(t, s, all, Request{From: testNow.Add(-72 * time.Hour), To: testNow, Limit: 100})
}

// A damaged frame inside raw (not at the tail) is skipped by searches with
// an error log; the rest of the day stays searchable.
func TestCorruptInnerFrameSkipped(t *testing.T) {
	dir := t.TempDir()
	c := newClock(testNow)
	evs := genEvents(t, 300, 10)
	var day []event.Event
	for _, ev := range evs {
		if dayOf(ev.Time) == dayOf(testNow) {
			day = append(day, ev)
		}
	}
	s := openTestStore(t, dir, c, Config{BlockSize: 4})
	appendAll(t, s, day, 100)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, dayOf(testNow).dirName(), "raw")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var hdr [frameHeaderSize]byte
	f.ReadAt(hdr[:], 0)
	h, _ := parseFrameHeader(hdr[:])
	var b [1]byte
	f.ReadAt(b[:], frameHeaderSize+1)
	f.WriteAt([]byte{b[0] ^ 0xff}, frameHeaderSize+1) // first frame's payload
	f.Close()
	s = openTestStore(t, dir, c, Config{BlockSize: 4})
	defer s.Close()
	res, err := s.Search(context.Background(), Request{From: dayOf(testNow).time(), To: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != len(day)-int(h.Count) {
		t.Fatalf("total %d, want %d (all but the %d events of the bad frame)", res.Total, len(day)-int(h.Count), h.Count)
	}
}
