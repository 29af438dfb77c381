package httpapi_test

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"
	"github.com/kommun/servicegateway/services/servicegen"
)

// The unfiltered catalog page and JSON come with a strong ETag per language
// and encoding; If-None-Match with it answers 304 without a body; gzip is
// the same bytes compressed.
func TestCatalogValidators(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	for _, path := range []string{"/", "/api/v1/services"} {
		sv := e.get(t, path)
		tag := sv.header.Get("ETag")
		if sv.status != 200 || !strings.HasPrefix(tag, `"`) || len(tag) < 20 || !strings.Contains(sv.header.Get("Cache-Control"), "no-cache") {
			t.Fatalf("GET %s: %d ETag %q Cache-Control %q", path, sv.status, tag, sv.header.Get("Cache-Control"))
		}
		if again := e.get(t, path); again.header.Get("ETag") != tag || again.body != sv.body {
			t.Fatalf("GET %s twice: another answer", path)
		}
		for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
			r := e.get(t, path, "If-None-Match", inm)
			if r.status != 304 || r.body != "" || r.header.Get("ETag") != tag {
				t.Fatalf("GET %s If-None-Match %s: %d %q", path, inm, r.status, r.body)
			}
		}
		if r := e.get(t, path, "If-None-Match", `"other"`); r.status != 200 || r.body != sv.body {
			t.Fatalf("GET %s with a stale ETag: %d", path, r.status)
		}
		en := e.get(t, path, "Accept-Language", "en")
		if en.status != 200 || en.header.Get("ETag") == tag || en.body == sv.body {
			t.Fatalf("GET %s in English: %d, the same ETag or body as Swedish", path, en.status)
		}
		if r := e.get(t, path, "Accept-Language", "en", "If-None-Match", tag); r.status != 200 {
			t.Fatalf("GET %s in English with the Swedish ETag: %d", path, r.status)
		}
		gz := e.get(t, path, "Accept-Encoding", "br, gzip;q=0.8")
		zr, err := gzip.NewReader(strings.NewReader(gz.body))
		if err != nil || gz.header.Get("Content-Encoding") != "gzip" || gz.header.Get("ETag") == tag || !strings.Contains(gz.header.Get("Vary"), "Accept-Encoding") {
			t.Fatalf("GET %s gzip: %v %q ETag %q Vary %q", path, err, gz.header.Get("Content-Encoding"), gz.header.Get("ETag"), gz.header.Get("Vary"))
		}
		if plain, _ := io.ReadAll(zr); string(plain) != sv.body {
			t.Fatalf("GET %s gzip: other bytes", path)
		}
		if r := e.get(t, path, "Accept-Encoding", "gzip;q=0"); r.header.Get("Content-Encoding") != "" || r.body != sv.body {
			t.Fatalf("GET %s gzip;q=0: encoded %q", path, r.header.Get("Content-Encoding"))
		}
	}
}

// main returns the <main> element of a page: the catalog without the
// header's language links (which carry the query).
func mainOf(t *testing.T, body string) string {
	t.Helper()
	i, j := strings.Index(body, "<main"), strings.Index(body, "</main>")
	if i < 0 || j < i {
		t.Fatalf("no <main> in\n%.300s", body)
	}
	return body[i:j]
}

// The page kept for "/" is the page rendered for the request; a request
// with other query arguments is rendered per request, with the same list.
func TestCatalogPageCachedEqualsRendered(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	kept := e.get(t, "/?lang=en")
	kept = e.get(t, "/?lang=en") // from the cache
	fresh := e.get(t, "/?lang=en&utm_source=x")
	if fresh.header.Get("ETag") != "" {
		t.Fatal("a page with other query arguments has the cached ETag")
	}
	if mainOf(t, kept.body) != mainOf(t, fresh.body) {
		t.Fatalf("cached and rendered catalogs differ:\n%s\n----\n%s", mainOf(t, kept.body), mainOf(t, fresh.body))
	}
	if !strings.Contains(fresh.body, "utm_source=x") || strings.Contains(kept.body, "utm_source") {
		t.Fatal("language links: the query is not carried, or it leaked into the cached page")
	}
	if kept.header.Get("Content-Language") != "en" || !strings.HasPrefix(kept.header.Get("Content-Type"), "text/html") {
		t.Fatalf("cached page headers: %v", kept.header)
	}
}

// The cached page carries nothing of the request that made it: another
// visitor never sees the first visitor's CSRF token.
func TestCatalogPageCarriesNoPerRequestBits(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	first := strings.Repeat("A", 43)
	second := strings.Repeat("B", 43)
	a := e.get(t, "/", "Cookie", "gw_csrf="+first)
	b := e.get(t, "/", "Cookie", "gw_csrf="+second)
	if strings.Contains(b.body, first) || strings.Contains(a.body, first) {
		t.Fatal("the catalog page shows a CSRF token: it cannot be cached whole")
	}
	if a.body != b.body {
		t.Fatal("two anonymous visitors got different pages")
	}
}

