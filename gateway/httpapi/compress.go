package httpapi

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// CompressConfig configures the compression middleware: gzip for clients
// that accept it, for responses that carry no secret. Brotli is left out on purpose: fiber's compress
// middleware brings it through github.com/andybalholm/brotli v1.1.0, which
// has a known vulnerability (GO-2026-6888); gzip alone is what every
// browser accepts.
type CompressConfig struct {
	// Next skips the middleware when it returns true.
	Next func(c *fiber.Ctx) bool
	// MinSize is the smallest body worth compressing, in bytes. The
	// default, 1,400, is about what one TCP segment carries: a smaller body
	// goes in one packet compressed or not, so gzip (about 30 µs of CPU for
	// a 1 KB submission answer, BenchmarkGzipAcceptedAnswer, as much as its
	// receipt's signature) would save bytes but no round trip.
	MinSize int
	// MaxSize is the largest body compressed (it is compressed in memory).
	MaxSize int
	// Level is the gzip level (1 fastest .. 9 smallest).
	Level int
}

// CompressConfigDefault holds the defaults.
var CompressConfigDefault = CompressConfig{MinSize: 1400, MaxSize: 4 << 20, Level: fasthttp.CompressDefaultCompression}

// compressible are the media types worth compressing: text, JSON, XML,
// JavaScript, SVG (images and archives are compressed already).
func compressible(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.TrimSpace(strings.ToLower(ct))
	switch {
	case strings.HasPrefix(ct, "text/"), strings.HasSuffix(ct, "+json"), strings.HasSuffix(ct, "+xml"):
		return true
	}
	switch ct {
	case "application/json", "application/xml", "application/javascript", "image/svg+xml":
		return true
	}
	return false
}

// acceptsGzip reads Accept-Encoding: gzip (or *) with a q-value above 0.
func acceptsGzip(h string) bool {
	for _, part := range strings.Split(h, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "*" {
			continue
		}
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				q = f
			}
		}
		if q > 0 {
			return true
		}
	}
	return false
}

// carriesSecret reports whether body holds one of the request's CSRF
// tokens (a form's hidden field, /api/v1/me). Such a response is sent
// uncompressed: compressed next to text an attacker can reflect into the
// same page (a search, a form value, a query in the language links), its
// length would give the token away a character at a time (BREACH).
func carriesSecret(c *fiber.Ctx, body []byte) bool {
	if t := csrfToken(c); t != "" && bytes.Contains(body, []byte(t)) {
		return true
	}
	if sess := session(c); sess != nil && sess.CSRF != "" && bytes.Contains(body, []byte(sess.CSRF)) {
		return true
	}
	return false
}

// compress gzips responses for clients that accept it, except those that
// carry a secret (carriesSecret).
func compress(config ...CompressConfig) fiber.Handler {
	cfg := CompressConfigDefault
	if len(config) > 0 {
		cfg = config[0]
		if cfg.MinSize <= 0 {
			cfg.MinSize = CompressConfigDefault.MinSize
		}
		if cfg.MaxSize <= 0 {
			cfg.MaxSize = CompressConfigDefault.MaxSize
		}
		if cfg.Level == 0 {
			cfg.Level = CompressConfigDefault.Level
		}
	}
	return func(c *fiber.Ctx) error {
		if cfg.Next != nil && cfg.Next(c) {
			return c.Next()
		}
		err := c.Next()
		if err != nil {
			// Let the error handler write the page first, then compress it.
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				return herr
			}
		}
		c.Vary(fiber.HeaderAcceptEncoding)
		res := c.Response()
		if c.Method() == fiber.MethodHead || !acceptsGzip(c.Get(fiber.HeaderAcceptEncoding)) ||
			len(res.Header.Peek(fiber.HeaderContentEncoding)) > 0 || !compressible(string(res.Header.ContentType())) {
			return nil
		}
		switch st := res.StatusCode(); {
		case st < 200, st == fiber.StatusNoContent, st == fiber.StatusNotModified, st == fiber.StatusPartialContent:
			return nil
		}
		if n := res.Header.ContentLength(); n > cfg.MaxSize || (res.IsBodyStream() && n < 0) {
			return nil // too large, or a stream of unknown length
		}
		body := res.Body()
		if len(body) < cfg.MinSize || len(body) > cfg.MaxSize || carriesSecret(c, body) {
			return nil
		}
		res.SetBodyRaw(fasthttp.AppendGzipBytesLevel(nil, body, cfg.Level))
		res.Header.Set(fiber.HeaderContentEncoding, "gzip")
		res.Header.Del(fiber.HeaderAcceptRanges)
		return nil
	}
}
