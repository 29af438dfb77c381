package httpapi

import (
	"bytes"
	"net/netip"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/kommun/servicegateway/gateway"
)

// Existing e-services behind the front door: a service with a Prefix is a
// web application the gateway forwards to (services/connectors/proxy), after
// signing the resident in at the service's level of assurance. The resident's
// identity goes to it as a short-lived signed token in a header; the keys
// that verify it are published at IdentityKeysPath.

// IdentityKeysPath is where the JWK Set of the identity tokens is served.
const IdentityKeysPath = "/.well-known/gateway-keys.json"

// Upstream forwards requests under a proxied service's prefix;
// *proxy.Proxy (services/connectors/proxy) implements it.
type Upstream interface {
	Prefix() string
	Audience() string       // the identity token's audience
	IdentityHeader() string // the request header that carries it
	// Forward sends the request on, with client (the client's address as
	// the gateway resolved it) in X-Forwarded-For and proto (the scheme
	// the client used) in X-Forwarded-Proto, and answers with the
	// e-service's answer.
	Forward(c *fiber.Ctx, client netip.Addr, proto string) error
}

// IdentitySigner signs identity tokens and publishes their keys;
// *auth.IdentitySigner implements it.
type IdentitySigner interface {
	Sign(p *gateway.Principal, audience string) (string, error)
	JWKS() []byte
}

// identityHeaders are never taken from a client on a proxied path: only the
// gateway says who someone is.
var identityHeaders = []string{"X-Gateway-Identity", fiber.HeaderAuthorization, "X-Forwarded-User", "X-Remote-User", "Remote-User", "X-Forwarded-Prefix", "Forwarded", fiber.HeaderXForwardedHost}

// identityKeysRoute serves the identity keys (called from routes).
func (s *Server) identityKeysRoute(app *fiber.App) {
	if s.IdentityKeys != nil {
		app.Get(IdentityKeysPath, func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			c.Set(fiber.HeaderCacheControl, "public, max-age=300")
			return c.Send(s.IdentityKeys.JWKS())
		})
	}
}

// proxyRoutes registers the proxied services (called from routes), ahead
// of the page middleware: only the authentication runs before them.
func (s *Server) proxyRoutes(app *fiber.App) {
	if s.Catalog == nil {
		return
	}
	for _, svc := range s.Catalog.All() {
		up := s.Upstreams[svc.ID]
		if svc.Prefix == "" || up == nil {
			continue
		}
		svc := svc
		h := s.proxyHandler(svc, up)
		if s.Authenticate != nil {
			app.All(svc.Prefix+"*", s.proxyPage(s.Authenticate), h)
		} else {
			app.All(svc.Prefix+"*", s.proxyPage(h))
		}
	}
}

// proxyPage gives an error page of the gateway's own under a prefix (no
// sign-in at the level, the e-service unreachable, a store failure) what
// the page middleware gives every other page: the security headers and
// the visitor's language.
func (s *Server) proxyPage(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		err := h(c)
		if err != nil {
			setSecurityHeaders(c, s.Config.Production)
			pickLanguage(c)
		}
		return err
	}
}

// underProxy reports whether path is below a proxied service's prefix
// (the authentication leaves CSRF to the e-service there).
func (s *Server) underProxy(path string) bool {
	if len(s.Upstreams) == 0 || !strings.HasPrefix(path, "/e/") {
		return false
	}
	for _, up := range s.Upstreams {
		if strings.HasPrefix(path, up.Prefix()) {
			return true
		}
	}
	return false
}

// clientScheme is the scheme the client used: TLS here, or what a trusted
// proxy says (fiber's c.Protocol(), which reads X-Forwarded-Proto and its
// kin only from a trusted proxy, but formats the peer's address to look it
// up: asked only when the peer is one).
func (s *Server) clientScheme(c *fiber.Ctx) string {
	if c.Context().IsTLS() {
		return "https"
	}
	if len(s.trusted) > 0 {
		if peer, ok := netip.AddrFromSlice(c.Context().RemoteIP()); ok && s.isTrusted(peer.Unmap()) {
			return c.Protocol()
		}
	}
	return "http"
}

