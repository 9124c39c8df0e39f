// Package netflow receives NetFlow v5, v9 and IPFIX over UDP, decodes it
// with goflow2's decoders (templates kept per exporter address and
// observation domain, expired and bounded), normalizes every flow into a
// kind=flow event (SPEC §4), counts it in the segment traffic rollup and
// hands the events, aggregated per minute, to the ingest queue.
//
// A malformed packet is counted in segwatch_netflow_decode_errors_total
// with its reason and dropped; nothing a sender does stops the receiver.
package netflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/segwatch/segwatch/index/traffic"
	"github.com/segwatch/segwatch/ingest/event"
	"github.com/segwatch/segwatch/ingest/inventory"
)

// Config is the receiver's configuration (SPEC §1 --netflow, §2 netflow).
type Config struct {
	// Addr is the UDP listen address.
	Addr string
	// Aggregate is the aggregation interval; 0 indexes every flow as
	// exported.
	Aggregate time.Duration
	// TemplateTimeout drops a template not refreshed for this long; 0
	// keeps templates until evicted by the bounds.
	TemplateTimeout time.Duration
	// MaxTemplatesPerExporter bounds the templates (and observation
	// domains) held per exporter address; the least recently refreshed
	// goes first. Fields are bounded to 64 per template on average.
	MaxTemplatesPerExporter int
	// MaxExporters bounds the exporter addresses whose templates are held.
	MaxExporters int
	// MaxAggregates bounds the open aggregates; when full they are
	// emitted early.
	MaxAggregates int
	// ReadBuffer is the socket receive buffer asked for (best effort).
	ReadBuffer int
}

// DefaultConfig returns the defaults of SPEC §1-2.
func DefaultConfig() Config {
	return Config{
		Addr:                    ":2055",
		Aggregate:               time.Minute,
		TemplateTimeout:         30 * time.Minute,
		MaxTemplatesPerExporter: 256,
		MaxExporters:            1024,
		MaxAggregates:           100_000,
		ReadBuffer:              4 << 20,
	}
}

// Sink takes the events; *queue.Queue satisfies it. The receiver hands
// over slices it never touches again.
type Sink interface {
	Put(ctx context.Context, evs []event.Event) error
	TryPut(evs []event.Event) bool
}

// Deps are the receiver's collaborators. Sink is required; Logger,
// Metrics, Inventory, Traffic (nil: no traffic accounting) and Now have
// usable defaults.
type Deps struct {
	Logger    *slog.Logger
	Metrics   *metrics.Set
	Inventory *inventory.Holder
	Sink      Sink
	Traffic   *traffic.Store
	Now       func() time.Time
}

// Receiver is the NetFlow/IPFIX UDP receiver.
type Receiver struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	dec  *Decoder
	agg  *aggregator // nil when raw

	conn *net.UDPConn

	idPrefix string
	idSeq    atomic.Uint64

	m receiverMetrics
}

type receiverMetrics struct {
	set          *metrics.Set
	packets      sync.Map // version label -> *metrics.Counter
	flows        *metrics.Counter
	dropped      *metrics.Counter
	trafficErrs  *metrics.Counter
	templates    *metrics.Gauge
	expired      *metrics.Counter
	evicted      *metrics.Counter
	emitted      *metrics.Counter
	decodeErrors map[string]*metrics.Counter
}

