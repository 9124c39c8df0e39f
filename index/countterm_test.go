package index

import (
	"context"
	"testing"
	"time"

	"github.com/segwatch/segwatch/index/match"
	"github.com/segwatch/segwatch/ingest/event"
)

// TestCountByTermExact: over ten days of realistic events, some blocks
// committed and some still in memory, the total of an IPv4 query counted
// from ip_count term frequencies equals a brute-force count over the
// events, newest and oldest first, and the fast path was taken; with the
// shard marker gone (a shard from before ip_count) totals stay exact the
// usual way.
func TestCountByTermExact(t *testing.T) {
	dir := t.TempDir()
	c := newClock(testNow.Add(-10 * 24 * time.Hour))
	s := openTestStore(t, dir, c, Config{})
	g, err := NewGenerator(GenConfig{Devices: 60, Events: 30000, Start: testNow.Add(-10 * 24 * time.Hour), End: testNow, FlowShare: 0.3, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	var all []event.Event
	batch := make([]event.Event, 500)
	for !g.Done() {
		n := 0
		for n < len(batch) && !g.Done() {
			g.Next(&batch[n])
			n++
		}
		// The clock follows the events, so blocks seal by age as in
		// production; the newest stay open in memory.
		c.set(batch[n-1].Time)
		if refused, err := s.Append(batch[:n]); err != nil || refused != 0 {
			t.Fatalf("append: %d refused, %v", refused, err)
		}
		all = append(all, batch[:n]...)
	}
	c.set(testNow)
	if err := s.Tick(testNow); err != nil {
		t.Fatal(err)
	}

	// Addresses in every default field: a device's source, flow ends, the
	// external address of the messages.
	ips := map[string]bool{"203.0.113.77": true}
	for i := 0; i < len(all) && len(ips) < 40; i += 97 {
		for _, a := range []string{all[i].SourceIP, all[i].SrcIP, all[i].DstIP} {
			if a != "" {
				ips[a] = true
			}
		}
	}
	// to lies past the end of today, so that oldest-first counts today's
	// shard, whose newest blocks are still open in memory, from ip_count.
	from, to := testNow.Add(-11*24*time.Hour), testNow.Truncate(24*time.Hour).Add(25*time.Hour)
	check := func(s *Store) {
		t.Helper()
		for ip := range ips {
			q, err := match.Compile(ip)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for i := range all {
				if q.Match(&all[i]) {
					want++
				}
			}
			for _, order := range []string{OrderNewest, OrderOldest} {
				res, err := s.Search(context.Background(), Request{Query: ip, From: from, To: to, Limit: 5, Order: order})
				if err != nil {
					t.Fatal(err)
				}
				if res.Total != want {
					t.Errorf("%s %s: total %d, brute force %d", ip, order, res.Total, want)
				}
				for _, h := range res.Hits {
					if !q.Match(&h.Event) {
						t.Errorf("%s: hit %s does not match", ip, h.Event.ID)
					}
				}
			}
		}
	}
	check(s)
	if n := s.termCounted.Get(); n == 0 {
		t.Fatal("no shard was counted from term frequencies")
	}
	t.Logf("%d addresses; %d shard counts from ip_count", len(ips), s.termCounted.Get())

	// Shards without the marker are counted by decoding, exactly.
	for _, sh := range s.shards {
		if err := sh.idx.DeleteInternal(ipCountKey); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTestStore(t, dir, c, Config{})
	defer s2.Close()
	check(s2)
	if n := s2.termCounted.Get(); n != 0 {
		t.Fatalf("%d shards without the marker were counted from term frequencies", n)
	}
}
