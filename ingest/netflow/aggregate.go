package netflow

import (
	"net/netip"
	"sync"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

// aggKey is what flows of one aggregate share. The exporter and version
// are part of it so that an aggregate has one source_ip and flow_version;
// the start window keeps flows of different minutes apart even when they
// arrive together (exporters flush long flows late).
type aggKey struct {
	exporter netip.Addr
	version  int
	src, dst netip.Addr
	dstPort  uint16
	proto    string
	window   int64 // flow start, in units of the aggregation interval
}

type aggValue struct {
	ev         event.Event
	mixedPorts bool
}

// aggregator sums flows per (exporter, src, dst, dst_port, proto, start
// window) over a processing window of the same length: when the clock
// enters a new window every aggregate is emitted. This bounds both the
// delay (at most one window plus the tick) and, with maxKeys, the memory:
// a full map is emitted early rather than grown.
type aggregator struct {
	mu      sync.Mutex
	every   time.Duration
	maxKeys int
	current time.Time // start of the processing window
	m       map[aggKey]*aggValue
}

func newAggregator(every time.Duration, maxKeys int) *aggregator {
	return &aggregator{every: every, maxKeys: maxKeys, m: make(map[aggKey]*aggValue)}
}

// add merges ev (normalized from f) and returns the aggregates to emit, if
// the window rolled over or the map is full.
func (a *aggregator) add(f *Flow, ev *event.Event, now time.Time) []event.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.rollLocked(now)
	k := aggKey{
		exporter: f.Exporter, version: f.Version, src: f.Src, dst: f.Dst,
		dstPort: f.DstPort, proto: ev.Proto, window: ev.Time.UnixNano() / int64(a.every),
	}
	v := a.m[k]
	if v == nil {
		if len(a.m) >= a.maxKeys {
			out = append(out, a.takeLocked()...)
		}
		a.m[k] = &aggValue{ev: *ev}
		return out
	}
	e := &v.ev
	e.Bytes += ev.Bytes
	e.Packets += ev.Packets
	e.Flows += ev.Flows
	if ev.Time.Before(e.Time) {
		e.Time = ev.Time
	}
	if ev.End.After(e.End) {
		e.End = ev.End
	}
	if ev.Received.After(e.Received) {
		e.Received = ev.Received
	}
	if !v.mixedPorts && e.SrcPort != ev.SrcPort {
		// The source port is not part of the key: keep it only while
		// every merged flow agrees (usually it is ephemeral and differs).
		v.mixedPorts = true
		e.SrcPort = 0
	}
	return out
}

// roll emits everything if now is in a later window than the current one.
func (a *aggregator) roll(now time.Time) []event.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rollLocked(now)
}

func (a *aggregator) rollLocked(now time.Time) []event.Event {
	w := now.Truncate(a.every)
	if w.Equal(a.current) {
		return nil
	}
	a.current = w
	return a.takeLocked()
}

// flush emits everything (shutdown).
func (a *aggregator) flush() []event.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.takeLocked()
}

func (a *aggregator) takeLocked() []event.Event {
	if len(a.m) == 0 {
		return nil
	}
	out := make([]event.Event, 0, len(a.m))
	for _, v := range a.m {
		out = append(out, v.ev)
	}
	clear(a.m)
	return out
}

func (a *aggregator) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.m)
}
