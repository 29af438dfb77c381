package httpapi_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/servicepoint"
)

// Regression tests for issue 9 (hardening), the HTTP-layer items. Each
// runs the real HTTP layer against a real redis-server; those about
// addresses and connections run on a real listener.

const streetFault = `{"kind":"litter","description":"Mycket skräp vid bänkarna","location":"Stadsparken"}`

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Item 1: a compressed request body is refused with 415 before anything
// reads (and inflates) it; nothing is stored. Identity is accepted.
func TestCompressedBodyRefused(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	before := e.snapshot(t)
	twice := gz(t, gz(t, []byte(streetFault)))
	for _, tc := range []struct {
		name, encoding string
		body           []byte
	}{
		{"gzip", "gzip", gz(t, []byte(streetFault))},
		{"gzip twice", "gzip, gzip", twice},
		{"brotli", "br", []byte{0x1b, 0x00}},
		{"deflate upper case", "DEFLATE", []byte{0x78, 0x9c}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := e.browser(t).do("POST", "/api/v1/services/street-fault/submissions", bytes.NewReader(tc.body),
				"Content-Type", "application/json", "Content-Encoding", tc.encoding)
			if a.status != 415 || !strings.HasPrefix(a.header.Get("Content-Type"), "application/problem+json") || a.header.Get("Accept-Encoding") != "identity" {
				t.Fatalf("status %d %s: %s", a.status, a.header.Get("Content-Type"), a.body)
			}
			// The form route too.
			f := e.browser(t).do("POST", "/services/street-fault", bytes.NewReader(tc.body),
				"Content-Type", "application/x-www-form-urlencoded", "Content-Encoding", tc.encoding)
			if f.status != 415 {
				t.Fatalf("form: status %d", f.status)
			}
		})
	}
	if after := e.snapshot(t); after != before {
		t.Fatalf("a compressed body was stored:\n%s\n%s", before, after)
	}
	a := e.browser(t).do("POST", "/api/v1/services/street-fault/submissions", strings.NewReader(streetFault),
		"Content-Type", "application/json", "Content-Encoding", "identity")
	if a.status != 202 {
		t.Fatalf("identity: %d %s", a.status, a.body)
	}
}

// Item 2: behind a trusted proxy the client is the rightmost address of
// X-Forwarded-For that is not a trusted proxy; what the client wrote to
// the left of it is never believed; IPv6 clients share a bucket per /64;
// without the header the client is the peer.
func TestClientAddressBehindProxies(t *testing.T) {
	cases := []struct {
		name    string
		trusted []string
		xff     []string // "-": no header
		want    []int
	}{
		{"client-chosen prefix does not give a fresh bucket", []string{"127.0.0.1"},
			[]string{"10.0.0.1, 203.0.113.7", "10.0.0.2, 203.0.113.7", "10.0.0.3, 203.0.113.7"}, []int{303, 303, 429}},
		{"chain of trusted proxies: the rightmost untrusted address", []string{"127.0.0.1", "10.0.0.0/8"},
			[]string{"198.51.100.1, 203.0.113.7, 10.1.1.1", "198.51.100.2, 203.0.113.7, 10.2.2.2", "203.0.113.7, 10.1.1.1"}, []int{303, 303, 429}},
		{"the chain's clients are told apart", []string{"127.0.0.1", "10.0.0.0/8"},
			[]string{"203.0.113.1, 10.1.1.1", "203.0.113.2, 10.1.1.1", "203.0.113.3, 10.1.1.1"}, []int{303, 303, 303}},
		{"IPv6 grouped by /64", []string{"127.0.0.1"},
			[]string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "[2001:db8:1:2:aaaa::1]:443"}, []int{303, 303, 429}},
		{"IPv6 in other /64s are apart", []string{"127.0.0.1"},
			[]string{"2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:1:4::1"}, []int{303, 303, 303}},
		{"no header: the peer", []string{"127.0.0.1"}, []string{"-", "-", "127.0.0.1"}, []int{303, 303, 429}},
		{"garbage in the header: the proxy", []string{"127.0.0.1"}, []string{"not-an-ip", "203.0.113.7, x", "-"}, []int{303, 303, 429}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newAuthEnv(t, authOpts{trustedProxies: tc.trusted, loginLimit: 2})
			for i, ip := range tc.xff {
				var hdr []string
				if ip != "-" {
					hdr = []string{"X-Forwarded-For", ip}
				}
				if r := e.browser(t).get("/auth/login", hdr...); r.status != tc.want[i] {
					t.Fatalf("request %d (%s): %d, want %d", i+1, ip, r.status, tc.want[i])
				}
			}
		})
	}
}