// A search answers what the index finds, each service as in the full list.
func TestCatalogSearchFromCachedItems(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	type list struct {
		Services []map[string]any `json:"services"`
	}
	var all, some, none list
	for path, into := range map[string]*list{"/api/v1/services": &all, "/api/v1/services?q=skola": &some, "/api/v1/services?q=zzzqqq": &none} {
		r := e.get(t, path)
		if err := json.Unmarshal([]byte(r.body), into); err != nil || r.header.Get("Content-Type") != fiber.MIMEApplicationJSON {
			t.Fatalf("%s: %v %q", path, err, r.body)
		}
	}
	if len(some.Services) == 0 || len(some.Services) == len(all.Services) || none.Services == nil || len(none.Services) != 0 {
		t.Fatalf("skola: %d of %d; nonsense: %v", len(some.Services), len(all.Services), none.Services)
	}
	for _, s := range some.Services {
		found := false
		for _, a := range all.Services {
			found = found || reflect.DeepEqual(a, s)
		}
		if !found {
			t.Errorf("search answer %v is not in the list", s["id"])
		}
	}
	// The page lists the same services, grouped and in order.
	r := e.get(t, "/?q=skola")
	for _, s := range some.Services {
		if !strings.Contains(r.body, `href="/services/`+s["id"].(string)+`"`) {
			t.Errorf("page search lacks %v", s["id"])
		}
	}
	if strings.Count(r.body, `class="service-card"`) != len(some.Services) {
		t.Errorf("page search shows %d cards for %d services", strings.Count(r.body, `class="service-card"`), len(some.Services))
	}
}

// catalogDeps is the HTTP layer over a catalog of n services (7: the
// built-in ones; otherwise generated).
func catalogDeps(b *testing.B, n int) httpapi.Deps {
	deps, _, _ := baseDeps(b)
	if n == 7 {
		return deps
	}
	tr, err := locales.New()
	if err != nil {
		b.Fatal(err)
	}
	fsys, err := servicegen.FS(n)
	if err != nil {
		b.Fatal(err)
	}
	_, cat, err := services.LoadCatalog(fsys, tr)
	if err != nil {
		b.Fatal(err)
	}
	deps.Catalog, deps.Translations = cat, tr
	return deps
}

// BenchmarkCatalog is the whole request in process (fiber routing, every
// middleware, the handler) without the network: the front page and the
// catalog JSON at 7 and at 1,000 services. "page" is the cached page,
// "page-shell" the page rendered per request around the cached list (a
// query argument other than lang), "search" a search for "skola".
func BenchmarkCatalog(b *testing.B) {
	for _, n := range []int{7, 1000} {
		h := build(b, catalogDeps(b, n)).Handler()
		for _, tc := range []struct{ name, uri string }{
			{"page", "/"}, {"page-shell", "/?x=1"}, {"page-search", "/?q=skola"},
			{"json", "/api/v1/services"}, {"json-search", "/api/v1/services?q=skola"},
		} {
			b.Run(fmt.Sprintf("services=%d/%s", n, tc.name), func(b *testing.B) {
				var ctx fasthttp.RequestCtx
				var size int
				serve := func() {
					ctx.Request.Reset()
					ctx.Response.Reset()
					ctx.Request.SetRequestURI(tc.uri)
					ctx.Request.Header.SetMethod("GET")
					h(&ctx)
					if ctx.Response.StatusCode() != 200 {
						b.Fatalf("%s: %d", tc.uri, ctx.Response.StatusCode())
					}
					if ctx.Response.IsBodyStream() { // a large body, from a file: not read here
						size = ctx.Response.Header.ContentLength()
					} else {
						size = len(ctx.Response.Body())
					}
				}
				serve() // the first request makes what is cached
				b.ReportAllocs()
				for b.Loop() {
					serve()
				}
				b.ReportMetric(float64(size), "bytes/resp")
			})
		}
	}
}

// A large answer (here the JSON of 150 services, over 64 KB) is sent from
// a file with sendfile: over a real connection, many requests at once
// each get every byte, the same bytes as through app.Test and gzip.
func TestCatalogLargeAnswerOverTCP(t *testing.T) {
	deps, _, _ := baseDeps(t)
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := servicegen.FS(150)
	if err != nil {
		t.Fatal(err)
	}
	if _, deps.Catalog, err = services.LoadCatalog(fsys, tr); err != nil {
		t.Fatal(err)
	}
	deps.Translations = tr
	app := build(t, deps)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	e := &env{app: app}
	want := e.get(t, "/api/v1/services").body
	if len(want) < 64<<10 || strings.Count(want, `"submit_url"`) != 150 {
		t.Fatalf("the answer is %d bytes with %d services", len(want), strings.Count(want, `"submit_url"`))
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 8}}
	t.Cleanup(hc.CloseIdleConnections) // before the shutdown, which waits for open connections
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				res, err := hc.Get("http://" + ln.Addr().String() + "/api/v1/services")
				if err != nil {
					errs <- err.Error()
					return
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || string(b) != want || res.ContentLength != int64(len(want)) {
					errs <- fmt.Sprintf("%v: %d bytes, Content-Length %d, want %d", err, len(b), res.ContentLength, len(want))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	gz := e.get(t, "/api/v1/services", "Accept-Encoding", "gzip")
	zr, err := gzip.NewReader(strings.NewReader(gz.body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); string(plain) != want {
		t.Fatal("gzip: other bytes")
	}
	req, _ := http.NewRequest("HEAD", "http://"+ln.Addr().String()+"/api/v1/services", nil)
	if res, err := hc.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("HEAD: %v", err)
	} else {
		res.Body.Close()
	}
}
