package main

// run.go is the one place that knows every concrete component: it builds
// them from the config (New validates, opens nothing), binds every socket
// (so "address in use" fails before the data dir is touched), then opens the
// stores and runs everything under one errgroup. Shutdown order: receivers
// stop and hand over what they read, the queue closes, the pipeline drains
// it into the index, the index flushes, stores close.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sync/errgroup"

	"github.com/segwatch/segwatch/config"
	"github.com/segwatch/segwatch/index"
	"github.com/segwatch/segwatch/index/traffic"
	"github.com/segwatch/segwatch/ingest/inventory"
	"github.com/segwatch/segwatch/ingest/netflow"
	"github.com/segwatch/segwatch/ingest/pipeline"
	"github.com/segwatch/segwatch/ingest/queue"
	"github.com/segwatch/segwatch/ingest/syslog"
	"github.com/segwatch/segwatch/retention"
	"github.com/segwatch/segwatch/ui"
	"github.com/segwatch/segwatch/ui/auth"
)

// queueEvents bounds the events waiting for the index writer: about a
// second of a 50k events/s burst (~40 MiB); beyond it TCP and TLS senders
// are pushed back and UDP drops are counted.
const queueEvents = 65_536

// defaultMemoryLimit is the Go runtime's soft memory limit unless GOMEMLIMIT
// says otherwise: the issue-4 budget is 1 GiB RSS, and without a limit the
// heap may double between collections while a burst fills the queue and
// the unsealed blocks.
const defaultMemoryLimit = 768 << 20