// Item 2: the anonymous idempotency scope is the same client address, so a
// retry through the proxy finds its first answer whatever the client
// wrote to the left of its address.
func TestIdempotencyScopeBehindProxy(t *testing.T) {
	e := newAuthEnv(t, authOpts{trustedProxies: []string{"127.0.0.1"}})
	ids := map[string]bool{}
	for i := 0; i < 2; i++ {
		a := e.browser(t).postJSON("/api/v1/services/street-fault/submissions", streetFault,
			"Idempotency-Key", "retry-1", "X-Forwarded-For", fmt.Sprintf("10.0.0.%d, 203.0.113.7", i))
		var r struct{ ID string }
		if err := json.Unmarshal([]byte(a.body), &r); err != nil || (a.status != 202 && a.status != 200) {
			t.Fatalf("submit %d: %d %s", i, a.status, a.body)
		}
		ids[r.ID] = true
	}
	if len(ids) != 1 {
		t.Fatalf("one client's retry made %d submissions", len(ids))
	}
}

// Item 3: the CSRF check for cookie-authenticated requests cannot be
// bypassed by the path's case, and covers every unsafe method on any path.
func TestCSRFPathCase(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	b.signIn("bertil", "/my")
	before := e.snapshot(t)
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/API/v1/services/street-fault/submissions", streetFault},
		{"POST", "/Api/V1/contacts", `{"service":"street-fault","channel":"phone","outcome":"answered","language":"sv"}`},
		{"POST", "/API/v1/admin/dead-letters/x/close", `{}`},
		{"PUT", "/api/v1/services/street-fault/submissions", streetFault},
		{"DELETE", "/api/v1/me", ""},
		{"POST", "/SERVICES/street-fault", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			a := b.do(tc.method, tc.path, strings.NewReader(tc.body), "Content-Type", "application/json")
			if a.status != 403 || !strings.Contains(a.body, "gått ut") { // error.csrf
				t.Fatalf("status %d: %.300s", a.status, a.body)
			}
		})
	}
	if after := e.snapshot(t); after != before {
		t.Fatalf("a request without CSRF token changed something:\n%s\n%s", before, after)
	}
	// Routing is case-sensitive: with the token, the upper-case path is
	// not a route.
	_, tok := b.me()
	if a := b.postJSON("/API/v1/services/street-fault/submissions", streetFault, "X-CSRF-Token", tok); a.status != 404 {
		t.Fatalf("upper-case path with token: %d", a.status)
	}
}

// Item 3: a signed-in person's forms carry the session's token; a
// double-submit pair planted by someone else (a cookie they set and the
// same value in the form) is refused.
func TestCSRFBoundToSession(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	b.signIn("bertil", "/my")
	_, sessTok := b.me()
	csrf, form := b.formTokens("/services/street-fault")
	if csrf != sessTok {
		t.Fatalf("a signed-in form carries %q, not the session's token", csrf)
	}
	planted := strings.Repeat("A", 43)
	b.setCookie("gw_csrf", planted)
	v := url.Values{"_csrf": {planted}, "_form": {form}, "kind": {"litter"}, "description": {"Mycket skräp vid bänkarna"}, "location": {"Stadsparken"}}
	before := e.snapshot(t)
	if a := b.post("/services/street-fault", v); a.status != 403 {
		t.Fatalf("planted double-submit pair: %d", a.status)
	}
	if after := e.snapshot(t); after != before {
		t.Fatal("the forged form was stored")
	}
	// The same as a multipart form (read as a stream; its token is
	// checked by the stream reader, not by the sign-in layer): the planted
	// pair is refused, the session's token accepted.
	multi := func(csrf string) answer {
		ct, body := multipartBody(t, part{name: "_csrf", body: []byte(csrf)}, part{name: "_form", body: []byte(form)},
			part{name: "kind", body: []byte("litter")}, part{name: "description", body: []byte("Mycket skräp vid bänkarna")},
			part{name: "location", body: []byte("Stadsparken")})
		return b.do("POST", "/services/street-fault", bytes.NewReader(body), "Content-Type", ct)
	}
	if a := multi(planted); a.status != 403 {
		t.Fatalf("planted pair, multipart: %d", a.status)
	}
	if after := e.snapshot(t); after != before {
		t.Fatal("the forged multipart form was stored")
	}
	v.Set("_csrf", sessTok)
	if a := b.post("/services/street-fault", v); a.status != 303 {
		t.Fatalf("the session's token: %d %.300s", a.status, a.body)
	}
	if a := multi(sessTok); a.status != 303 {
		t.Fatalf("the session's token, multipart: %d %.300s", a.status, a.body)
	}
}

