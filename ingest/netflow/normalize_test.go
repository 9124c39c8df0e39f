package netflow

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

func TestNormalize(t *testing.T) {
	inv := testInventory(t).Load()
	a := netip.MustParseAddr
	f := func(fl Flow, check func(ev event.Event) string) {
		t.Helper()
		ev := Normalize(inv, &fl, recvTime)
		if msg := check(ev); msg != "" {
			t.Errorf("%+v: %s (event %+v)", fl, msg, ev)
		}
	}
	base := Flow{Exporter: exporterA, Version: 9, Src: a("10.20.0.11"), Dst: a("10.30.0.5"), SrcPort: 40000, DstPort: 554,
		Proto: 6, Bytes: 100, Packets: 2, SamplingRate: 1, Start: recvTime.Add(-time.Minute), End: recvTime.Add(-time.Second)}
	f(base, func(ev event.Event) string {
		switch {
		case ev.Kind != event.KindFlow || ev.SourceIP != "192.0.2.1" || ev.SrcIP != "10.20.0.11" || ev.DstIP != "10.30.0.5":
			return "addresses"
		case ev.Proto != "tcp" || ev.SrcPort != 40000 || ev.DstPort != 554 || ev.Bytes != 100 || ev.Packets != 2 || ev.Flows != 1:
			return "fields"
		case !ev.Time.Equal(base.Start) || !ev.End.Equal(base.End) || !ev.Received.Equal(recvTime):
			return "times"
		case ev.SrcSegment != "cameras" || ev.DstSegment != "servers" || ev.Device != "cam-lobby-01" || ev.SrcDevice != "cam-lobby-01" || ev.DstDevice != "nvr-01":
			return "enrichment"
		case ev.Severity != event.NoSeverity || ev.Facility != event.NoSeverity || ev.FlowVersion != 9:
			return "severity/version"
		}
		return ""
	})
	// A clock more than a day off: placed at receive time.
	off := base
	off.Start, off.End = recvTime.Add(-49*24*time.Hour), recvTime.Add(-49*24*time.Hour+time.Second)
	f(off, func(ev event.Event) string {
		if !ev.Time.Equal(recvTime) || !ev.End.Equal(recvTime) {
			return "skewed clock not replaced"
		}
		return ""
	})
	// No times at all, and an end before the start.
	none := base
	none.Start, none.End = time.Time{}, time.Time{}
	f(none, func(ev event.Event) string {
		if !ev.Time.Equal(recvTime) || !ev.End.Equal(recvTime) {
			return "missing times not replaced"
		}
		return ""
	})
	back := base
	back.End = back.Start.Add(-time.Second)
	f(back, func(ev event.Event) string {
		if !ev.End.Equal(ev.Time) {
			return "end before start kept"
		}
		return ""
	})
	// Public, private-unsegmented, unknown protocol.
	ext := base
	ext.Src, ext.Dst, ext.Proto = a("192.168.7.7"), a("8.8.8.8"), 253
	f(ext, func(ev event.Event) string {
		if ev.SrcSegment != "" || ev.DstSegment != event.SegmentExternal || ev.Proto != "253" || ev.Device != "" {
			return "segments/proto"
		}
		return ""
	})
	// Without an inventory the public/private rule still applies.
	ev := Normalize(nil, &ext, recvTime)
	if ev.DstSegment != event.SegmentExternal || ev.SrcSegment != "" {
		t.Errorf("nil inventory: %q -> %q", ev.SrcSegment, ev.DstSegment)
	}
}

