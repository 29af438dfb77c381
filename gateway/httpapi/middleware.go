package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/language"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/locales"
)

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("httpapi: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// requestID is a request's id, 12 characters as randomToken(9) gives. It
// is no secret (the client gets it in X-Request-Id), only unique enough to
// find a request's lines: math/rand's per-thread generator, one allocation
// (crypto/rand's generator and its buffer are paid for tokens that guard).
func requestID() string {
	var b [9]byte
	binary.LittleEndian.PutUint64(b[:], mrand.Uint64())
	b[8] = byte(mrand.Uint32())
	var out [12]byte
	base64.RawURLEncoding.Encode(out[:], b[:])
	return string(out[:])
}

// requestLog gives every request an id and logs one line when it is done:
// method, route pattern (never the path with its ids), status, duration.
// No query strings, bodies, cookies or tokens are logged.
func requestLog(log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		id := requestID()
		c.Locals(localsRequestID, id)
		c.Set("X-Request-Id", id)
		err := c.Next()
		if err != nil {
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		status := c.Response().StatusCode()
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		log.LogAttrs(c.UserContext(), level, "request",
			slog.String("request_id", id),
			slog.String("method", c.Method()),
			slog.String("route", c.Route().Path),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)))
		return nil
	}
}

// securityHeaders sets headers that every response should carry: a content
// security policy with no inline script, no framing, no referrer leaks of
// status links; in production HSTS (the gateway is only ever reached over
// TLS there: browsers must never try plain HTTP again).
func securityHeaders(production bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		setSecurityHeaders(c, production)
		return c.Next()
	}
}

func setSecurityHeaders(c *fiber.Ctx, production bool) {
	if production {
		c.Set(fiber.HeaderStrictTransportSecurity, "max-age=31536000; includeSubDomains")
	}
	c.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Frame-Options", "DENY")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set("Permissions-Policy", "geolocation=(), camera=(), microphone=()")
	c.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// identityEncodingOnly refuses request bodies with a Content-Encoding
// other than identity (415), before anything reads the body: Fiber's
// c.Body() would inflate gzip, deflate and brotli, stacked, with no limit
// (the body limit counts only the compressed bytes). No client of the
// gateway needs to compress what it sends; refusing keeps the brotli and
// gzip readers out of reach of anonymous requests.
func identityEncodingOnly() fiber.Handler {
	return func(c *fiber.Ctx) error {
		bad := false
		c.Request().Header.VisitAll(func(k, v []byte) {
			if !strings.EqualFold(string(k), fiber.HeaderContentEncoding) {
				return
			}
			for _, e := range strings.Split(string(v), ",") {
				if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "identity") {
					bad = true
				}
			}
		})
		if bad {
			c.Set(fiber.HeaderAcceptEncoding, "identity") // RFC 9110, 15.5.16: the codings accepted
			return gateway.Errorf("unsupported_media_type", "error.content_encoding", nil)
		}
		return c.Next()
	}
}

const langCookie = "lang"

// chooseLanguage picks the request's language: ?lang= (remembered in a cookie),
// then the cookie, then Accept-Language, then Swedish.
func chooseLanguage() fiber.Handler {
	return func(c *fiber.Ctx) error {
		pickLanguage(c)
		return c.Next()
	}
}

func pickLanguage(c *fiber.Ctx) {
	tag := locales.Default
	if q := c.Query("lang"); q != "" {
		if t, ok := locales.Parse(q); ok {
			tag = t
			c.Cookie(&fiber.Cookie{Name: langCookie, Value: t.String(), Path: "/", MaxAge: 365 * 24 * 3600, SameSite: fiber.CookieSameSiteLaxMode, HTTPOnly: true})
			c.Locals(localsLang, tag)
			return
		}
	}
	if v := c.Cookies(langCookie); v != "" {
		if t, ok := locales.Parse(v); ok {
			tag = t
		} else if t, ok := matchAcceptLanguage(c.Get(fiber.HeaderAcceptLanguage)); ok {
			tag = t
		}
	} else if t, ok := matchAcceptLanguage(c.Get(fiber.HeaderAcceptLanguage)); ok {
		tag = t
	}
	c.Locals(localsLang, tag)
	c.Vary(fiber.HeaderAcceptLanguage, fiber.HeaderCookie)
}

// acceptLanguages remembers what locales.Match made of an Accept-Language
// value: browsers send a handful of values, and matching parses and ranks
// the list on every page otherwise. Bounded in count and length.
var acceptLanguages struct {
	mu sync.RWMutex
	m  map[string]langMatch
}

type langMatch struct {
	tag language.Tag
	ok  bool
}

const (
	maxAcceptLanguages   = 1024 // values remembered; then it starts over
	maxAcceptLanguageLen = 256  // longer values are matched every time
)

func matchAcceptLanguage(h string) (language.Tag, bool) {
	if h == "" {
		return locales.Default, false
	}
	if len(h) > maxAcceptLanguageLen {
		return locales.Match(h)
	}
	acceptLanguages.mu.RLock()
	r, hit := acceptLanguages.m[h]
	acceptLanguages.mu.RUnlock()
	if hit {
		return r.tag, r.ok
	}
	r.tag, r.ok = locales.Match(h)
	acceptLanguages.mu.Lock()
	if acceptLanguages.m == nil || len(acceptLanguages.m) >= maxAcceptLanguages {
		acceptLanguages.m = make(map[string]langMatch)
	}
	acceptLanguages.m[strings.Clone(h)] = r // h is borrowed from the request
	acceptLanguages.mu.Unlock()
	return r.tag, r.ok
}

