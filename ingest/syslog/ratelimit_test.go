package syslog

import (
	"net/netip"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := testNow
	l := newLimiter(10, 5*time.Second, func() time.Time { return now })
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	for i := range 10 {
		if !l.allow(a) {
			t.Fatalf("message %d within the burst refused", i)
		}
	}
	if l.allow(a) {
		t.Fatal("11th message of a burst of 10 allowed")
	}
	if !l.allow(b) {
		t.Fatal("another source is limited by the first")
	}
	now = now.Add(time.Second) // 2 tokens back
	first, second, third := l.allow(a), l.allow(a), l.allow(a)
	if !first || !second || third {
		t.Fatal("refill of 2 tokens per second not honoured")
	}
	// take goes into debt and says how long to wait for it.
	if d := l.take(a, 4); d != 2*time.Second {
		t.Fatalf("wait for 4 tokens with none left: %v, want 2s", d)
	}
	now = now.Add(2 * time.Second)
	if d := l.take(a, 1); d != 500*time.Millisecond {
		t.Fatalf("wait after the debt is paid: %v, want 0.5s", d)
	}
	// Quiet sources are forgotten when new ones show up.
	now = now.Add(time.Hour)
	l.allow(netip.MustParseAddr("10.0.0.3"))
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets kept after an hour of quiet, want 1", len(l.buckets))
	}
	off := newLimiter(-1, time.Second, time.Now)
	if !off.allow(a) || off.take(a, 1e6) != 0 {
		t.Fatal("a disabled limiter limits")
	}
}