func TestAggregator(t *testing.T) {
	inv := testInventory(t).Load()
	a := netip.MustParseAddr
	ag := newAggregator(time.Minute, 3)
	now := time.Date(2026, 12, 1, 12, 0, 10, 0, time.UTC)
	mk := func(sport uint16, dport uint16, bytes uint64, start time.Time) (Flow, event.Event) {
		f := Flow{Exporter: exporterA, Version: 10, Src: a("10.20.0.11"), Dst: a("10.30.0.5"), SrcPort: sport, DstPort: dport,
			Proto: 6, Bytes: bytes, Packets: 1, SamplingRate: 1, Start: start, End: start.Add(time.Second)}
		return f, Normalize(inv, &f, now)
	}
	if out := ag.roll(now); out != nil {
		t.Fatalf("first roll emitted %d", len(out))
	}
	f1, e1 := mk(40000, 554, 100, now.Add(-5*time.Second))
	f2, e2 := mk(40001, 554, 50, now.Add(-8*time.Second))
	f3, e3 := mk(40000, 443, 7, now.Add(-5*time.Second))
	for _, x := range []struct {
		f Flow
		e event.Event
	}{{f1, e1}, {f2, e2}, {f3, e3}} {
		if out := ag.add(&x.f, &x.e, now); out != nil {
			t.Fatalf("emitted early: %d", len(out))
		}
	}
	if ag.len() != 2 {
		t.Fatalf("%d aggregates, want 2", ag.len())
	}
	if out := ag.roll(now.Add(40 * time.Second)); out != nil {
		t.Fatalf("same minute emitted %d", len(out))
	}
	out := ag.roll(now.Add(50 * time.Second))
	if len(out) != 2 {
		t.Fatalf("window close emitted %d, want 2", len(out))
	}
	for _, ev := range out {
		if ev.DstPort == 554 {
			if ev.Bytes != 150 || ev.Packets != 2 || ev.Flows != 2 || ev.SrcPort != 0 ||
				!ev.Time.Equal(now.Add(-8*time.Second)) || !ev.End.Equal(now.Add(-4*time.Second)) {
				t.Errorf("554 aggregate %+v", ev)
			}
		} else if ev.Bytes != 7 || ev.Flows != 1 || ev.SrcPort != 40000 {
			t.Errorf("443 aggregate %+v", ev)
		}
	}
	// Flows of different start minutes stay apart; a full map is emitted.
	later := now.Add(time.Minute)
	fa, ea := mk(1, 554, 1, later.Add(-time.Minute))
	fb, eb := mk(1, 554, 1, later)
	fc, ec := mk(1, 22, 1, later)
	fd, ed := mk(1, 23, 1, later)
	ag.add(&fa, &ea, later)
	ag.add(&fb, &eb, later)
	ag.add(&fc, &ec, later)
	if n := ag.len(); n != 3 {
		t.Fatalf("%d aggregates, want 3", n)
	}
	if out := ag.add(&fd, &ed, later); len(out) != 3 || ag.len() != 1 {
		t.Errorf("full map: emitted %d, %d left", len(out), ag.len())
	}
	if out := ag.flush(); len(out) != 1 || ag.len() != 0 {
		t.Errorf("flush: %d", len(out))
	}
}

func TestNewValidates(t *testing.T) {
	sink := &countingSink{}
	f := func(mod func(*Config), deps Deps, ok bool) {
		t.Helper()
		cfg := DefaultConfig()
		mod(&cfg)
		_, err := New(cfg, deps)
		if (err == nil) != ok {
			t.Errorf("New: err %v, want ok=%v", err, ok)
		}
	}
	good := Deps{Sink: sink}
	f(func(*Config) {}, good, true)
	f(func(*Config) {}, Deps{}, false)
	f(func(c *Config) { c.Addr = "" }, good, false)
	f(func(c *Config) { c.Aggregate = -time.Second }, good, false)
	f(func(c *Config) { c.Aggregate = time.Millisecond }, good, false)
	f(func(c *Config) { c.Aggregate = 0 }, good, true)
	f(func(c *Config) { c.TemplateTimeout = -1 }, good, false)
	f(func(c *Config) { c.MaxTemplatesPerExporter = 0 }, good, false)

	// Listen reports an address in use.
	r1, _ := New(Config{Addr: "127.0.0.1:0", MaxTemplatesPerExporter: 1, MaxExporters: 1, MaxAggregates: 1}, good)
	if err := r1.Listen(); err != nil {
		t.Fatal(err)
	}
	defer r1.conn.Close()
	r2, _ := New(Config{Addr: r1.Addr().String(), MaxTemplatesPerExporter: 1, MaxExporters: 1, MaxAggregates: 1}, good)
	if err := r2.Listen(); err == nil {
		r2.conn.Close()
		t.Error("second Listen on the same address: no error")
	}
}

type countingSink struct{ n int }

func (s *countingSink) Put(_ context.Context, evs []event.Event) error { s.n += len(evs); return nil }
func (s *countingSink) TryPut(evs []event.Event) bool                  { s.n += len(evs); return true }
