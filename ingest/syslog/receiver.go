// Package syslog is segwatch's syslog input (SPEC §3): UDP, TCP and TLS
// (RFC 5425) listeners, RFC 6587 framing detected per connection, RFC 5424
// and RFC 3164 parsing detected per message, and normalization into
// event.Event, enriched from the inventory and handed to a Sink (the ingest
// queue). Parsing (Parser) and framing are pure and fuzzed; the Receiver
// owns sockets, limits and metrics.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/segwatch/segwatch/ingest/event"
	"github.com/segwatch/segwatch/ingest/inventory"
)

// Sink takes batches of events. *queue.Queue implements it. A batch handed
// over belongs to the sink: the receiver never touches it again.
type Sink interface {
	// Put blocks until the batch is queued or ctx ends (TCP/TLS:
	// backpressure, nothing dropped).
	Put(ctx context.Context, evs []event.Event) error
	// TryPut queues the batch only if there is room now (UDP).
	TryPut(evs []event.Event) bool
}

// Deps are the Receiver's collaborators.
type Deps struct {
	Logger  *slog.Logger // nil: discard
	Metrics *metrics.Set // required
	// Inventory enriches events with device, segment, owner and category
	// of the source address. nil: no enrichment.
	Inventory *inventory.Holder
	Sink      Sink             // required
	Now       func() time.Time // nil: time.Now
}

// Addrs are the bound listener addresses; nil for a listener that is off.
type Addrs struct {
	UDP, TCP, TLS net.Addr
}

// Tunables that are not configuration.
const (
	// batchMax bounds a batch handed to the sink.
	batchMax = 256
	// udpFlushEvery bounds how long a UDP event waits in a partial batch.
	udpFlushEvery = 5 * time.Millisecond
	// udpReaders read the one UDP socket in parallel: parsing is the cost,
	// and one reader per core keeps the socket buffer drained.
	udpReaders = 2
	// udpReadBuffer is the SO_RCVBUF asked for (Linux doubles it for its
	// bookkeeping: about 32 MiB in use at most); the kernel may grant less
	// (net.core.rmem_max), which is logged at start.
	udpReadBuffer = 16 << 20
	// drainTimeout is how long, at shutdown, connection handlers may wait
	// for the sink to take events already read before those are counted
	// as dropped.
	drainTimeout = 5 * time.Second
	// handshakeTimeout bounds a TLS handshake.
	handshakeTimeout = 30 * time.Second
)

// Receiver runs the syslog listeners. New validates; Listen binds the
// sockets (so that "address in use" is reported before anything else
// starts); Run serves until its context ends.
type Receiver struct {
	cfg     Config
	log     *slog.Logger
	inv     *inventory.Holder
	sink    Sink
	now     func() time.Time
	m       *receiverMetrics
	popts   ParseOptions
	tlsConf *tls.Config
	peers   *peerMatcher
	limit   *limiter

	udp     *net.UDPConn
	tcp     net.Listener
	tlsLn   net.Listener
	started atomic.Bool

	// stopping is set when Run's context ends; handlers then finish what
	// they have read and leave. stopCh is closed at the same moment.
	stopping atomic.Bool
	stopCh   chan struct{}
	// putCtx outlives Run's context, so that events already read are still
	// queued during shutdown; it is cancelled only after drainTimeout.
	putCtx    context.Context
	cancelPut context.CancelFunc

	udpMu       sync.Mutex
	udpPending  int // UDP readers with a partial batch
	lastDropLog atomic.Int64

	mu        sync.Mutex
	conns     map[*streamConn]struct{}
	perSource map[netip.Addr]int
	handlers  sync.WaitGroup
}

// New validates cfg and deps and loads the TLS certificates. It opens no
// socket.
func New(cfg Config, d Deps) (*Receiver, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("syslog config: %w", err)
	}
	if d.Metrics == nil || d.Sink == nil {
		return nil, errors.New("syslog: Metrics and Sink are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	r := &Receiver{
		cfg:  cfg,
		log:  d.Logger,
		inv:  d.Inventory,
		sink: d.Sink,
		now:  d.Now,
		m:    newReceiverMetrics(d.Metrics),
		popts: ParseOptions{
			Timezone:        cfg.Timezone,
			MaxMessageBytes: cfg.MaxMessageBytes,
			MaxAge:          cfg.MaxAge,
		},
		limit:     newLimiter(cfg.RateBurst, cfg.RateInterval, d.Now),
		stopCh:    make(chan struct{}),
		conns:     make(map[*streamConn]struct{}),
		perSource: make(map[netip.Addr]int),
	}
	if cfg.TLSAddr != "" {
		conf, err := buildTLS(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("syslog tls: %w", err)
		}
		r.tlsConf = conf
		if r.peers, err = newPeerMatcher(cfg.TLS.AllowedPeers); err != nil {
			return nil, fmt.Errorf("syslog tls: %w", err)
		}
	}
	return r, nil
}

