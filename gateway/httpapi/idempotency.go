package httpapi

import (
	"github.com/gofiber/fiber/v2"
)

// anonymousScope is whom an anonymous caller's Idempotency-Key belongs to:
// the client's address. A signed-in principal's keys are scoped to the
// principal by the intake (intake.Request.IdempotencyScope).
func anonymousScope(c *fiber.Ctx) string { return "ip:" + clientIP(c) }