type langLink struct {
	Lang, Dir, Name, Href string
	Current               bool
}

// localPath is the request's path when it is a plain local path ("/x"),
// and "/" otherwise: "//evil.example/x" or "/\\evil.example" in a link's
// href would leave the site.
func localPath(c *fiber.Ctx) string {
	p := c.Path()
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") || len(p) > 1024 {
		return "/"
	}
	if u, err := url.Parse(p); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return p
}

// langLinks returns links to the current page in every shipped language.
func langLinks(c *fiber.Ctx, current language.Tag) []langLink {
	out := make([]langLink, 0, len(locales.Shipped))
	path := localPath(c)
	for _, t := range locales.Shipped {
		q := url.Values{}
		c.Context().QueryArgs().VisitAll(func(k, v []byte) {
			if string(k) != "lang" {
				q.Add(string(k), string(v))
			}
		})
		q.Set("lang", t.String())
		out = append(out, langLink{Lang: t.String(), Dir: locales.Dir(t), Name: langName(t), Href: path + "?" + q.Encode(), Current: t == current})
	}
	return out
}

// langName is a language's name in that language (CLDR), as language
// switches show it.
func langName(t language.Tag) string { return locales.Name(t) }

// CSRFConfig configures the CSRF middleware. For an anonymous visitor it is
// a double-submit token: the token lives in an HttpOnly, SameSite=Lax
// cookie (named with the __Host- prefix in production) and must come back
// in the form field (or header) of every state-changing request. For a
// signed-in person the token is bound to the session: forms carry the
// session's CSRF token and only that is accepted, so a cookie planted by
// another host cannot forge a signed-in person's form.
type CSRFConfig struct {
	// Next skips the middleware when it returns true.
	Next       func(c *fiber.Ctx) bool
	CookieName string
	FormField  string
	Header     string
	Secure     bool
}

// CSRFConfigDefault holds the defaults.
var CSRFConfigDefault = CSRFConfig{CookieName: "gw_csrf", FormField: "_csrf", Header: "X-CSRF-Token"}

func csrf(cfg CSRFConfig) fiber.Handler {
	if cfg.CookieName == "" {
		cfg.CookieName = CSRFConfigDefault.CookieName
	}
	if cfg.FormField == "" {
		cfg.FormField = CSRFConfigDefault.FormField
	}
	if cfg.Header == "" {
		cfg.Header = CSRFConfigDefault.Header
	}
	return func(c *fiber.Ctx) error {
		if cfg.Next != nil && cfg.Next(c) {
			return c.Next()
		}
		token := c.Cookies(cfg.CookieName)
		if len(token) != 43 { // 32 random bytes, base64url
			token = randomToken(32)
			c.Cookie(&fiber.Cookie{Name: cfg.CookieName, Value: token, Path: "/", HTTPOnly: true, Secure: cfg.Secure, SameSite: fiber.CookieSameSiteLaxMode})
		} else {
			token = strings.Clone(token)
		}
		if sess := session(c); sess != nil {
			c.Locals(localsCSRF, sess.CSRF)
			if !safeMethod(c.Method()) && !sessionCSRFOK(c, sess) {
				return gateway.Errorf(gateway.EForbidden, "error.csrf", nil)
			}
			return c.Next()
		}
		c.Locals(localsCSRF, token)
		if safeMethod(c.Method()) {
			return c.Next()
		}
		sent := c.FormValue(cfg.FormField)
		if sent == "" {
			sent = c.Get(cfg.Header)
		}
		if sent == "" || c.Cookies(cfg.CookieName) == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(token)) != 1 {
			return gateway.Errorf(gateway.EForbidden, "error.csrf", nil)
		}
		return c.Next()
	}
}

func csrfToken(c *fiber.Ctx) string {
	s, _ := c.Locals(localsCSRF).(string)
	return s
}

// rateLimit limits a client (by IP, from X-Forwarded-For only behind a
// trusted proxy) to SubmitLimit requests per SubmitWindow in a fixed window
// counted in Redis, so that every replica shares the count. When Redis does
// not answer, requests pass: a rate limit must not take the service down.
func (s *Server) rateLimit(name string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if s.Counter == nil || s.Config.SubmitLimit <= 0 || countedOnce(c, "rl:"+name) {
			return c.Next()
		}
		ctx, cancel := context.WithTimeout(c.UserContext(), 500*time.Millisecond)
		defer cancel()
		n, ttl, err := s.Counter.Hit(ctx, name+":"+clientIP(c), s.Config.SubmitWindow)
		if err != nil {
			s.Logger.Warn("rate limit unavailable", "error", err)
			return c.Next()
		}
		c.Set("RateLimit-Limit", strconv.Itoa(s.Config.SubmitLimit))
		c.Set("RateLimit-Remaining", strconv.FormatInt(max(0, int64(s.Config.SubmitLimit)-n), 10))
		if n > int64(s.Config.SubmitLimit) {
			secs := int(ttl.Seconds()) + 1
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
			return gateway.Errorf(gateway.ETooMany, "error.rate_limited", nil)
		}
		return c.Next()
	}
}

// countedOnce reports whether a limit named key was already counted for
// this request (a multipart form passes the limits before the CSRF check
// and again on its route), and marks it counted.
func countedOnce(c *fiber.Ctx, key string) bool {
	if c.Locals(key) != nil {
		return true
	}
	c.Locals(key, true)
	return false
}