// Item 3: in production the CSRF cookie carries the __Host- prefix (Secure,
// Path=/, no Domain) and the posted form is checked against it.
func TestHostPrefixInProduction(t *testing.T) {
	e := newEnv(t, httpapi.Config{Production: true})
	r := e.get(t, "/services/street-fault")
	var ck string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "__Host-gw_csrf=") {
			ck = c
		}
		if strings.HasPrefix(c, "gw_csrf=") {
			t.Fatalf("cookie without prefix: %s", c)
		}
	}
	low := strings.ToLower(ck)
	if ck == "" || !strings.Contains(low, "secure") || !strings.Contains(low, "path=/") || strings.Contains(low, "domain=") {
		t.Fatalf("CSRF cookie %q", ck)
	}
	tok := hidden(t, r.body, "_csrf")
	form := hidden(t, r.body, "_form")
	v := url.Values{"_csrf": {tok}, "_form": {form}, "kind": {"litter"}, "description": {"Mycket skräp vid bänkarna"}, "location": {"Stadsparken"}}
	if a := e.postForm(t, "/services/street-fault", "gw_csrf="+tok, v); a.status != 403 {
		t.Fatalf("the unprefixed cookie was accepted: %d", a.status)
	}
	if a := e.postForm(t, "/services/street-fault", strings.SplitN(ck, ";", 2)[0], v); a.status != 303 {
		t.Fatalf("the prefixed cookie: %d %.300s", a.status, a.body)
	}
	if hsts := r.header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "max-age=31536000") {
		t.Fatalf("no HSTS in production: %q", hsts)
	}
	if d := e.get(t, "/"); d.header.Get("Strict-Transport-Security") == "" {
		t.Fatal("no HSTS on the catalog")
	}
	dev := newEnv(t, httpapi.Config{})
	if h := dev.get(t, "/").header.Get("Strict-Transport-Security"); h != "" {
		t.Fatalf("HSTS in development: %q", h)
	}
}

// Item 8: the language links of a page at "//evil.example/phish" (the 404
// page) stay on the site.
func TestLanguageLinksStayLocal(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	for _, p := range []string{"//evil.example/phish", "///evil.example"} {
		a := e.browser(t).get(p)
		if strings.Contains(a.body, "evil.example") {
			t.Fatalf("GET %s (%d) links off the site:\n%.1500s", p, a.status, a.body)
		}
		if !strings.Contains(a.body, `href="/?lang=en"`) {
			t.Fatalf("GET %s: no language link to the start page:\n%.1500s", p, a.body)
		}
	}
	// An ordinary page keeps its own path.
	if a := e.browser(t).get("/services/street-fault"); !strings.Contains(a.body, `href="/services/street-fault?lang=en"`) {
		t.Fatal("the language link lost the page's path")
	}
}

// Item 9: pages showing what a resident typed are never cached: a form
// drawn again with errors, and a form kept across sign-in (?draft=).
func TestTypedPagesNotCached(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	csrf, form := b.formTokens("/services/street-fault")
	a := b.post("/services/street-fault", url.Values{"_csrf": {csrf}, "_form": {form}, "description": {"Hemligt: 19900101-3011"}})
	if a.status != 422 || !strings.Contains(a.body, "19900101-3011") {
		t.Fatalf("re-drawn form: %d", a.status)
	}
	if cc := a.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("form with errors: Cache-Control %q", cc)
	}
	csrf, form = b.formTokens("/services/home-care")
	a = b.post("/services/home-care", url.Values{"_csrf": {csrf}, "_form": {form}, "needs": {"Hjälp med medicinering efter stroke"}})
	page, at := b.follow(a.header.Get("Location") + "&login_hint=bertil")
	if !strings.Contains(at, "?draft=") || !strings.Contains(page.body, "efter stroke") {
		t.Fatalf("draft page %s: %d", at, page.status)
	}
	if cc := page.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("?draft= page: Cache-Control %q", cc)
	}
}

