// Package ui is segwatch's HTTP face: the JSON API under /api/v1, the web UI
// for SOC analysts, /healthz and /metrics. It owns HTTP concerns only
// (routing, authentication, parameter parsing, JSON shape); the data comes
// from small consumer-side interfaces such as Searcher, so the index,
// detectors and inventory never import it.
//
// Authentication: every /api/v1 call carries either "Authorization: Bearer
// TOKEN" (see package ui/auth) or the UI session cookie. Reads need the viewer
// role, writes (POST, PUT, PATCH, DELETE) analyst, token and user management
// admin. /healthz, /metrics, /login and static files are open.
package ui

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gofiber/fiber/v2"

	"github.com/segwatch/segwatch/index"
	"github.com/segwatch/segwatch/ui/auth"
)

// Searcher runs event searches (implemented by package index). It must
// return an error whose InvalidQuery() method reports true when the query
// itself is at fault, so that the API answers 400 rather than 500; the
// server also pre-checks the query-string syntax itself.
type Searcher interface {
	Search(ctx context.Context, r index.Request) (index.Result, error)
}

// Config is the HTTP server's configuration.
type Config struct {
	// Addr is the listen address, e.g. ":8080" or "127.0.0.1:0".
	Addr string
	// TLSCert and TLSKey are PEM files; both or neither. With them the
	// server speaks only HTTPS and session cookies are Secure.
	TLSCert, TLSKey string
	// TrustedProxies are the addresses or CIDRs allowed to set
	// X-Forwarded-For and X-Forwarded-Proto; from anyone else those headers
	// are ignored.
	TrustedProxies []string
	// ShutdownTimeout bounds the graceful shutdown in Run; 5 s when zero.
	ShutdownTimeout time.Duration
	// SearchTimeout bounds one search; 60 s when zero.
	SearchTimeout time.Duration
	// Listener, when set, is an already bound socket to serve instead of
	// binding Addr: the server binds every socket before it opens the
	// stores that New needs, so "address in use" fails before the data
	// dir is written.
	Listener net.Listener
}

// Deps are the server's collaborators.
type Deps struct {
	// Logger receives request logs (debug) and server errors; required.
	Logger *slog.Logger
	// Metrics receives the HTTP metrics and is served on /metrics; required.
	Metrics *metrics.Set
	// Auth authenticates tokens, sessions and passwords; required.
	Auth *auth.Store
	// Search answers GET /api/v1/search; required.
	Search Searcher
	// Traffic answers GET /api/v1/traffic; 404 when nil (NetFlow off).
	Traffic TrafficSource
	// Ready reports whether the pipeline is up, for /healthz; always ready
	// when nil.
	Ready func() bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Server is the HTTP server. Build it with New, bind with Listen, serve with Run.
type Server struct {
	cfg     Config
	log     *slog.Logger
	ms      *metrics.Set
	auth    *auth.Store
	search  Searcher
	traffic TrafficSource
	ready   func() bool
	now     func() time.Time
	tls     *tls.Config
	app     *fiber.App

	mu sync.Mutex
	ln net.Listener

	authFailures *metrics.Counter
}

// New validates cfg and deps and builds the server without opening anything.
func New(cfg Config, deps Deps) (*Server, error) {
	if cfg.Addr == "" && cfg.Listener == nil {
		return nil, errors.New("http: empty listen address")
	}
	if deps.Logger == nil || deps.Metrics == nil || deps.Auth == nil || deps.Search == nil {
		return nil, errors.New("http: Logger, Metrics, Auth and Search are required")
	}
	for _, p := range cfg.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			return nil, fmt.Errorf("http: trusted proxy %q is neither an address nor a CIDR", p)
		}
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	if cfg.SearchTimeout <= 0 {
		cfg.SearchTimeout = 60 * time.Second
	}
	s := &Server{
		cfg:          cfg,
		log:          deps.Logger,
		ms:           deps.Metrics,
		auth:         deps.Auth,
		search:       deps.Search,
		traffic:      deps.Traffic,
		ready:        deps.Ready,
		now:          deps.Now,
		authFailures: deps.Metrics.GetOrCreateCounter(`segwatch_http_auth_failures_total`),
	}
	if s.ready == nil {
		s.ready = func() bool { return true }
	}
	if s.now == nil {
		s.now = time.Now
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("http: TLS needs both a certificate and a key")
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("http: load TLS key pair: %w", err)
		}
		s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "segwatch",
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		// Without the check fiber believes X-Forwarded-* from anyone.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          cfg.TrustedProxies,
		ProxyHeader:             fiber.HeaderXForwardedFor,
		EnableIPValidation:      true,
		// Handlers may keep strings from the request beyond its lifetime
		// (e.g. hand them to a store); fasthttp would reuse the bytes.
		Immutable:      true,
		ReadBufferSize: 16 << 10, // long search queries travel in the URL
		BodyLimit:      8 << 20,  // room for a device CSV import
		ReadTimeout:    30 * time.Second,
		WriteTimeout:   cfg.SearchTimeout + 10*time.Second,
		IdleTimeout:    2 * time.Minute,
	})
	s.routes(tmpl)
	return s, nil
}

