package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

// AuthenticateForTests is an Authenticate middleware for tests only: it
// sets the principal that who returns for the request (nil: anonymous).
// It lets handler tests act as a persona without the identity machinery.
func AuthenticateForTests(who func(c *fiber.Ctx) *gateway.Principal) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if p := who(c); p != nil {
			setPrincipal(c, p)
		}
		return c.Next()
	}
}
