package syslog

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

// readUDP reads datagrams (one message each) until the socket is closed.
// Events are batched for up to batchMax messages or udpFlushEvery, and
// offered to the sink without waiting: a datagram receiver cannot push back,
// so what does not fit is counted as dropped.
func (r *Receiver) readUDP() {
	for !r.readUDPUntilPanic() {
	}
}

// readUDPUntilPanic is readUDP's loop; it reports false after recovering
// from a panic (a bug, never a datagram's fault), and readUDP starts it
// again, so one bad datagram cannot stop the UDP input.
func (r *Receiver) readUDPUntilPanic() (done bool) {
	// One byte more than the limit tells a cut datagram from one that fits.
	buf := make([]byte, r.cfg.MaxMessageBytes+1)
	p := NewParser(r.popts)
	batch := make([]event.Event, 0, batchMax)
	var (
		lastSrc     netip.Addr
		lastSrcText string
	)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if !r.sink.TryPut(handOver(batch)) {
			r.m.droppedQueueFull.Add(len(batch))
			r.warnQueueFull(len(batch))
		}
		clear(batch)
		batch = batch[:0]
		r.udpBatchDone()
	}
	defer func() {
		if p := recover(); p != nil {
			r.m.panics.Inc()
			r.m.droppedPanic.Add(len(batch))
			r.log.Error("syslog udp reader panicked", "panic", p, "events_lost", len(batch), "stack", string(debug.Stack()))
			if len(batch) > 0 {
				r.udpBatchDone()
			}
			done = false
		}
	}()
	for {
		n, ap, err := r.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			flush()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if errors.Is(err, net.ErrClosed) || r.stopping.Load() {
				return true
			}
			r.log.Debug("syslog udp read", "err", err)
			continue
		}
		r.m.receivedUDP.Inc()
		src := ap.Addr().Unmap()
		if !r.limit.allow(src) {
			r.m.droppedRateLimited.Inc()
			continue
		}
		if src != lastSrc || lastSrcText == "" {
			lastSrc, lastSrcText = src, src.String()
		}
		truncated := n > r.cfg.MaxMessageBytes
		ev := p.parse(buf[:min(n, r.cfg.MaxMessageBytes)], r.now(), truncated)
		r.enrich(&ev, src, lastSrcText)
		r.count(&ev)
		batch = append(batch, ev)
		if len(batch) == 1 {
			r.udpBatchStarted()
		}
		if len(batch) >= batchMax {
			flush()
		}
	}
}

// The readers share one socket, and a read deadline on it wakes them all.
// It is armed when the first reader starts a batch and cleared when the
// last pending batch is flushed; a reader that wakes with a timeout flushes
// its batch, so no partial batch waits longer than udpFlushEvery (plus the
// parse time of the datagram in hand).
func (r *Receiver) udpBatchStarted() {
	r.udpMu.Lock()
	defer r.udpMu.Unlock()
	if r.udpPending++; r.udpPending == 1 {
		r.udp.SetReadDeadline(time.Now().Add(udpFlushEvery))
	}
}

func (r *Receiver) udpBatchDone() {
	r.udpMu.Lock()
	defer r.udpMu.Unlock()
	if r.udpPending--; r.udpPending == 0 {
		r.udp.SetReadDeadline(time.Time{})
	}
}

// warnQueueFull logs UDP drops at most once per second; the counter has
// the exact figure.
func (r *Receiver) warnQueueFull(n int) {
	now := time.Now().UnixNano()
	last := r.lastDropLog.Load()
	if now-last < int64(time.Second) || !r.lastDropLog.CompareAndSwap(last, now) {
		return
	}
	r.log.Warn("syslog udp: queue full, events dropped", "events", n, "reason", ReasonQueueFull)
}
