package httpapi

import (
	"mime"
	"net/http"
	"path"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/web"
)

// The static files were built into the binary: they last changed, at the
// latest, when this process started.
var staticModified = time.Now().UTC().Truncate(time.Second)

// staticBodies holds each static file made ready to serve (ETag, gzip);
// there are as many as files built into the binary.
var staticBodies sync.Map // *web.Asset -> *cachedBody

// staticAsset: GET /static/<name>. Pages link the versioned URL
// (/static/site.<hash>.css, see web.AssetURL), which is cached for a year
// as immutable; the plain name and an older hash get the current content
// with a short cache. Both carry an ETag and Last-Modified and answer 304
// to If-None-Match or If-Modified-Since.
func (s *Server) staticAsset(c *fiber.Ctx) error {
	a, current, ok := web.LookupAsset(c.Params("*"))
	if !ok {
		return fiber.ErrNotFound
	}
	v, ok := staticBodies.Load(a)
	if !ok {
		v, _ = staticBodies.LoadOrStore(a, newCachedBody(a.Content))
	}
	b := v.(*cachedBody)
	c.Set(fiber.HeaderLastModified, staticModified.Format(http.TimeFormat))
	if c.Get(fiber.HeaderIfNoneMatch) == "" { // If-None-Match, when sent, decides
		if ims, err := http.ParseTime(c.Get(fiber.HeaderIfModifiedSince)); err == nil && !staticModified.After(ims) {
			c.Set(fiber.HeaderETag, b.etag)
			c.Status(fiber.StatusNotModified)
			c.Response().ResetBody()
			return nil
		}
	}
	cacheControl := "public, max-age=3600"
	if current {
		cacheControl = "public, max-age=31536000, immutable"
	}
	ctype := mime.TypeByExtension(path.Ext(a.Name))
	if ctype == "" {
		ctype = fiber.MIMEOctetStream
	}
	return serveCached(c, b, ctype, cacheControl)
}
