package queue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

func batch(n int) []event.Event { return make([]event.Event, n) }

func TestTryPutBounds(t *testing.T) {
	q := New(10)
	if !q.TryPut(batch(6)) || !q.TryPut(batch(4)) {
		t.Fatal("room for 10 refused")
	}
	if q.TryPut(batch(1)) {
		t.Fatal("11th event accepted")
	}
	if q.Len() != 10 {
		t.Fatalf("Len = %d", q.Len())
	}
	got := q.Drain(100)
	if len(got) != 2 || q.Len() != 0 {
		t.Fatalf("drained %d batches, Len %d", len(got), q.Len())
	}
	// An oversized batch is admitted into an empty queue, never stuck.
	if !q.TryPut(batch(50)) {
		t.Fatal("oversized batch refused by empty queue")
	}
}

func TestPutBlocksUntilDrained(t *testing.T) {
	q := New(4)
	q.TryPut(batch(4))
	done := make(chan error, 1)
	go func() { done <- q.Put(context.Background(), batch(2)) }()
	select {
	case err := <-done:
		t.Fatalf("Put returned %v on a full queue", err)
	case <-time.After(50 * time.Millisecond):
	}
	q.Drain(4)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if q.Len() != 2 {
		t.Fatalf("Len = %d, want 2", q.Len())
	}
}

func TestPutCancelAndClose(t *testing.T) {
	q := New(1)
	q.TryPut(batch(1))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Put(ctx, batch(1)) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Put after cancel = %v", err)
	}
	go func() { done <- q.Put(context.Background(), batch(1)) }()
	time.Sleep(10 * time.Millisecond)
	q.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close = %v", err)
	}
	if !q.Closed() || len(q.Drain(10)) != 1 {
		t.Fatal("queued batch lost at Close")
	}
}

// TestConcurrentNothingLost: many producers, one consumer, every event
// arrives once.
func TestConcurrentNothingLost(t *testing.T) {
	q := New(64)
	var wg sync.WaitGroup
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				b := batch(3)
				b[0].Severity = p
				if err := q.Put(context.Background(), b); err != nil {
					t.Error(err)
					return
				}
			}
		}(p)
	}
	go func() { wg.Wait(); q.Close() }()
	n := 0
	for {
		<-q.Ready()
		for _, b := range q.Drain(100) {
			n += len(b)
		}
		if q.Closed() && q.Len() == 0 {
			break
		}
	}
	if n != 8*500*3 {
		t.Fatalf("got %d events, want %d", n, 8*500*3)
	}
}
