package index

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/klauspost/compress/zstd"
	"github.com/segwatch/segwatch/ingest/event"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func dirSize(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkAppend measures the write path on a real on-disk shard: append,
// sealing, zstd, Bleve batches and their merges (process CPU time, so
// Bleve's background work counts), and bytes on disk per event after Flush
// and Close (raw + bleve).
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name    string
		devices int
		batch   int
		level   zstd.EncoderLevel
	}{
		{"dev200/batch16", 200, 16, zstd.SpeedFastest},
		{"dev200/batch64", 200, 64, zstd.SpeedFastest},
		{"dev200/batch128", 200, 128, zstd.SpeedFastest},
		{"dev200/batch256", 200, 256, zstd.SpeedFastest},
		{"dev200/batch256/zstd-default", 200, 256, zstd.SpeedDefault},
		{"dev2000/batch128", 2000, 128, zstd.SpeedDefault},
	} {
		b.Run(bc.name, func(b *testing.B) {
			old := zstdLevel
			zstdLevel = bc.level
			defer func() { zstdLevel = old }()
			dir := b.TempDir()
			c := newClock(testNow)
			s := openTestStore(b, dir, c, Config{BatchDocs: bc.batch})
			g, err := NewGenerator(GenConfig{Devices: bc.devices, Events: b.N, Start: testNow.Add(-time.Duration(b.N) * time.Second / 15000), End: testNow, FlowShare: 0.2, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			batch := make([]event.Event, 1000)
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for !g.Done() {
				n := 0
				for n < len(batch) && !g.Done() {
					g.Next(&batch[n])
					n++
				}
				// The generator is not the store's cost.
				b.StopTimer()
				b.StartTimer()
				if _, err := s.Append(batch[:n]); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			wall, cpu := time.Since(start), cpuTime()-cpu0
			b.StopTimer()
			raw, all := int64(0), dirSize(b, dir)
			filepath.WalkDir(dir, func(p string, d fs.DirEntry, _ error) error {
				if d != nil && d.Name() == "raw" {
					fi, _ := d.Info()
					raw += fi.Size()
				}
				return nil
			})
			b.ReportMetric(float64(peakRSS())/(1<<20), "peakRSS-MiB")
			b.ReportMetric(float64(b.N)/wall.Seconds(), "events/s")
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
			b.ReportMetric(float64(raw)/float64(b.N), "raw-B/event")
			b.ReportMetric(float64(all-raw)/float64(b.N), "bleve-B/event")
		})
	}
}

// The search data set: 30 days before testNow, built once per run.
var (
	benchOnce  sync.Once
	benchDir   string
	benchStore *Store
	benchErr   error
)

const (
	benchDays    = 30
	benchEvents  = 1_000_000
	benchDevices = 1000
)

func benchData(b *testing.B) *Store {
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "segwatch-bench-")
		if benchErr != nil {
			return
		}
		c := newClock(testNow)
		var s *Store
		s, benchErr = Open(context.Background(), Config{Dir: benchDir, Retention: 90 * 24 * time.Hour}, Deps{Metrics: metrics.NewSet(), Now: c.now})
		if benchErr != nil {
			return
		}
		start := time.Now()
		_, benchErr = Generate(context.Background(), s, GenConfig{Devices: benchDevices, Events: benchEvents, Start: testNow.Add(-benchDays * 24 * time.Hour), End: testNow, FlowShare: 0.2, Seed: 42})
		if benchErr != nil {
			return
		}
		b.Logf("generated %d events over %d days in %v (%.1f B/event on disk)",
			benchEvents, benchDays, time.Since(start), float64(dirSize(b, benchDir))/benchEvents)
		benchStore = s
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchStore
}

func benchSearch(b *testing.B, req Request) {
	s := benchData(b)
	b.ReportAllocs()
	b.ResetTimer()
	var total int
	for i := 0; i < b.N; i++ {
		res, err := s.Search(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		total = res.Total
	}
	b.ReportMetric(float64(total), "matches")
}

func BenchmarkSearchDeviceNewest100(b *testing.B) {
	benchSearch(b, Request{Query: "device:cam-lobby-01", From: testNow.Add(-30 * 24 * time.Hour), To: testNow})
}

func BenchmarkSearchPhraseFilter24h(b *testing.B) {
	benchSearch(b, Request{Query: `+"login failed" +segment:cameras`, To: testNow})
}

func BenchmarkSearchExactIP30d(b *testing.B) {
	benchSearch(b, Request{Query: "203.0.113.77", From: testNow.Add(-30 * 24 * time.Hour), To: testNow})
}

func BenchmarkSearchEverythingNewest100(b *testing.B) {
	benchSearch(b, Request{To: testNow})
}

func BenchmarkSearchEverything30d(b *testing.B) {
	benchSearch(b, Request{From: testNow.Add(-30 * 24 * time.Hour), To: testNow})
}

// BenchmarkOpen90 opens a store of 90 small day shards (the retention
// target) and reports the wall time of Open and the process RSS after it.
func BenchmarkOpen90(b *testing.B) {
	dir := b.TempDir()
	c := newClock(testNow)
	s := openTestStore(b, dir, c, Config{})
	if _, err := Generate(context.Background(), s, GenConfig{Devices: 100, Events: 90 * 2000, Start: dayOf(testNow).time().Add(-89 * 24 * time.Hour), End: testNow, Seed: 3}); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A fresh process, so the RSS is that of the open store alone and
		// not of the generation before.
		cmd := exec.Command(os.Args[0], "-test.run=^TestOpenHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "SEGWATCH_OPEN_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("helper: %v\n%s", err, out)
		}
		var days int
		var tookMs int64
		var rss int64
		for _, line := range strings.Split(string(out), "\n") {
			if _, err := fmt.Sscanf(strings.TrimSpace(line), "open: days=%d took_ms=%d rss=%d", &days, &tookMs, &rss); err == nil {
				break
			}
		}
		if days != 90 {
			b.Fatalf("helper opened %d days:\n%s", days, out)
		}
		b.ReportMetric(float64(tookMs), "open-ms")
		b.ReportMetric(float64(rss)/(1<<20), "RSS-MiB")
	}
}

// TestOpenHelper is BenchmarkOpen90's child process; it does nothing in a
// normal test run.
func TestOpenHelper(t *testing.T) {
	dir := os.Getenv("SEGWATCH_OPEN_DIR")
	if dir == "" {
		t.Skip("only run by BenchmarkOpen90")
	}
	start := time.Now()
	s, err := Open(context.Background(), Config{Dir: dir, Retention: 91 * 24 * time.Hour}, Deps{Now: newClock(testNow).now})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	runtime.GC()
	fmt.Printf("open: days=%d took_ms=%d rss=%d\n", len(s.Days()), took.Milliseconds(), rssBytes())
	s.Close()
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, rss int64
	for i, f := 0, 0; i < len(b) && f < 2; i++ {
		switch {
		case b[i] == ' ':
			f++
		case f == 0:
			size = size*10 + int64(b[i]-'0')
		case f == 1:
			rss = rss*10 + int64(b[i]-'0')
		}
	}
	return rss * int64(os.Getpagesize())
}

// BenchmarkAppendRealRate appends at the rate of the retention target
// (10M events in 30 days from 2000 devices: ~3.9 events/s, one event per
// device every ~9 min) with the store's clock following event time, so
// blocks are sealed by FlushAge as in production, journal included (fsync
// every second of store time). Over 24 hours it reports events per frame,
// bytes per event on disk, events per CPU-second, the largest journal seen
// and the time of "everything, newest 100" over the data, for the old
// default FlushAge (30s), the new one (1h) and longer ones.
func BenchmarkAppendRealRate(b *testing.B) {
	for _, age := range []time.Duration{30 * time.Second, time.Hour, 3 * time.Hour, 6 * time.Hour} {
		b.Run("flush"+age.String(), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				span := 24 * time.Hour
				n := int(span.Seconds() * 10e6 / (30 * 86400))
				start := testNow.Add(-span)
				c := newClock(start)
				s := openTestStore(b, dir, c, Config{FlushAge: age})
				g, err := NewGenerator(GenConfig{Devices: 2000, Events: n, Start: start, End: testNow, FlowShare: 0.2, Seed: 5})
				if err != nil {
					b.Fatal(err)
				}
				batch := make([]event.Event, 10)
				var maxJournal int64
				cpu0 := cpuTime()
				for !g.Done() {
					k := 0
					for k < len(batch) && !g.Done() {
						g.Next(&batch[k])
						k++
					}
					c.set(batch[k-1].Time)
					if _, err := s.Append(batch[:k]); err != nil {
						b.Fatal(err)
					}
					maxJournal = max(maxJournal, s.j.size())
				}
				c.set(testNow)
				if err := s.Flush(); err != nil {
					b.Fatal(err)
				}
				cpu := cpuTime() - cpu0
				frames := 0
				for _, sh := range s.shards {
					sh.raw.scan(0, sh.raw.size.Load(), false, func(int64, frameHeader, []byte) bool { frames++; return true })
				}
				t0 := time.Now()
				res, err := s.Search(context.Background(), Request{From: start, To: testNow})
				if err != nil || res.Total != n {
					b.Fatalf("search: %d of %d, %v", res.Total, n, err)
				}
				took := time.Since(t0)
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(n)/float64(frames), "events/frame")
				b.ReportMetric(float64(dirSize(b, dir))/float64(n), "disk-B/event")
				b.ReportMetric(float64(n)/cpu.Seconds(), "events/cpu-s")
				b.ReportMetric(float64(maxJournal)/(1<<20), "max-journal-MiB")
				b.ReportMetric(float64(took.Microseconds())/1000, "everything-ms")
			}
		})
	}
}

