package httpapi

import "github.com/gofiber/fiber/v2"

// Open311 is the Open311 GeoReport v2 facade (*open311.Handler); its routes
// are in routes.go, under /open311/v2.
type Open311 interface {
	// Catch answers every error under the base path in Open311's shape.
	Catch(c *fiber.Ctx) error
	NotFound(c *fiber.Ctx) error
	Discovery(c *fiber.Ctx) error
	Services(c *fiber.Ctx) error
	Service(c *fiber.Ctx) error
	PostRequests(c *fiber.Ctx) error
	GetRequests(c *fiber.Ctx) error
	GetRequest(c *fiber.Ctx) error
	Token(c *fiber.Ctx) error
}
