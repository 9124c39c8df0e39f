package netflow

import (
	"net/netip"
	"sync"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// templateKey names one template of one exporter: RFC 7011 scopes template
// ids to the observation domain (v9: source id), and v9 and IPFIX ids are
// distinct spaces.
type templateKey struct {
	version  uint16
	domain   uint32
	template uint16
}

// domainKey names one observation domain (v9: source id) of one exporter.
type domainKey struct {
	version uint16
	domain  uint32
}

type templateEntry struct {
	template any // netflow.TemplateRecord, NFv9OptionsTemplateRecord or IPFIXOptionsTemplateRecord
	fields   int
	updated  time.Time
}

// domainState is what options data tell about a domain: its sampling rate
// and, for IPFIX, the exporter's boot time that relative times refer to.
type domainState struct {
	sampling  uint64 // 0 = unknown (treated as 1)
	sysInitMs int64  // 0 = unknown
	updated   time.Time
}

type exporterState struct {
	templates map[templateKey]*templateEntry
	fields    int // sum of the templates' field counts, for the memory bound
	domains   map[domainKey]*domainState
	updated   time.Time
}

// templateStore keeps the templates and options state of every exporter.
// Memory is bounded three ways, so that a flood of templates (or of spoofed
// exporter addresses) cannot grow it without limit: templates per exporter,
// template fields per exporter, and exporters. When a bound is reached the
// least recently refreshed entry goes; real exporters re-send their
// templates periodically, so an evicted live template comes back.
type templateStore struct {
	mu           sync.Mutex
	timeout      time.Duration
	maxTemplates int // per exporter; also bounds domains per exporter
	maxFields    int // per exporter
	maxExporters int
	exporters    map[netip.Addr]*exporterState

	evicted int // evictions since the last call of takeEvicted
}

func newTemplateStore(timeout time.Duration, maxTemplates, maxExporters int) *templateStore {
	return &templateStore{
		timeout:      timeout,
		maxTemplates: maxTemplates,
		// 64 fields per template on average is more than real exporters
		// use (softflowd: 14, Cisco: ~20-40); a few larger ones still fit.
		maxFields:    64 * maxTemplates,
		maxExporters: maxExporters,
		exporters:    make(map[netip.Addr]*exporterState),
	}
}

// exporter returns the state of addr, creating it (and evicting the least
// recently updated exporter when full) if create is set.
func (s *templateStore) exporter(addr netip.Addr, now time.Time, create bool) *exporterState {
	e := s.exporters[addr]
	if e != nil || !create {
		return e
	}
	if len(s.exporters) >= s.maxExporters {
		var oldest netip.Addr
		var ot time.Time
		first := true
		for a, x := range s.exporters {
			if first || x.updated.Before(ot) {
				oldest, ot, first = a, x.updated, false
			}
		}
		delete(s.exporters, oldest)
		s.evicted++
	}
	e = &exporterState{
		templates: make(map[templateKey]*templateEntry),
		domains:   make(map[domainKey]*domainState),
	}
	s.exporters[addr] = e
	return e
}

// add stores a template; it reports false when the template is unusable
// (no field with a length: decoding data with it would never advance).
func (s *templateStore) add(addr netip.Addr, now time.Time, k templateKey, tmpl any) bool {
	var fields []netflow.Field
	switch t := tmpl.(type) {
	case netflow.TemplateRecord:
		if k.version == 10 && t.FieldCount == 0 {
			// RFC 7011 §8.1: a template with no fields withdraws the id.
			s.remove(addr, k)
			return true
		}
		fields = t.Fields
	case netflow.NFv9OptionsTemplateRecord:
		fields = append(append(fields, t.Scopes...), t.Options...)
	case netflow.IPFIXOptionsTemplateRecord:
		fields = append(append(fields, t.Scopes...), t.Options...)
	default:
		return false
	}
	if !advances(fields) || len(fields) > s.maxFields {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.exporter(addr, now, true)
	e.updated = now
	if old := e.templates[k]; old != nil {
		e.fields += len(fields) - old.fields
		*old = templateEntry{template: tmpl, fields: len(fields), updated: now}
	} else {
		e.templates[k] = &templateEntry{template: tmpl, fields: len(fields), updated: now}
		e.fields += len(fields)
	}
	for len(e.templates) > s.maxTemplates || e.fields > s.maxFields {
		var oldest templateKey
		var ot time.Time
		first := true
		for tk, te := range e.templates {
			if tk != k && (first || te.updated.Before(ot)) {
				oldest, ot, first = tk, te.updated, false
			}
		}
		if first {
			break
		}
		e.fields -= e.templates[oldest].fields
		delete(e.templates, oldest)
		s.evicted++
	}
	return true
}

// advances reports whether a record of these fields has a non-zero size,
// so that goflow2's "while bytes remain >= record size" loop terminates.
// A variable-length field (0xffff) always consumes its length byte.
func advances(fields []netflow.Field) bool {
	for _, f := range fields {
		if f.Length != 0 {
			return true
		}
	}
	return false
}

func (s *templateStore) get(addr netip.Addr, now time.Time, k templateKey) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.exporters[addr]
	if e == nil {
		return nil, false
	}
	t := e.templates[k]
	if t == nil {
		return nil, false
	}
	if s.timeout > 0 && now.Sub(t.updated) > s.timeout {
		e.fields -= t.fields
		delete(e.templates, k)
		return nil, false
	}
	return t.template, true
}

func (s *templateStore) remove(addr netip.Addr, k templateKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.exporters[addr]
	if e == nil || e.templates[k] == nil {
		return false
	}
	e.fields -= e.templates[k].fields
	delete(e.templates, k)
	return true
}

// domain returns a copy of the options state of a domain.
func (s *templateStore) domain(addr netip.Addr, k domainKey) domainState {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.exporters[addr]; e != nil {
		if d := e.domains[k]; d != nil {
			return *d
		}
	}
	return domainState{}
}

// setDomain records options data of a domain; zero values leave the
// current value alone.
func (s *templateStore) setDomain(addr netip.Addr, now time.Time, k domainKey, sampling uint64, sysInitMs int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.exporter(addr, now, true)
	d := e.domains[k]
	if d == nil {
		if len(e.domains) >= s.maxTemplates {
			var oldest domainKey
			var ot time.Time
			first := true
			for dk, ds := range e.domains {
				if first || ds.updated.Before(ot) {
					oldest, ot, first = dk, ds.updated, false
				}
			}
			delete(e.domains, oldest)
			s.evicted++
		}
		d = &domainState{}
		e.domains[k] = d
	}
	d.updated = now
	if sampling > 0 {
		d.sampling = sampling
	}
	if sysInitMs > 0 {
		d.sysInitMs = sysInitMs
	}
}

// expire drops templates and domain state not refreshed within the
// timeout, and exporters left with nothing. It returns the templates dropped.
func (s *templateStore) expire(now time.Time) int {
	if s.timeout <= 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for a, e := range s.exporters {
		for k, t := range e.templates {
			if now.Sub(t.updated) > s.timeout {
				e.fields -= t.fields
				delete(e.templates, k)
				n++
			}
		}
		for k, d := range e.domains {
			if now.Sub(d.updated) > s.timeout {
				delete(e.domains, k)
			}
		}
		if len(e.templates) == 0 && len(e.domains) == 0 {
			delete(s.exporters, a)
		}
	}
	return n
}

// counts returns the exporters and templates held (for tests and metrics).
func (s *templateStore) counts() (exporters, templates int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.exporters {
		templates += len(e.templates)
	}
	return len(s.exporters), templates
}

func (s *templateStore) takeEvicted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.evicted
	s.evicted = 0
	return n
}