// New validates cfg and deps and builds a receiver; it opens nothing.
func New(cfg Config, deps Deps) (*Receiver, error) {
	if cfg.Addr == "" {
		return nil, errors.New("netflow: listen address is empty")
	}
	if cfg.Aggregate < 0 || (cfg.Aggregate > 0 && cfg.Aggregate < time.Second) {
		return nil, fmt.Errorf("netflow: aggregate %v: want 0 or at least 1s", cfg.Aggregate)
	}
	if cfg.TemplateTimeout < 0 {
		return nil, fmt.Errorf("netflow: template_timeout %v is negative", cfg.TemplateTimeout)
	}
	if cfg.MaxTemplatesPerExporter <= 0 || cfg.MaxExporters <= 0 || cfg.MaxAggregates <= 0 {
		return nil, errors.New("netflow: template, exporter and aggregate bounds must be positive")
	}
	if deps.Sink == nil {
		return nil, errors.New("netflow: no sink")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.NewSet()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Inventory == nil {
		inv, err := inventory.New(nil, nil)
		if err != nil {
			return nil, fmt.Errorf("netflow: empty inventory: %w", err)
		}
		deps.Inventory = inventory.NewHolder(inv)
	}
	r := &Receiver{
		cfg:      cfg,
		deps:     deps,
		log:      deps.Logger.With("component", "netflow"),
		dec:      NewDecoder(cfg.TemplateTimeout, cfg.MaxTemplatesPerExporter, cfg.MaxExporters),
		idPrefix: "nf" + strconv.FormatInt(deps.Now().UnixNano(), 36) + "-",
	}
	if cfg.Aggregate > 0 {
		r.agg = newAggregator(cfg.Aggregate, cfg.MaxAggregates)
	}
	s := deps.Metrics
	r.m = receiverMetrics{
		set:         s,
		flows:       s.GetOrCreateCounter(`segwatch_netflow_flows_received_total`),
		dropped:     s.GetOrCreateCounter(`segwatch_events_dropped_total{reason="queue_full"}`),
		trafficErrs: s.GetOrCreateCounter(`segwatch_netflow_traffic_errors_total`),
		templates:   s.GetOrCreateGauge(`segwatch_netflow_templates`, nil),
		expired:     s.GetOrCreateCounter(`segwatch_netflow_templates_expired_total`),
		evicted:     s.GetOrCreateCounter(`segwatch_netflow_templates_evicted_total`),
		emitted:     s.GetOrCreateCounter(`segwatch_netflow_events_emitted_total`),
		decodeErrors: map[string]*metrics.Counter{
			ReasonTruncated:   nil,
			ReasonVersion:     nil,
			ReasonMalformed:   nil,
			ReasonNoTemplate:  nil,
			ReasonBadTemplate: nil,
			ReasonPanic:       nil,
		},
	}
	for reason := range r.m.decodeErrors {
		r.m.decodeErrors[reason] = s.GetOrCreateCounter(`segwatch_netflow_decode_errors_total{reason="` + reason + `"}`)
	}
	return r, nil
}

// Listen binds the UDP socket, so that an address in use is reported
// before anything else starts. Run calls it if it was not called.
func (r *Receiver) Listen() error {
	if r.conn != nil {
		return nil
	}
	pc, err := net.ListenPacket("udp", r.cfg.Addr)
	if err != nil {
		return fmt.Errorf("netflow listen %s: %w", r.cfg.Addr, err)
	}
	conn := pc.(*net.UDPConn)
	if r.cfg.ReadBuffer > 0 {
		// Best effort: the kernel caps it at net.core.rmem_max.
		_ = conn.SetReadBuffer(r.cfg.ReadBuffer)
	}
	r.conn = conn
	return nil
}

// Addr is the bound address (nil before Listen).
func (r *Receiver) Addr() net.Addr {
	if r.conn == nil {
		return nil
	}
	return r.conn.LocalAddr()
}

// Run receives until ctx ends, then emits the open aggregates (with a
// context of its own, so the shutdown flush is not cancelled) and returns.
func (r *Receiver) Run(ctx context.Context) error {
	if err := r.Listen(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = r.conn.Close() })
	defer stop()

	tickDone := make(chan struct{})
	go func() {
		defer close(tickDone)
		r.tick(ctx)
	}()

	buf := make([]byte, 65535)
	var flows []Flow
	var err error
	for {
		n, from, rerr := r.conn.ReadFromUDPAddrPort(buf)
		if rerr != nil {
			if ctx.Err() != nil || errors.Is(rerr, net.ErrClosed) {
				break
			}
			// Transient (e.g. ICMP-induced) errors: go on.
			r.log.Debug("netflow read", "err", rerr)
			continue
		}
		flows = r.handle(buf[:n], from.Addr(), flows[:0])
	}
	_ = r.conn.Close()
	<-tickDone
	if r.agg != nil {
		if evs := r.agg.flush(); len(evs) > 0 {
			r.assignIDs(evs)
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			for _, chunk := range chunks(evs) {
				if perr := r.deps.Sink.Put(fctx, chunk); perr != nil {
					r.m.dropped.Add(len(chunk))
					err = fmt.Errorf("netflow flush aggregates: %w", perr)
				} else {
					r.m.emitted.Add(len(chunk))
				}
			}
			cancel()
		}
	}
	return err
}

