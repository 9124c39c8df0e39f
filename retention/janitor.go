package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// DayStore is a store of whole UTC days: the event index.
type DayStore interface {
	// Days returns the UTC midnights of the days held.
	Days() []time.Time
	// DropDay removes one day; new searches no longer see it, running
	// ones finish first. A day it does not hold is not an error.
	DropDay(day time.Time) error
}

// TrafficStore is the segment-traffic rollup, which keeps days too.
type TrafficStore interface {
	// DropBefore removes every day before t's UTC day and says how many.
	DropBefore(t time.Time) (int, error)
}

// Config of a Janitor. Zero fields take the defaults.
type Config struct {
	// Retention: days wholly older than now-Retention are dropped. Required.
	Retention time.Duration
	// Interval between retention sweeps (default 1h), each moved by up to
	// a tenth of it at random so that several servers started together do
	// not delete at the same moment.
	Interval time.Duration
	// DataDir is the directory whose file system the disk guard watches
	// ("" turns the guard off).
	DataDir string
	// DiskInterval between disk checks (default 1m).
	DiskInterval time.Duration
	// LowFreeBytes and LowFreeRatio: the disk is low when less than either
	// is free (defaults 1 GiB and 5%).
	LowFreeBytes uint64
	LowFreeRatio float64
}

func (c *Config) defaults() {
	if c.Interval == 0 {
		c.Interval = time.Hour
	}
	if c.DiskInterval == 0 {
		c.DiskInterval = time.Minute
	}
	if c.LowFreeBytes == 0 {
		c.LowFreeBytes = 1 << 30
	}
	if c.LowFreeRatio == 0 {
		c.LowFreeRatio = 0.05
	}
}

// Deps of a Janitor. Index, Logger and Metrics are required.
type Deps struct {
	Index   DayStore
	Traffic TrafficStore // optional
	Logger  *slog.Logger
	Metrics *metrics.Set
	Now     func() time.Time // default time.Now
}

// Janitor drops expired days from the stores (at start, then every
// Interval) and watches the free space of the data dir.
//
// The disk guard only warns: it never deletes a day inside the retention
// to make room, because those days are the evidence the retention exists
// for. A low disk is logged (once when it becomes low, once when it
// recovers) and shown in segwatch_data_disk_low, so that an operator adds
// space before the index can no longer write.
type Janitor struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	dropped     *metrics.Counter
	trafficDrop *metrics.Counter
	errs        *metrics.Counter

	mu   sync.Mutex // the disk state, read by the scrape goroutine
	low  bool
	free uint64
}

// New validates cfg and deps and registers the metrics; it deletes nothing.
func New(cfg Config, deps Deps) (*Janitor, error) {
	cfg.defaults()
	switch {
	case cfg.Retention <= 0:
		return nil, errors.New("retention: retention must be positive")
	case cfg.Interval < 0 || cfg.DiskInterval < 0:
		return nil, errors.New("retention: intervals must not be negative")
	case cfg.LowFreeRatio < 0 || cfg.LowFreeRatio >= 1:
		return nil, fmt.Errorf("retention: LowFreeRatio %v is not in [0, 1)", cfg.LowFreeRatio)
	case deps.Index == nil || deps.Logger == nil || deps.Metrics == nil:
		return nil, errors.New("retention: Index, Logger and Metrics are required")
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	j := &Janitor{cfg: cfg, deps: deps, log: deps.Logger}
	s := deps.Metrics
	j.dropped = s.NewCounter("segwatch_retention_shards_dropped_total")
	j.trafficDrop = s.NewCounter("segwatch_retention_traffic_days_dropped_total")
	j.errs = s.NewCounter("segwatch_retention_errors_total")
	// The retention actually held, for alerts and the compliance view: the
	// oldest day still searchable (0 while the index is empty).
	s.NewGauge("segwatch_retention_oldest_day_timestamp_seconds", func() float64 {
		days := deps.Index.Days()
		if len(days) == 0 {
			return 0
		}
		oldest := days[0]
		for _, d := range days[1:] {
			if d.Before(oldest) {
				oldest = d
			}
		}
		return float64(oldest.Unix())
	})
	if cfg.DataDir != "" {
		s.NewGauge("segwatch_data_disk_free_bytes", func() float64 { return float64(j.diskFree()) })
		s.NewGauge("segwatch_data_disk_low", func() float64 {
			if j.diskLow() {
				return 1
			}
			return 0
		})
	}
	return j, nil
}

// Run sweeps at once (so a server started after a long stop catches up
// before it serves old days), then every Interval, and checks the disk every
// DiskInterval, until ctx ends. Sweep errors are logged and counted, never
// fatal: the next sweep tries again.
func (j *Janitor) Run(ctx context.Context) error {
	j.sweepLogged()
	j.checkDisk()
	sweep := time.NewTimer(j.jittered())
	defer sweep.Stop()
	var diskC <-chan time.Time
	if j.cfg.DataDir != "" {
		t := time.NewTicker(j.cfg.DiskInterval)
		defer t.Stop()
		diskC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			j.sweepLogged()
			sweep.Reset(j.jittered())
		case <-diskC:
			j.checkDisk()
		}
	}
}

