package ui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/segwatch/segwatch/ui/auth"
)

// web holds the UI: page templates and static files, compiled into the
// binary so the UI works offline and has no CDN to trust.
//
//go:embed web/templates/*.html web/static/*
var web embed.FS

// templates are the parsed pages, each one joined with the shared layout.
type templates struct {
	pages map[string]*template.Template
}

// pageNames lists the pages; later features (incidents, devices, traffic,
// compliance) add theirs here and a template file beside layout.html.
var pageNames = []string{"login", "search"}

func parseTemplates() (*templates, error) {
	t := &templates{pages: map[string]*template.Template{}}
	for _, name := range pageNames {
		p, err := template.ParseFS(web, "web/templates/layout.html", "web/templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", name, err)
		}
		t.pages[name] = p
	}
	return t, nil
}

// pageData is what every template sees.
type pageData struct {
	Title string
	Page  string // nav highlight
	User  *auth.Principal
	Error string
	Next  string
	Name  string // login form refill
}

// securityHeaders tell the browser to run only our own scripts and styles,
// never to frame the UI and never to send our URLs elsewhere as referrer.
func securityHeaders(c *fiber.Ctx) {
	c.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
}

func (s *Server) pageRoutes(t *templates) {
	static, err := fs.Sub(web, "web/static")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	s.app.Use("/static", filesystem.New(filesystem.Config{
		Root:   http.FS(static),
		MaxAge: 300,
	}))
	render := func(c *fiber.Ctx, status int, name string, d pageData) error {
		var buf bytes.Buffer
		if err := t.pages[name].ExecuteTemplate(&buf, "layout", d); err != nil {
			return fmt.Errorf("render %s: %w", name, err)
		}
		securityHeaders(c)
		c.Set(fiber.HeaderCacheControl, "no-store")
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.Status(status).Send(buf.Bytes())
	}
	// page wraps a handler that needs a logged-in user; without one the
	// browser goes to the login page and comes back after.
	page := func(h func(*fiber.Ctx, auth.Principal) error) fiber.Handler {
		return func(c *fiber.Ctx) error {
			p, err := s.sessionPrincipal(c)
			if errors.Is(err, auth.ErrUnauthenticated) {
				return c.Redirect("/login?next="+url.QueryEscape(c.OriginalURL()), fiber.StatusSeeOther)
			}
			if err != nil {
				return err
			}
			return h(c, p)
		}
	}
	search := page(func(c *fiber.Ctx, p auth.Principal) error {
		return render(c, fiber.StatusOK, "search", pageData{Title: "Search", Page: "search", User: &p})
	})
	s.app.Get("/", search)
	s.app.Get("/search", search)

	s.app.Get("/login", func(c *fiber.Ctx) error {
		if _, err := s.sessionPrincipal(c); err == nil {
			return c.Redirect(safeNext(c.Query("next")), fiber.StatusSeeOther)
		}
		return render(c, fiber.StatusOK, "login", pageData{Title: "Sign in", Next: safeNext(c.Query("next"))})
	})
	s.app.Post("/login", func(c *fiber.Ctx) error {
		name, next := c.FormValue("name"), safeNext(c.FormValue("next"))
		fail := func(status int, msg string) error {
			return render(c, status, "login", pageData{Title: "Sign in", Error: msg, Next: next, Name: name})
		}
		if !s.sameOrigin(c) {
			return fail(fiber.StatusForbidden, "Cross-site sign-in refused.")
		}
		// Password checks queue for a few hashing slots; under a login flood
		// give up rather than pile up goroutines.
		ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
		defer cancel()
		p, err := s.auth.CheckPassword(ctx, name, c.FormValue("password"))
		if errors.Is(err, context.DeadlineExceeded) {
			return fail(fiber.StatusServiceUnavailable, "Too many sign-ins at once; try again.")
		}
		if errors.Is(err, auth.ErrUnauthenticated) {
			s.authFailures.Inc()
			s.log.Info("ui login failed", "user", name, "ip", c.IP())
			return fail(fiber.StatusUnauthorized, "Wrong name or password.")
		}
		if err != nil {
			return err
		}
		sess, err := s.auth.CreateSession(c.UserContext(), p.Name)
		if err != nil {
			return err
		}
		s.setSessionCookie(c, sess.ID, sess.Expires)
		s.log.Info("ui login", "user", p.Name, "role", p.Role, "ip", c.IP())
		return c.Redirect(next, fiber.StatusSeeOther)
	})
	logout := func(c *fiber.Ctx) error {
		if id := c.Cookies(SessionCookie); id != "" {
			if err := s.auth.DeleteSession(c.UserContext(), id); err != nil {
				return err
			}
		}
		s.setSessionCookie(c, "", time.Unix(0, 0))
		return c.Redirect("/login", fiber.StatusSeeOther)
	}
	s.app.Post("/logout", logout)
}

// sessionPrincipal returns the user of the request's session cookie, or
// auth.ErrUnauthenticated.
func (s *Server) sessionPrincipal(c *fiber.Ctx) (auth.Principal, error) {
	id := c.Cookies(SessionCookie)
	if id == "" {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	return s.auth.SessionPrincipal(c.UserContext(), id)
}

// setSessionCookie sets (or, with an expiry in the past, clears) the
// session cookie: HttpOnly so scripts cannot read it, SameSite=Strict so
// other sites cannot ride on it, Secure whenever the browser reached us
// over HTTPS (directly or through a trusted proxy).
func (s *Server) setSessionCookie(c *fiber.Ctx, value string, expires time.Time) {
	c.Cookie(&fiber.Cookie{
		Name:     SessionCookie,
		Value:    value,
		Path:     "/",
		Expires:  expires,
		HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode,
		Secure:   c.Protocol() == "https",
	})
}

// safeNext keeps post-login redirects on this site: only a local path, never
// "//host" or "/\host", which browsers treat as another site.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\\") || strings.HasPrefix(next, "/login") {
		return "/"
	}
	return next
}
