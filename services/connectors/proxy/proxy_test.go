package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/services"
)

const bigSize = 64 << 20 // a 64 MiB download

// upstream serves /big (bigSize bytes in 32 KiB writes, chunked) and echoes
// the path, query, headers and body of anything else.
func upstream(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/app/big" {
			chunk := make([]byte, 32<<10)
			for i := range chunk {
				chunk[i] = byte('a' + i%26)
			}
			for n := 0; n < bigSize; n += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			return
		}
		if r.URL.Path == "/app/bigcl" { // the same bytes with a Content-Length (a file, say)
			chunk := make([]byte, 32<<10)
			for i := range chunk {
				chunk[i] = byte('a' + i%26)
			}
			w.Header().Set("Content-Length", strconv.Itoa(bigSize))
			for n := 0; n < bigSize; n += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			return
		}
		if r.URL.Path == "/app/go" {
			http.Redirect(w, r, "http://"+r.Host+"/app/next?x=1", http.StatusFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen-Path", r.URL.RequestURI())
		w.Header().Set("X-Seen-Secret", r.Header.Get("X-Secret"))
		w.Header().Set("X-Seen-Prefix", r.Header.Get("X-Forwarded-Prefix"))
		w.Header().Set("X-Seen-For", strings.Join(r.Header.Values("X-Forwarded-For"), "|"))
		w.Header().Set("X-Seen-Proto", strings.Join(r.Header.Values("X-Forwarded-Proto"), "|"))
		w.Header().Set("X-Seen-Connection", r.Header.Get("Connection")+"|"+r.Header.Get("Te")+"|"+r.Header.Get("Upgrade")+"|"+r.Header.Get("Proxy-Authorization"))
		w.Header().Set("Keep-Alive", "timeout=5")
		http.SetCookie(w, &http.Cookie{Name: "app", Value: "1", Path: "/"})
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// forwardedFor is the client's address the tests' gateway resolves.
var forwardedFor = netip.MustParseAddr("192.0.2.7")

// gatewayWith serves p under its prefix on a real listener, as the
// gateway's route does.
func gatewayWith(t testing.TB, p *Proxy) string {
	app := fiber.New(fiber.Config{DisableStartupMessage: true, BodyLimit: 1 << 20})
	app.All(p.Prefix()+"*", func(c *fiber.Ctx) error {
		c.Cookie(&fiber.Cookie{Name: "gw_session", Value: "renewed", Path: "/", HTTPOnly: true}) // as the authentication does
		return p.Forward(c, forwardedFor, "https")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	return "http://" + ln.Addr().String()
}

func provision(t testing.TB, upstreamURL string) *Proxy {
	s := &Settings{Prefix: "/e/demo/", Upstream: "${UP}", Timeout: "10s"}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	conn, err := s.Provision(func(string) string { return upstreamURL + "/app" })
	if err != nil {
		t.Fatal(err)
	}
	return conn.(*Proxy)
}

func TestSettingsValidate(t *testing.T) {
	for _, s := range []Settings{
		{Prefix: "/services/x/", Upstream: "http://x"},
		{Prefix: "/e/x", Upstream: "http://x"},
		{Prefix: "/e/x/", Upstream: "ftp://x"},
		{Prefix: "/e/x/", Upstream: "http://x", IdentityHeader: "Authorization"},
		{Prefix: "/e/x/", Upstream: "http://x", Timeout: "forever"},
	} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v: accepted", s)
		}
	}
	if _, err := (&Settings{Prefix: "/e/x/", Upstream: "${UP}"}).Provision(func(string) string { return "http://u:p@host" }); err == nil {
		t.Error("an upstream URL with credentials was accepted")
	}
	var _ services.Frontend = &Settings{}
}

func TestForwardPathHeadersAndBody(t *testing.T) {
	up := upstream(t)
	gw := gatewayWith(t, provision(t, up.URL))
	req, _ := http.NewRequest("POST", gw+"/e/demo/a/b?q=1", strings.NewReader("hello"))
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "hop")
	req.Header.Set("X-Forwarded-For", "203.0.113.9") // the client's own claims
	req.Header.Set("X-Forwarded-Proto", "gopher")
	req.Header.Set("Te", "trailers")
	req.Header.Set("Upgrade", "h2c")
	req.Header.Set("Proxy-Authorization", "Basic eDp5")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "hello" || res.Header.Get("X-Seen-Path") != "/app/a/b?q=1" || res.Header.Get("X-Seen-Prefix") != "/e/demo" {
		t.Fatalf("upstream saw path %q prefix %q body %q", res.Header.Get("X-Seen-Path"), res.Header.Get("X-Seen-Prefix"), body)
	}
	if got := res.Header.Get("X-Seen-For"); got != forwardedFor.String() {
		t.Errorf("X-Forwarded-For at the upstream: %q, want only the address the gateway resolved (%s)", got, forwardedFor)
	}
	if got := res.Header.Get("X-Seen-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto at the upstream: %q, want the scheme the gateway says (https)", got)
	}
	if got := res.Header.Get("X-Seen-Connection"); got != "|||" {
		t.Errorf("hop-by-hop headers reached the upstream (Connection|Te|Upgrade|Proxy-Authorization): %q", got)
	}
	if got := res.Header.Get("X-Seen-Secret"); got != "" {
		t.Errorf("a header named in Connection reached the upstream: %q", got)
	}
	cookies := map[string]string{}
	for _, ck := range res.Cookies() {
		cookies[ck.Name] = ck.Value
	}
	if cookies["gw_session"] != "renewed" || cookies["app"] != "1" {
		t.Errorf("cookies of the answer: %v, want the gateway's renewed session and the e-service's own", cookies)
	}
	if got := res.Header.Get("Keep-Alive"); got != "" {
		t.Errorf("the upstream's hop-by-hop Keep-Alive came back: %q", got)
	}
}

