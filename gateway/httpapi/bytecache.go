package httpapi

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/language"
)

// cachedBody is an answer made once and served as bytes: the body, its
// gzip encoding, and a strong ETag for each (RFC 9110: a validator per
// representation). A large body is also kept in an unlinked temporary
// file, so that the kernel sends it with sendfile instead of copying it
// from memory into the socket on every request (at 1,000 services the
// catalog JSON is 600 KB; the copy was a third of the gateway's CPU).
type cachedBody struct {
	body, gz     []byte
	etag, gzETag string
	file         *bodyFile // nil: served from body
}

// sendfileMin is the size from which a body is sent from a file.
const sendfileMin = 64 << 10

func newCachedBody(body []byte) *cachedBody {
	b := &cachedBody{body: bytes.Clone(body)}
	if len(b.body) >= sendfileMin {
		b.file = newBodyFile(b.body)
	}
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
	if !gz && b.file != nil && c.Method() == fiber.MethodGet {
		if r, err := b.file.reader(); err == nil {
			c.Response().SetBodyStream(r, len(body)) // closed (given back) by fasthttp when sent
			return nil
		}
	}
	c.Response().SetBodyRaw(body) // b is never changed after it is made
	return nil
}

// bodyFile is a body in a temporary file that was unlinked at once (so
// nothing is left behind) and stays reachable as /proc/self/fd/N. Each
// request reads it through a description of its own (its own offset);
// descriptions are kept for reuse, since opening one per request cost
// about a tenth of the gateway's CPU for the 1,000-service page.
type bodyFile struct {
	path  string
	spare chan *os.File
}

// newBodyFile returns nil where this does not work (not Linux, no
// temporary directory).
func newBodyFile(body []byte) *bodyFile {
	if runtime.GOOS != "linux" {
		return nil
	}
	f, err := os.CreateTemp("", "gateway-body-*")
	if err != nil {
		return nil
	}
	_ = os.Remove(f.Name())
	if _, err := f.Write(body); err != nil {
		f.Close()
		return nil
	}
	bf := &bodyFile{path: "/proc/self/fd/" + strconv.Itoa(int(f.Fd())), spare: make(chan *os.File, 64)}
	probe, err := os.Open(bf.path)
	if err != nil {
		f.Close()
		return nil
	}
	bf.spare <- probe // f itself stays open, unused, for the path
	return bf
}

// reader returns a reader of the whole file for one request.
func (bf *bodyFile) reader() (*sendfileReader, error) {
	select {
	case f := <-bf.spare:
		if _, err := f.Seek(0, io.SeekStart); err == nil {
			return &sendfileReader{f: f, home: bf}, nil
		}
		f.Close()
	default:
	}
	f, err := os.Open(bf.path)
	if err != nil {
		return nil, err
	}
	return &sendfileReader{f: f, home: bf}, nil
}

// sendfileReader lets fasthttp's io.Copy reach net.TCPConn.ReadFrom with
// the *os.File itself, which is what makes Go use sendfile(2). Close gives
// the description back for reuse (at most 64 are kept).
type sendfileReader struct {
	f    *os.File
	home *bodyFile
}

func (r *sendfileReader) Read(p []byte) (int, error) { return r.f.Read(p) }

func (r *sendfileReader) Close() error {
	select {
	case r.home.spare <- r.f:
		return nil
	default:
		return r.f.Close()
	}
}

func (r *sendfileReader) WriteTo(w io.Writer) (int64, error) {
	if bw, ok := w.(*bufio.Writer); ok {
		// fasthttp's writer holds the header: sent first, the buffer is
		// empty and bufio hands the whole file to sendfile (with the header
		// still buffered it would read the first buffer's worth of the file
		// through user space).
		if err := bw.Flush(); err != nil {
			return 0, err
		}
	}
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(r.f)
	}
	return io.Copy(w, struct{ io.Reader }{r.f})
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
