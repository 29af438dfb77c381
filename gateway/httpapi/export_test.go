package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

// AuthenticateForTests is a TEST FIXTURE, compiled only into this
// package's tests: an Authenticate middleware that sets the principal
// named by the request header X-Test-Principal (a key of principals), so
// the handlers' role checks can be tested before and apart from the real
// sign-in. It must never exist outside tests.
func AuthenticateForTests(principals map[string]*gateway.Principal) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if p, ok := principals[c.Get("X-Test-Principal")]; ok {
			setPrincipal(c, p)
		}
		return c.Next()
	}
}

// CheckAPIDocs is checkAPIDocs, which NewServer runs on its routes.
func CheckAPIDocs(app *fiber.App) error { return checkAPIDocs(app) }

// MatchAcceptLanguage is matchAcceptLanguage (the remembered matches).
var MatchAcceptLanguage = matchAcceptLanguage
