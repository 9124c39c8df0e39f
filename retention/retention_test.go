package retention

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/segwatch/segwatch/index"
	"github.com/segwatch/segwatch/ingest/event"
)

var now = time.Date(2026, 12, 3, 10, 30, 0, 0, time.UTC)

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestExpired(t *testing.T) {
	f := func(days []string, retention time.Duration, want []string) {
		t.Helper()
		var in []time.Time
		for _, d := range days {
			in = append(in, date(d))
		}
		var got []string
		for _, d := range Expired(in, retention, now) {
			got = append(got, d.Format(time.DateOnly))
		}
		if !slices.Equal(got, want) {
			t.Errorf("Expired(%v, %v) = %v, want %v", days, retention, got, want)
		}
	}
	r90 := 90 * day
	// now-90d is 2026-09-04 10:30: that day still holds events inside the
	// retention and is kept whole; the day before it has left.
	f([]string{"2026-09-03", "2026-09-04", "2026-12-03"}, r90, []string{"2026-09-03"})
	f([]string{"2026-12-03", "2026-01-01", "2026-09-02", "2026-09-05"}, r90, []string{"2026-01-01", "2026-09-02"})
	f(nil, r90, nil)
	f([]string{"2026-12-02", "2026-12-03"}, day, []string{})
	f([]string{"2026-12-01", "2026-12-02", "2026-12-03"}, day, []string{"2026-12-01"})
	// A future day (a device clock ahead) is never expired.
	f([]string{"2026-12-04"}, day, nil)
	// A zero or negative retention expires nothing.
	f([]string{"2000-01-01"}, 0, nil)
	f([]string{"2000-01-01"}, -day, nil)
}

func TestCutoff(t *testing.T) {
	if got, want := Cutoff(90*day, now), date("2026-09-04"); !got.Equal(want) {
		t.Fatalf("Cutoff = %v, want %v", got, want)
	}
	// Zones do not move the cut: days are UTC.
	berlin := time.FixedZone("CET", 3600)
	if got, want := Cutoff(day, time.Date(2026, 12, 3, 0, 30, 0, 0, berlin)), date("2026-12-01"); !got.Equal(want) {
		t.Fatalf("Cutoff in +01:00 = %v, want %v", got, want)
	}
}

type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }

func logEvent(t time.Time, msg string) event.Event {
	return event.Event{Time: t, Received: t, Kind: event.KindLog, SourceIP: "10.20.0.11", Host: "cam-lobby-01", App: "retention", Message: msg}
}