// tick closes aggregation windows while the socket is quiet, and once a
// minute expires templates and writes the traffic rollup's changed days.
func (r *Receiver) tick(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastExpire := r.deps.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := r.deps.Now()
		if r.agg != nil {
			r.emit(r.agg.roll(now))
		}
		if now.Sub(lastExpire) >= time.Minute {
			lastExpire = now
			r.m.expired.Add(r.dec.Expire(now))
			_, n := r.dec.Templates()
			r.m.templates.Set(float64(n))
			if r.deps.Traffic != nil {
				// The store may also run its own flush loop; a second
				// Flush with nothing changed writes nothing.
				if err := r.deps.Traffic.Flush(); err != nil {
					r.log.Error("traffic flush", "err", err)
				}
			}
		}
	}
}

// handle decodes and forwards one datagram. It recovers from a panic in
// normalization too, so a single bad packet never ends Run.
func (r *Receiver) handle(pkt []byte, from netip.Addr, flows []Flow) (out []Flow) {
	out = flows
	defer func() {
		if p := recover(); p != nil {
			r.m.decodeErrors[ReasonPanic].Inc()
			r.log.Error("netflow packet handling panicked", "exporter", from, "panic", p)
		}
	}()
	now := r.deps.Now()
	flows, st, err := r.dec.Decode(pkt, from, now, flows)
	out = flows
	if st.NoTemplate > 0 {
		r.m.decodeErrors[ReasonNoTemplate].Add(st.NoTemplate)
	}
	if st.TemplatesRejected > 0 {
		r.m.decodeErrors[ReasonBadTemplate].Add(st.TemplatesRejected)
	}
	if n := r.dec.store.takeEvicted(); n > 0 {
		r.m.evicted.Add(n)
	}
	if err != nil {
		var de *DecodeError
		reason := ReasonMalformed
		if errors.As(err, &de) {
			reason = de.Reason
		}
		r.m.decodeErrors[reason].Inc()
		r.log.Debug("netflow decode", "exporter", from, "err", err)
	}
	// Counted after its outcome, so that a scrape which sees a packet
	// received also sees what became of it (monitoring and tests compare
	// the two).
	r.packets(st.Version).Inc()
	if len(flows) == 0 {
		return out
	}
	r.m.flows.Add(len(flows))
	inv := r.deps.Inventory.Load()
	var raw []event.Event
	if r.agg == nil {
		raw = make([]event.Event, 0, len(flows))
	}
	for i := range flows {
		f := &flows[i]
		ev := Normalize(inv, f, now)
		if r.deps.Traffic != nil {
			// Before aggregation, so the rollup is exact per minute.
			if terr := r.deps.Traffic.Add(ev.Time, ev.SrcSegment, ev.DstSegment, ev.Bytes, ev.Packets, 1); terr != nil {
				r.m.trafficErrs.Inc()
			}
		}
		if r.agg == nil {
			ev.ID = r.newID()
			raw = append(raw, ev)
			continue
		}
		r.emit(r.agg.add(f, &ev, now))
	}
	if raw != nil {
		r.emit(raw)
	}
	return out
}

func (r *Receiver) packets(version int) *metrics.Counter {
	label := "unknown"
	switch version {
	case 5, 9, 10:
		label = strconv.Itoa(version)
	}
	if c, ok := r.m.packets.Load(label); ok {
		return c.(*metrics.Counter)
	}
	c := r.m.set.GetOrCreateCounter(`segwatch_netflow_packets_received_total{version="` + label + `"}`)
	r.m.packets.Store(label, c)
	return c
}

// emit hands events to the sink without blocking (UDP cannot push back)
// and counts what does not fit. Aggregates get their ids here.
func (r *Receiver) emit(evs []event.Event) {
	if len(evs) == 0 {
		return
	}
	r.assignIDs(evs)
	for _, chunk := range chunks(evs) {
		if r.deps.Sink.TryPut(chunk) {
			r.m.emitted.Add(len(chunk))
		} else {
			r.m.dropped.Add(len(chunk))
		}
	}
}

func (r *Receiver) assignIDs(evs []event.Event) {
	for i := range evs {
		if evs[i].ID == "" {
			evs[i].ID = r.newID()
		}
	}
}

// emitChunk bounds the batches handed to the sink, so that a big window
// close can partly fit a queue that is not empty.
const emitChunk = 1024

func chunks(evs []event.Event) [][]event.Event {
	var out [][]event.Event
	for len(evs) > emitChunk {
		out = append(out, evs[:emitChunk:emitChunk])
		evs = evs[emitChunk:]
	}
	return append(out, evs)
}

// newID returns an id unique within this process run: a per-receiver
// prefix (its start time) and a sequence number.
func (r *Receiver) newID() string {
	return r.idPrefix + strconv.FormatUint(r.idSeq.Add(1), 36)
}
