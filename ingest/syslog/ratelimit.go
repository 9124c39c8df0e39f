package syslog

import (
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per source address: burst tokens, refilled at
// burst per interval. UDP asks allow (drop when empty); TCP/TLS asks
// reserve and sleeps for the returned delay, which slows the reader and lets
// TCP flow control push back on the sender instead of losing messages.
type limiter struct {
	burst    float64
	perSec   float64
	now      func() time.Time
	mu       sync.Mutex
	buckets  map[netip.Addr]*bucket
	lastTidy time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// newLimiter returns nil (no limit) when burst is not positive.
func newLimiter(burst int, interval time.Duration, now func() time.Time) *limiter {
	if burst <= 0 {
		return nil
	}
	return &limiter{
		burst:   float64(burst),
		perSec:  float64(burst) / interval.Seconds(),
		now:     now,
		buckets: make(map[netip.Addr]*bucket),
	}
}

// take removes n tokens from src's bucket, going into debt if needed, and
// returns how long the caller must wait until the debt is paid (0 when the
// tokens were there).
func (l *limiter) take(src netip.Addr, n int) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(src)
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / l.perSec * float64(time.Second))
}

// allow takes one token from src's bucket if there is one.
func (l *limiter) allow(src netip.Addr) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refill(src)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *limiter) refill(src netip.Addr) *bucket {
	now := l.now()
	b := l.buckets[src]
	if b == nil {
		l.tidy(now)
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[src] = b
		return b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.perSec)
		b.last = now
	}
	return b
}

// tidy forgets full buckets (sources quiet long enough to have refilled)
// so that a scan from many addresses cannot grow the map for ever. It runs
// when a new source appears, at most once per burst refill time.
func (l *limiter) tidy(now time.Time) {
	full := time.Duration(l.burst / l.perSec * float64(time.Second))
	if now.Sub(l.lastTidy) < full {
		return
	}
	l.lastTidy = now
	for a, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.perSec >= l.burst {
			delete(l.buckets, a)
		}
	}
}
