package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRetentionDropsExpiredDays: events dated 5, 4, 2 and 0 days back are
// stored in four day shards under the 90-day retention; after a restart
// with a 3-day retention the janitor drops the two days wholly older than
// three days at start (shard directories gone, counted, searches no longer
// see them), keeps the others, and reports the oldest day held.
func TestRetentionDropsExpiredDays(t *testing.T) {
	s := startServer(t, "")
	now := time.Now().UTC()
	backs := []int{5, 4, 2, 0}
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.syslogPort))
	if err != nil {
		t.Fatal(err)
	}
	for _, back := range backs {
		ts := now.Add(-time.Duration(back) * 24 * time.Hour).Format(time.RFC3339)
		fmt.Fprintf(conn, "<13>1 %s cam-lobby-01 rtest - - - retention check %d days back\n", ts, back)
	}
	conn.Close()
	window := url.Values{"from": {now.Add(-10 * 24 * time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Hour).Format(time.RFC3339)}}
	waitSearch := func(want int) searchResult {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := s.search("app:rtest", window)
			if r.Total == want || time.Now().After(deadline) {
				return r
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if r := waitSearch(len(backs)); r.Total != len(backs) {
		t.Fatalf("before: total %d, want %d\n%s", r.Total, len(backs), s.stderr)
	}
	if got := s.metric("segwatch_retention_shards_dropped_total"); got != 0 {
		t.Fatalf("90-day retention dropped %v days", got)
	}
	s.stop()

	short := strings.Replace(testConfig, "retention_days: 90", "retention_days: 3\nallow_short_retention: true", 1)
	if err := os.WriteFile(s.config, []byte(short), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start()
	deadline := time.Now().Add(30 * time.Second)
	for s.metric("segwatch_retention_shards_dropped_total") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no drops after restart with a 3-day retention\n%s", s.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := waitSearch(2)
	if r.Total != 2 {
		t.Fatalf("after: total %d, want 2 (2 and 0 days back)", r.Total)
	}
	for _, h := range r.Hits {
		if !strings.Contains(h.Message, "2 days back") && !strings.Contains(h.Message, "0 days back") {
			t.Errorf("expired event still found: %q", h.Message)
		}
	}
	for _, back := range backs {
		day := now.Add(-time.Duration(back) * 24 * time.Hour).Format(time.DateOnly)
		_, err := os.Stat(filepath.Join(s.data, "index", day))
		if gone := errors.Is(err, os.ErrNotExist); gone != (back >= 4) {
			t.Errorf("shard %s (%d days back): stat %v", day, back, err)
		}
	}
	oldest := now.Add(-2 * 24 * time.Hour).Truncate(24 * time.Hour)
	if got := s.metric("segwatch_retention_oldest_day_timestamp_seconds"); got != float64(oldest.Unix()) {
		t.Errorf("oldest day gauge %v, want %v (%s)", got, oldest.Unix(), oldest.Format(time.DateOnly))
	}
	if got := s.metric("segwatch_data_disk_free_bytes"); got <= 0 {
		t.Errorf("disk free gauge %v", got)
	}
	if got := s.metric("segwatch_retention_shards_dropped_total"); got != 2 {
		t.Errorf("dropped %v days, want 2", got)
	}
}
