package index

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
)

// The raw file of a day shard is an append-only sequence of frames, one per
// sealed block:
//
//	off  size
//	0    4   magic "SWB" + format version
//	4    4   length of the compressed payload (little endian, like the rest)
//	8    4   CRC-32C of bytes 12 .. end of payload
//	12   4   block number (per day; with the event's index it forms the ID)
//	16   4   next block number when the frame was written (the high-water
//	         mark: frames are written in this order, so the last frame tells
//	         the sequence to continue with after a restart)
//	20   4   event count
//	24   8   min event time, unix ns
//	32   8   max event time, unix ns
//	40   n   zstd(encoded events)
//	40+n 4   frame length (44+n), so the last frame is found from the end
//
// The header stays uncompressed so a scan (Get, recovery) can skip payloads.
// A frame is written with one write call; a crash can leave a torn last
// frame, which open detects (bad trailer, magic, length or CRC) and cuts off.

const (
	frameHeaderSize  = 40
	frameTrailerSize = 4
	frameOverhead    = frameHeaderSize + frameTrailerSize
	// maxFramePayload bounds what a corrupt length field can make us read.
	maxFramePayload = 256 << 20
)

var frameMagic = [4]byte{'S', 'W', 'B', 1}

// journalMagic marks the frames of journal segments (see journal.go): the
// same layout, another magic, so neither file is ever taken for the other.
var journalMagic = [4]byte{'S', 'W', 'J', 1}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errBadFrame reports a frame that fails its checks.
var errBadFrame = errors.New("bad frame")

// frameHeader is the uncompressed part of a frame.
type frameHeader struct {
	Block        uint32
	NextBlock    uint32
	Count        uint32
	MinNs, MaxNs int64
	payloadLen   uint32
	crc          uint32
}

func (h *frameHeader) put(b []byte, magic [4]byte) {
	copy(b[0:4], magic[:])
	binary.LittleEndian.PutUint32(b[4:], h.payloadLen)
	binary.LittleEndian.PutUint32(b[8:], h.crc)
	binary.LittleEndian.PutUint32(b[12:], h.Block)
	binary.LittleEndian.PutUint32(b[16:], h.NextBlock)
	binary.LittleEndian.PutUint32(b[20:], h.Count)
	binary.LittleEndian.PutUint64(b[24:], uint64(h.MinNs))
	binary.LittleEndian.PutUint64(b[32:], uint64(h.MaxNs))
}

func parseFrameHeader(b []byte) (frameHeader, error) { return parseHeaderMagic(b, frameMagic) }

func parseHeaderMagic(b []byte, magic [4]byte) (frameHeader, error) {
	if len(b) < frameHeaderSize || [4]byte(b[0:4]) != magic {
		return frameHeader{}, errBadFrame
	}
	h := frameHeader{
		payloadLen: binary.LittleEndian.Uint32(b[4:]),
		crc:        binary.LittleEndian.Uint32(b[8:]),
		Block:      binary.LittleEndian.Uint32(b[12:]),
		NextBlock:  binary.LittleEndian.Uint32(b[16:]),
		Count:      binary.LittleEndian.Uint32(b[20:]),
		MinNs:      int64(binary.LittleEndian.Uint64(b[24:])),
		MaxNs:      int64(binary.LittleEndian.Uint64(b[32:])),
	}
	if h.payloadLen > maxFramePayload {
		return frameHeader{}, errBadFrame
	}
	return h, nil
}

// appendFrame appends a complete frame for payload (already compressed) to
// dst. It returns the frame's bytes.
func appendFrame(dst []byte, h frameHeader, payload []byte) []byte {
	return appendFrameMagic(dst, frameMagic, h, payload)
}

