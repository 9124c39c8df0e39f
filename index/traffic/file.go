package traffic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
)

// The day file: magic, the segment names the day uses, the hourly section,
// the minute section, and a CRC-32 (IEEE) of everything before it. A
// section is a list of pairs, each with its non-zero cells as (index gap,
// bytes, packets, flows), all unsigned varints: an idle pair costs nothing
// and a busy one about 10 bytes per minute.
const fileMagic = "SWTRAF1\n"

var errCorrupt = errors.New("corrupt traffic day file")

// encodeDay renders d with file-local segment ids. Called with s.mu held.
func (s *Store) encodeDay(d *day) []byte {
	local := make(map[uint16]uint64)
	var names []string
	lid := func(id uint16) uint64 {
		if l, ok := local[id]; ok {
			return l
		}
		l := uint64(len(names))
		local[id] = l
		names = append(names, s.names[id])
		return l
	}
	for p := range d.hours {
		lid(p.from())
		lid(p.to())
	}
	b := []byte(fileMagic)
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = binary.AppendUvarint(b, uint64(len(n)))
		b = append(b, n...)
	}
	b = binary.AppendUvarint(b, uint64(len(d.hours)))
	for p, h := range d.hours {
		b = appendCells(b, lid(p.from()), lid(p.to()), h[:])
	}
	b = binary.AppendUvarint(b, uint64(len(d.mins)))
	for p, m := range d.mins {
		b = appendCells(b, lid(p.from()), lid(p.to()), m[:])
	}
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func appendCells(b []byte, from, to uint64, cells []Counters) []byte {
	b = binary.AppendUvarint(b, from)
	b = binary.AppendUvarint(b, to)
	n := 0
	for i := range cells {
		if !cells[i].zero() {
			n++
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	prev := -1
	for i := range cells {
		if cells[i].zero() {
			continue
		}
		b = binary.AppendUvarint(b, uint64(i-prev-1))
		b = binary.AppendUvarint(b, cells[i].Bytes)
		b = binary.AppendUvarint(b, cells[i].Packets)
		b = binary.AppendUvarint(b, cells[i].Flows)
		prev = i
	}
	return b
}

// readDay reads day n from its file, mapping its names to store ids.
// Called with s.mu held.
func (s *Store) readDay(n int64, withMinutes bool) (*day, error) {
	data, err := os.ReadFile(s.path(n))
	if err != nil {
		return nil, fmt.Errorf("read traffic day: %w", err)
	}
	d, err := s.decodeDay(n, data, withMinutes)
	if err != nil {
		return nil, fmt.Errorf("read traffic day %s: %w", s.path(n), err)
	}
	return d, nil
}

// decodeDay parses a day file; every length and index is checked, so a
// damaged file is an error, never a panic or a huge allocation.
func (s *Store) decodeDay(n int64, data []byte, withMinutes bool) (*day, error) {
	if len(data) < len(fileMagic)+4 || string(data[:len(fileMagic)]) != fileMagic {
		return nil, errCorrupt
	}
	body := data[:len(data)-4]
	if crc32.ChecksumIEEE(body) != binary.BigEndian.Uint32(data[len(data)-4:]) {
		return nil, fmt.Errorf("%w: checksum", errCorrupt)
	}
	r := reader{b: body[len(fileMagic):]}
	nn := r.uvarint()
	if nn > uint64(len(r.b)) {
		return nil, errCorrupt
	}
	ids := make([]uint16, 0, nn)
	for range nn {
		l := r.uvarint()
		if l > uint64(len(r.b)) {
			return nil, errCorrupt
		}
		name := string(r.b[:l])
		r.b = r.b[l:]
		id, ok := s.id(name)
		if !ok {
			return nil, errors.New("too many segment names")
		}
		ids = append(ids, id)
	}
	d := &day{num: n, hours: make(map[pair]*hourCells), mins: make(map[pair]*minuteCells)}
	np := r.uvarint()
	for i := uint64(0); i < np && r.err == nil; i++ {
		p, ok := r.pair(ids)
		if !ok {
			return nil, errCorrupt
		}
		h := new(hourCells)
		if !r.cells(h[:]) {
			return nil, errCorrupt
		}
		d.hours[p] = h
	}
	if withMinutes {
		np = r.uvarint()
		for i := uint64(0); i < np && r.err == nil; i++ {
			p, ok := r.pair(ids)
			if !ok {
				return nil, errCorrupt
			}
			m := new(minuteCells)
			if !r.cells(m[:]) {
				return nil, errCorrupt
			}
			d.mins[p] = m
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return d, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) pair(ids []uint16) (pair, bool) {
	f, t := r.uvarint(), r.uvarint()
	if r.err != nil || f >= uint64(len(ids)) || t >= uint64(len(ids)) {
		return 0, false
	}
	return mkPair(ids[f], ids[t]), true
}

func (r *reader) cells(c []Counters) bool {
	n := r.uvarint()
	if n > uint64(len(c)) {
		return false
	}
	i := -1
	for range n {
		gap := r.uvarint()
		if r.err != nil || gap >= uint64(len(c)) {
			return false
		}
		i += int(gap) + 1
		if i >= len(c) {
			return false
		}
		c[i] = Counters{r.uvarint(), r.uvarint(), r.uvarint()}
	}
	return r.err == nil
}
