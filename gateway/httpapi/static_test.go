package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/web"
)

// Pages link the stylesheet by a URL with the hash of its content; that URL
// is cached for good (immutable), and every static answer has an ETag and
// Last-Modified and answers 304 to either validator.
func TestStylesheetVersionedAndValidated(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	page := e.get(t, "/")
	m := regexp.MustCompile(`<link rel="stylesheet" href="(/static/site\.([0-9a-f]{12})\.css)">`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no versioned stylesheet link in\n%.600s", page.body)
	}
	a, _, ok := web.LookupAsset("site.css")
	if !ok {
		t.Fatal("no site.css")
	}
	if sum := sha256.Sum256(a.Content); !strings.HasPrefix(hex.EncodeToString(sum[:]), m[2]) {
		t.Fatalf("the link's hash %s is not the content's", m[2])
	}
	css := e.get(t, m[1])
	cc := css.header.Get("Cache-Control")
	if css.status != 200 || css.body != string(a.Content) || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") ||
		!strings.Contains(cc, "immutable") || !strings.Contains(cc, "max-age=31536000") {
		t.Fatalf("GET %s: %d %q Cache-Control %q", m[1], css.status, css.header.Get("Content-Type"), cc)
	}
	tag, modified := css.header.Get("ETag"), css.header.Get("Last-Modified")
	if tag == "" || !strings.HasSuffix(modified, " GMT") {
		t.Fatalf("validators: ETag %q Last-Modified %q", tag, modified)
	}
	if r := e.get(t, m[1], "If-None-Match", tag); r.status != 304 || r.body != "" {
		t.Fatalf("If-None-Match: %d", r.status)
	}
	if r := e.get(t, m[1], "If-Modified-Since", modified); r.status != 304 || r.body != "" {
		t.Fatalf("If-Modified-Since: %d", r.status)
	}
	if r := e.get(t, m[1], "If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT"); r.status != 200 {
		t.Fatalf("If-Modified-Since long ago: %d", r.status)
	}
	// The plain name and an older hash: today's content, not cached for good.
	for _, p := range []string{"/static/site.css", "/static/site.000000000000.css"} {
		r := e.get(t, p)
		if r.status != 200 || r.body != string(a.Content) || strings.Contains(r.header.Get("Cache-Control"), "immutable") || r.header.Get("ETag") != tag {
			t.Fatalf("GET %s: %d Cache-Control %q", p, r.status, r.header.Get("Cache-Control"))
		}
	}
	for _, p := range []string{"/static/nope.css", "/static/", "/static/site.x.png"} {
		if r := e.get(t, p); r.status != 404 {
			t.Fatalf("GET %s: %d", p, r.status)
		}
	}
}