// BenchmarkStreamKeyRelay measures the log stream key when every log
// arrives through one relay (an rsyslog forwarder, or `segwatch simulate`
// from 127.0.0.1): keyed by source address alone ("source") every block
// mixes all devices, so "device X, newest 100" decodes every block; keyed
// by device too ("device") it reads X's blocks only. 300k events, 3 days,
// 1000 devices; reports the search time per op and bytes on disk.
func BenchmarkStreamKeyRelay(b *testing.B) {
	for _, byDevice := range []bool{false, true} {
		name := map[bool]string{false: "source", true: "device"}[byDevice]
		b.Run(name, func(b *testing.B) {
			old := streamByDevice
			streamByDevice = byDevice
			defer func() { streamByDevice = old }()
			dir := b.TempDir()
			s := openTestStore(b, dir, newClock(testNow), Config{})
			defer s.Close()
			const n = 300_000
			g, err := NewGenerator(GenConfig{Devices: 1000, Events: n, Start: testNow.Add(-72 * time.Hour), End: testNow, FlowShare: 0.2, Seed: 7})
			if err != nil {
				b.Fatal(err)
			}
			batch := make([]event.Event, 1000)
			cpu0 := cpuTime()
			for !g.Done() {
				k := 0
				for k < len(batch) && !g.Done() {
					g.Next(&batch[k])
					if batch[k].Kind == event.KindLog {
						batch[k].SourceIP = "127.0.0.1"
					}
					k++
				}
				if _, err := s.Append(batch[:k]); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Flush(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/(cpuTime()-cpu0).Seconds(), "load-events/cpu-s")
			b.ReportMetric(float64(dirSize(b, dir))/n, "disk-B/event")
			req := Request{Query: "device:cam-lobby-01", From: testNow.Add(-72 * time.Hour), To: testNow}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := s.Search(context.Background(), req)
				if err != nil || res.Total == 0 {
					b.Fatalf("search: %v, %d", err, res.Total)
				}
			}
		})
	}
}

// peakRSS is the process's high-water RSS (it only grows over a run).
func peakRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss * 1024
}
