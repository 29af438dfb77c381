package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/auth"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/usage"
	"github.com/kommun/servicegateway/services/connectors/proxy"
)

// The example service book-premises is served under /e/book-premises/: the
// catalog links there, its form address redirects there, it takes no
// submissions, and no one reaches it without signing in at its level.
func TestProxiedServiceRoutes(t *testing.T) {
	var hits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "upstream")
	}))
	defer up.Close()
	conn, err := (&proxy.Settings{Prefix: "/e/book-premises/", Upstream: up.URL}).Provision(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewIdentitySigner(nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	deps, _, _ := baseDeps(t)
	deps.Upstreams = map[string]httpapi.Upstream{"book-premises": conn.(*proxy.Proxy)}
	deps.IdentityKeys = keys
	app := build(t, deps)

	do := func(method, path, body string) (*http.Response, string) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res, string(b)
	}
	if res, _ := do("GET", "/e/book-premises/bookings", ""); res.StatusCode != 401 {
		t.Errorf("anonymous, no sign-in configured: %d, want 401", res.StatusCode)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the upstream was reached %d times", n)
	}
	// The gateway's own error page under a prefix (which skips the page
	// middleware) still has the page headers and the visitor's language.
	req := httptest.NewRequest("GET", "/e/book-premises/bookings", nil)
	req.Header.Set("Accept-Language", "en")
	req.Header.Set("Accept", "text/html")
	res, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Content-Language") != "en" {
		t.Errorf("error page under the prefix: %d %v", res.StatusCode, res.Header)
	}
	if res, _ := do("GET", "/e/book-premises", ""); res.StatusCode != 301 || res.Header.Get("Location") != "/e/book-premises/" {
		t.Errorf("bare prefix: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := do("GET", "/services/book-premises", ""); res.StatusCode != 303 || res.Header.Get("Location") != "/e/book-premises/" {
		t.Errorf("form address: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if _, page := do("GET", "/?q=boka", ""); !strings.Contains(page, `href="/e/book-premises/"`) {
		t.Errorf("catalog lacks the link:\n%s", page)
	}
	if res, _ := do("POST", "/api/v1/services/book-premises/submissions", `{}`); res.StatusCode != 404 {
		t.Errorf("submission to a proxied service: %d, want 404", res.StatusCode)
	}
	res, body := do("GET", httpapi.IdentityKeysPath, "")
	var set auth.JWKSet
	if res.StatusCode != 200 || json.Unmarshal([]byte(body), &set) != nil || len(set.Keys) != 1 || set.Keys[0].Alg != "ES256" || set.Keys[0].Kid == "" {
		t.Errorf("key set: %d %s", res.StatusCode, body)
	}
}

// The entry page of a proxied e-service is counted in the visitor's
// language, like every other service's form, although the page middleware
// (language included) does not run under the prefix.
func TestProxiedEntryPageCountedByLanguage(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "upstream") }))
	defer up.Close()
	conn, err := (&proxy.Settings{Prefix: "/e/book-premises/", Upstream: up.URL}).Provision(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewIdentitySigner(nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	deps, store, srv := baseDeps(t)
	ucfg := usage.Config{FlushInterval: time.Hour, Logger: quiet}
	rec := usage.New(store, ucfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec.Start(ctx)
	t.Cleanup(func() { _ = rec.Stop(context.Background()) })
	deps.Authenticate, deps.Usage, deps.UsageReports = testAuthenticate(), rec, usage.NewReader(store, ucfg)
	deps.Upstreams = map[string]httpapi.Upstream{"book-premises": conn.(*proxy.Proxy)}
	deps.IdentityKeys = keys
	e := &usageEnv{env: &env{app: build(t, deps), store: store}, srv: srv, rec: rec, rd: usage.NewReader(store, ucfg)}
	if r := e.get(t, "/e/book-premises/", "X-Test-Principal", "staff", "Accept-Language", "en"); r.status != 200 {
		t.Fatalf("entry page: %d %s", r.status, r.body)
	}
	e.flush(t)
	if v := e.report(t, "service=book-premises&locale=en").Totals.Viewed; v != 1 {
		t.Errorf("entry page views in English: %d, want 1", v)
	}
	if v := e.report(t, "service=book-premises&locale=sv").Totals.Viewed; v != 0 {
		t.Errorf("entry page views in Swedish: %d, want 0", v)
	}
}

// What a proxied e-service receives: no identity header a client sent (in
// any letter case), none of the gateway's cookies however many there are
// (the others in their order), and in X-Forwarded-For the client's
// address as the gateway resolves it: behind a trusted proxy the first
// untrusted hop from the right, never what the client wrote on the left.
func TestProxyStripsAndForwards(t *testing.T) {
	var seen atomic.Pointer[http.Header]
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		seen.Store(&h)
		io.WriteString(w, "upstream")
	}))
	defer up.Close()
	conn, err := (&proxy.Settings{Prefix: "/e/book-premises/", Upstream: up.URL}).Provision(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewIdentitySigner(nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, trusted, xff, want, wantProto string
	}{
		{"direct peer, forged headers ignored", "", "203.0.113.9", "0.0.0.0", "http"},
		{"behind a trusted proxy", "0.0.0.0/32", "203.0.113.9, 198.51.100.4", "198.51.100.4", "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deps, _, _ := baseDeps(t)
			deps.Authenticate = testAuthenticate()
			deps.Upstreams = map[string]httpapi.Upstream{"book-premises": conn.(*proxy.Proxy)}
			deps.IdentityKeys = keys
			if tc.trusted != "" {
				deps.Config.TrustedProxies = []string{tc.trusted}
			}
			app := build(t, deps)
			req := httptest.NewRequest("GET", "/e/book-premises/bookings", nil)
			req.Header.Set("X-Test-Principal", "staff")
			req.Header.Set("x-gateway-identity", "forged")
			req.Header.Set("X-FORWARDED-USER", "forged")
			req.Header.Set("Remote-User", "forged")
			req.Header.Set("X-Forwarded-For", tc.xff)
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("Cookie", "a=1; gw_session=s; __Host-gw_csrf=c; gw_login=l; nameless; gw_x=1; b=2; gw_session=again")
			res, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			h := seen.Load()
			if res.StatusCode != 200 || h == nil {
				t.Fatalf("status %d, upstream reached: %v", res.StatusCode, h != nil)
			}
			if ids := h.Values("X-Gateway-Identity"); len(ids) != 1 || ids[0] == "forged" {
				t.Errorf("identity headers at the upstream: %q, want the gateway's one", ids)
			}
			for _, n := range []string{"X-Forwarded-User", "Remote-User"} {
				if v := h.Values(n); len(v) != 0 {
					t.Errorf("%s reached the upstream: %q", n, v)
				}
			}
			if got := h.Values("Cookie"); len(got) != 1 || got[0] != "a=1; nameless; b=2" {
				t.Errorf("cookies at the upstream: %q, want \"a=1; nameless; b=2\"", got)
			}
			if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != tc.want {
				t.Errorf("X-Forwarded-For at the upstream: %q, want %q", got, tc.want)
			}
			if got := h.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != tc.wantProto {
				t.Errorf("X-Forwarded-Proto at the upstream: %q, want %q", got, tc.wantProto)
			}
		})
	}
}