// Listen binds every configured listener. On error nothing stays bound.
// Calling it again is a no-op.
func (r *Receiver) Listen() (err error) {
	if r.udp != nil || r.tcp != nil || r.tlsLn != nil {
		return nil
	}
	defer func() {
		if err != nil {
			r.closeListeners()
			r.udp, r.tcp, r.tlsLn = nil, nil, nil
		}
	}()
	if r.cfg.UDPAddr != "" {
		ua, err := net.ResolveUDPAddr("udp", r.cfg.UDPAddr)
		if err != nil {
			return fmt.Errorf("syslog udp listen %s: %w", r.cfg.UDPAddr, err)
		}
		if r.udp, err = net.ListenUDP("udp", ua); err != nil {
			return fmt.Errorf("syslog udp listen: %w", err)
		}
		if err := r.udp.SetReadBuffer(udpReadBuffer); err != nil {
			r.log.Warn("syslog udp: cannot set receive buffer", "err", err)
		}
		// Linux reports twice what was set (bookkeeping overhead included).
		if granted := readBufferOf(r.udp); granted >= 0 && granted < udpReadBuffer {
			forceReadBuffer(r.udp, udpReadBuffer)
		}
		r.log.Debug("syslog udp receive buffer", "asked", udpReadBuffer, "granted", readBufferOf(r.udp))
	}
	if r.cfg.TCPAddr != "" {
		if r.tcp, err = net.Listen("tcp", r.cfg.TCPAddr); err != nil {
			return fmt.Errorf("syslog tcp listen: %w", err)
		}
	}
	if r.cfg.TLSAddr != "" {
		if r.tlsLn, err = net.Listen("tcp", r.cfg.TLSAddr); err != nil {
			return fmt.Errorf("syslog tls listen: %w", err)
		}
	}
	return nil
}

// Addrs returns the bound addresses (after Listen).
func (r *Receiver) Addrs() Addrs {
	var a Addrs
	if r.udp != nil {
		a.UDP = r.udp.LocalAddr()
	}
	if r.tcp != nil {
		a.TCP = r.tcp.Addr()
	}
	if r.tlsLn != nil {
		a.TLS = r.tlsLn.Addr()
	}
	return a
}

func (r *Receiver) closeListeners() {
	if r.udp != nil {
		r.udp.Close()
	}
	if r.tcp != nil {
		r.tcp.Close()
	}
	if r.tlsLn != nil {
		r.tlsLn.Close()
	}
}

// Run serves the listeners (binding them first if Listen was not called)
// until ctx ends. Then it stops accepting, closes the listeners, lets every
// connection handler queue the messages it has already read, and returns
// nil. It returns an error if a listener fails while running.
func (r *Receiver) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("syslog: Run called twice")
	}
	if err := r.Listen(); err != nil {
		return err
	}
	r.putCtx, r.cancelPut = context.WithCancel(context.WithoutCancel(ctx))
	defer r.cancelPut()

	var loops sync.WaitGroup
	fatal := make(chan error, 2)
	if r.udp != nil {
		for range udpReaders {
			loops.Go(func() { r.readUDP() })
		}
	}
	if r.tcp != nil {
		loops.Go(func() { r.accept(ctx, r.tcp, TransportTCP, fatal) })
	}
	if r.tlsLn != nil {
		loops.Go(func() { r.accept(ctx, r.tlsLn, TransportTLS, fatal) })
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-fatal:
	}
	r.stopping.Store(true)
	close(r.stopCh)
	r.closeListeners()
	loops.Wait()
	r.wakeConns()

	done := make(chan struct{})
	go func() { r.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
		r.log.Warn("syslog shutdown: the queue did not take the last events in time; they are counted as dropped",
			"reason", ReasonShutdown)
		r.cancelPut()
		<-done
	}
	return err
}

// accept serves one stream listener.
func (r *Receiver) accept(ctx context.Context, ln net.Listener, transport string, fatal chan<- error) {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if r.stopping.Load() {
				return
			}
			if !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors and the like: wait, retry,
				// as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				r.log.Warn("syslog accept", "transport", transport, "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-r.stopCh:
				}
				continue
			}
			fatal <- fmt.Errorf("syslog %s accept: %w", transport, err)
			return
		}
		backoff = 0
		src := addrOf(c.RemoteAddr())
		sc := &streamConn{c: c, src: src, transport: transport}
		if !r.admit(sc) {
			r.m.droppedTooMany.Inc() // before Close: the peer may look at once
			c.Close()
			r.log.Debug("syslog connection refused: too many connections", "transport", transport, "source", src)
			continue
		}
		r.handlers.Add(1)
		go r.serveConn(ctx, sc)
	}
}

// admit registers sc unless a connection limit is reached.
func (r *Receiver) admit(sc *streamConn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping.Load() || len(r.conns) >= r.cfg.MaxConnections || r.perSource[sc.src] >= r.cfg.MaxConnectionsPerSource {
		return false
	}
	r.conns[sc] = struct{}{}
	r.perSource[sc.src]++
	r.m.connections.Inc()
	return true
}

func (r *Receiver) release(sc *streamConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, sc)
	if r.perSource[sc.src]--; r.perSource[sc.src] <= 0 {
		delete(r.perSource, sc.src)
	}
	r.m.connections.Dec()
}

// wakeConns makes every blocked connection read return at once, so that
// handlers finish the frames already buffered and leave.
func (r *Receiver) wakeConns() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for sc := range r.conns {
		sc.c.SetReadDeadline(aLongTimeAgo)
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// enrich sets the source and inventory fields of ev.
func (r *Receiver) enrich(ev *event.Event, src netip.Addr, srcText string) {
	ev.SourceIP = srcText
	if r.inv != nil {
		if inv := r.inv.Load(); inv != nil {
			inv.EnrichLog(ev, src)
		}
	}
}

func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
