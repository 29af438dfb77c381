// Package httpapi is the gateway's HTTP face: server-rendered pages for
// people under / and JSON for programs under /api/v1/. routes.go lists every
// route; handlers are built by methods on Server that use its dependencies;
// one error handler turns every error into a localized page or an RFC 9457
// problem.
package httpapi

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/language"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/gateway/servicepoint"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"
	"github.com/kommun/servicegateway/web"
)

// SubmissionStore reads submissions; they are written by the intake.
type SubmissionStore interface {
	Get(ctx context.Context, id string) (*gateway.Submission, error)
}

// Counter counts hits in a fixed window, for rate limits.
type Counter interface {
	Hit(ctx context.Context, key string, window time.Duration) (count int64, ttl time.Duration, err error)
}

// Deps is what the HTTP layer needs from the rest of the gateway.
type Deps struct {
	Catalog *services.Catalog
	// Intake runs the submit rules for every channel (gateway/intake).
	Intake *intake.Intake
	// Drafts saves forms to finish later and hands desk forms over to
	// visitors (intake.Drafts, drafts.go); nil: no "save draft".
	Drafts *intake.Drafts
	// Store reads submissions (status pages, My pages).
	Store SubmissionStore
	// Desk is the service-point desk's store; nil: no desk.
	Desk DeskStore
	// DeadLetters is the administration of dead letters; nil: 503.
	DeadLetters DeadLetterStore
	// Statuses takes status updates from back-ends; nil: 503.
	Statuses StatusUpdater
	// MessageDeadLetters lists dead notifications and follow-ups; nil: 503.
	MessageDeadLetters MessageDeadLetterStore
	// NotifyPrefs keeps residents' notification preferences; nil: 503.
	NotifyPrefs  NotifyPrefsStore
	Translations *locales.Translations
	Logger       *slog.Logger
	// Ready reports whether the gateway can serve (Redis reachable).
	Ready func(ctx context.Context) error
	// Counter backs the rate limits; nil switches them off.
	Counter Counter
	// Authenticate is the middleware that sets the request's principal
	// (session cookie or bearer token) with setPrincipal; nil: everyone is
	// anonymous.
	Authenticate fiber.Handler
	// Auth is sign-in, sessions, machine clients and the development
	// identity provider; nil: no identity (everyone anonymous). When set
	// and Authenticate is nil, its middleware is the authentication.
	Auth *Auth
	// Metrics, when set, counts requests and is served at GET /metrics.
	Metrics *Metrics
	// Callbacks returns the verifier of signed requests from the back-end
	// of a service (its connector), for status updates; nil or a nil
	// verifier: signed updates are refused for that service.
	Callbacks func(serviceID string) CallbackVerifier
	// Usage receives usage events (gateway/usage); nil: nothing is tracked.
	Usage Tracker
	// UsageReports answers the usage API, the dashboard and the open data;
	// nil: they answer 404 (503 for the API).
	UsageReports UsageReader
	// ServicePoints are the configured service points for the staff desk
	// (desk.go); nil: no desk (its routes answer 404).
	ServicePoints *servicepoint.Directory
	// Receipts signs receipts and publishes their keys (receipts.go);
	// nil: receipts are not signed.
	Receipts ReceiptSigner
	// Notices keeps the front-door notices (notices.go); nil: none.
	Notices NoticeStore
	// Satisfaction keeps the answers to the satisfaction question after a
	// receipt (satisfaction.go); nil: no question.
	Satisfaction SatisfactionStore
	// Open311 is the Open311 GeoReport v2 facade; nil: not served.
	Open311 Open311
	// Upstreams are the existing e-services served under a prefix, by
	// service id (proxy.go); IdentityKeys signs the identity they get.
	Upstreams    map[string]Upstream
	IdentityKeys IdentitySigner
	// Attachments and AttachmentLinks serve the signed download links of
	// attachments to back-ends (attachments.go); nil: 404.
	Attachments     AttachmentDownloads
	AttachmentLinks *gateway.AttachmentLinks
	Config          Config
}

