package httpapi

import (
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/kommun/servicegateway/web"
)

// routes lists every route of the gateway. Keep it the one place to look.
func (s *Server) routes(app *fiber.App) {
	app.Use(requestLog(s.Logger))
	app.Use(securityHeaders())
	app.Use(chooseLanguage())
	if s.Authenticate != nil {
		app.Use(s.Authenticate)
	}

	// Operations.
	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)

	// Static assets (one stylesheet), cached for a day.
	app.Use("/static", filesystem.New(filesystem.Config{Root: http.FS(web.Static()), MaxAge: 86400}))

	// JSON for programs. No cookie authentication yet, so no CSRF token.
	api := app.Group("/api/v1")
	api.Get("/services", s.apiListServices)
	api.Get("/services/:id", s.apiGetService)
	api.Post("/services/:id/submissions", s.rateLimit("submit"), s.apiSubmit)
	api.Get("/submissions/:id", s.apiGetSubmission)
	api.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })

	// Pages for people. Forms carry a CSRF token.
	app.Use(csrf(CSRFConfig{Secure: s.Config.Production}))
	app.Get("/", s.catalogPage)
	app.Get("/services/:id", s.formPage)
	app.Post("/services/:id", s.rateLimit("submit"), s.submitForm)
	app.Get("/s/:id", s.statusPage)
}
