package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/auth"
)

// AuthStore keeps what identity needs in Redis besides sessions.
type AuthStore interface {
	PutLogin(ctx context.Context, state string, data []byte, ttl time.Duration) error
	TakeLogin(ctx context.Context, state string) ([]byte, error)
	PutDraft(ctx context.Context, key string, data []byte, ttl time.Duration) error
	GetDraft(ctx context.Context, key string) ([]byte, error)
	DeleteDraft(ctx context.Context, key string) error
	// Pages of a person's and a department's submissions from a cursor
	// ("" for the newest), newest first.
	SubjectPage(ctx context.Context, subject, cursor string, limit int) (gateway.SubmissionPage, error)
	DepartmentPage(ctx context.Context, department, cursor string, limit int) (gateway.SubmissionPage, error)
}

// Auth is the identity part of the HTTP layer: sign-in with OpenID
// Connect, sessions, machine clients and the development provider.
type Auth struct {
	// Providers sign people in; the first is the default.
	Providers []*auth.RelyingParty
	Sessions  *auth.Sessions
	// Assertions verifies machine clients' bearer assertions; nil: none.
	Assertions *auth.Assertions
	// DevIdP is served under /dev-idp when set (never in production).
	DevIdP *auth.DevIdP
	Store  AuthStore
	// LoginLimit sign-ins per client IP and per person per LoginWindow;
	// 0: no limit.
	LoginLimit  int
	LoginWindow time.Duration
	// DraftTTL is how long form values are kept across a step-up sign-in.
	DraftTTL time.Duration
}

// Cookie names.
const (
	sessionCookie = "gw_session"
	loginCookie   = "gw_login"
)

// Locals of the identity layer.
type authLocalsKey int

const (
	localsSession authLocalsKey = iota // *auth.Session, for cookie-authenticated requests
)

func session(c *fiber.Ctx) *auth.Session {
	s, _ := c.Locals(localsSession).(*auth.Session)
	return s
}

// initAuth wires the identity layer in; called by NewServer.
func (s *Server) initAuth() {
	if s.Auth == nil {
		return
	}
	if s.Auth.LoginWindow <= 0 {
		s.Auth.LoginWindow = time.Minute
	}
	if s.Auth.DraftTTL <= 0 {
		s.Auth.DraftTTL = 30 * time.Minute
	}
	if s.Authenticate == nil {
		s.Authenticate = s.authenticate
	}
}

