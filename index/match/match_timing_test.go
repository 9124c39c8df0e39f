package match

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"

	"github.com/segwatch/segwatch/ingest/event"
)

func BenchmarkMatch(b *testing.B) {
	evs := genEvents(4096, 3)
	for _, q := range []string{
		`host:cam-07`,
		`message:failed`,
		`"login failed"`,
		`message:"failed password for admin"`,
		`severity:<=3`,
		`+segment:cameras +severity:<=3 +"login failed"`,
		`10.20.0.11`,
		`dst_port:443`,
		`message:fail*`,
		`sd.origin.ip:10.20.0.15`,
	} {
		c, err := Compile(q)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(q, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				for i := range evs {
					if c.Match(&evs[i]) {
						n++
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(`+segment:cameras +severity:<=3 +"login failed" -host:cam-0*`); err != nil {
			b.Fatal(err)
		}
	}
}

// blockGroups splits generated events into blocks of size of one stream.
func blockGroups(evs []event.Event, size int) [][]event.Event {
	var out [][]event.Event
	for _, idxs := range blocks(evs, size) {
		g := make([]event.Event, len(idxs))
		for j, i := range idxs {
			g[j] = evs[i]
		}
		out = append(out, g)
	}
	return out
}

func BenchmarkBlockDoc(b *testing.B) {
	evs := genEvents(20000, 5)
	groups := blockGroups(evs, 256)
	b.ReportAllocs()
	var bb BlockBuilder
	n := 0
	for b.Loop() {
		for _, g := range groups {
			bb.Doc(g)
			n += len(g)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}

// BenchmarkIndexDisk indexes SEGWATCH_BENCH_EVENTS (default 200k) generated
// events as blocks of 256 into an on-disk bleve index and reports the bleve
// directory's bytes per event (raw frames are the store's, not counted).
// Run it with -benchtime 1x.
func BenchmarkIndexDisk(b *testing.B) {
	n := 200000
	if s := os.Getenv("SEGWATCH_BENCH_EVENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	evs := genEvents(n, 9)
	groups := blockGroups(evs, 256)
	b.ReportAllocs()
	for b.Loop() {
		cpu0 := cpuTime()
		dir := filepath.Join(b.TempDir(), "bleve")
		idx, err := bleve.New(dir, Mapping())
		if err != nil {
			b.Fatal(err)
		}
		var bb BlockBuilder
		batch := idx.NewBatch()
		noNum := os.Getenv("SEGWATCH_BENCH_NONUM") != "" // measure what numbers cost
		for i, g := range groups {
			doc := bb.Doc(g)
			if noNum {
				for _, f := range fields {
					if f.typ == typeNumber {
						delete(doc, f.name)
					}
				}
			}
			if err := batch.Index(docID("b", i), doc); err != nil {
				b.Fatal(err)
			}
			if batch.Size() >= 20 {
				if err := idx.Batch(batch); err != nil {
					b.Fatal(err)
				}
				batch.Reset()
			}
		}
		if err := idx.Batch(batch); err != nil {
			b.Fatal(err)
		}
		if err := idx.Close(); err != nil {
			b.Fatal(err)
		}
		cpu := cpuTime() - cpu0
		b.StopTimer()
		var size int64
		filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					size += fi.Size()
				}
			}
			return nil
		})
		b.ReportMetric(float64(size)/float64(len(evs)), "B/event")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(len(evs)), "ns/event")
		// Process CPU (all goroutines, bleve's merges included) per event.
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(len(evs)), "cpu-ns/event")
		b.StartTimer()
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
