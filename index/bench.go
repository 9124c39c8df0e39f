package index

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/segwatch/segwatch/ingest/event"
)

// The `segwatch bench` data set and query set (issue 4): a realistic month
// of IoT events written straight into a store, and the searches an analyst
// runs against it, each timed n times.

// DataSetConfig describes a bench data set. Zero fields take the defaults
// of the target: 30 days, 10M events, 2000 devices.
type DataSetConfig struct {
	Days    int // span of event time, ending at End (default 30)
	Events  int // default 10_000_000; 1_000_000 makes a quick smoke run
	Devices int // default 2000
	Seed    uint64
	// FlowShare is the fraction of flow events (default 0.2).
	FlowShare float64
	// End is the end of the event time span (default: now, to the second).
	End time.Time
	// FlushAge is the store's FlushAge while loading (default: the
	// store's). The store's clock follows event time, so blocks are sealed
	// by age as in production.
	FlushAge time.Duration
}

func (c *DataSetConfig) defaults() {
	if c.Days == 0 {
		c.Days = 30
	}
	if c.Events == 0 {
		c.Events = 10_000_000
	}
	if c.Devices == 0 {
		c.Devices = 2000
	}
	if c.FlowShare == 0 {
		c.FlowShare = 0.2
	}
	if c.End.IsZero() {
		c.End = time.Now().UTC().Truncate(time.Second)
	}
}

// DataSetStats describes a loaded data set.
type DataSetStats struct {
	Events     int           // events stored
	Days       int           // day shards
	Load       time.Duration // wall time of loading (generation included)
	DiskBytes  int64         // raw frames and Bleve indexes, after Close
	Frames     int           // blocks written
	Start, End time.Time     // event time span
}

// BytesPerEvent is the disk cost of one event.
func (s DataSetStats) BytesPerEvent() float64 {
	return float64(s.DiskBytes) / float64(max(s.Events, 1))
}

// EventsPerFrame is the average block fill.
func (s DataSetStats) EventsPerFrame() float64 {
	return float64(s.Events) / float64(max(s.Frames, 1))
}

// LoadDataSet generates a data set (see Generator) and writes it into a new
// store in dir (an index directory, DATA/index), which it closes before
// returning. The store's clock follows the events, so blocks seal by age
// and size as they would in production. A non-empty dir is refused: the
// data set would mix with what is there.
func LoadDataSet(ctx context.Context, dir string, cfg DataSetConfig) (DataSetStats, error) {
	cfg.defaults()
	if cfg.Days < 1 || cfg.Events < 1 || cfg.Devices < 1 {
		return DataSetStats{}, errors.New("bench data set: days, events and devices must be positive")
	}
	if ents, err := filepathEntries(dir); err != nil {
		return DataSetStats{}, fmt.Errorf("bench data set: %w", err)
	} else if ents > 0 {
		return DataSetStats{}, fmt.Errorf("bench data set: %s is not empty", dir)
	}
	st := DataSetStats{End: cfg.End, Start: cfg.End.Add(-time.Duration(cfg.Days) * 24 * time.Hour)}
	var clock atomic.Int64
	clock.Store(st.Start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	s, err := Open(ctx, Config{Dir: dir, Retention: time.Duration(cfg.Days+2) * 24 * time.Hour, FlushAge: cfg.FlushAge},
		Deps{Metrics: metrics.NewSet(), Now: now})
	if err != nil {
		return st, fmt.Errorf("bench data set: %w", err)
	}
	g, err := NewGenerator(GenConfig{Devices: cfg.Devices, Events: cfg.Events, Start: st.Start, End: st.End, FlowShare: cfg.FlowShare, Seed: cfg.Seed})
	if err != nil {
		s.Close()
		return st, fmt.Errorf("bench data set: %w", err)
	}
	begin := time.Now()
	// 1000 events span ~4 minutes of event time at the default rate: the
	// clock moves per batch, and the store ticks (seals by age) once per
	// batch, not per simulated second.
	batch := make([]event.Event, 1000)
	for !g.Done() {
		if err := ctx.Err(); err != nil {
			s.Close()
			return st, err
		}
		n := 0
		for n < len(batch) && !g.Done() {
			g.Next(&batch[n])
			n++
		}
		clock.Store(batch[n-1].Time.UnixNano())
		refused, err := s.Append(batch[:n])
		st.Events += n - refused
		if err != nil {
			s.Close()
			return st, fmt.Errorf("bench data set: %w", err)
		}
	}
	clock.Store(st.End.UnixNano())
	if err := s.Flush(); err != nil {
		s.Close()
		return st, fmt.Errorf("bench data set: %w", err)
	}
	st.Frames = s.countFrames()
	st.Days = len(s.Days())
	if err := s.Close(); err != nil {
		return st, fmt.Errorf("bench data set: %w", err)
	}
	st.Load = time.Since(begin)
	st.DiskBytes, err = diskUsage(dir)
	if err != nil {
		return st, fmt.Errorf("bench data set: %w", err)
	}
	return st, nil
}

// countFrames counts the frames of every shard (reads only headers).
func (s *Store) countFrames() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, sh := range s.shards {
		_ = sh.raw.scan(0, sh.raw.size.Load(), false, func(int64, frameHeader, []byte) bool { n++; return true })
	}
	return n
}

func filepathEntries(dir string) (int, error) {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if p != dir {
			n++
		}
		return nil
	})
	return n, err
}

func diskUsage(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	return n, err
}

// BenchQuery is one search of the query set. Its range ends at the newest
// event of the store.
type BenchQuery struct {
	Name   string
	Query  string
	Range  time.Duration
	Order  string
	Facets []string
}