// authenticate sets the request's principal: a machine client's bearer
// assertion, or the session cookie. A bad Authorization header is refused
// outright (401); a bad or revoked cookie makes the request anonymous.
// Every request authenticated by the session cookie that changes something
// (any unsafe method, on any path, whatever its case) must carry the
// session's CSRF token: in X-CSRF-Token, or in the form field _csrf (forms
// drawn for a signed-in person carry the session's token, see csrf).
func (s *Server) authenticate(c *fiber.Ctx) error {
	if strings.HasPrefix(c.Path(), "/dev-idp/") || strings.HasPrefix(c.Path(), "/static/") || c.Path() == "/healthz" || c.Path() == "/readyz" {
		return c.Next()
	}
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || s.Auth.Assertions == nil || tok == "" {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="servicegateway"`)
			return gateway.Errorf(gateway.EUnauth, "auth.bearer_invalid", errors.New("unsupported authorization"))
		}
		tok = strings.TrimSpace(tok)
		if auth.IsAccessToken(tok) {
			// An access token from /oauth/token: one HMAC, no store.
			p, err := s.Auth.Assertions.VerifyToken(tok)
			if err != nil {
				c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="servicegateway", error="invalid_token"`)
				return gateway.Errorf(gateway.EUnauth, "auth.bearer_invalid", err)
			}
			setPrincipal(c, p)
			return c.Next()
		}
		ctx, cancel := s.storeCtx(c)
		defer cancel()
		p, err := s.Auth.Assertions.Verify(ctx, tok)
		if err != nil {
			if !errors.Is(err, auth.ErrAssertion) {
				return unavailableErr(err)
			}
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="servicegateway", error="invalid_token"`)
			return gateway.Errorf(gateway.EUnauth, "auth.bearer_invalid", err)
		}
		setPrincipal(c, p)
		return c.Next()
	}
	if tok := c.Cookies(s.cookieName(sessionCookie)); tok != "" && s.Auth.Sessions != nil {
		sess, renewed, ok := s.Auth.Sessions.Peek(tok) // kept in this process: no store call
		var err error
		if !ok {
			ctx, cancel := s.storeCtx(c)
			sess, renewed, err = s.Auth.Sessions.Load(ctx, tok)
			cancel()
		}
		switch {
		case errors.Is(err, auth.ErrNoSession):
			s.clearCookie(c, s.cookieName(sessionCookie), "/")
		case err != nil:
			return unavailableErr(err)
		default:
			setPrincipal(c, sess.Principal)
			c.Locals(localsSession, sess)
			if renewed != "" {
				s.setCookie(c, s.cookieName(sessionCookie), renewed, "/", 0)
			}
			// Under a proxied prefix the body is the e-service's: not
			// parsed here (no form, no Content-Encoding check ran).
			if !safeMethod(c.Method()) && !s.underProxy(c.Path()) && !sessionCSRFOK(c, sess) {
				return gateway.Errorf(gateway.EForbidden, "error.csrf", nil)
			}
		}
	}
	return c.Next()
}

// sessionCSRFOK: the request carries the session's CSRF token, in the
// X-CSRF-Token header or the _csrf form field.
func sessionCSRFOK(c *fiber.Ctx, sess *auth.Session) bool {
	sent := c.Get(CSRFConfigDefault.Header)
	if sent == "" && streamedBody(c) {
		// A body read as a stream (uploads.go) is not read here: a form's
		// multipart post has its token checked by multipartSubmit (or
		// multipartAnswer) before its first file; a program sends the
		// header.
		return !strings.HasPrefix(c.Path(), "/api/") && sess.CSRF != ""
	}
	if sent == "" {
		sent = c.FormValue(CSRFConfigDefault.FormField)
	}
	return sent != "" && sess.CSRF != "" && subtle.ConstantTimeCompare([]byte(sent), []byte(sess.CSRF)) == 1
}

// cookieName is a cookie's name: with the __Host- prefix in production, so
// that no other host (a sibling subdomain) can set or overwrite it.
func (s *Server) cookieName(base string) string {
	if s.Config.Production {
		return "__Host-" + base
	}
	return base
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

func unavailableErr(err error) error {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return err
	}
	return gateway.Errorf(gateway.EUnavailable, "error.store_unavailable", err)
}

// secureCookies: Secure in production and on every host but the local
// machine (a demo on http://localhost must work).
func (s *Server) secureCookies(c *fiber.Ctx) bool {
	if s.Config.Production || c.Protocol() == "https" {
		return true
	}
	host := c.Hostname()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

func (s *Server) setCookie(c *fiber.Ctx, name, value, path string, maxAge int) {
	c.Cookie(&fiber.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HTTPOnly: true,
		Secure: s.secureCookies(c), SameSite: fiber.CookieSameSiteLaxMode})
}

func (s *Server) clearCookie(c *fiber.Ctx, name, path string) {
	c.Cookie(&fiber.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, Expires: time.Unix(1, 0), HTTPOnly: true,
		Secure: s.secureCookies(c), SameSite: fiber.CookieSameSiteLaxMode})
}

// limit counts a hit against key; over limit per window it answers 429
// with the sign-in limit's message. When Redis does not answer, requests
// pass.
func (s *Server) limit(c *fiber.Ctx, key string, limit int, window time.Duration) error {
	return s.limitMsg(c, key, limit, window, "auth.rate_limited")
}

// limitMsg is limit with its own message for the 429.
func (s *Server) limitMsg(c *fiber.Ctx, key string, limit int, window time.Duration, msgID string) error {
	if s.Counter == nil || limit <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 500*time.Millisecond)
	defer cancel()
	n, ttl, err := s.Counter.Hit(ctx, key, window)
	if err != nil {
		s.Logger.Warn("rate limit unavailable", "error", err)
		return nil
	}
	if n > int64(limit) {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(ttl.Seconds())+1))
		return gateway.Errorf(gateway.ETooMany, msgID, nil)
	}
	return nil
}

// personLimit limits submissions per signed-in person, on top of the limit
// per client IP.
func (s *Server) personLimit(name string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if p := principal(c); p != nil && s.Config.SubmitLimit > 0 && !countedOnce(c, "pl:"+name) {
			if err := s.limitMsg(c, name+":person:"+p.Subject, s.Config.SubmitLimit, s.Config.SubmitWindow, "error.rate_limited_person"); err != nil {
				return err
			}
		}
		return c.Next()
	}
}

// safeReturn accepts only a local path, so sign-in cannot be used to send a
// resident to another site.
func safeReturn(p string) string {
	if p == "" || len(p) > 1024 || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") {
		return "/my"
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/my"
	}
	return p
}

func (s *Server) provider(id string) *auth.RelyingParty {
	for _, rp := range s.Auth.Providers {
		if rp.ID() == id {
			return rp
		}
	}
	return nil
}

func (s *Server) redirectURI(c *fiber.Ctx) string {
	if s.Config.PublicURL != "" {
		return s.Config.PublicURL + "/auth/callback"
	}
	return c.BaseURL() + "/auth/callback"
}

// login starts a sign-in (GET /auth/login?return_to=&login_hint=&level=&provider=).
func (s *Server) login(c *fiber.Ctx) error {
	if err := s.limit(c, "login:ip:"+clientIP(c), s.Auth.LoginLimit, s.Auth.LoginWindow); err != nil {
		return err
	}
	if len(s.Auth.Providers) == 0 {
		return gateway.Errorf(gateway.EUnavailable, "auth.no_provider", nil)
	}
	rp := s.Auth.Providers[0]
	if id := c.Query("provider"); id != "" {
		if rp = s.provider(id); rp == nil {
			return gateway.Errorf(gateway.ENotFound, "auth.no_provider", nil)
		}
	} else if sess := session(c); sess != nil {
		// A step-up (or any new sign-in without a choice) goes to the
		// provider the person signed in with, not the default one.
		if same := s.provider(sess.Provider); same != nil {
			rp = same
		}
	}
	level := gateway.AssuranceNone
	if v := c.Query("level"); v != "" {
		l, err := gateway.ParseAssurance(v)
		if err != nil {
			return fiber.ErrBadRequest
		}
		level = l
	}
	hint := c.Query("login_hint")
	if len(hint) > 128 {
		hint = ""
	}
	ar := rp.NewAuthRequest(s.redirectURI(c), safeReturn(c.Query("return_to")), level)
	b, err := json.Marshal(ar)
	if err != nil {
		return err
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	if err := s.Auth.Store.PutLogin(ctx, ar.State, b, 10*time.Minute); err != nil {
		return unavailableErr(err)
	}
	to, err := rp.AuthCodeURL(ctx, ar, strings.Clone(hint))
	if err != nil {
		return s.signInFailed(c, rp.ID(), err)
	}
	s.setCookie(c, loginCookie, ar.State, "/auth/", 600)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Redirect(to, fiber.StatusSeeOther)
}

// callback completes a sign-in (GET /auth/callback?code=&state=): the state
// must match the browser's cookie and a sign-in in progress (used once), the
// code is redeemed with the PKCE verifier, the ID token verified, and a new
// session begins; any session the browser had is revoked.
func (s *Server) callback(c *fiber.Ctx) error {
	state, cookie := c.Query("state"), c.Cookies(loginCookie)
	s.clearCookie(c, loginCookie, "/auth/")
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(cookie)) != 1 {
		return gateway.Errorf(gateway.EForbidden, "auth.state_mismatch", nil)
	}
	ctx, cancel := s.storeCtx(c)
	b, err := s.Auth.Store.TakeLogin(ctx, state)
	cancel()
	if err != nil {
		return unavailableErr(err)
	}
	if b == nil {
		return gateway.Errorf(gateway.EForbidden, "auth.state_mismatch", nil)
	}
	var ar auth.AuthRequest
	if err := json.Unmarshal(b, &ar); err != nil {
		return err
	}
	// Whatever goes wrong from here, the error page offers to sign in
	// again and a way back to where the sign-in started.
	offerOnError(c, loginHref(ar.ReturnTo, ar.Level), safeReturn(ar.ReturnTo))
	if e := c.Query("error"); e != "" {
		return s.signInFailed(c, ar.Provider, auth.ProviderError(e))
	}
	rp := s.provider(ar.Provider)
	if rp == nil {
		return s.signInFailed(c, ar.Provider, errors.New("unknown provider"))
	}
	ctx, cancel = context.WithTimeout(c.UserContext(), 15*time.Second)
	defer cancel()
	res, err := rp.SignIn(ctx, &ar, strings.Clone(c.Query("code")))
	if err != nil {
		return s.signInFailed(c, rp.ID(), err)
	}
	p := res.Principal
	if err := s.limit(c, "login:person:"+p.Subject, s.Auth.LoginLimit, s.Auth.LoginWindow); err != nil {
		return err
	}
	if p.Assurance < ar.Level {
		return &gateway.Error{Code: gateway.EForbidden, Message: gateway.Message{ID: "auth.level_too_low",
			Data: map[string]any{"Level": s.localizer(c).T("assurance." + ar.Level.String()), "Got": s.localizer(c).T("assurance." + p.Assurance.String())}}}
	}
	if old := c.Cookies(s.cookieName(sessionCookie)); old != "" {
		_ = s.Auth.Sessions.Revoke(ctx, old) // no fixation: whatever the browser held ends here
	}
	tok, _, err := s.Auth.Sessions.CreateWithIDToken(ctx, p, rp.ID(), res.IDToken)
	if err != nil {
		return unavailableErr(err)
	}
	s.setCookie(c, s.cookieName(sessionCookie), tok, "/", 0)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Redirect(safeReturn(ar.ReturnTo), fiber.StatusSeeOther)
}

// signInFailed answers a failed sign-in with a page that says what
// happened: cancelled, no access, the provider unreachable, a
// configuration error (logged as an error: an operator must act), clocks
// that differ, or a refusal worth trying again. The status is 503 when the
// provider is unreachable, 403 for no access, else 401 (refused).
func (s *Server) signInFailed(c *fiber.Ctx, provider string, err error) error {
	kind := auth.KindOf(err)
	log := s.Logger.Warn
	status, title, msg := fiber.StatusUnauthorized, "auth.title.failed", "auth.failed"
	switch kind {
	case auth.FailCancelled:
		log = s.Logger.Info
		title, msg = "auth.title.cancelled", "auth.cancelled"
	case auth.FailNoAccess:
		status, title, msg = fiber.StatusForbidden, "error.title.forbidden", "auth.no_access"
	case auth.FailNetwork:
		status, title, msg = fiber.StatusServiceUnavailable, "auth.title.unavailable", "auth.provider_unavailable"
	case auth.FailConfig:
		log = s.Logger.Error
		title, msg = "auth.title.unavailable", "auth.misconfigured"
	case auth.FailClock:
		log = s.Logger.Error
		msg = "auth.clock_skew"
	}
	log("sign-in failed", "request_id", c.Locals(localsRequestID), "provider", provider, "kind", kind.String(), "error", err.Error())
	c.Set(fiber.HeaderCacheControl, "no-store")
	l := s.localizer(c)
	return s.render(c, status, "error", l.T(title), s.errorContent(c, status, msg, l.T(title), l.T(msg)))
}

// logout ends the session at once (POST /auth/logout). It needs the
// session's CSRF token, in the form field _csrf (as the page's sign-out
// form sends it) or in X-CSRF-Token; without a session, the form's
// double-submit token. With everywhere=1 it ends every session of the person
// (all browsers and devices). Answers 303 to the provider's
// end_session_endpoint when the provider has one (so a shared computer
// does not sign the next person in as this one), else to the start page;
// 204 to API callers.
func (s *Server) logout(c *fiber.Ctx) error {
	if s.Auth == nil {
		return fiber.ErrNotFound
	}
	sess := session(c)
	formOK := false
	if sent := c.FormValue("_csrf"); sent != "" {
		want := c.Cookies(s.cookieName(CSRFConfigDefault.CookieName))
		if sess != nil {
			want = sess.CSRF
		}
		formOK = want != "" && subtle.ConstantTimeCompare([]byte(sent), []byte(want)) == 1
	}
	headerOK := sess != nil && subtle.ConstantTimeCompare([]byte(c.Get("X-CSRF-Token")), []byte(sess.CSRF)) == 1
	if !formOK && !headerOK {
		return gateway.Errorf(gateway.EForbidden, "error.csrf", nil)
	}
	if sess != nil {
		ctx, cancel := s.storeCtx(c)
		err := s.Auth.Sessions.RevokeID(ctx, sess.ID)
		if err == nil && c.FormValue("everywhere") == "1" {
			_, err = s.Auth.Sessions.RevokeSubject(ctx, sess.Principal.Subject)
		}
		cancel()
		if err != nil {
			return unavailableErr(err)
		}
	}
	s.clearCookie(c, s.cookieName(sessionCookie), "/")
	c.Set(fiber.HeaderCacheControl, "no-store")
	if headerOK && !formOK {
		return c.SendStatus(fiber.StatusNoContent)
	}
	back := s.signedOutURL(c)
	if sess != nil {
		if rp := s.provider(sess.Provider); rp != nil {
			ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Second)
			to, ok := rp.LogoutURL(ctx, sess.IDToken, back)
			cancel()
			if ok {
				return c.Redirect(to, fiber.StatusSeeOther)
			}
		}
	}
	return c.Redirect("/?signed_out=1", fiber.StatusSeeOther)
}

// signedOutURL is where the browser lands after signing out; register it at
// the provider as the post-logout redirect URI.
func (s *Server) signedOutURL(c *fiber.Ctx) string {
	if s.Config.PublicURL != "" {
		return s.Config.PublicURL + "/?signed_out=1"
	}
	return c.BaseURL() + "/?signed_out=1"
}

// meJSON is GET /api/v1/me (contract): who is signed in.
type meJSON struct {
	Subject      string         `json:"subject"`
	Name         string         `json:"name"`
	Roles        []gateway.Role `json:"roles"`
	Assurance    string         `json:"assurance"`
	Personnummer string         `json:"personnummer,omitempty"` // masked
	Department   string         `json:"department,omitempty"`
	ServicePoint string         `json:"service_point,omitempty"`
	Machine      bool           `json:"machine,omitempty"`
	CSRFToken    string         `json:"csrf_token,omitempty"`
}

func (s *Server) apiMe(c *fiber.Ctx) error {
	p := principal(c)
	if p == nil {
		return gateway.Errorf(gateway.EUnauth, "error.signin_needed", nil)
	}
	subject := p.Subject
	if n, ok := strings.CutPrefix(subject, "se-pnr:"); ok {
		subject = "se-pnr:" + maskPnr(n) // the personnummer is never shown in full, here neither
	}
	out := meJSON{Subject: subject, Name: p.Name, Roles: p.Roles, Assurance: p.Assurance.String(),
		Department: p.Department, ServicePoint: p.ServicePoint, Machine: p.Machine}
	if p.Personnummer != "" {
		out.Personnummer = maskPnr(p.Personnummer)
	}
	if sess := session(c); sess != nil {
		out.CSRFToken = sess.CSRF
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}
