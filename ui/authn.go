package ui

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/segwatch/segwatch/ui/auth"
)

// SessionCookie is the name of the UI session cookie.
const SessionCookie = "segwatch_session"

// Keys of request-scoped values in fiber's Locals.
const (
	localPrincipal = "segwatch.principal"
	localVia       = "segwatch.via" // "token" or "session"
)

// principalOf returns who the request was authenticated as.
func principalOf(c *fiber.Ctx) (auth.Principal, bool) {
	p, ok := c.Locals(localPrincipal).(auth.Principal)
	return p, ok
}

// authenticate accepts a bearer token or, failing that, a session cookie,
// and answers 401 when neither is valid. A request that sends an
// Authorization header is judged by it alone: a bad token does not fall
// back to the cookie, so API clients see their mistake.
func (s *Server) authenticate(c *fiber.Ctx) error {
	var (
		p   auth.Principal
		err error
		via string
	)
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return s.unauthorized(c, "Authorization must be \"Bearer TOKEN\"")
		}
		p, err = s.auth.Authenticate(c.UserContext(), strings.TrimSpace(tok))
		via = "token"
	} else if id := c.Cookies(SessionCookie); id != "" {
		p, err = s.auth.SessionPrincipal(c.UserContext(), id)
		via = "session"
		if err == nil && !isSafeMethod(c.Method()) && !s.sameOrigin(c) {
			// SameSite=Strict already keeps the cookie off cross-site
			// requests; this is the second lock on the door.
			return fiber.NewError(fiber.StatusForbidden, "cross-origin request refused")
		}
	} else {
		return s.unauthorized(c, "authentication required: send Authorization: Bearer TOKEN")
	}
	if errors.Is(err, auth.ErrUnauthenticated) {
		return s.unauthorized(c, "invalid or expired credentials")
	}
	if err != nil {
		return err
	}
	c.Locals(localPrincipal, p)
	c.Locals(localVia, via)
	return c.Next()
}

func (s *Server) unauthorized(c *fiber.Ctx, msg string) error {
	s.authFailures.Inc()
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="segwatch"`)
	return fiber.NewError(fiber.StatusUnauthorized, msg)
}

// isSafeMethod reports the methods that only read.
func isSafeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

// defaultRole is the floor for every API call: viewers read, analysts write.
// Routes that need more add requireRole.
func (s *Server) defaultRole(c *fiber.Ctx) error {
	need := auth.RoleAnalyst
	if isSafeMethod(c.Method()) {
		need = auth.RoleViewer
	}
	return checkRole(c, need)
}

// requireRole returns a handler that answers 403 unless the principal's
// role allows need.
func requireRole(need auth.Role) fiber.Handler {
	return func(c *fiber.Ctx) error { return checkRole(c, need) }
}

func checkRole(c *fiber.Ctx, need auth.Role) error {
	p, ok := principalOf(c)
	if !ok {
		return fiber.NewError(fiber.StatusUnauthorized, "authentication required")
	}
	if !p.Role.Allows(need) {
		return fiber.NewError(fiber.StatusForbidden, "role "+string(p.Role)+" may not do this; needs "+string(need))
	}
	return c.Next()
}

// sameOrigin reports whether a browser request comes from our own pages:
// Sec-Fetch-Site, where sent, must say so, and Origin, where sent, must be
// ours. Browsers send at least one of them on cross-site POSTs.
func (s *Server) sameOrigin(c *fiber.Ctx) bool {
	if site := c.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if origin := c.Get(fiber.HeaderOrigin); origin != "" && origin != c.BaseURL() {
		return false
	}
	return true
}

func (s *Server) handleWhoami(c *fiber.Ctx) error {
	p, _ := principalOf(c)
	via, _ := c.Locals(localVia).(string)
	return c.JSON(fiber.Map{"name": p.Name, "role": p.Role, "via": via})
}
