package index

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// The search benchmarks run the query set of `segwatch bench` against the
// bench data set: 2M events over 30 days from 2000 devices by default
// (about two minutes to load on the 2-core box), the full size with
//
//	go test -run '^$' -bench BenchmarkQuerySet ./index -args -events=10000000
//
// -dataset=DIR keeps the data set in DIR and reuses it on the next run.
var (
	benchEventsFlag = flag.Int("events", 2_000_000, "events in the search benchmark data set")
	benchDataFlag   = flag.String("dataset", "", "directory to keep (and reuse) the search benchmark data set")
)

// dataSetEnd is the end of the bench data set's event time.
var dataSetEnd = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

var (
	qsOnce  sync.Once
	qsStore *Store
	qsErr   error
)

func querySetStore(b *testing.B) *Store {
	qsOnce.Do(func() {
		dir := *benchDataFlag
		if dir == "" {
			if dir, qsErr = os.MkdirTemp("", "segwatch-qs-"); qsErr != nil {
				return
			}
		}
		if n, _ := filepathEntries(dir); n == 0 {
			var st DataSetStats
			st, qsErr = LoadDataSet(context.Background(), dir, DataSetConfig{Events: *benchEventsFlag, End: dataSetEnd, Seed: 42})
			if qsErr != nil {
				return
			}
			var buf bytes.Buffer
			WriteReport(&buf, st, nil)
			fmt.Printf("data set in %s:\n%s", dir, buf.String())
		}
		t0 := time.Now()
		qsStore, qsErr = Open(context.Background(), Config{Dir: dir, Retention: 400 * 24 * time.Hour},
			Deps{Metrics: metrics.NewSet(), Now: func() time.Time { return dataSetEnd }})
		b.Logf("opened %d shards in %v", len(qsStore.Days()), time.Since(t0))
	})
	if qsErr != nil {
		b.Fatal(qsErr)
	}
	return qsStore
}

// BenchmarkQuerySet times each query of the query set (ns/op is the mean;
// the first run, which builds facet rollups, is outside the timer).
func BenchmarkQuerySet(b *testing.B) {
	s := querySetStore(b)
	end, err := s.newest(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range QuerySet {
		name := strings.NewReplacer(" ", "_", "≤", "").Replace(q.Name)
		b.Run(name, func(b *testing.B) {
			req := Request{Query: q.Query, From: end.Add(-q.Range), To: end, Order: q.Order, Facets: q.Facets}
			res, err := s.Search(context.Background(), req)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if res, err = s.Search(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(res.Total), "matches")
		})
	}
}

// BenchmarkQuerySetReport prints the p50/p99 table of `segwatch bench` for
// the data set (20 runs per query).
func BenchmarkQuerySetReport(b *testing.B) {
	s := querySetStore(b)
	for b.Loop() {
		stats, err := RunQuerySet(context.Background(), s, 20)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		WriteReport(&buf, DataSetStats{}, stats)
		// Printed, not logged: benchmark logs are cut short.
		fmt.Printf("query set (shared 2-core box):\n%s", buf.String())
	}
}

// A small data set loads, and the query set runs on it with consistent
// answers: CI's smoke test of `segwatch bench`.
func TestQuerySetSmoke(t *testing.T) {
	dir := t.TempDir()
	st, err := LoadDataSet(context.Background(), dir, DataSetConfig{Days: 3, Events: 20000, Devices: 100, End: dataSetEnd, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 20000 || st.Days != 4 || st.Frames == 0 || st.DiskBytes == 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := LoadDataSet(context.Background(), dir, DataSetConfig{Events: 10}); err == nil {
		t.Fatal("loaded into a non-empty directory")
	}
	s, err := Open(context.Background(), Config{Dir: dir, Retention: 400 * 24 * time.Hour}, Deps{Now: func() time.Time { return dataSetEnd }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	stats, err := RunQuerySet(context.Background(), s, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != len(QuerySet) {
		t.Fatalf("%d stats for %d queries", len(stats), len(QuerySet))
	}
	byName := map[string]QueryStat{}
	for _, q := range stats {
		byName[q.Name] = q
		if q.P50 <= 0 || q.P99 < q.P50 || q.Hits > q.Total {
			t.Errorf("%+v", q)
		}
	}
	// Everything over 30 days covers the 3 days of data.
	if q := byName[QuerySet[4].Name]; q.Total != st.Events || q.Hits != DefaultLimit {
		t.Errorf("everything: %+v, want total %d", q, st.Events)
	}
	if q := byName[QuerySet[0].Name]; q.Total == 0 {
		t.Errorf("device query found nothing: %+v", q)
	}
	var buf bytes.Buffer
	if err := WriteReport(&buf, st, stats); err != nil || !strings.Contains(buf.String(), "exact IP 30d") {
		t.Fatalf("report: %v\n%s", err, buf.String())
	}
}