// exporterView adapts the store to goflow2's NetFlowTemplateSystem for the
// packets of one exporter: goflow2 keys templates by version, domain and id
// only, the view adds the exporter address. It also counts templates it
// refused, which goflow2 has no way to report without failing the packet.
type exporterView struct {
	s        *templateStore
	addr     netip.Addr
	now      time.Time
	rejected int
}

var _ netflow.NetFlowTemplateSystem = (*exporterView)(nil)

// AddTemplate implements netflow.NetFlowTemplateSystem. A refused template
// is counted, not returned as an error, so the rest of the packet still
// decodes.
func (v *exporterView) AddTemplate(version uint16, domain uint32, id uint16, tmpl any) error {
	if !v.s.add(v.addr, v.now, templateKey{version, domain, id}, tmpl) {
		v.rejected++
	}
	return nil
}

// GetTemplate implements netflow.NetFlowTemplateSystem; an expired template
// is not found.
func (v *exporterView) GetTemplate(version uint16, domain uint32, id uint16) (any, error) {
	t, ok := v.s.get(v.addr, v.now, templateKey{version, domain, id})
	if !ok {
		return nil, netflow.ErrorTemplateNotFound
	}
	return t, nil
}

// RemoveTemplate implements netflow.NetFlowTemplateSystem.
func (v *exporterView) RemoveTemplate(version uint16, domain uint32, id uint16) (any, error) {
	if !v.s.remove(v.addr, templateKey{version, domain, id}) {
		return nil, netflow.ErrorTemplateNotFound
	}
	return nil, nil
}

// GetTemplates implements netflow.NetFlowTemplateSystem. goflow2's decoder
// does not call it; the store is not exposed as one flat map.
func (v *exporterView) GetTemplates() netflow.FlowBaseTemplateSet {
	return netflow.FlowBaseTemplateSet{}
}
