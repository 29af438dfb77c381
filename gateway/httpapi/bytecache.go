package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/language"
)

// cachedBody is an answer made once and served as bytes: the body, its
// gzip encoding, and a strong ETag for each (RFC 9110: a validator per
// representation).
type cachedBody struct {
	body, gz     []byte
	etag, gzETag string
}

func newCachedBody(body []byte) *cachedBody {
	b := &cachedBody{body: bytes.Clone(body)}
	sum := sha256.Sum256(b.body)
	tag := base64.RawURLEncoding.EncodeToString(sum[:18])
	b.etag = `"` + tag + `"`
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	_, _ = w.Write(b.body)
	if w.Close() == nil && z.Len() < len(b.body) {
		b.gz = z.Bytes()
		b.gzETag = `"` + tag + `-gz"`
	}
	return b
}

// serveCached answers with b: 304 when If-None-Match names its ETag, the
// gzip encoding when the client accepts it.
func serveCached(c *fiber.Ctx, b *cachedBody, contentType, cacheControl string) error {
	c.Vary(fiber.HeaderAcceptEncoding)
	c.Set(fiber.HeaderCacheControl, cacheControl)
	body, etag := b.body, b.etag
	gz := b.gz != nil && acceptsGzip(c.Get(fiber.HeaderAcceptEncoding))
	if gz {
		body, etag = b.gz, b.gzETag
	}
	c.Set(fiber.HeaderETag, etag)
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && etagMatches(inm, etag) {
		c.Status(fiber.StatusNotModified)
		c.Response().ResetBody()
		return nil
	}
	c.Set(fiber.HeaderContentType, contentType)
	if gz {
		c.Set(fiber.HeaderContentEncoding, "gzip")
	}
	c.Status(fiber.StatusOK)
	c.Response().SetBodyRaw(body) // b is never changed after it is made
	return nil
}

// etagMatches is the weak comparison of If-None-Match (RFC 9110 13.1.2).
func etagMatches(header, etag string) bool {
	if strings.TrimSpace(header) == "*" {
		return true
	}
	for len(header) > 0 {
		var one string
		one, header, _ = strings.Cut(header, ",")
		one = strings.TrimPrefix(strings.TrimSpace(one), "W/")
		if one == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether Accept-Encoding allows gzip (not with q=0).
func acceptsGzip(header string) bool {
	for len(header) > 0 {
		var one string
		one, header, _ = strings.Cut(header, ",")
		name, params, _ := strings.Cut(one, ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimSpace(params), "=")
		if strings.TrimSpace(k) == "q" {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q > 0
		}
		return true
	}
	return false
}

// pageKey names a cached page: its language and header variant.
type pageKey struct {
	lang    language.Tag
	account int8
}

// catalogCache holds the catalog as made once per language (views) and the
// unfiltered catalog page per language and header variant. Both are
// bounded by the number of shipped languages (times three variants): the
// keys come from the language middleware, never from the client directly.
type catalogCache struct {
	mu    sync.RWMutex
	views map[language.Tag]*catalogView
	pages map[pageKey]*cachedBody
}

func (cc *catalogCache) view(t language.Tag) *catalogView {
	cc.mu.RLock()
	defer cc.mu.RUnlock()
	return cc.views[t]
}

// setView keeps v unless another request made the view first; it returns
// the view kept.
func (cc *catalogCache) setView(t language.Tag, v *catalogView) *catalogView {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if old := cc.views[t]; old != nil {
		return old
	}
	if cc.views == nil {
		cc.views = map[language.Tag]*catalogView{}
	}
	cc.views[t] = v
	return v
}

func (cc *catalogCache) page(k pageKey) *cachedBody {
	cc.mu.RLock()
	defer cc.mu.RUnlock()
	return cc.pages[k]
}

func (cc *catalogCache) setPage(k pageKey, b *cachedBody) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.pages == nil {
		cc.pages = map[pageKey]*cachedBody{}
	}
	if _, ok := cc.pages[k]; !ok {
		cc.pages[k] = b
	}
}
