package httpapi_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"testing/fstest"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/auth"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"
	"github.com/kommun/servicegateway/services/connectors/proxy"
)

// proxyBench is the gateway as cmd/gateway wires it for a proxied
// e-service, on real listeners: the fiber app with the metrics, the real
// session authentication (the session cache on, as by default) and the
// identity signer, in front of a fasthttp upstream answering a small page,
// as in .bench/proxy.sh. open is a service at no level, signed one at
// level substantial; cookie is a signed-in resident's session cookie.
type proxyBench struct {
	gw     *fasthttp.HostClient
	cookie string
}

const benchUpstreamPage = "<!doctype html><title>Boka lokal</title><p>Du har inga bokningar just nu.</p>\n"

func newProxyBench(b *testing.B) *proxyBench {
	b.Helper()
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	upSrv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		c.SetContentType("text/html")
		c.SetBodyString(benchUpstreamPage)
	}}
	go func() { _ = upSrv.Serve(upLn) }()
	b.Cleanup(func() { _ = upSrv.Shutdown() })
	upURL := "http://" + upLn.Addr().String()

	fsys := fstest.MapFS{}
	for _, s := range []string{"open", "signed"} {
		level := "none"
		if s == "signed" {
			level = "substantial"
		}
		fsys["bench/"+s+"/service.toml"] = &fstest.MapFile{Data: fmt.Appendf(nil, `id = "bench-%s"
version = "1.0.0"
department = "city-office"
category = "democracy"
assurance = "%s"
channels = ["digital"]
retention_days = 1
[route]
kind = "proxy"
[route.settings]
prefix = "/e/%s/"
upstream = "%s"
`, s, level, s, upURL)}
		for _, l := range []string{"sv", "en", "fi", "ar", "so", "uk"} {
			fsys["bench/"+s+"/messages."+l+".toml"] = &fstest.MapFile{Data: fmt.Appendf(nil, "\"bench-%s.title\" = \"Bench\"\n\"bench-%s.summary\" = \"Bench\"\n", s, s)}
		}
	}
	tr, err := locales.New()
	if err != nil {
		b.Fatal(err)
	}
	loaded, cat, err := services.LoadCatalog(fsys, tr)
	if err != nil {
		b.Fatal(err)
	}
	deps, store, _ := baseDeps(b)
	deps.Catalog, deps.Translations = cat, tr
	deps.Upstreams = map[string]httpapi.Upstream{}
	for id, m := range loaded.Modules {
		conn, err := m.Provision(func(string) string { return "" })
		if err != nil {
			b.Fatal(err)
		}
		deps.Upstreams[id] = conn.(*proxy.Proxy)
	}
	keys, err := auth.NewIdentitySigner(nil, "bench")
	if err != nil {
		b.Fatal(err)
	}
	deps.IdentityKeys = keys
	deps.Metrics = httpapi.NewMetrics(nil)
	sessions := &auth.Sessions{Store: store, Key: []byte("0123456789abcdef0123456789abcdef"), CacheFor: 5 * time.Second, Watch: store}
	deps.Auth = &httpapi.Auth{Sessions: sessions, Store: store}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go sessions.WatchEnded(ctx)
	for i := 0; !sessions.Caching(); i++ {
		if i > 500 {
			b.Fatal("the session cache does not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	bertil := &gateway.Principal{Subject: "bertil", Name: "Bertil Berg", Personnummer: "199001013011",
		Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceSubstantial}
	tok, _, err := sessions.Create(b.Context(), bertil, "dev")
	if err != nil {
		b.Fatal(err)
	}

	app := build(b, deps)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	b.Cleanup(func() { _ = app.ShutdownWithTimeout(5 * time.Second) })
	return &proxyBench{gw: &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 1}, cookie: "gw_session=" + tok}
}

func (p *proxyBench) run(b *testing.B, path string, signedIn bool) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	do := func() {
		req.Reset()
		req.SetRequestURI("http://" + p.gw.Addr + path)
		if signedIn {
			req.Header.Set("Cookie", p.cookie)
		}
		if err := p.gw.Do(req, resp); err != nil || resp.StatusCode() != 200 || string(resp.Body()) != benchUpstreamPage {
			b.Fatalf("%s: %v %d %q", path, err, resp.StatusCode(), resp.Body())
		}
	}
	for range 200 {
		do()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		do()
	}
}

// BenchmarkProxyPath is one request below a proxied e-service's entry page
// through the whole gateway (server, router, middleware, authentication,
// header rules, fasthttp's client), with a fasthttp client and upstream
// in the same process (both allocate nothing per request): allocs/op are
// the gateway's.
func BenchmarkProxyPath(b *testing.B) {
	p := newProxyBench(b)
	b.Run("open", func(b *testing.B) { p.run(b, "/e/open/bookings", false) })
	b.Run("signed", func(b *testing.B) { p.run(b, "/e/signed/bookings", true) })
}
