package httpapi

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/web"
)

// cacheByVersion lets browsers keep a static file for a year when it is
// asked for by its current content hash (web.AssetURL): a new version has a
// new address.
func cacheByVersion(c *fiber.Ctx) error {
	err := c.Next()
	name := strings.TrimPrefix(c.Path(), "/static/")
	if v := c.Query("v"); err == nil && v != "" && v == web.AssetVersion(name) && c.Response().StatusCode() == fiber.StatusOK {
		c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	}
	return err
}
