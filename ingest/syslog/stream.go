package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/segwatch/segwatch/ingest/event"
)

// streamConn is one TCP or TLS connection.
type streamConn struct {
	c         net.Conn
	src       netip.Addr
	transport string
}

// serveConn reads one connection until it ends, its peer misbehaves, it
// idles out or the receiver stops. Whatever was read is queued before it
// returns; a panic is contained to this connection.
func (r *Receiver) serveConn(ctx context.Context, sc *streamConn) {
	defer r.handlers.Done()
	defer r.release(sc)
	defer sc.c.Close()
	var batch []event.Event
	defer func() {
		if p := recover(); p != nil {
			r.m.panics.Inc()
			r.m.droppedPanic.Add(len(batch))
			r.log.Error("syslog connection handler panicked", "transport", sc.transport, "source", sc.src,
				"panic", p, "events_lost", len(batch), "stack", string(debug.Stack()))
		}
	}()

	conn := sc.c
	if sc.transport == TransportTLS {
		tc := tls.Server(sc.c, r.tlsConf)
		if err := r.handshake(ctx, tc, sc); err != nil {
			r.m.tlsHandshakeErrors.Inc()
			level := slog.LevelWarn
			if errors.Is(err, io.EOF) {
				level = slog.LevelDebug // port probes and health checks
			}
			r.log.Log(ctx, level, "syslog tls handshake", "source", sc.src, "err", err)
			return
		}
		conn = tc
	}

	srcText := sc.src.String()
	received := r.m.received(sc.transport)
	dr := &deadlineReader{c: conn, idle: r.cfg.IdleTimeout, stopping: &r.stopping}
	f := newFramer(dr, r.cfg.MaxMessageBytes, HardFrameLimit)
	p := NewParser(r.popts)
	for {
		frame, truncated, err := f.next()
		if frame != nil {
			ev := p.parse(frame, r.now(), truncated)
			r.enrich(&ev, sc.src, srcText)
			r.count(&ev)
			received.Inc()
			batch = append(batch, ev)
		}
		if len(batch) > 0 && (err != nil || len(batch) >= batchMax || !f.ready()) {
			if !r.putStream(handOver(batch), sc) {
				return
			}
			clear(batch)
			batch = batch[:0]
		}
		if err != nil {
			r.connEnded(sc, err)
			return
		}
	}
}

func (r *Receiver) handshake(ctx context.Context, tc *tls.Conn, sc *streamConn) error {
	hctx, cancel := context.WithTimeout(ctx, min(handshakeTimeout, r.cfg.IdleTimeout))
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return err
	}
	return r.peers.allowed(tc.ConnectionState())
}

// putStream waits for the rate limit, then queues batch, blocking while the
// queue is full: the connection is not read meanwhile, so TCP flow control
// slows the sender down and nothing is lost. It reports false when the
// batch could not be queued (shutdown grace time over).
func (r *Receiver) putStream(batch []event.Event, sc *streamConn) bool {
	if d := r.limit.take(sc.src, len(batch)); d > 0 && !r.stopping.Load() {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.stopCh:
			t.Stop()
		}
	}
	if err := r.sink.Put(r.putCtx, batch); err != nil {
		r.m.droppedShutdown.Add(len(batch))
		r.log.Warn("syslog: events read but not queued", "transport", sc.transport, "source", sc.src,
			"events", len(batch), "err", err, "reason", ReasonShutdown)
		return false
	}
	return true
}

// connEnded logs why a connection ended and counts bad frames.
func (r *Receiver) connEnded(sc *streamConn, err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, errBadFrame):
		r.m.droppedBadFrame.Inc()
		r.log.Warn("syslog connection closed: bad frame", "transport", sc.transport, "source", sc.src,
			"err", err, "reason", ReasonBadFrame)
	case errors.Is(err, errStopping) || (r.stopping.Load() && errors.Is(err, os.ErrDeadlineExceeded)):
	case errors.Is(err, os.ErrDeadlineExceeded):
		r.log.Debug("syslog connection idle, closed", "transport", sc.transport, "source", sc.src)
	default:
		r.log.Debug("syslog connection read", "transport", sc.transport, "source", sc.src, "err", err)
	}
}

// handOver returns a copy of batch of exactly its length for the sink,
// which keeps it: the receiver goes on reusing its own buffer, and a slow
// sender's one-event batches do not each cost a full-size buffer.
func handOver(batch []event.Event) []event.Event {
	return append(make([]event.Event, 0, len(batch)), batch...)
}

// count updates the per-message metrics.
func (r *Receiver) count(ev *event.Event) {
	if ev.ParseError != "" {
		r.m.parseErrors.Inc()
	}
	if ev.Truncated {
		r.m.truncated.Inc()
	}
}

var errStopping = errors.New("receiver stopping")

// deadlineReader renews the idle deadline before each read and refuses to
// read once the receiver is stopping. The deadline is set before stopping
// is checked, and the receiver sets stopping before it moves every deadline
// into the past, so a read cannot block past shutdown whatever the
// interleaving.
type deadlineReader struct {
	c        net.Conn
	idle     time.Duration
	stopping *atomic.Bool
}

func (d *deadlineReader) Read(b []byte) (int, error) {
	if err := d.c.SetReadDeadline(time.Now().Add(d.idle)); err != nil {
		return 0, err
	}
	if d.stopping.Load() {
		return 0, errStopping
	}
	return d.c.Read(b)
}