func appendFrameMagic(dst []byte, magic [4]byte, h frameHeader, payload []byte) []byte {
	start := len(dst)
	h.payloadLen = uint32(len(payload))
	dst = append(dst, make([]byte, frameHeaderSize)...)
	dst = append(dst, payload...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(frameOverhead+len(payload)))
	fr := dst[start:]
	h.put(fr, magic)
	// The CRC covers the header after itself and the payload, not the
	// trailer: the trailer is only a back pointer and is checked by value.
	h.crc = crc32.Checksum(fr[12:frameHeaderSize+len(payload)], crcTable)
	binary.LittleEndian.PutUint32(fr[8:], h.crc)
	return dst
}

// checkFrame verifies a whole frame held in b (header, payload, trailer).
func checkFrame(b []byte) (frameHeader, error) { return checkFrameMagic(b, frameMagic) }

func checkFrameMagic(b []byte, magic [4]byte) (frameHeader, error) {
	h, err := parseHeaderMagic(b, magic)
	if err != nil {
		return h, err
	}
	n := frameOverhead + int(h.payloadLen)
	if len(b) != n {
		return h, errBadFrame
	}
	if binary.LittleEndian.Uint32(b[n-4:]) != uint32(n) {
		return h, errBadFrame
	}
	if crc32.Checksum(b[12:n-4], crcTable) != h.crc {
		return h, errBadFrame
	}
	return h, nil
}

// rawFile is one day's raw frame file. Appends come from the single writer;
// reads (ReadAt) may run concurrently with them because they only touch
// frames that were completely written before their location was published.
type rawFile struct {
	f *os.File
	// size is the end of the last valid frame, where the next one goes.
	// Readers load it to bound what they may read.
	size atomic.Int64
	// last is the header of the last frame (zero if none): it carries the
	// block sequence to continue with.
	last frameHeader
	// cut tells that open cut off a bad tail: documents may point there.
	cut bool
}

// openRaw opens (creating) path and cuts off a torn or corrupt tail.
func openRaw(path string, log *slog.Logger) (*rawFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open raw: %w", err)
	}
	r := &rawFile{f: f}
	if err := r.recover(path, log); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// recover finds the end of the valid frames. The fast path checks only the
// last frame (found through its trailer); if it is bad, every frame is
// walked from the start and the file is cut after the last good one.
func (r *rawFile) recover(path string, log *slog.Logger) error {
	st, err := r.f.Stat()
	if err != nil {
		return fmt.Errorf("stat raw: %w", err)
	}
	size := st.Size()
	if size == 0 {
		return nil
	}
	if h, ok := r.checkLast(size); ok {
		r.size.Store(size)
		r.last = h
		return nil
	}
	var good int64
	var last frameHeader
	err = r.scan(0, size, true, func(off int64, h frameHeader, _ []byte) bool {
		good, last = off+frameOverhead+int64(h.payloadLen), h
		return true
	})
	// scan stops at the first bad frame; that error is the reason to cut.
	log.Warn("raw file has a torn or corrupt tail, truncating",
		"path", path, "size", size, "valid", good, "reason", err)
	if err := r.f.Truncate(good); err != nil {
		return fmt.Errorf("truncate raw: %w", err)
	}
	if err := r.f.Sync(); err != nil {
		return fmt.Errorf("sync raw: %w", err)
	}
	r.size.Store(good)
	r.last = last
	r.cut = true
	return nil
}

func (r *rawFile) checkLast(size int64) (frameHeader, bool) {
	if size < frameOverhead {
		return frameHeader{}, false
	}
	var t [4]byte
	if _, err := r.f.ReadAt(t[:], size-4); err != nil {
		return frameHeader{}, false
	}
	n := int64(binary.LittleEndian.Uint32(t[:]))
	if n < frameOverhead || n > size || n > maxFramePayload+frameOverhead {
		return frameHeader{}, false
	}
	b := make([]byte, n)
	if _, err := r.f.ReadAt(b, size-n); err != nil {
		return frameHeader{}, false
	}
	h, err := checkFrame(b)
	return h, err == nil
}