// Item 11: API problems say their charset; the per-person submission
// limit has its own message (not the sign-in limit's); /api/v1/me masks
// the personnummer in subject too (see TestMockProviderSignsIn).
func TestProblemCharsetAndPersonLimitMessage(t *testing.T) {
	e := newAuthEnv(t, authOpts{trustedProxies: []string{"127.0.0.1"}, submitLimit: 1})
	b := e.browser(t)
	b.signIn("bertil", "/my")
	_, csrf := b.me()
	if r := b.postJSON("/api/v1/services/street-fault/submissions", streetFault, "X-CSRF-Token", csrf, "X-Forwarded-For", "203.0.113.1"); r.status != 202 {
		t.Fatalf("first: %d", r.status)
	}
	r := b.postJSON("/api/v1/services/street-fault/submissions", streetFault, "X-CSRF-Token", csrf, "X-Forwarded-For", "203.0.113.2")
	if r.status != 429 || !strings.Contains(r.body, "från ditt konto") || strings.Contains(r.body, "inloggningsförsök") {
		t.Fatalf("person limit: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json; charset=utf-8" {
		t.Fatalf("problem Content-Type %q", ct)
	}
	var me struct{ Subject string }
	_ = json.Unmarshal([]byte(b.get("/api/v1/me").body), &me)
	if me.Subject != "se-pnr:19900101-****" {
		t.Fatalf("subject %q", me.Subject)
	}
}

// listen serves the HTTP layer with cfg on a real listener, wrapped by
// LimitConnsPerIP(max, trusted).
func listen(t *testing.T, cfg httpapi.Config, max int, trusted []string) string {
	t.Helper()
	deps, store, _ := baseDeps(t)
	deps.Counter, deps.Config = store, cfg
	app := build(t, deps)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	wrapped, err := httpapi.LimitConnsPerIP(ln, max, trusted)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(wrapped) }()
	t.Cleanup(func() { _ = app.ShutdownWithTimeout(5 * time.Second) })
	return addr
}

const slowHead = "POST /api/v1/services/street-fault/submissions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 262000\r\n\r\n{"

// firstLine sends what on a new connection and reads the first line of
// the answer ("" when the server closes without answering).
func firstLine(t *testing.T, addr, what string) (string, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte(what)); err != nil {
		return "", c
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server still holds the connection: %v", err)
		}
	}
	return line, c
}

// Item 7: a client address holds at most max connections (the next is
// answered 429 before anything is read); a trusted proxy is not limited;
// a slow sender is cut off at the read deadline.
func TestSlowSendersBounded(t *testing.T) {
	addr := listen(t, httpapi.Config{}, 2, nil)
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(slowHead)); err != nil {
			t.Fatal(err)
		}
	}
	if line, _ := firstLine(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(line, "HTTP/1.1 429") {
		t.Fatalf("a third connection: %q", line)
	}

	proxied := listen(t, httpapi.Config{TrustedProxies: []string{"127.0.0.1"}}, 2, []string{"127.0.0.1"})
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", proxied)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(slowHead)); err != nil {
			t.Fatal(err)
		}
	}
	if line, _ := firstLine(t, proxied, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("through a trusted proxy: %q", line)
	}

	// The read deadline: a body announced and never sent is dropped (the
	// test's own deadline is 20 s; the server's is 1 s here).
	cut := listen(t, httpapi.Config{ReadTimeout: time.Second}, 0, nil)
	if line, _ := firstLine(t, cut, slowHead); line != "" && !strings.HasPrefix(line, "HTTP/1.1 408") {
		t.Fatalf("slow sender answered %q", line)
	}
}