// routes registers every path. Later features add their handlers here: reads
// under api (viewer), writes under api with the analyst default, management
// under api with requireRole(auth.RoleAdmin).
func (s *Server) routes(t *templates) {
	app := s.app
	app.Use(s.observe)
	app.Get("/healthz", s.handleHealth)
	app.Get("/metrics", s.handleMetrics)

	s.pageRoutes(t)

	api := app.Group("/api/v1", s.authenticate, s.defaultRole)
	api.Get("/whoami", s.handleWhoami)
	api.Get("/search", s.handleSearch)
	api.Get("/traffic", s.handleTraffic)

	admin := requireRole(auth.RoleAdmin)
	api.Get("/tokens", admin, s.handleListTokens)
	api.Post("/tokens", admin, s.handleCreateToken)
	api.Delete("/tokens/:name", admin, s.handleRevokeToken)
	api.Get("/users", admin, s.handleListUsers)
	api.Post("/users", admin, s.handleAddUser)
	api.Delete("/users/:name", admin, s.handleRemoveUser)
}

// Listen binds the configured address, so that "address in use" fails
// before anything else starts.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return errors.New("http: already listening")
	}
	ln := s.cfg.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("http: listen %s: %w", s.cfg.Addr, err)
		}
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address ("127.0.0.1:43567"), or "" before Listen.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run serves until ctx ends, then shuts down gracefully within the
// configured timeout and returns nil. It calls Listen first if nobody did.
// A Server runs once.
func (s *Server) Run(ctx context.Context) error {
	if s.Addr() == "" {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	s.log.Info("http server listening", "addr", ln.Addr().String(), "tls", s.tls != nil)

	served := make(chan error, 1)
	go func() { served <- s.app.Listener(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("http: serve: %w", err)
	case <-ctx.Done():
	}
	err := s.app.ShutdownWithTimeout(s.cfg.ShutdownTimeout)
	// If ctx ended before fasthttp registered the listener, Shutdown did not
	// see it and Serve would accept forever; closing it ourselves ends Serve
	// either way (a second Close is harmless).
	ln.Close()
	<-served
	if err != nil {
		return fmt.Errorf("http: shutdown: %w", err)
	}
	return nil
}

// observe logs each request at debug level and counts it by route and
// status. Routes, not paths, label the metrics, so their number is bounded.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		// Let the error handler write the status now so it is counted.
		if herr := s.handleError(c, err); herr != nil {
			s.log.Error("http: write error response", "err", herr)
		}
	}
	status := c.Response().StatusCode()
	route := c.Route().Path
	if status == fiber.StatusNotFound && route == "/" {
		route = "unmatched"
	}
	elapsed := time.Since(start)
	s.ms.GetOrCreateCounter(`segwatch_http_requests_total{route="` + route + `",code="` + strconv.Itoa(status) + `"}`).Inc()
	s.ms.GetOrCreateHistogram(`segwatch_http_request_duration_seconds{route="` + route + `"}`).Update(elapsed.Seconds())
	if s.log.Enabled(c.UserContext(), slog.LevelDebug) {
		attrs := []any{"method", c.Method(), "path", c.Path(), "status", status, "duration", elapsed, "ip", c.IP()}
		if p, ok := principalOf(c); ok {
			attrs = append(attrs, "principal", p.Name)
		}
		s.log.Debug("http request", attrs...)
	}
	return nil
}

// handleError answers every error as JSON {"error": "..."}. Errors that are
// not *fiber.Error are ours: logged, and answered with a generic 500 so that
// internals do not leak.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	code := fiber.StatusInternalServerError
	msg := "internal error"
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code, msg = fe.Code, fe.Message
	} else {
		s.log.Error("http handler failed", "method", c.Method(), "path", c.Path(), "err", err)
	}
	return c.Status(code).JSON(fiber.Map{"error": msg})
}

func (s *Server) handleHealth(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	if !s.ready() {
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "starting"})
	}
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *Server) handleMetrics(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "text/plain; version=0.0.4; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	w := c.Response().BodyWriter()
	s.ms.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
	return nil
}