// scan calls fn for each frame in [from, to) in file order until fn returns
// false. With verify, payloads are read and checked (fn gets the compressed
// payload, valid only during the call); without, payloads are skipped. It
// returns the first error (errBadFrame for a frame that fails its checks).
func (r *rawFile) scan(from, to int64, verify bool, fn func(off int64, h frameHeader, payload []byte) bool) error {
	return scanFrames(r.f, frameMagic, from, to, verify, fn)
}

// scanFrames is rawFile.scan over any file of frames with the given magic.
func scanFrames(f io.ReaderAt, magic [4]byte, from, to int64, verify bool, fn func(off int64, h frameHeader, payload []byte) bool) error {
	br := bufio.NewReaderSize(io.NewSectionReader(f, from, to-from), 1<<20)
	var hdr [frameHeaderSize]byte
	var buf []byte
	for off := from; off < to; {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return fmt.Errorf("frame at %d: %w", off, errBadFrame)
		}
		h, err := parseHeaderMagic(hdr[:], magic)
		if err != nil {
			return fmt.Errorf("frame at %d: %w", off, err)
		}
		n := int64(frameOverhead) + int64(h.payloadLen)
		if off+n > to {
			return fmt.Errorf("frame at %d: past the end: %w", off, errBadFrame)
		}
		var payload []byte
		if verify {
			buf = append(buf[:0], hdr[:]...)
			buf = append(buf, make([]byte, int(n)-frameHeaderSize)...)
			if _, err := io.ReadFull(br, buf[frameHeaderSize:]); err != nil {
				return fmt.Errorf("frame at %d: %w", off, errBadFrame)
			}
			if _, err := checkFrameMagic(buf, magic); err != nil {
				return fmt.Errorf("frame at %d: %w", off, err)
			}
			payload = buf[frameHeaderSize : n-frameTrailerSize]
		} else if _, err := br.Discard(int(n) - frameHeaderSize); err != nil {
			return fmt.Errorf("frame at %d: %w", off, errBadFrame)
		}
		if !fn(off, h, payload) {
			return nil
		}
		off += n
	}
	return nil
}

// append writes one frame (built by appendFrame) and returns its offset.
func (r *rawFile) append(frame []byte) (int64, error) {
	off := r.size.Load()
	if _, err := r.f.WriteAt(frame, off); err != nil {
		// A partial write is cut off so the next frame starts clean.
		_ = r.f.Truncate(off)
		return 0, fmt.Errorf("append frame: %w", err)
	}
	r.size.Add(int64(len(frame)))
	return off, nil
}

// read returns the verified frame at off: its header, the buffer holding
// it (buf reused when large enough) and the compressed payload within.
func (r *rawFile) read(off int64, buf []byte) (frameHeader, []byte, []byte, error) {
	var hdr [frameHeaderSize]byte
	if _, err := r.f.ReadAt(hdr[:], off); err != nil {
		return frameHeader{}, nil, nil, fmt.Errorf("read frame at %d: %w", off, err)
	}
	h, err := parseFrameHeader(hdr[:])
	if err != nil {
		return h, nil, nil, fmt.Errorf("read frame at %d: %w", off, err)
	}
	n := frameOverhead + int(h.payloadLen)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := r.f.ReadAt(buf, off); err != nil {
		return h, nil, nil, fmt.Errorf("read frame at %d: %w", off, err)
	}
	if _, err := checkFrame(buf); err != nil {
		return h, nil, nil, fmt.Errorf("read frame at %d: %w", off, err)
	}
	return h, buf, buf[frameHeaderSize : n-frameTrailerSize], nil
}

// blocks returns the numbers of the blocks that have a frame (a header
// walk of the whole file; journal replay only).
func (r *rawFile) blocks() (map[uint32]bool, error) {
	out := map[uint32]bool{}
	err := r.scan(0, r.size.Load(), false, func(_ int64, h frameHeader, _ []byte) bool {
		out[h.Block] = true
		return true
	})
	return out, err
}

func (r *rawFile) sync() error { return r.f.Sync() }

func (r *rawFile) close() error { return r.f.Close() }
