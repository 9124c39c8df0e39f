package index

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func testFrames() []byte {
	var b []byte
	b = appendFrame(b, frameHeader{Block: 0, NextBlock: 2, Count: 1, MinNs: 1, MaxNs: 2}, []byte("first payload"))
	b = appendFrame(b, frameHeader{Block: 1, NextBlock: 2, Count: 2, MinNs: 3, MaxNs: 4}, []byte("second"))
	return b
}

// FuzzOpenRaw: whatever a raw file holds (a crash, a disk error, an
// attacker), opening it never panics, keeps a prefix of valid frames, and
// the file accepts and returns new frames afterwards.
func FuzzOpenRaw(f *testing.F) {
	good := testFrames()
	f.Add(good)
	f.Add(good[:len(good)-5])
	f.Add(append(append([]byte{}, good...), "trailing junk\x2c\x00\x00\x00"...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "raw")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := openRaw(path, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer r.close()
		size := r.size.Load()
		if size > int64(len(data)) || !bytes.Equal(data[:size], mustRead(t, path)[:size]) {
			t.Fatalf("valid prefix changed")
		}
		// After a cut every kept frame was verified; otherwise only the
		// last one was (the fast path), and it must be what open found.
		if r.cut {
			var last frameHeader
			if err := r.scan(0, size, true, func(_ int64, h frameHeader, _ []byte) bool { last = h; return true }); err != nil {
				t.Fatalf("kept frames do not scan: %v", err)
			}
			if last != r.last {
				t.Fatalf("last header %+v, scanned %+v", r.last, last)
			}
		} else if size > 0 {
			if h, ok := r.checkLast(size); !ok || h != r.last {
				t.Fatalf("last frame not valid after open")
			}
		}
		off, err := r.append(appendFrame(nil, frameHeader{Block: 7, Count: 1}, []byte("new")))
		if err != nil {
			t.Fatal(err)
		}
		h, _, payload, err := r.read(off, nil)
		if err != nil || h.Block != 7 || string(payload) != "new" {
			t.Fatalf("read back: %+v %q %v", h, payload, err)
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRawRecovery(t *testing.T) {
	good := testFrames()
	f := func(name string, data []byte, wantSize int, wantCut bool) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "raw")
		os.WriteFile(path, data, 0o644)
		r, err := openRaw(path, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer r.close()
		if r.size.Load() != int64(wantSize) || r.cut != wantCut {
			t.Errorf("%s: size %d cut %v, want %d %v", name, r.size.Load(), r.cut, wantSize, wantCut)
		}
		if st, _ := os.Stat(path); st.Size() != int64(wantSize) {
			t.Errorf("%s: file is %d bytes, want %d", name, st.Size(), wantSize)
		}
	}
	first := frameOverhead + len("first payload")
	f("empty", nil, 0, false)
	f("intact", good, len(good), false)
	f("torn last frame", good[:len(good)-1], first, true)
	f("torn header", good[:first+10], first, true)
	bad := append([]byte{}, good...)
	bad[first+frameHeaderSize] ^= 1 // payload bit flip in the last frame
	f("corrupt last frame", bad, first, true)
	bad = append([]byte{}, good...)
	bad[frameHeaderSize] ^= 1
	// Open checks only the last frame (opening 90 days must not read them
	// all); a bad frame inside is found when read (and skipped by Search).
	f("corrupt first frame", bad, len(good), false)
}
