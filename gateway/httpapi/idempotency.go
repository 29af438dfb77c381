package httpapi

import (
	"github.com/gofiber/fiber/v2"
)

// idempotencyScope is whom an Idempotency-Key belongs to: the signed-in
// principal, or else the client's address.
func idempotencyScope(c *fiber.Ctx) string {
	if p := principal(c); p != nil && p.Subject != "" {
		return "user:" + p.Subject
	}
	return "ip:" + clientIP(c)
}