// stripIdentity removes the identity headers a client may have sent:
// header (the service's) and identityHeaders, in any letter case. A
// request rarely has any: one pass over the headers finds which, and only
// those are deleted (a Del normalizes its name and scans every header).
func stripIdentity(h *fasthttp.RequestHeader, header string) {
	var found uint32
	h.VisitAll(func(k, _ []byte) {
		if strings.EqualFold(string(k), header) {
			found |= 1 << len(identityHeaders)
		}
		for i, n := range identityHeaders {
			if strings.EqualFold(string(k), n) {
				found |= 1 << i
			}
		}
	})
	if found == 0 {
		return
	}
	if found&(1<<len(identityHeaders)) != 0 {
		h.Del(header)
	}
	for i, n := range identityHeaders {
		if found&(1<<i) != 0 {
			h.Del(n)
		}
	}
}

// stripOwnCookies removes the gateway's own cookies (session, CSRF,
// sign-in: gw_ and __Host-gw_) from the request: they stay here. The
// others are written back in one pass, on the stack unless they are long:
// linear in the header, whatever the number of cookies, and nothing
// allocated for a usual Cookie header.
func stripOwnCookies(h *fasthttp.RequestHeader) {
	own := false
	h.VisitAllCookie(func(k, _ []byte) { own = own || ownCookie(k) })
	if !own {
		return
	}
	var buf [512]byte
	kept := buf[:0]
	h.VisitAllCookie(func(k, v []byte) {
		if ownCookie(k) {
			return
		}
		if len(kept) > 0 {
			kept = append(kept, "; "...)
		}
		if len(k) > 0 { // as fasthttp writes them: a cookie without a name is its value alone
			kept = append(append(kept, k...), '=')
		}
		kept = append(kept, v...)
	})
	h.DelAllCookies()
	if len(kept) > 0 {
		h.SetBytesV(fiber.HeaderCookie, kept)
	}
}

func ownCookie(name []byte) bool {
	return bytes.HasPrefix(name, []byte("gw_")) || bytes.HasPrefix(name, []byte("__Host-gw_"))
}

func (s *Server) proxyHandler(svc *gateway.Service, up Upstream) fiber.Handler {
	header := up.IdentityHeader()
	bare := strings.TrimSuffix(svc.Prefix, "/")
	return func(c *fiber.Ctx) error {
		if c.Path() == bare { // relative links in the e-service need the slash
			return c.Redirect(svc.Prefix, fiber.StatusMovedPermanently)
		}
		h := &c.Request().Header
		stripIdentity(h, header)
		stripOwnCookies(h)

		p := principal(c)
		if !p.Satisfies(svc.Assurance) {
			return s.proxyStepUp(c, svc, p)
		}
		if p != nil && !p.Machine { // a signed-in person, also where no sign-in is required
			tok, err := s.IdentityKeys.Sign(p, up.Audience())
			if err != nil {
				return err
			}
			h.Set(header, tok)
		}
		client := s.resolveClient(c)
		if c.Method() == fiber.MethodGet && c.Path() == svc.Prefix {
			pickLanguage(c)               // counted by language, as every other service (no page middleware here)
			s.setClientAddress(c, client) // the visitor, as the clientAddress middleware would have it
			s.trackStart(c, svc)          // the e-service's entry page: viewed and started
		}
		return up.Forward(c, client, s.clientScheme(c))
	}
}

// proxyStepUp sends a browser to sign in at the service's level, back to the
// page asked for; anything else (a form post, a script) gets 401 or 403.
func (s *Server) proxyStepUp(c *fiber.Ctx, svc *gateway.Service, p *gateway.Principal) error {
	aerr := s.checkAssurance(c, svc)
	if s.Auth == nil || len(s.Auth.Providers) == 0 || (c.Method() != fiber.MethodGet && c.Method() != fiber.MethodHead) || (p != nil && p.Machine) {
		return aerr
	}
	back := c.Path()
	if q := c.Request().URI().QueryString(); len(q) > 0 {
		back += "?" + string(q)
	}
	q := url.Values{"level": {svc.Assurance.String()}, "return_to": {back}}
	return c.Redirect("/auth/login?"+q.Encode(), fiber.StatusSeeOther)
}