// Config holds the HTTP layer's settings.
type Config struct {
	// PublicURL is the gateway's external base URL, for absolute links in
	// API answers ("https://e-tjanster.example.se"); empty means relative.
	PublicURL string
	// Production switches on Secure cookies.
	Production bool
	// StoreTimeout bounds every store call made by a request.
	StoreTimeout time.Duration
	// SubmitLimit is the number of submissions one client may make per
	// SubmitWindow; 0 switches the limit off.
	SubmitLimit  int
	SubmitWindow time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []string
	// BodyLimit caps request bodies, in bytes.
	BodyLimit int
	// ReadTimeout bounds reading one request, headers and body: a slow
	// sender holding a body buffer is cut off after it.
	ReadTimeout time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered.
	IdempotencyTTL time.Duration
	// OpenDataMinCount: open data counts from 1 to OpenDataMinCount-1
	// are suppressed; 0 means usage.DefaultMinCount.
	OpenDataMinCount int
	// AccessibilityService is the service that takes feedback from the
	// accessibility statement's form (accessibility.go); unknown: the page
	// has no form.
	AccessibilityService string
	// DraftResumeLimit is how many codes a client address, a browser and
	// a signed-in person may try per DraftResumeWindow at /fortsatt
	// (against guessing); DraftsPerAddress how many anonymous drafts
	// (codes) one client address may save per day.
	DraftResumeLimit  int
	DraftResumeWindow time.Duration
	DraftsPerAddress  int
	// Now is the clock; tests may set it.
	Now func() time.Time
}

// ConfigDefault is the configuration used for unset fields.
var ConfigDefault = Config{
	StoreTimeout:   3 * time.Second,
	SubmitLimit:    20,
	SubmitWindow:   time.Minute,
	BodyLimit:      256 * 1024,
	ReadTimeout:    15 * time.Second,
	IdempotencyTTL: 24 * time.Hour,
	Now:            time.Now,
	// Drafts (drafts.go).
	DraftResumeLimit:  10,
	DraftResumeWindow: 15 * time.Minute,
	DraftsPerAddress:  30,
	// The example feedback service (city-office/feedback).
	AccessibilityService: "feedback",
}

func (c Config) withDefaults() Config {
	d := ConfigDefault
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = d.StoreTimeout
	}
	if c.SubmitWindow <= 0 {
		c.SubmitWindow = d.SubmitWindow
	}
	if c.BodyLimit <= 0 {
		c.BodyLimit = d.BodyLimit
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.IdempotencyTTL <= 0 {
		c.IdempotencyTTL = d.IdempotencyTTL
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.AccessibilityService == "" {
		c.AccessibilityService = d.AccessibilityService
	}
	if c.DraftResumeLimit <= 0 {
		c.DraftResumeLimit = d.DraftResumeLimit
	}
	if c.DraftResumeWindow <= 0 {
		c.DraftResumeWindow = d.DraftResumeWindow
	}
	if c.DraftsPerAddress <= 0 {
		c.DraftsPerAddress = d.DraftsPerAddress
	}
	return c
}

// Server holds the handlers' dependencies.
type Server struct {
	Deps
	pages   map[string]*template.Template
	app     *fiber.App
	trusted []netip.Prefix // trusted proxies (clientip.go)

	pointKeyOnce  sync.Once // desk_point.go
	pointKeyBytes []byte

	notices noticeCache // notices.go
	openapi openAPI
	cache   catalogCache // catalog.go: the catalog made once per language
}

// NewServer builds the fiber app with every route.
func NewServer(deps Deps) (*fiber.App, error) {
	deps.Config = deps.Config.withDefaults()
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	pages, err := web.Pages(nil)
	if err != nil {
		return nil, err
	}
	trusted, err := parseTrusted(deps.Config.TrustedProxies)
	if err != nil {
		return nil, err
	}
	s := &Server{Deps: deps, pages: pages, trusted: trusted}
	s.initAuth()
	s.app = fiber.New(fiber.Config{
		AppName:      "servicegateway",
		ErrorHandler: s.handleError,
		BodyLimit:    deps.Config.BodyLimit,
		// Bodies are streamed so that uploads are read part by part
		// (uploads.go); limitBody keeps BodyLimit for every other route.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		ReadBufferSize:               16 * 1024, // caps request headers
		WriteBufferSize:              16 * 1024, // headers and a small page in one write (fasthttp: 4 KB, two writes)
		ReadTimeout:                  deps.Config.ReadTimeout,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  120 * time.Second,
		DisableStartupMessage:        true,
		CaseSensitive:                true, // "/API/v1/..." is not "/api/v1/...": no second way around path-based checks
		EnableTrustedProxyCheck:      true,
		TrustedProxies:               deps.Config.TrustedProxies,
		ProxyHeader:                  fiber.HeaderXForwardedFor,
	})
	s.routes(s.app)
	if err := checkAPIDocs(s.app); err != nil { // openapi.go: every JSON route described
		return nil, err
	}
	return s.app, nil
}

// storeCtx bounds a store call made on behalf of a request.
func (s *Server) storeCtx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.Config.StoreTimeout)
}