// QuerySet is the query set (the first five, with their targets
// for 10M events over 30 days on the 2-core box) and a few more searches
// an analyst runs.
var QuerySet = []BenchQuery{
	{Name: "device newest 100 (≤30ms)", Query: "device:cam-lobby-01", Range: 30 * 24 * time.Hour},
	{Name: "phrase+filter 24h (≤50ms)", Query: `"login failed" segment:cameras`, Range: 24 * time.Hour},
	{Name: "exact IP 30d (≤20ms)", Query: "203.0.113.77", Range: 30 * 24 * time.Hour},
	{Name: "facets 24h (≤100ms)", Range: 24 * time.Hour, Facets: []string{"host", "app", "severity", "segment"}},
	{Name: "everything newest 100 (≤50ms)", Range: 30 * 24 * time.Hour},
	{Name: "errors 24h", Query: "severity:<=3", Range: 24 * time.Hour},
	{Name: "ssh failures 7d", Query: `app:sshd "failed password"`, Range: 7 * 24 * time.Hour},
	{Name: "flows to ssh 7d", Query: "kind:flow dst_port:22 dst_segment:external", Range: 7 * 24 * time.Hour},
	{Name: "host oldest 7d", Query: "host:sens-lobby-01", Range: 7 * 24 * time.Hour, Order: OrderOldest},
	{Name: "wildcard 24h", Query: "message:firmw*", Range: 24 * time.Hour},
	{Name: "filtered facets 7d", Query: "app:sshd", Range: 7 * 24 * time.Hour, Facets: []string{"host", "severity"}},
	{Name: "facets 30d", Range: 30 * 24 * time.Hour, Facets: []string{"segment", "app"}},
}

// QueryStat is the timing of one BenchQuery run n times.
type QueryStat struct {
	Name  string
	Query string
	Range time.Duration
	// First is the first run, which may build caches (facet rollups) and
	// is not part of P50 and P99.
	First    time.Duration
	P50, P99 time.Duration
	Hits     int // hits returned (at most the limit)
	Total    int // matches in the range
}

// RunQuerySet runs QuerySet against s: see RunQueries.
func RunQuerySet(ctx context.Context, s *Store, n int) ([]QueryStat, error) {
	return RunQueries(ctx, s, QuerySet, n)
}

// RunQueries runs every query of qs once untimed and then n times, and
// returns their timings. Ranges end just after the newest event of s.
func RunQueries(ctx context.Context, s *Store, qs []BenchQuery, n int) ([]QueryStat, error) {
	n = max(n, 1)
	end, err := s.newest(ctx)
	if err != nil {
		return nil, fmt.Errorf("query set: %w", err)
	}
	out := make([]QueryStat, 0, len(qs))
	for _, bq := range qs {
		req := Request{Query: bq.Query, From: end.Add(-bq.Range), To: end, Order: bq.Order, Facets: bq.Facets}
		st := QueryStat{Name: bq.Name, Query: bq.Query, Range: bq.Range}
		times := make([]time.Duration, 0, n)
		for i := -1; i < n; i++ {
			t0 := time.Now()
			res, err := s.Search(ctx, req)
			took := time.Since(t0)
			if err != nil {
				return out, fmt.Errorf("query set %q: %w", bq.Name, err)
			}
			if i < 0 {
				st.First = took
			} else {
				times = append(times, took)
			}
			st.Hits, st.Total = len(res.Hits), res.Total
		}
		slices.Sort(times)
		st.P50 = times[len(times)/2]
		st.P99 = times[min(len(times)-1, len(times)*99/100)]
		out = append(out, st)
	}
	return out, nil
}

// newest returns just after the time of the newest event of s (the zero
// time's next nanosecond if s is empty).
func (s *Store) newest(ctx context.Context) (time.Time, error) {
	days := s.Days()
	if len(days) == 0 {
		return time.Unix(0, 1).UTC(), nil
	}
	for i := len(days) - 1; i >= 0; i-- {
		res, err := s.Search(ctx, Request{From: days[i], To: days[i].Add(24 * time.Hour), Limit: 1})
		if err != nil {
			return time.Time{}, err
		}
		if len(res.Hits) > 0 {
			return res.Hits[0].Event.Time.Add(time.Nanosecond), nil
		}
	}
	return days[len(days)-1].Add(24 * time.Hour), nil
}

// WriteReport writes ds (if it has events) and the query timings as text
// tables, the output of `segwatch bench`.
func WriteReport(w io.Writer, ds DataSetStats, qs []QueryStat) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if ds.Events > 0 {
		fmt.Fprintf(tw, "events\tdays\tload\tevents/s\tdisk MiB\tB/event\tevents/frame\t\n")
		fmt.Fprintf(tw, "%d\t%d\t%v\t%.0f\t%.1f\t%.1f\t%.1f\t\n", ds.Events, ds.Days, ds.Load.Round(time.Millisecond),
			float64(ds.Events)/ds.Load.Seconds(), float64(ds.DiskBytes)/(1<<20), ds.BytesPerEvent(), ds.EventsPerFrame())
		fmt.Fprintln(tw)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	fmt.Fprintf(tw, "query\trange\tfirst ms\tp50 ms\tp99 ms\thits\ttotal\t\n")
	for _, q := range qs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", q.Name, rangeLabel(q.Range), ms(q.First), ms(q.P50), ms(q.P99), q.Hits, q.Total)
	}
	return tw.Flush()
}

func rangeLabel(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d >= 48*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}