// A redirect to the upstream's own address is rewritten to the prefix.
func TestForwardRewritesRedirect(t *testing.T) {
	up := upstream(t)
	gw := gatewayWith(t, provision(t, up.URL))
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(gw + "/e/demo/go")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != 302 || loc != "/e/demo/next?x=1" {
		t.Fatalf("redirect: %d %q", res.StatusCode, loc)
	}
}

func TestForwardUpstreamDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	gw := gatewayWith(t, provision(t, "http://"+addr))
	res, err := http.Get(gw + "/e/demo/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode < 500 {
		t.Fatalf("upstream down: %d", res.StatusCode)
	}
}

// fetchBig downloads /e/demo/big and returns the bytes read, their hash and
// the bytes the process allocated meanwhile (gateway, upstream and client
// are all in this process; the client discards as it reads).
func fetchBig(t testing.TB, gw, path string) (n int64, sum string, alloc uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := &http.Client{Timeout: 2 * time.Minute}
	res, err := c.Get(gw + path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err = io.Copy(h, res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	return n, hex.EncodeToString(h.Sum(nil)), after.TotalAlloc - before.TotalAlloc
}

// A 64 MiB answer passes through without the gateway holding it: the
// whole process allocates far less than the body's size.
func TestForwardStreamsLargeAnswer(t *testing.T) {
	up := upstream(t)
	gw := gatewayWith(t, provision(t, up.URL))
	// Chunked, and with a Content-Length: fasthttp's client reads a body
	// of a declared length whole unless it is over MaxResponseBodySize.
	for _, path := range []string{"/e/demo/big", "/e/demo/bigcl"} {
		n, _, alloc := fetchBig(t, gw, path)
		if n != bigSize {
			t.Fatalf("%s: read %d bytes, want %d", path, n, bigSize)
		}
		t.Logf("%s: 64 MiB through the proxy: %d KiB allocated", path, alloc>>10)
		if alloc > bigSize/4 {
			t.Fatalf("%s: the proxy allocated %d MiB for a %d MiB answer: it is buffered, not streamed", path, alloc>>20, bigSize>>20)
		}
	}
}

// BenchmarkStreamLargeAnswer reports the bytes allocated per 64 MiB
// download (alloc-B/op): bounded, not proportional to the body.
func BenchmarkStreamLargeAnswer(b *testing.B) {
	up := upstream(b)
	gw := gatewayWith(b, provision(b, up.URL))
	var total uint64
	for b.Loop() {
		_, _, alloc := fetchBig(b, gw, "/e/demo/big")
		total += alloc
	}
	b.ReportMetric(float64(total)/float64(b.N), "alloc-B/op")
	b.SetBytes(bigSize)
}