// Item 5: a step-up draft keeps only the service's fields, within their
// maximum lengths, and a browser can park only a few.
func TestStepUpDraftsBounded(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	ctx := context.Background()
	b := e.browser(t)
	csrf, form := b.formTokens("/services/home-care")
	v := url.Values{"_csrf": {csrf}, "_form": {form}, "needs": {strings.Repeat("a", 60000)},
		"junk": {strings.Repeat("x", 100000)}, "help_types": {"shopping", "shopping", "shopping", "shopping", "shopping", "shopping", "shopping", "shopping", "shopping"}}
	if a := b.post("/services/home-care", v); a.status != 303 {
		t.Fatalf("step-up: %d %.300s", a.status, a.body)
	}
	keys := e.rdb.Keys(ctx, "test:draft:*").Val()
	if len(keys) != 1 {
		t.Fatalf("%d drafts", len(keys))
	}
	raw := e.rdb.Get(ctx, keys[0]).Val()
	if len(raw) > 32*1024 || strings.Contains(raw, "junk") || strings.Contains(raw, "xxxx") {
		t.Fatalf("draft of %d bytes, junk kept: %v", len(raw), strings.Contains(raw, "junk"))
	}
	var d struct{ Values map[string][]string }
	if err := json.Unmarshal([]byte(raw), &d); err != nil || len([]rune(d.Values["needs"][0])) != 4000 {
		t.Fatalf("needs not kept to its maximum length: %v", err)
	}
	// More step-ups from the same browser: at most 5 drafts, then the
	// form is drawn again with what was typed, and nothing is stored.
	for i := 2; i <= 6; i++ {
		csrf, form := b.formTokens("/services/home-care")
		a := b.post("/services/home-care", url.Values{"_csrf": {csrf}, "_form": {form}, "needs": {fmt.Sprintf("Utkast nummer %d med text", i)}})
		want := 303
		if i == 6 {
			want = 429
		}
		if a.status != want {
			t.Fatalf("step-up %d: %d, want %d", i, a.status, want)
		}
		if i == 6 && !strings.Contains(a.body, "Utkast nummer 6") {
			t.Fatal("the refused form lost what was typed")
		}
	}
	if n := e.count(t, "test:draft:*"); n != 5 {
		t.Fatalf("%d drafts from one browser, want 5", n)
	}
}

// Item 11: an administrator with a department claim administers only that
// department's dead letters; others are "not found" and stay untouched.
// An administrator without a department sees all.
func TestDeadLettersByDepartment(t *testing.T) {
	deps, store, _ := baseDeps(t)
	deps.Authenticate = httpapi.AuthenticateForTests(map[string]*gateway.Principal{
		"admin":        {Subject: "admin-1", Roles: []gateway.Role{gateway.RoleAdmin}},
		"admin-social": {Subject: "admin-2", Roles: []gateway.Role{gateway.RoleAdmin}, Department: "social-care"},
		"admin-street": {Subject: "admin-3", Roles: []gateway.Role{gateway.RoleAdmin}, Department: "streets-parks"},
	})
	e := &env{app: build(t, deps), store: store}
	sub := deadLetter(t, store) // streets-parks
	list := func(who string) (int, string) {
		r := e.get(t, "/api/v1/admin/dead-letters", "X-Test-Principal", who)
		var v struct{ Total int }
		_ = json.Unmarshal([]byte(r.body), &v)
		return v.Total, r.body
	}
	if n, body := list("admin-social"); n != 0 || strings.Contains(body, sub.Reference) {
		t.Fatalf("another department's admin lists it: %s", body)
	}
	for _, who := range []string{"admin", "admin-street"} {
		if n, _ := list(who); n != 1 {
			t.Fatalf("%s lists %d", who, n)
		}
	}
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/admin/dead-letters/" + sub.ID},
		{"GET", "/admin/dead-letters/" + sub.Reference},
		{"POST", "/api/v1/admin/dead-letters/" + sub.ID + "/close"},
		{"POST", "/api/v1/admin/dead-letters/" + sub.Reference + "/replay"},
	} {
		var r resp
		if tc.method == "GET" {
			r = e.get(t, tc.path, "X-Test-Principal", "admin-social")
		} else {
			r = e.postJSON(t, tc.path, `{}`, "X-Test-Principal", "admin-social")
		}
		if r.status != 404 {
			t.Errorf("%s %s as another department's admin: %d", tc.method, tc.path, r.status)
		}
	}
	if _, dead, _ := store.DeadLetterInfo(context.Background(), sub.ID); !dead {
		t.Fatal("another department's admin changed the dead letter")
	}
	if r := e.postJSON(t, "/api/v1/admin/dead-letters/"+sub.ID+"/close", `{"status":"closed","message":"Handled by phone"}`, "X-Test-Principal", "admin-street"); r.status != 200 {
		t.Fatalf("own department's admin closes: %d %s", r.status, r.body)
	}
}