// TestSweepRealIndex: a real index on disk with five days; a sweep with a
// three-day retention at 10:30 drops the one day wholly older than three
// days (directory gone, search empty there), keeps the day holding
// now-3d whole and the rest intact, and a second sweep is a no-op.
func TestSweepRealIndex(t *testing.T) {
	dir := t.TempDir()
	c := newClock(now)
	set := metrics.NewSet()
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))
	st, err := index.Open(context.Background(), index.Config{Dir: filepath.Join(dir, "index"), Retention: 30 * day},
		index.Deps{Logger: log, Metrics: set, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var evs []event.Event
	for back := range 5 {
		evs = append(evs, logEvent(now.Add(-time.Duration(back)*day), "day event"))
	}
	if refused, err := st.Append(evs); err != nil || refused != 0 {
		t.Fatalf("append: refused %d, %v", refused, err)
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(st.Days()) != 5 {
		t.Fatalf("%d days before the sweep, want 5", len(st.Days()))
	}
	j, err := New(Config{Retention: 3 * day}, Deps{Index: st, Logger: log, Metrics: set, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	n, err := j.Sweep()
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d dropped, %v; want 1", n, err)
	}
	var kept []string
	for _, d := range st.Days() {
		kept = append(kept, d.Format(time.DateOnly))
	}
	if want := []string{"2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03"}; !slices.Equal(kept, want) {
		t.Fatalf("days after the sweep %v, want %v", kept, want)
	}
	for _, gone := range []string{"2026-11-29"} {
		if _, err := os.Stat(filepath.Join(dir, "index", gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("shard dir %s: %v, want gone", gone, err)
		}
	}
	res, err := st.Search(context.Background(), index.Request{Query: "app:retention", From: now.Add(-10 * day), To: now.Add(time.Hour)})
	if err != nil || res.Total != 4 {
		t.Fatalf("search after the sweep: total %d, %v; want 4", res.Total, err)
	}
	if got := counter(t, set, "segwatch_retention_shards_dropped_total"); got != 1 {
		t.Fatalf("dropped metric %v, want 1", got)
	}
	if got, want := counter(t, set, "segwatch_retention_oldest_day_timestamp_seconds"), float64(date("2026-11-30").Unix()); got != want {
		t.Fatalf("oldest day gauge %v, want %v", got, want)
	}
	if n, err := j.Sweep(); n != 0 || err != nil {
		t.Fatalf("second sweep: %d, %v", n, err)
	}
	// A day later the oldest kept day goes too.
	c.set(now.Add(day))
	if n, err := j.Sweep(); n != 1 || err != nil {
		t.Fatalf("next day's sweep: %d, %v; want 1", n, err)
	}
}

// TestRunSweepsAtStart: Run drops what expired while the server was down
// before the first interval has passed, and returns nil when stopped.
func TestRunSweepsAtStart(t *testing.T) {
	fs := &fakeStore{days: []time.Time{date("2026-01-01"), date("2026-12-03")}}
	set := metrics.NewSet()
	j, err := New(Config{Retention: 90 * day, Interval: time.Hour},
		Deps{Index: fs, Logger: slog.New(slog.DiscardHandler), Metrics: set, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for counter(t, set, "segwatch_retention_shards_dropped_total") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no sweep at start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestSweepGoesOnPastAFailure: one day that cannot be dropped is reported
// and counted, and the other expired days still go; traffic days too.
func TestSweepGoesOnPastAFailure(t *testing.T) {
	fs := &fakeStore{days: []time.Time{date("2026-01-01"), date("2026-01-02"), date("2026-01-03"), date("2026-12-03")},
		fail: date("2026-01-02")}
	tr := &fakeTraffic{}
	var logs bytes.Buffer
	set := metrics.NewSet()
	j, err := New(Config{Retention: 90 * day},
		Deps{Index: fs, Traffic: tr, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: set, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	n, err := j.Sweep()
	if n != 2 || err == nil || !strings.Contains(err.Error(), "2026-01-02") {
		t.Fatalf("sweep: %d, %v; want 2 and an error naming 2026-01-02", n, err)
	}
	if len(fs.Days()) != 2 {
		t.Fatalf("days left %v, want the failing one and today", fs.days)
	}
	if !tr.before.Equal(date("2026-09-04")) {
		t.Fatalf("traffic dropped before %v, want 2026-09-04", tr.before)
	}
	j.sweepLogged()
	if counter(t, set, "segwatch_retention_errors_total") != 1 || !strings.Contains(logs.String(), "retention sweep") {
		t.Fatalf("a failed sweep is neither counted nor logged:\n%s", logs.String())
	}
}

func TestDiskGuard(t *testing.T) {
	var logs bytes.Buffer
	set := metrics.NewSet()
	j, err := New(Config{Retention: 90 * day, DataDir: t.TempDir(), LowFreeBytes: 100, LowFreeRatio: 0.1},
		Deps{Index: &fakeStore{}, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	// The real file system of a temp dir has a size and some free space.
	free, size, err := diskSpace(j.cfg.DataDir)
	j.checkDisk()
	if err != nil || size == 0 || counter(t, set, "segwatch_data_disk_free_bytes") == 0 {
		t.Fatalf("disk space of a temp dir: free %d size %d, %v; gauge %v", free, size, err, counter(t, set, "segwatch_data_disk_free_bytes"))
	}
	for _, c := range []struct {
		free, size uint64
		low        bool
		log        string
	}{
		{5000, 10000, false, ""},
		{999, 10000, true, "data disk low"},   // under 10%
		{500, 10000, true, ""},                // still low: no second line
		{5000, 10000, false, "no longer low"}, // recovered
		{99, 0, true, "data disk low"},        // under the byte floor
	} {
		logs.Reset()
		j.setDisk(c.free, c.size)
		gauge := counter(t, set, "segwatch_data_disk_low")
		if j.diskLow() != c.low || (gauge == 1) != c.low {
			t.Errorf("free %d of %d: low %v (gauge %v), want %v", c.free, c.size, j.diskLow(), gauge, c.low)
		}
		if c.log == "" && logs.Len() > 0 || c.log != "" && !strings.Contains(logs.String(), c.log) {
			t.Errorf("free %d of %d: logged %q, want %q", c.free, c.size, logs.String(), c.log)
		}
	}
}

func TestNewValidates(t *testing.T) {
	ok := Deps{Index: &fakeStore{}, Logger: slog.New(slog.DiscardHandler), Metrics: metrics.NewSet()}
	for name, c := range map[string]struct {
		cfg  Config
		deps Deps
	}{
		"no retention": {Config{}, ok},
		"bad ratio":    {Config{Retention: day, LowFreeRatio: 1}, ok},
		"no index":     {Config{Retention: day}, Deps{Logger: ok.Logger, Metrics: ok.Metrics}},
	} {
		if _, err := New(c.cfg, c.deps); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// counter reads one sample of set by its full name.
func counter(t *testing.T, set *metrics.Set, name string) float64 {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// fakeStore is safe for concurrent use, as DayStore must be: metrics are
// scraped while the janitor drops.
type fakeStore struct {
	mu   sync.Mutex
	days []time.Time
	fail time.Time
}

func (f *fakeStore) Days() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.days)
}

func (f *fakeStore) DropDay(d time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d.Equal(f.fail) {
		return errors.New("disk says no")
	}
	f.days = slices.DeleteFunc(f.days, d.Equal)
	return nil
}

type fakeTraffic struct{ before time.Time }

func (f *fakeTraffic) DropBefore(t time.Time) (int, error) { f.before = t; return 3, nil }
