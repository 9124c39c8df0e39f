// Package queue is the bounded hand-off between the receivers and the index
// writer. It holds batches of events and bounds the number of events, so a
// stalled writer cannot grow memory without bound: stream receivers (TCP,
// TLS) block in Put (backpressure), datagram receivers use TryPut and count
// what does not fit.
package queue

import (
	"context"
	"sync"

	"github.com/segwatch/segwatch/ingest/event"
)

// Queue is a bounded FIFO of event batches. The zero value is not usable;
// use New.
type Queue struct {
	mu      sync.Mutex
	notFull *sync.Cond
	items   [][]event.Event
	n       int // events queued
	max     int
	closed  bool
	ready   chan struct{} // non-blocking signal to the consumer
}

// New returns a queue holding at most max events.
func New(max int) *Queue {
	q := &Queue{max: max, ready: make(chan struct{}, 1)}
	q.notFull = sync.NewCond(&q.mu)
	return q
}

// Len is the number of events queued (for segwatch_ingest_queue_length).
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Put enqueues evs, waiting for room until ctx ends. A batch larger than
// the whole queue is admitted once the queue is empty, so it cannot wait
// forever. It returns ctx.Err() or ErrClosed when the events were not queued.
func (q *Queue) Put(ctx context.Context, evs []event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.notFull.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	q.mu.Lock()
	for !q.closed && q.n > 0 && q.n+len(evs) > q.max {
		if ctx.Err() != nil {
			q.mu.Unlock()
			return ctx.Err()
		}
		q.notFull.Wait()
	}
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.push(evs)
	q.mu.Unlock()
	return nil
}

// TryPut enqueues evs if there is room now and reports whether it did.
func (q *Queue) TryPut(evs []event.Event) bool {
	if len(evs) == 0 {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || (q.n > 0 && q.n+len(evs) > q.max) {
		return false
	}
	q.push(evs)
	return true
}

func (q *Queue) push(evs []event.Event) {
	q.items = append(q.items, evs)
	q.n += len(evs)
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Ready is signalled after a Put; the consumer then calls Drain.
func (q *Queue) Ready() <-chan struct{} { return q.ready }

// Drain takes every queued batch, oldest first, up to about max events
// (at least one batch).
func (q *Queue) Drain(max int) [][]event.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out [][]event.Event
	taken := 0
	for len(q.items) > 0 && (taken == 0 || taken+len(q.items[0]) <= max) {
		b := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		out = append(out, b)
		taken += len(b)
	}
	q.n -= taken
	if len(q.items) > 0 {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	q.notFull.Broadcast()
	return out
}

// Close makes further Put and TryPut fail; queued batches can still be drained.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.notFull.Broadcast()
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// Closed reports whether Close was called.
func (q *Queue) Closed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// ErrClosed is returned by Put after Close.
var ErrClosed = errClosed{}

type errClosed struct{}

func (errClosed) Error() string { return "queue closed" }
