// Package pipeline moves events from the ingest queue into the index (and,
// as they land, to the detectors): the one consumer of the queue. Receivers
// put batches, the pipeline drains them in arrival order and hands each batch
// to the index writer, which is single-threaded by design.
package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/segwatch/segwatch/ingest/event"
	"github.com/segwatch/segwatch/ingest/queue"
)

// Indexer stores events; it is the index writer.
type Indexer interface {
	// Append stores evs and returns how many it refused (outside the
	// retention window), which the pipeline counts as dropped.
	Append(evs []event.Event) (refused int, err error)
	// Tick seals blocks that are older than the flush age.
	Tick(now time.Time) error
}

// Observer sees every stored event, after the index assigned its id.
type Observer interface {
	Observe(evs []event.Event)
}

// Deps are the pipeline's collaborators.
type Deps struct {
	Logger    *slog.Logger
	Metrics   *metrics.Set
	Queue     *queue.Queue
	Index     Indexer
	Observers []Observer
	Now       func() time.Time
}

// Pipeline is the queue consumer.
type Pipeline struct {
	d          Deps
	maxBatch   int
	tick       time.Duration
	outOfRange *metrics.Counter
	failed     *metrics.Counter
}

// New builds a pipeline; Run starts it.
func New(d Deps) *Pipeline {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Pipeline{
		d:          d,
		maxBatch:   8192,
		tick:       time.Second,
		outOfRange: d.Metrics.GetOrCreateCounter(`segwatch_events_dropped_total{reason="out_of_range"}`),
		failed:     d.Metrics.GetOrCreateCounter(`segwatch_events_dropped_total{reason="index_error"}`),
	}
}

// Run consumes the queue until it is closed and empty; the caller closes
// the queue after every receiver has stopped, so nothing a receiver accepted
// is left behind. ctx is only used to stop waiting when the queue is never
// closed (tests).
func (p *Pipeline) Run(ctx context.Context) error {
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		select {
		case <-p.d.Queue.Ready():
			for _, b := range p.d.Queue.Drain(p.maxBatch) {
				p.handle(b)
			}
			if p.d.Queue.Closed() && p.d.Queue.Len() == 0 {
				return nil
			}
		case now := <-t.C:
			if err := p.d.Index.Tick(now); err != nil {
				p.d.Logger.Error("index tick", "err", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *Pipeline) handle(evs []event.Event) {
	refused, err := p.d.Index.Append(evs)
	if err != nil {
		// The index logs what failed; the events are counted as lost so
		// the loss is visible on /metrics, never silent.
		p.failed.Add(len(evs))
		p.d.Logger.Error("index append", "events", len(evs), "err", err)
		return
	}
	if refused > 0 {
		p.outOfRange.Add(refused)
	}
	for _, o := range p.d.Observers {
		o.Observe(evs)
	}
}