// page is what every template gets.
type page struct {
	L         *locales.Localizer
	Lang      string
	Title     string
	LangLinks []langLink
	CSRF      string
	Content   any
	// Account is the header's link to My pages or to sign in; nil when
	// there is no sign-in.
	Account *accountLink
	// Notices are the front-door notices that concern the page.
	Notices []noticeView
}

// render writes a page with the layout.
func (s *Server) render(c *fiber.Ctx, status int, name, title string, content any) error {
	t, ok := s.pages[name]
	if !ok {
		return errors.New("httpapi: no page template " + name)
	}
	l := s.localizer(c)
	p := page{L: l, Lang: l.Lang.String(), Title: title, LangLinks: langLinks(c, l.Lang), CSRF: csrfToken(c), Content: content, Account: s.accountLink(c)}
	p.Notices = s.pageNotices(c, l)
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", p); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderContentLanguage, p.Lang)
	// Pages are drawn per person and per request: forms with what a
	// resident typed (re-drawn with errors, or kept across a sign-in under
	// ?draft=), receipts, status, My pages. None may stay in a shared
	// browser's cache (kiosk computers at service points) or a proxy's.
	// A handler that set its own policy (the open data page) keeps it.
	if len(c.Response().Header.Peek(fiber.HeaderCacheControl)) == 0 {
		c.Set(fiber.HeaderCacheControl, "no-store")
	}
	return c.Status(status).Send(buf.Bytes())
}

// lang returns the request's language, chosen by the language middleware.
func lang(c *fiber.Ctx) language.Tag {
	if t, ok := c.Locals(localsLang).(language.Tag); ok {
		return t
	}
	return locales.Default
}

func (s *Server) localizer(c *fiber.Ctx) *locales.Localizer {
	return s.Translations.Localizer(lang(c))
}

// Locals keys.
type localsKey int

const (
	localsLang localsKey = iota
	localsCSRF
	localsRequestID
	localsPrincipal
	localsClientIP
)

// principal returns who is making the request, as set by the authentication
// middleware; nil for an anonymous visitor.
func principal(c *fiber.Ctx) *gateway.Principal {
	p, _ := c.Locals(localsPrincipal).(*gateway.Principal)
	return p
}

// setPrincipal is called by the authentication middleware.
func setPrincipal(c *fiber.Ctx, p *gateway.Principal) { c.Locals(localsPrincipal, p) }

// requireRole answers 401 to anonymous callers and 403 to those without any
// of the roles.
func requireRole(c *fiber.Ctx, roles ...gateway.Role) (*gateway.Principal, error) {
	p := principal(c)
	if p == nil {
		return nil, gateway.Errorf(gateway.EUnauth, "error.signin_needed", nil)
	}
	for _, r := range roles {
		if p.HasRole(r) {
			return p, nil
		}
	}
	return nil, gateway.Errorf(gateway.EForbidden, "error.forbidden", nil)
}