// Item 11: the desk's choice of service point is a cookie signed for the
// staff member: a hand-made cookie, or another staff member's, is ignored.
func TestDeskPointCookieSigned(t *testing.T) {
	deps, store, _ := baseDeps(t)
	personas := map[string]*gateway.Principal{}
	for k, v := range deskPersonas {
		personas[k] = v
	}
	personas["ulla"] = &gateway.Principal{Subject: "dev:ulla", Name: "Ulla utan punkt", Roles: []gateway.Role{gateway.RoleStaff}, Assurance: gateway.AssuranceSubstantial}
	deps.Authenticate = httpapi.AuthenticateForTests(personas)
	deps.ServicePoints = servicepoint.Default()
	e := &env{app: build(t, deps), store: store}
	choosing := func(cookie, who string) bool {
		r := e.get(t, "/desk", "X-Test-Principal", who, "Cookie", cookie)
		if r.status != 200 {
			t.Fatalf("desk as %s: %d", who, r.status)
		}
		return strings.Contains(r.body, `id="choose-point"`)
	}
	if !choosing("gw_desk_point=sp-centrum", "olle") {
		t.Fatal("a hand-made point cookie was taken")
	}
	// Olle chooses through the form.
	r := e.get(t, "/desk", "X-Test-Principal", "olle")
	var csrfCookie string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "gw_csrf=") {
			csrfCookie = strings.SplitN(c, ";", 2)[0]
		}
	}
	a := e.postForm(t, "/desk/point", csrfCookie, url.Values{"_csrf": {hidden(t, r.body, "_csrf")}, "point": {"sp-centrum"}}, "X-Test-Principal", "olle")
	var point string
	for _, c := range a.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "gw_desk_point=") {
			point = strings.SplitN(c, ";", 2)[0]
		}
	}
	if a.status != 303 || point == "" {
		t.Fatalf("choose point: %d %q", a.status, point)
	}
	if choosing(point, "olle") {
		t.Fatal("olle's own signed choice was not taken")
	}
	if !choosing(point, "ulla") {
		t.Fatal("another staff member's cookie was taken")
	}
	if !choosing(strings.Replace(point, "sp-centrum", "sp-norr", 1), "olle") {
		t.Fatal("an edited cookie was taken")
	}
}

// Item 3: in production the session cookie is named with the __Host-
// prefix too; the unprefixed name is not read.
func TestHostPrefixedSessionInProduction(t *testing.T) {
	e := newAuthEnv(t, authOpts{production: true})
	b := e.browser(t)
	b.c.Jar = nil // cookies by hand
	cookieOf := func(a answer, name string) (string, string) {
		for _, c := range a.header.Values("Set-Cookie") {
			if strings.HasPrefix(c, name+"=") {
				return strings.SplitN(c, ";", 2)[0], c
			}
		}
		return "", ""
	}
	a := b.get("/auth/login?login_hint=bertil&return_to=/my")
	login, _ := cookieOf(a, "gw_login")
	a = b.get(a.header.Get("Location")) // the provider approves
	a = b.get(strings.TrimPrefix(a.header.Get("Location"), e.base), "Cookie", login)
	sess, full := cookieOf(a, "__Host-gw_session")
	low := strings.ToLower(full)
	if a.status != 303 || sess == "" || !strings.Contains(low, "secure") || !strings.Contains(low, "path=/") || strings.Contains(low, "domain=") {
		t.Fatalf("callback %d, session cookie %q; all: %v", a.status, full, a.header.Values("Set-Cookie"))
	}
	if r := b.get("/api/v1/me", "Cookie", sess); r.status != 200 {
		t.Fatalf("me with the prefixed cookie: %d", r.status)
	}
	if r := b.get("/api/v1/me", "Cookie", strings.TrimPrefix(sess, "__Host-")); r.status != 401 {
		t.Fatalf("me with the unprefixed name: %d", r.status)
	}
}

// A counted connection is still the TCP connection to bufio.Writer.ReadFrom,
// which fasthttp uses for a body stream: the catalog bodies kept in a file
// go out with sendfile(2). Wrapped in the net.Conn interface, ReadFrom was
// lost and every 600 KB catalog answer was copied through user space.
func TestCountedConnKeepsSendfile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wrapped, err := httpapi.LimitConnsPerIP(ln, 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	c, err := wrapped.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rf, ok := c.(io.ReaderFrom)
	if !ok {
		t.Fatalf("the counted connection (%T) has no ReadFrom: bodies from files are copied, not sent with sendfile", c)
	}
	f, err := os.CreateTemp(t.TempDir(), "body")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	body := bytes.Repeat([]byte("x"), 256<<10)
	if _, err := f.Write(body); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := rf.ReadFrom(f); err != nil || n != int64(len(body)) {
		t.Fatalf("ReadFrom: %d bytes, %v", n, err)
	}
}
