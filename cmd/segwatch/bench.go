package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/segwatch/segwatch/index"
)

// benchCmd loads a realistic data set straight into day shards (no
// network, the store's clock following event time) and times the issue-4
// query set against it. With --reuse it only runs the queries on a data
// dir loaded before.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	data := fs.String("data", "./bench-data", "data directory to load into (must not hold an index unless --reuse)")
	days := fs.Int("days", 30, "days of event time")
	events := fs.Int("events", 10_000_000, "events to generate")
	devices := fs.Int("devices", 2000, "devices")
	runs := fs.Int("runs", 20, "timed runs of each query")
	seed := fs.Uint64("seed", 1, "random seed")
	reuse := fs.Bool("reuse", false, "skip loading: query the index already in --data")
	only := fs.String("only", "", "run only the queries whose name contains this")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the query runs to this file")
	flushAge := fs.Duration("flush-age", 0, "seal a block this long after it was opened (default: the store's)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *days < 1 || *events < 1 || *devices < 1 || *runs < 1 {
		return usagef("bench: --days, --events, --devices and --runs must be positive")
	}
	dir := filepath.Join(*data, "index")
	var ds index.DataSetStats
	if !*reuse {
		if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
			return usagef("bench: %s already holds an index (use --reuse, or another --data)", dir)
		}
		fmt.Fprintf(stderr, "loading %d events over %d days from %d devices into %s …\n", *events, *days, *devices, dir)
		var err error
		ds, err = index.LoadDataSet(ctx, dir, index.DataSetConfig{Days: *days, Events: *events, Devices: *devices, Seed: *seed, FlushAge: *flushAge})
		if err != nil {
			return err
		}
	}
	t0 := time.Now()
	st, err := index.Open(ctx, index.Config{Dir: dir, Retention: time.Duration(*days+1) * 24 * time.Hour},
		index.Deps{Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), Metrics: metrics.NewSet()})
	if err != nil {
		return fmt.Errorf("bench: open index: %w", err)
	}
	defer st.Close()
	fmt.Fprintf(stdout, "opened %d day shards in %s\n", len(st.Days()), time.Since(t0).Round(time.Millisecond))
	set := index.QuerySet
	if *only != "" {
		set = nil
		for _, q := range index.QuerySet {
			if strings.Contains(q.Name, *only) {
				set = append(set, q)
			}
		}
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	qs, err := index.RunQueries(ctx, st, set, *runs)
	if err != nil {
		return err
	}
	if err := index.WriteReport(stdout, ds, qs); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	return nil
}
