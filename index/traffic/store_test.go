package traffic

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func open(t testing.TB, dir string, now time.Time) *Store {
	t.Helper()
	s := New(filepath.Join(dir, "traffic"), Options{Now: func() time.Time { return now }})
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	return s
}

func add(t testing.TB, s *Store, at time.Time, from, to string, b, p, f uint64) {
	t.Helper()
	if err := s.Add(at, from, to, b, p, f); err != nil {
		t.Fatal(err)
	}
}

func cell(r Result, from, to string) (Cell, bool) {
	for _, c := range r.Matrix {
		if c.From == from && c.To == to {
			return c, true
		}
	}
	return Cell{}, false
}

func TestQuerySums(t *testing.T) {
	s := open(t, t.TempDir(), t0)
	add(t, s, t0.Add(30*time.Second), "cameras", "servers", 100, 2, 1)
	add(t, s, t0.Add(90*time.Second), "cameras", "servers", 50, 1, 1)
	add(t, s, t0.Add(5*time.Minute), "cameras", "external", 7, 1, 1)
	add(t, s, t0.Add(5*time.Minute), "", "servers", 3, 1, 1)
	add(t, s, t0.Add(6*time.Minute), "servers", "servers", 11, 1, 1)

	r, err := s.Query(t0, t0.Add(10*time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Step != time.Minute {
		t.Errorf("step %v, want 1m", r.Step)
	}
	want := []Cell{
		{"cameras", "external", 7, 1, 1},
		{"cameras", "servers", 150, 3, 2},
		{"servers", "servers", 11, 1, 1},
		{SegmentUnknown, "servers", 3, 1, 1},
	}
	if !reflect.DeepEqual(r.Matrix, want) {
		t.Errorf("matrix\n got %+v\nwant %+v", r.Matrix, want)
	}
	if want := []string{"cameras", "external", "servers", "unknown"}; !reflect.DeepEqual(r.Segments, want) {
		t.Errorf("segments %v, want %v", r.Segments, want)
	}
	for _, se := range r.Series {
		if len(se.Points) != 10 {
			t.Fatalf("%s: %d points, want 10", se.Segment, len(se.Points))
		}
		var sum uint64
		for _, p := range se.Points {
			sum += p.Bytes
		}
		// in + out, inside the segment once
		wantSum := map[string]uint64{"cameras": 157, "external": 7, "servers": 150 + 3 + 11, "unknown": 3}[se.Segment]
		if sum != wantSum {
			t.Errorf("%s: series sums to %d, want %d", se.Segment, sum, wantSum)
		}
		if se.Segment == "cameras" && (se.Points[0].Bytes != 100 || se.Points[1].Bytes != 50 || !se.Points[1].Time.Equal(t0.Add(time.Minute))) {
			t.Errorf("cameras points %v", se.Points[:2])
		}
	}

	// A range that cuts the first minute off excludes it.
	r, err = s.Query(t0.Add(time.Minute), t0.Add(10*time.Minute), 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := cell(r, "cameras", "servers"); c.Bytes != 50 {
		t.Errorf("from 10:01: cameras->servers %d bytes, want 50", c.Bytes)
	}
	if n := len(r.Series[0].Points); n != 2 || !r.Series[0].Points[0].Time.Equal(t0) {
		t.Errorf("5m steps from 10:01: %d points starting %v, want 2 from 10:00", n, r.Series[0].Points[0].Time)
	}
}

func TestQueryHourlyAndEdges(t *testing.T) {
	s := open(t, t.TempDir(), t0)
	// One flow every 7 minutes over three days.
	var total uint64
	start := t0.Add(-72 * time.Hour)
	for at := start; at.Before(t0); at = at.Add(7 * time.Minute) {
		add(t, s, at, "office", "cameras", 1000, 1, 1)
		total += 1000
	}
	r, err := s.Query(start, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Step != time.Hour {
		t.Errorf("3 days: step %v, want 1h", r.Step)
	}
	if c, _ := cell(r, "office", "cameras"); c.Bytes != total {
		t.Errorf("3 days: %d bytes, want %d", c.Bytes, total)
	}
	// Unaligned edges: minute cells at both ends, hours in between.
	from, to := start.Add(13*time.Minute), t0.Add(-29*time.Minute)
	var want uint64
	for at := start; at.Before(t0); at = at.Add(7 * time.Minute) {
		if !at.Before(from) && at.Before(to) {
			want += 1000
		}
	}
	r, err = s.Query(from, to, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := cell(r, "office", "cameras"); c.Bytes != want {
		t.Errorf("unaligned: %d bytes, want %d", c.Bytes, want)
	}
}

func TestPersistAndReload(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, t0)
	old := t0.Add(-10 * 24 * time.Hour).Add(17 * time.Minute)
	add(t, s, old, "cameras", "servers", 500, 5, 1)
	add(t, s, t0.Add(time.Minute), "cameras", "servers", 20, 1, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(t0, "a", "b", 1, 1, 1); err == nil {
		t.Error("Add after Close: no error")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "traffic", "*"+fileSuffix))
	if len(files) != 2 {
		t.Fatalf("files %v, want 2 days", files)
	}

	s = open(t, dir, t0)
	defer s.Close()
	// Minute resolution on a day only on disk.
	r, err := s.Query(old.Truncate(time.Minute), old.Add(time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := cell(r, "cameras", "servers"); !ok || c.Bytes != 500 || c.Packets != 5 {
		t.Errorf("reloaded old minute: %+v", r.Matrix)
	}
	r, err = s.Query(old.Add(-24*time.Hour), t0.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := cell(r, "cameras", "servers"); c.Bytes != 520 || c.Flows != 2 {
		t.Errorf("reloaded range: %+v", r.Matrix)
	}
	// Adding to a day whose minutes are only on disk keeps them.
	add(t, s, old, "cameras", "servers", 1, 1, 1)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	r, _ = s.Query(old.Truncate(time.Minute), old.Add(time.Minute), time.Minute)
	if c, _ := cell(r, "cameras", "servers"); c.Bytes != 501 {
		t.Errorf("old day after add+flush: %d bytes, want 501", c.Bytes)
	}
}

func TestDropBefore(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, t0)
	for i := range 5 {
		add(t, s, t0.Add(-time.Duration(i)*24*time.Hour), "x", "y", 1, 1, 1)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	n, err := s.DropBefore(t0.Add(-2 * 24 * time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("DropBefore: %d, %v; want 2", n, err)
	}
	if days := s.Days(); len(days) != 3 || !days[0].Equal(t0.Truncate(24*time.Hour).Add(-48*time.Hour)) {
		t.Errorf("days left %v", days)
	}
	files, _ := os.ReadDir(filepath.Join(dir, "traffic"))
	if len(files) != 3 {
		t.Errorf("%d files left, want 3", len(files))
	}
	r, _ := s.Query(t0.Add(-5*24*time.Hour), t0.Add(time.Hour), 0)
	if c, _ := cell(r, "x", "y"); c.Flows != 3 {
		t.Errorf("after drop: %d flows, want 3", c.Flows)
	}
}

func TestLeftoversAndCorruptFile(t *testing.T) {
	dir := t.TempDir()
	tdir := filepath.Join(dir, "traffic")
	if err := os.MkdirAll(tdir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"2026-12-01.traffic.tmp", "2026-11-01.traffic.deleting"} {
		if err := os.WriteFile(filepath.Join(tdir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(tdir, "2026-12-03.traffic"), []byte(fileMagic+"garbage!"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir, t0)
	defer s.Close()
	if _, err := os.Stat(filepath.Join(tdir, "2026-12-01.traffic.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leftover tmp not removed: %v", err)
	}
	add(t, s, t0, "a", "b", 9, 1, 1)
	if _, err := os.Stat(filepath.Join(tdir, "2026-12-03.traffic.corrupt")); err != nil {
		t.Errorf("damaged file not set aside: %v", err)
	}
	r, err := s.Query(t0, t0.Add(time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := cell(r, "a", "b"); c.Bytes != 9 {
		t.Errorf("after damaged file: %+v", r.Matrix)
	}
}

func TestQueryErrorsAndSteps(t *testing.T) {
	s := open(t, t.TempDir(), t0)
	for _, c := range []struct {
		from, to time.Time
		step     time.Duration
	}{
		{t0, t0, 0},
		{t0, t0.Add(-time.Hour), 0},
		{t0, t0.Add(time.Hour), 30 * time.Second},
		{t0, t0.Add(time.Hour), 90 * time.Second},
		{t0.Add(-90 * 24 * time.Hour), t0, time.Minute},
	} {
		if _, err := s.Query(c.from, c.to, c.step); !errors.Is(err, ErrBadRange) {
			t.Errorf("Query(%v, %v, %v): %v, want ErrBadRange", c.from, c.to, c.step, err)
		}
	}
	f := func(span, want time.Duration) {
		t.Helper()
		if got := DefaultStep(span); got != want {
			t.Errorf("DefaultStep(%v) = %v, want %v", span, got, want)
		}
	}
	f(time.Hour, time.Minute)
	f(6*time.Hour, time.Minute)
	f(7*time.Hour, 5*time.Minute)
	f(3*24*time.Hour, time.Hour)
	f(90*24*time.Hour, 24*time.Hour)
	r, err := s.Query(t0, t0.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	if string(b) != `{"segments":[],"matrix":[],"series":[]}` {
		t.Errorf("empty result JSON %s", b)
	}
}

func TestResultJSON(t *testing.T) {
	s := open(t, t.TempDir(), t0)
	add(t, s, t0, "cameras", "servers", 42, 1, 1)
	r, err := s.Query(t0, t0.Add(2*time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"segments":["cameras","servers"],"matrix":[{"from":"cameras","to":"servers","bytes":42,"packets":1,"flows":1}],` +
		`"series":[{"segment":"cameras","points":[["2026-12-03T10:00:00Z",42],["2026-12-03T10:01:00Z",0]]},` +
		`{"segment":"servers","points":[["2026-12-03T10:00:00Z",42],["2026-12-03T10:01:00Z",0]]}]}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Series[0].Points[0].Time.Equal(t0) || back.Series[0].Points[0].Bytes != 42 {
		t.Errorf("round trip %+v", back.Series[0].Points[0])
	}
}

func TestMinuteEviction(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, t0)
	defer s.Close()
	old := t0.Add(-5 * 24 * time.Hour)
	add(t, s, old, "a", "b", 3, 1, 1)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	evicted := s.days[dayNum(old)].mins == nil
	s.mu.Unlock()
	if !evicted {
		t.Error("minute cells of a 5-day-old day kept in memory after Flush")
	}
	r, err := s.Query(old, old.Add(time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := cell(r, "a", "b"); c.Bytes != 3 {
		t.Errorf("evicted minutes read back: %+v", r.Matrix)
	}
	if !strings.HasSuffix(s.path(dayNum(old)), "2026-11-28.traffic") {
		t.Errorf("path %s", s.path(dayNum(old)))
	}
}

func TestQueryAcrossMidnight(t *testing.T) {
	dir := t.TempDir()
	midnight := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	s := open(t, dir, midnight.Add(time.Hour))
	for m := -10; m < 10; m++ {
		add(t, s, midnight.Add(time.Duration(m)*time.Minute+30*time.Second), "a", "b", uint64(100+m), 1, 1)
	}
	// Through a reopen, so the day before midnight comes from its file.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, midnight.Add(5*24*time.Hour))
	defer s.Close()
	r, err := s.Query(midnight.Add(-5*time.Minute), midnight.Add(5*time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	var want uint64
	for m := -5; m < 5; m++ {
		want += uint64(100 + m)
	}
	if c, _ := cell(r, "a", "b"); c.Bytes != want || c.Flows != 10 {
		t.Errorf("across midnight: %+v, want %d bytes", c, want)
	}
	if pts := r.Series[0].Points; len(pts) != 10 || pts[5].Bytes != 100 || !pts[5].Time.Equal(midnight) {
		t.Errorf("points %v", pts)
	}
}

func TestNotOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "traffic")
	s := New(dir)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New touched the disk: %v", err)
	}
	if err := s.Add(t0, "a", "b", 1, 1, 1); !errors.Is(err, errNotOpen) {
		t.Errorf("Add before Open: %v", err)
	}
	if _, err := s.Query(t0, t0.Add(time.Hour), 0); !errors.Is(err, errNotOpen) {
		t.Errorf("Query before Open: %v", err)
	}
}

// TestHourCellNotPastRangeEnd: a range ending at hh:59 must not take the
// whole hour's cell.
func TestHourCellNotPastRangeEnd(t *testing.T) {
	s := open(t, t.TempDir(), t0)
	add(t, s, t0.Add(59*time.Minute+30*time.Second), "a", "b", 5, 1, 1)
	add(t, s, t0.Add(58*time.Minute), "a", "b", 3, 1, 1)
	r, err := s.Query(t0, t0.Add(59*time.Minute), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := cell(r, "a", "b"); c.Bytes != 3 {
		t.Errorf("[10:00, 10:59): %d bytes, want 3", c.Bytes)
	}
}