func serve(ctx context.Context, o serveOptions, cfg *config.Config, log *slog.Logger) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	set := metrics.NewSet()
	inv, err := cfg.Inventory()
	if err != nil {
		return usageError{err}
	}
	invHolder := inventory.NewHolder(inv)
	q := queue.New(queueEvents)
	set.NewGauge("segwatch_ingest_queue_length", func() float64 { return float64(q.Len()) })
	keep := time.Duration(cfg.RetentionDays) * 24 * time.Hour

	// Build every receiver and bind its sockets: nothing is written yet.
	sysCfg := syslog.DefaultConfig()
	sysCfg.UDPAddr, sysCfg.TCPAddr, sysCfg.TLSAddr = off(o.syslogUDP), off(o.syslogTCP), off(o.syslogTLS)
	sysCfg.Timezone = cfg.Syslog.Location
	sysCfg.MaxMessageBytes = cfg.Syslog.MaxMessageBytes
	sysCfg.MaxConnections = cfg.Syslog.MaxConnections
	sysCfg.MaxConnectionsPerSource = cfg.Syslog.MaxConnectionsPerSource
	sysCfg.IdleTimeout = cfg.Syslog.IdleTimeout.D()
	sysCfg.RateBurst = cfg.Syslog.RateLimit.Burst
	sysCfg.RateInterval = cfg.Syslog.RateLimit.Interval.D()
	sysCfg.TLS = syslog.TLSConfig{Cert: cfg.Syslog.TLS.Cert, Key: cfg.Syslog.TLS.Key,
		ClientCA: cfg.Syslog.TLS.ClientCA, AllowedPeers: cfg.Syslog.TLS.AllowedPeers}
	sysCfg.MaxAge = keep
	sysRecv, err := syslog.New(sysCfg, syslog.Deps{Logger: log.With("component", "syslog"), Metrics: set, Inventory: invHolder, Sink: q})
	if err != nil {
		return usageError{fmt.Errorf("syslog: %w", err)}
	}
	if err := sysRecv.Listen(); err != nil {
		return usageError{err}
	}

	var flowRecv *netflow.Receiver
	var trafficStore *traffic.Store
	if o.netflow != "off" {
		nfCfg := netflow.DefaultConfig()
		nfCfg.Addr = o.netflow
		nfCfg.Aggregate = cfg.Netflow.Aggregate.D()
		nfCfg.TemplateTimeout = cfg.Netflow.TemplateTimeout.D()
		trafficStore = traffic.New(filepath.Join(o.data, "traffic"),
			traffic.Options{Logger: log.With("component", "traffic"), Metrics: set})
		flowRecv, err = netflow.New(nfCfg, netflow.Deps{Logger: log.With("component", "netflow"), Metrics: set,
			Inventory: invHolder, Sink: q, Traffic: trafficStore})
		if err != nil {
			return usageError{err}
		}
		if err := flowRecv.Listen(); err != nil {
			return usageError{err}
		}
	}

	var ready atomic.Bool
	var httpLn net.Listener
	if o.http != "off" {
		if cfg.HTTP.TLS.Cert != "" {
			if _, err := tls.LoadX509KeyPair(cfg.HTTP.TLS.Cert, cfg.HTTP.TLS.Key); err != nil {
				return usageError{fmt.Errorf("http.tls: %w", err)}
			}
		}
		httpLn, err = net.Listen("tcp", o.http)
		if err != nil {
			return usageError{fmt.Errorf("http: %w", err)}
		}
		defer httpLn.Close()
	}

	// Sockets are bound: from here on the data dir may be written.
	if err := os.MkdirAll(o.data, 0o750); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	authStore, err := auth.Open(ctx, filepath.Join(o.data, dbFile), auth.Options{})
	if err != nil {
		return err
	}
	defer authStore.Close()
	idx, err := index.Open(ctx, index.Config{Dir: filepath.Join(o.data, "index"), Retention: keep},
		index.Deps{Logger: log.With("component", "index"), Metrics: set})
	if err != nil {
		return fmt.Errorf("open index: %w", err)
	}
	if trafficStore != nil {
		if err := trafficStore.Open(); err != nil {
			idx.Close()
			return fmt.Errorf("open traffic store: %w", err)
		}
	}
	var web *ui.Server
	if httpLn != nil {
		deps := ui.Deps{Logger: log.With("component", "http"), Metrics: set, Auth: authStore, Search: idx, Ready: ready.Load}
		if trafficStore != nil {
			deps.Traffic = trafficStore
		}
		web, err = ui.New(ui.Config{Listener: httpLn, TLSCert: cfg.HTTP.TLS.Cert, TLSKey: cfg.HTTP.TLS.Key,
			TrustedProxies: cfg.HTTP.TrustedProxies}, deps)
		if err != nil {
			idx.Close()
			return fmt.Errorf("http: %w", err)
		}
		if err := web.Listen(); err != nil {
			idx.Close()
			return err
		}
	}
	pipe := pipeline.New(pipeline.Deps{Logger: log.With("component", "pipeline"), Metrics: set, Queue: q, Index: idx})
	rdeps := retention.Deps{Index: idx, Logger: log.With("component", "retention"), Metrics: set}
	if trafficStore != nil {
		rdeps.Traffic = trafficStore
	}
	janitor, err := retention.New(retention.Config{Retention: keep, DataDir: o.data}, rdeps)
	if err != nil {
		idx.Close()
		return err
	}

	// Receivers and the web server stop on ctx; the pipeline stops when the
	// queue is closed after the last receiver returned.
	g, gctx := errgroup.WithContext(ctx)
	recv, rctx := errgroup.WithContext(gctx)
	recv.Go(func() error { return sysRecv.Run(rctx) })
	if flowRecv != nil {
		recv.Go(func() error { return flowRecv.Run(rctx) })
		g.Go(func() error { return trafficStore.Run(gctx) })
	}
	g.Go(func() error {
		err := recv.Wait()
		q.Close()
		return err
	})
	pipeDone := make(chan error, 1)
	go func() { pipeDone <- pipe.Run(context.WithoutCancel(ctx)) }()
	if web != nil {
		g.Go(func() error { return web.Run(gctx) })
	}
	// Stops with the others, before idx.Close below.
	g.Go(func() error { return janitor.Run(gctx) })
	ready.Store(true)
	log.Info("segwatch serving", "version", version, "data", o.data,
		"syslog_udp", o.syslogUDP, "syslog_tcp", o.syslogTCP, "syslog_tls", o.syslogTLS,
		"netflow", o.netflow, "http", o.http)

	runErr := g.Wait()
	ready.Store(false)
	q.Close() // in case the web server failed first
	pipeErr := <-pipeDone
	flushErr := idx.Close()
	var trafficErr error
	if trafficStore != nil {
		trafficErr = trafficStore.Close()
	}
	if errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	if err := errors.Join(runErr, pipeErr, flushErr, trafficErr); err != nil {
		return err
	}
	log.Info("segwatch stopped")
	return nil
}
