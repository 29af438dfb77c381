package httpapi

import (
	"github.com/gofiber/fiber/v2"
)

// routes lists every route of the gateway. Keep it the one place to look.
func (s *Server) routes(app *fiber.App) {
	if s.Metrics != nil {
		app.Use(s.Metrics.observe()) // outermost: sees the final status
	}
	app.Use(requestLog(s.Logger))
	// Request bodies are streamed; only the upload routes read theirs as
	// a stream (uploads.go), every other keeps the body limit.
	app.Use(s.limitBody(streamedBody))
	// Existing e-services behind the front door (proxy.go) have a chain of
	// their own: authentication only. Compression, the gateway's page
	// headers and language are the e-service's business (an error page of
	// the gateway's own gets them in proxy.go); the gateway's CSRF check
	// is left to the e-service, whose forms it protects; the client's
	// address is resolved by the proxy handler, which needs no key of it.
	s.proxyRoutes(app)
	app.Use(s.clientAddress())
	app.Use(compress()) // gzip when the client accepts it (compress.go)
	app.Use(securityHeaders(s.Config.Production))
	app.Use(identityEncodingOnly())
	app.Use(chooseLanguage())
	if s.Authenticate != nil {
		app.Use(s.Authenticate)
	}

	// Operations.
	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	if s.Metrics != nil {
		app.Get("/metrics", s.Metrics.handler())
	}

	// The public keys of signed receipts (JWKS), old ones included.
	app.Get(ReceiptKeysPath, s.receiptKeys)

	// Static assets (one stylesheet): pages link /static/<name>.<hash>.<ext>,
	// cached for good; ETag and Last-Modified (static.go).
	app.Get("/static/*", s.staticAsset)

	// JSON for programs. Machine clients authenticate with a bearer
	// assertion; calls authenticated by the session cookie that change
	// something carry X-CSRF-Token (checked by the authentication).
	// Every route here is described in apiDocs (openapi.go) for the
	// OpenAPI document; NewServer fails on one that is not.
	api := app.Group("/api/v1")
	api.Get("/openapi.json", s.apiOpenAPI)
	api.Get("/services", s.apiListServices)
	api.Get("/services/:id", s.apiGetService)
	api.Post("/services/:id/submissions", s.rateLimit("submit"), s.personLimit("submit"), s.multipartSubmit(true, nil), s.apiSubmit)
	api.Post("/uploads", s.rateLimit("upload"), s.personLimit("upload"), s.apiUpload) // ?service=&field=&name=, the file as the body
	api.Get("/submissions/:id", s.apiGetSubmission)
	api.Post("/submissions/:id/status", s.apiStatusUpdate) // back-ends: department principal or HMAC
	api.Post("/submissions/:id/answer", s.apiAnswer)       // the resident answers a completion request
	// Administration of dead letters (role admin).
	api.Get("/admin/dead-letters", s.apiDeadLetters)
	api.Get("/admin/dead-letters/:id", s.apiDeadLetter)
	api.Post("/admin/dead-letters/:id/replay", s.apiReplayDeadLetter)
	api.Post("/admin/dead-letters/:id/close", s.apiCloseDeadLetter)
	api.Get("/admin/message-dead-letters", s.apiMessageDeadLetters) // notifications, webhooks and follow-ups given up on
	api.Post("/admin/message-dead-letters/notifications/replay", s.apiReplayNotification)
	api.Post("/admin/message-dead-letters/followups/replay", s.apiReplayFollowUp)
	api.Get("/me", s.apiMe) // the signed-in principal and its CSRF token; 401 when anonymous
	if s.Auth != nil {
		api.Get("/me/submissions", s.apiMySubmissions)    // a resident's submissions (My pages)
		api.Get("/me/notifications", s.apiGetNotifyPrefs) // a resident's notification preferences
		api.Put("/me/notifications", s.apiPutNotifyPrefs)
		api.Get("/department/submissions", s.apiDepartmentSubmissions) // a department client's submissions
	}
	api.Get("/usage", s.apiUsage) // usage KPIs, exact (staff, admin); ?from=&to=&service=&department=&granularity=
	// Service-point desk (staff): contacts that did not start digitally,
	// this week's work; filing on behalf is the submissions route above
	// with on_behalf_of. The audit of actions on behalf of residents (admin).
	api.Post("/contacts", s.apiContact)                // {"service","channel","outcome","language"}
	api.Get("/desk/submissions", s.apiDeskSubmissions) // the service point's filings this week, subjects masked
	api.Get("/admin/audit", s.apiAudit)                // ?before=&limit=
	// Front-door notices: the ones shown now (?service=), and their
	// administration (role admin).
	api.Get("/notices", s.apiNotices)
	api.Get("/admin/notices", s.apiAdminNotices)
	api.Post("/admin/notices", s.apiPublishNotice)
	api.Delete("/admin/notices/:id", s.apiWithdrawNotice)
	api.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })

	// Attachments for back-ends: the signed, expiring links of deliveries
	// and follow-ups (attachments.go). No cookies; the link is the key.
	app.Get("/attachments/:id", s.attachmentDownload)

	// Open data (CC0): usage aggregates with small counts suppressed, the
	// service catalog, and their DCAT-AP metadata. No cookies.
	app.Get("/open-data/usage.csv", s.openUsageCSV)
	app.Get("/open-data/usage.json", s.openUsageJSON)
	app.Get("/open-data/services.csv", s.openServicesCSV)
	app.Get("/open-data/services.json", s.openServicesJSON)
	app.Get("/open-data/catalog.jsonld", s.openCatalog)

	// Open311 GeoReport v2 (gateway/open311): every resource in JSON and
	// XML by its suffix, errors in Open311's shape; api_key, not cookies.
	if o := s.Open311; o != nil {
		g := app.Group("/open311/v2", o.Catch)
		g.Get("/discovery.:format", o.Discovery)
		g.Get("/services.:format", o.Services)
		g.Get("/services/:code.:format", o.Service)
		g.Post("/requests.:format", s.rateLimit("submit"), o.PostRequests)
		g.Get("/requests.:format", o.GetRequests)
		g.Get("/requests/:id.:format", o.GetRequest)
		g.Get("/tokens/:token.:format", o.Token)
		g.Use(o.NotFound)
	}

	// Identity, before the form CSRF middleware: the development provider's
	// machine endpoints (called by the relying party, not by browsers), and
	// sign-out, which checks either CSRF token itself.
	if s.Auth != nil {
		if s.Auth.DevIdP != nil {
			app.Get("/dev-idp/.well-known/openid-configuration", s.devDiscovery)
			app.Get("/dev-idp/jwks", s.devJWKS)
			app.Get("/dev-idp/personas", s.devPersonas)
			app.Post("/dev-idp/token", s.devToken)
		}
		app.Post("/auth/logout", s.logout)
		app.Post("/oauth/token", s.oauthToken) // machine clients: client credentials with a JWT assertion
	}

	// The keys of the identity tokens of the e-services above.
	s.identityKeysRoute(app)

	// A form with files (multipart/form-data) is read as a stream before
	// the CSRF check, which it does itself before the first file; it goes
	// on as a plain form post to the route below (uploads.go).
	app.Post("/services/:id", s.rateLimit("submit"), s.personLimit("submit"), s.multipartSubmit(false, nil))
	app.Post("/desk/services/:id", s.rateLimit("submit"), s.personLimit("submit"), s.multipartSubmit(false, staffOnly))
	app.Post("/s/:id/answer", s.rateLimit("upload"), s.multipartAnswer) // an answer to a completion request with files

	// Pages for people. Forms carry a CSRF token.
	app.Use(csrf(CSRFConfig{Secure: s.Config.Production, CookieName: s.cookieName(CSRFConfigDefault.CookieName)}))
	app.Get("/", s.catalogPage)
	app.Get("/services/:id", s.formPage)
	app.Post("/services/:id", s.rateLimit("submit"), s.personLimit("submit"), s.submitForm)
	app.Get("/s/:id", s.statusPage)
	app.Post("/s/:id/satisfaction", s.satisfactionForm) // one answer per receipt
	app.Get("/receipts/verify", s.receiptVerifyPage)    // paste a receipt (and payload) to check it
	app.Post("/receipts/verify", s.receiptVerifyPage)   // no JavaScript
	app.Get("/open-data", s.openDataPage)               // also /open-data/: the datasets explained
	app.Get("/tillganglighet", s.accessibilityPage)     // accessibility statement (DOS law) with a feedback form
	app.Get("/dashboard", s.dashboardPage)              // usage dashboard (staff, admin)
	app.Post("/s/:id/answer", s.answerForm)             // the resident answers a completion request
	app.Get("/fortsatt", s.resumePage)                  // continue a saved form: type the resume or handover code
	app.Post("/fortsatt", s.resumeForm)                 // rate-limited per address, browser and person (drafts.go)
	if s.Auth != nil {
		app.Get("/auth/login", s.login)                 // ?return_to=&login_hint=&level=&provider=
		app.Get("/auth/callback", s.callback)           // the OpenID provider sends the browser back here
		app.Get("/my", s.myPage)                        // My pages
		app.Get("/my/notifications", s.notifyPrefsPage) // notification preferences
		app.Post("/my/notifications", s.notifyPrefsForm)
		app.Post("/my/drafts/:id/delete", s.deleteDraftForm) // a resident deletes a saved draft
		if s.Auth.DevIdP != nil {
			app.Get("/dev-idp/authorize", s.devAuthorize) // login_hint approves at once; else the persona picker
			app.Post("/dev-idp/authorize", s.devApprove)
		}
	}
	// Administration pages (role admin); addressed by receipt reference.
	app.Get("/admin/dead-letters", s.deadLettersPage)
	app.Get("/admin/dead-letters/:ref", s.deadLetterPage)
	app.Post("/admin/dead-letters/:ref/replay", s.replayDeadLetterForm)
	app.Post("/admin/dead-letters/:ref/close", s.closeDeadLetterForm)
	app.Get("/admin/message-dead-letters", s.messageDeadLettersPage)
	app.Post("/admin/message-dead-letters/notifications/replay", s.replayNotificationForm)
	app.Post("/admin/message-dead-letters/followups/replay", s.replayFollowUpForm)
	app.Get("/admin/audit", s.auditPage)          // the audit stream (role admin); ?before=
	app.Get("/admin/notices", s.adminNoticesPage) // front-door notices (role admin)
	app.Post("/admin/notices", s.adminPublishNoticeForm)
	app.Post("/admin/notices/:id/withdraw", s.adminWithdrawNoticeForm)
	// The service-point desk (role staff).
	app.Get("/desk", s.deskPage)                  // ?q= searches the catalog
	app.Post("/desk/point", s.deskChoosePoint)    // staff without a point from sign-in choose one
	app.Post("/desk/contacts", s.deskContactForm) // register a contact: service, channel, outcome
	app.Get("/desk/services/:id", s.deskFormPage) // a service's form, filled in for a visitor
	app.Post("/desk/services/:id", s.rateLimit("submit"), s.personLimit("submit"), s.deskSubmitForm)
	app.Get("/desk/receipt/:id", s.deskReceipt) // printable receipt in the visitor's language
}