func (j *Janitor) jittered() time.Duration {
	spread := int64(j.cfg.Interval / 10)
	if spread <= 0 {
		return j.cfg.Interval
	}
	return j.cfg.Interval - time.Duration(spread/2) + time.Duration(rand.Int64N(spread))
}

func (j *Janitor) sweepLogged() {
	if _, err := j.Sweep(); err != nil {
		j.errs.Inc()
		j.log.Error("retention sweep", "err", err)
	}
}

// Sweep drops every expired day now and returns how many index days it
// dropped. It goes on past a day that fails, so one bad shard does not keep
// the others forever.
func (j *Janitor) Sweep() (int, error) {
	now := j.deps.Now()
	var errs []error
	n := 0
	for _, d := range Expired(j.deps.Index.Days(), j.cfg.Retention, now) {
		if err := j.deps.Index.DropDay(d); err != nil {
			errs = append(errs, fmt.Errorf("drop %s: %w", d.Format(time.DateOnly), err))
			continue
		}
		n++
		j.dropped.Inc()
		j.log.Info("retention: day dropped", "day", d.Format(time.DateOnly), "retention_days", int(j.cfg.Retention/day))
	}
	if j.deps.Traffic != nil {
		k, err := j.deps.Traffic.DropBefore(Cutoff(j.cfg.Retention, now))
		j.trafficDrop.Add(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("traffic: %w", err))
		}
	}
	return n, errors.Join(errs...)
}

// checkDisk reads the data dir's free space and logs a change of state.
func (j *Janitor) checkDisk() {
	if j.cfg.DataDir == "" {
		return
	}
	free, size, err := diskSpace(j.cfg.DataDir)
	if err != nil {
		j.errs.Inc()
		j.log.Warn("disk guard: cannot read free space", "dir", j.cfg.DataDir, "err", err)
		return
	}
	j.setDisk(free, size)
}

func (j *Janitor) setDisk(free, size uint64) {
	low := free < j.cfg.LowFreeBytes || (size > 0 && float64(free) < j.cfg.LowFreeRatio*float64(size))
	j.mu.Lock()
	was := j.low
	j.free, j.low = free, low
	j.mu.Unlock()
	switch {
	case low && !was:
		j.log.Error("disk guard: data disk low; add space: segwatch keeps every day inside the retention and will not delete to make room",
			"dir", j.cfg.DataDir, "free_bytes", free, "size_bytes", size)
	case !low && was:
		j.log.Info("disk guard: data disk no longer low", "dir", j.cfg.DataDir, "free_bytes", free)
	}
}

func (j *Janitor) diskFree() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.free
}

func (j *Janitor) diskLow() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.low
}
