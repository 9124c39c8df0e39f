package index

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Event IDs are "YYYYMMDD-B-I": the UTC day of the event, its block's number
// within that day and its index within the block, both in hex, e.g.
// "20261203-1a2b-3f". Block numbers are handed out when a block is opened, so
// Append can return IDs before the block is written, and they continue after
// a restart from the high-water mark in the last frame.

// ErrNotFound is returned by Get for an ID that names no stored event.
var ErrNotFound = errors.New("event not found")

// dayKey is a UTC day as days since the Unix epoch.
type dayKey int64

func dayOf(t time.Time) dayKey {
	s := t.Unix()
	d := s / 86400
	if s < 0 && s%86400 != 0 {
		d--
	}
	return dayKey(d)
}

func (d dayKey) time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// dirName is the shard directory name, YYYY-MM-DD.
func (d dayKey) dirName() string { return d.time().Format(time.DateOnly) }

func parseDayDir(name string) (dayKey, bool) {
	t, err := time.Parse(time.DateOnly, name)
	if err != nil || t.Format(time.DateOnly) != name {
		return 0, false
	}
	return dayOf(t), true
}

// idPrefix is the part of an event ID shared by a block: "YYYYMMDD-B-".
func idPrefix(d dayKey, block uint32) string {
	b := make([]byte, 0, 24)
	b = d.time().AppendFormat(b, "20060102")
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(block), 16)
	b = append(b, '-')
	return string(b)
}

// eventID formats the ID of the idx-th event of a block given its prefix.
func eventID(prefix string, idx int) string {
	var buf [40]byte
	b := append(buf[:0], prefix...)
	b = strconv.AppendUint(b, uint64(idx), 16)
	return string(b)
}

// parseEventID is the inverse of eventID.
func parseEventID(id string) (d dayKey, block uint32, idx int, ok bool) {
	day, rest, ok1 := strings.Cut(id, "-")
	bs, is, ok2 := strings.Cut(rest, "-")
	// Only the canonical form: one ID, one spelling.
	if !ok1 || !ok2 || len(day) != 8 || noncanonical(bs) || noncanonical(is) {
		return 0, 0, 0, false
	}
	t, err := time.Parse("20060102", day)
	if err != nil {
		return 0, 0, 0, false
	}
	b, err1 := strconv.ParseUint(bs, 16, 32)
	i, err2 := strconv.ParseUint(is, 16, 31)
	if err1 != nil || err2 != nil {
		return 0, 0, 0, false
	}
	return dayOf(t), uint32(b), int(i), true
}

func noncanonical(hex string) bool {
	return len(hex) == 0 || len(hex) > 1 && hex[0] == '0' || strings.ToLower(hex) != hex
}

// blockRef is what a block document's ID tells about its frame: enough to
// order candidates by time, count them and read them, with no stored field.
type blockRef struct {
	off          int64
	count        int
	block        uint32
	minMs, maxMs int64 // min rounded down, max rounded up
}

// docID formats a block document ID: hex offset.count.block.minMs.maxMs.
func docID(r blockRef) string {
	b := make([]byte, 0, 48)
	b = strconv.AppendUint(b, uint64(r.off), 16)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(r.count), 16)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(r.block), 16)
	b = append(b, '.')
	b = strconv.AppendInt(b, r.minMs, 16)
	b = append(b, '.')
	b = strconv.AppendInt(b, r.maxMs, 16)
	return string(b)
}

func parseDocID(s string) (blockRef, bool) {
	var f [5]int64
	for i := range f {
		part := s
		if i < len(f)-1 {
			var ok bool
			part, s, ok = strings.Cut(s, ".")
			if !ok {
				return blockRef{}, false
			}
		}
		v, err := strconv.ParseInt(part, 16, 64)
		if err != nil {
			return blockRef{}, false
		}
		f[i] = v
	}
	if f[0] < 0 || f[1] <= 0 || f[1] > 1<<31 || f[2] < 0 || f[2] > 1<<32-1 {
		return blockRef{}, false
	}
	return blockRef{off: f[0], count: int(f[1]), block: uint32(f[2]), minMs: f[3], maxMs: f[4]}, true
}

// msFloor and msCeil round unix nanoseconds to milliseconds outward, so a
// block's millisecond bounds always contain its events.
func msFloor(ns int64) int64 {
	ms := ns / 1e6
	if ns < 0 && ns%1e6 != 0 {
		ms--
	}
	return ms
}

func msCeil(ns int64) int64 {
	ms := ns / 1e6
	if ns > 0 && ns%1e6 != 0 {
		ms++
	}
	return ms
}
