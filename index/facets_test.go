package index

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

var testFacets = []string{"host", "app", "severity", "dst_port", "device", "segment", "kind", "src_ip", "proto"}

// bruteFacets is the reference: the top values of each field over the
// events matching q in [from, to), written independently of facets.go.
func bruteFacets(t testing.TB, evs []event.Event, q string, from, to time.Time, fields []string) map[string][]FacetCount {
	t.Helper()
	matches := bruteForce(t, evs, q, from, to)
	out := map[string][]FacetCount{}
	for _, f := range fields {
		counts := map[string]int{}
		num := false
		for i := range matches {
			ev := &matches[i]
			var v string
			switch f {
			case "host":
				v = ev.Host
			case "app":
				v = ev.App
			case "device":
				v = ev.Device
			case "segment":
				v = ev.Segment
			case "kind":
				v = ev.Kind
			case "src_ip":
				v = ev.SrcIP
			case "proto":
				v = ev.Proto
			case "severity":
				num = true
				if ev.Kind == event.KindLog && ev.Severity >= 0 {
					v = strconv.Itoa(ev.Severity)
				}
			case "dst_port":
				num = true
				if ev.Kind == event.KindFlow {
					v = strconv.Itoa(ev.DstPort)
				}
			default:
				t.Fatalf("bruteFacets: no field %q", f)
			}
			if v != "" {
				counts[v]++
			}
		}
		var all []FacetCount
		for v, n := range counts {
			all = append(all, FacetCount{v, n})
		}
		slices.SortFunc(all, func(a, b FacetCount) int {
			if c := cmp.Compare(b.Count, a.Count); c != 0 {
				return c
			}
			if num {
				x, _ := strconv.Atoi(a.Value)
				y, _ := strconv.Atoi(b.Value)
				return cmp.Compare(x, y)
			}
			return cmp.Compare(a.Value, b.Value)
		})
		out[f] = append([]FacetCount{}, all[:min(len(all), MaxFacetValues)]...)
	}
	return out
}

func checkFacets(t *testing.T, s *Store, all []event.Event, req Request) {
	t.Helper()
	req.Facets = testFacets
	res, err := s.Search(context.Background(), req)
	if err != nil {
		t.Fatalf("search %q: %v", req.Query, err)
	}
	from, to := req.From, req.To
	if to.IsZero() {
		to = testNow
	}
	if from.IsZero() {
		from = to.Add(-DefaultRange)
	}
	want := bruteFacets(t, all, req.Query, from, to, testFacets)
	if !reflect.DeepEqual(res.Facets, want) {
		for _, f := range testFacets {
			if !reflect.DeepEqual(res.Facets[f], want[f]) {
				t.Errorf("search %q [%v, %v) facet %s:\n got %v\nwant %v", req.Query, from, to, f, res.Facets[f], want[f])
			}
		}
		t.FailNow()
	}
	// The facets of a field sum to at most the total, and a field every
	// event has (kind) sums to the total when it has few values.
	n := 0
	for _, fc := range res.Facets["kind"] {
		n += fc.Count
	}
	if n != res.Total {
		t.Fatalf("search %q: kind facets sum to %d, total %d", req.Query, n, res.Total)
	}
}

var facetRanges = [][2]time.Time{
	{}, // the default: the last 24 h, two partial days
	{testNow.Add(-72 * time.Hour), testNow},
	{testNow.Add(-50 * time.Hour), testNow.Add(-49*time.Hour - 17*time.Minute)}, // inside one hour
	{testNow.Add(-30*time.Hour - 7*time.Minute), testNow.Add(-20*time.Hour + 13*time.Second)},
	{dayOf(testNow).time().Add(-24 * time.Hour), dayOf(testNow).time()}, // one whole day
	{testNow.Add(-5 * time.Minute), testNow.Add(time.Hour)},
}

var facetQueries = []string{"", "app:sshd", "kind:flow", `"login failed"`, "+segment:cameras +severity:<=4", "device:nothing-like-this"}

// Facets are exact over flushed blocks, blocks committed by size and blocks
// still in memory, for match-all (rollups) and filtered queries, and stay
// exact as events keep arriving after a rollup was built.
func TestFacetsAgainstBruteForce(t *testing.T) {
	c := newClock(testNow)
	s := openTestStore(t, t.TempDir(), c, Config{BlockSize: 32, BatchDocs: 8})
	defer s.Close()
	all := genEvents(t, 8000, 7)
	appendAll(t, s, all[:3000], 500)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	check := func(stored []event.Event) {
		t.Helper()
		for _, q := range facetQueries {
			for _, r := range facetRanges {
				checkFacets(t, s, stored, Request{Query: q, From: r[0], To: r[1], Limit: 5})
			}
		}
	}
	check(all[:3000])
	// More events after the rollups exist: they extend them.
	appendAll(t, s, all[3000:6000], 333)
	check(all[:6000])
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, all[6000:], 97)
	check(all)
}

// Reopening a store starts with no rollup; they are rebuilt from the raw
// frames.
func TestFacetsAfterRestart(t *testing.T) {
	dir := t.TempDir()
	c := newClock(testNow)
	s := openTestStore(t, dir, c, Config{BlockSize: 64})
	all := genEvents(t, 3000, 8)
	appendAll(t, s, all, 1000)
	checkFacets(t, s, all, Request{From: testNow.Add(-72 * time.Hour), To: testNow})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir, c, Config{BlockSize: 64})
	defer s.Close()
	for _, r := range facetRanges {
		checkFacets(t, s, all, Request{From: r[0], To: r[1]})
	}
}

func TestFacetErrors(t *testing.T) {
	s := openTestStore(t, t.TempDir(), newClock(testNow), Config{})
	defer s.Close()
	many := make([]string, MaxFacets+1)
	for i := range many {
		many[i] = "host"
	}
	for _, f := range [][]string{{"message"}, {"bytes"}, {"nosuch"}, many} {
		_, err := s.Search(context.Background(), Request{Facets: f})
		var qe *QueryError
		if !errors.As(err, &qe) {
			t.Errorf("facets %v: err %v, want a QueryError", f, err)
		}
	}
	// Case and duplicates do not matter; an empty store gives empty lists.
	res, err := s.Search(context.Background(), Request{Facets: []string{"HOST", "host", "severity"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string][]FacetCount{"host": {}, "severity": {}}; !reflect.DeepEqual(res.Facets, want) {
		t.Fatalf("facets %v, want %v", res.Facets, want)
	}
	if res, _ := s.Search(context.Background(), Request{}); res.Facets != nil {
		t.Fatalf("facets without asking: %v", res.Facets)
	}
}

// Facet searches run concurrently with appends and with each other (for
// the race detector); once writing stops they are exact.
func TestFacetsConcurrentWithAppend(t *testing.T) {
	c := newClock(testNow)
	s := openTestStore(t, t.TempDir(), c, Config{BlockSize: 16, BatchDocs: 4})
	defer s.Close()
	all := genEvents(t, 4000, 9)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				q := facetQueries[w]
				if _, err := s.Search(context.Background(), Request{Query: q, From: testNow.Add(-72 * time.Hour), To: testNow, Facets: testFacets}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	appendAll(t, s, all, 50)
	close(done)
	wg.Wait()
	for _, q := range facetQueries[:3] {
		checkFacets(t, s, all, Request{Query: q, From: testNow.Add(-72 * time.Hour), To: testNow})
	}
}

func ExampleFacetFields() {
	fmt.Println(FacetFields()[:4])
	// Output: [app category device dst_device]
}
