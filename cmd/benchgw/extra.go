package main

// -extra: the rows of issue 14's table that the main run does not cover
// (the main run measures the catalog, the front page, sessions and the
// durable submit):
//
//   - search, the JSON and the page, at 7 services and at -services;
//   - My pages of a resident with 10 and with 1,000 submissions;
//   - a department client's call with a fresh ES256 assertion each time,
//     against the same call with an access token from /oauth/token, and
//     an anonymous catalog call as the reference;
//   - user-space instructions per request under callgrind (valgrind),
//     nginx against the gateway, for the catalog JSON and the front page
//     of 7 services: a count, not a time, so it does not depend on what
//     else the machine is doing.
//
// The same pinning as the main run: the gateways and nginx on core 0 with
// GOMAXPROCS=1, Redis, casesim and the load generator on core 1.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/services/servicegen"
)

var extraMode = flag.Bool("extra", false, "measure the other rows of issue 14's table instead: search at 7 and -services services, My pages with 10 and 1,000 submissions, a department client's call (fresh ES256 assertion against access token), and user-space instructions per request under callgrind (nginx and the gateway)")

// extraClient is the department client the run configures.
const extraClient = "bench-streets"

// myPagesSizes are the submissions of the two residents on My pages.
var myPagesSizes = []struct {
	persona string
	n       int
}{{"anna", 10}, {"dragan", 1000}}

func (h *harness) runExtra(ctx context.Context) error {
	machine, err := h.begin("go", "redis-server", "nginx")
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	for _, b := range []struct{ out, pkg string }{{"gateway", "./cmd/gateway"}, {"casesim", "./cmd/casesim"}} {
		if err := h.build(ctx, root, b.out, b.pkg); err != nil {
			return err
		}
	}
	svcDir := filepath.Join(h.dir, "services")
	if err := servicegen.WriteDir(svcDir, h.o.services); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	clients, _ := json.Marshal(map[string]any{"clients": []map[string]string{{"id": extraClient, "department": "streets-parks",
		"algorithm": "ES256", "public_key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}}})
	clientsFile := filepath.Join(h.dir, "clients.json")
	if err := os.WriteFile(clientsFile, clients, 0o600); err != nil {
		return err
	}
	casesimAddr, err := h.startBackends(ctx)
	if err != nil {
		return err
	}

	// Two gateways: 7 services and -services.
	type gw struct {
		n          int
		base       string
		pid        int
		valgrind   bool
		servicesTo string
	}
	gws := []*gw{{n: 7}, {n: h.o.services, servicesTo: svcDir}}
	startGW := func(i int, g *gw) error {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort())
		g.base = "http://" + addr
		env := []string{"GOMAXPROCS=1", "GATEWAY_ADDR=" + addr, fmt.Sprintf("REDIS_URL=redis://127.0.0.1:%d/0", h.rport),
			fmt.Sprintf("GATEWAY_REDIS_PREFIX=extra%d", i), "CASESIM_URL=http://" + casesimAddr, "GATEWAY_RATELIMIT=off",
			"GATEWAY_CLIENTS_FILE=" + clientsFile, "GATEWAY_PUBLIC_URL=" + g.base, "GATEWAY_LOG_LEVEL=error"}
		if g.servicesTo != "" {
			env = append(env, "GATEWAY_SERVICES_DIR="+g.servicesTo)
		}
		argv := []string{filepath.Join(h.dir, "gateway")}
		if g.valgrind {
			// Callgrind trips over the signals of Go's asynchronous
			// preemption (an assertion in its signal handling).
			env = append(env, "GODEBUG=asyncpreemptoff=1")
			argv = append(callgrindArgv(h.dir, fmt.Sprintf("gateway-%d", i)), argv...)
		}
		cmd, err := h.start(ctx, fmt.Sprintf("extra-gateway-%d", i), 0, env, argv...)
		if err != nil {
			return err
		}
		g.pid = cmd.Process.Pid
		return h.waitHTTP(ctx, g.base+"/readyz")
	}
	for i, g := range gws {
		if err := startGW(i, g); err != nil {
			return err
		}
	}
	g7 := gws[0]
	var out strings.Builder
	fmt.Fprintf(&out, "Machine: %s\n", machine)
	fmt.Fprintf(&out, "Run: %d interleaved rounds of %v per target%s\n\n", h.o.rounds, h.o.duration,
		map[bool]string{true: "; gateways and nginx pinned to core 0 (GOMAXPROCS=1), Redis, casesim and the load to core 1", false: "; no pinning"}[h.pin])

	// Search: slower per request, so offered at a tenth of the rate.
	searchRate := h.o.rate / 10
	type row struct {
		figure string
		t      target
	}
	var rows []row
	// At a tenth of the rate a request costs more than at the full rate
	// (the process wakes up for each), so the unfiltered answers are
	// measured at the same rate as the reference.
	for _, path := range []struct{ what, path string }{
		{"Catalog JSON `GET /api/v1/services` (reference)", "/api/v1/services"}, {"Search JSON `GET /api/v1/services?q=skola`", "/api/v1/services?q=skola"},
		{"Front page `GET /` (reference)", "/"}, {"Search page `GET /?q=skola`", "/?q=skola"},
	} {
		for _, g := range gws {
			rows = append(rows, row{fmt.Sprintf("%s, %d services", path.what, g.n), target{name: "gw", pid: g.pid, url: g.base + path.path}})
		}
	}
	// My pages.
	mine := map[string]*http.Client{}
	for _, m := range myPagesSizes {
		c, csrf, err := h.signIn(ctx, g7.base, m.persona)
		if err != nil {
			return err
		}
		if err := h.fill(ctx, c, csrf, g7.base, m.n); err != nil {
			return fmt.Errorf("submissions of %s: %w", m.persona, err)
		}
		mine[m.persona] = c
		rows = append(rows, row{fmt.Sprintf("My pages `GET /my`, a resident with %d submissions", m.n), target{name: "gw", pid: g7.pid, url: g7.base + "/my", client: c}})
	}
	h.drain(ctx, "extra0:{q}:deliveries")
	// The first request in a language makes the catalog's view and gzip
	// (tens of milliseconds at 1,000 services): not part of a request's cost.
	for _, r := range rows {
		c := r.t.client
		if c == nil {
			c = h.client
		}
		if _, err := h.fetchWith(c, r.t.url); err != nil {
			return fmt.Errorf("%s: %w", r.figure, err)
		}
	}
	results := map[string][]sample{}
	for round := 0; round < h.o.rounds; round++ {
		for _, r := range rows {
			s, err := h.measure(ctx, r.t, "GET", nil, searchRate, h.o.conns)
			if err != nil {
				return fmt.Errorf("%s: %w", r.figure, err)
			}
			results[r.figure] = append(results[r.figure], s)
			fmt.Fprintf(os.Stderr, "round %d  %-70s %6.0f req/s  %8.1f µs CPU/req  %d errors\n", round+1, r.figure, float64(s.reqs)/s.wall.Seconds(), s.perReq()*1e6, s.bad)
		}
	}
	fmt.Fprintf(&out, "| Figure (offered %.0f req/s) | Gateway (this tree): µs CPU/req |\n|---|---|\n", searchRate)
	for _, r := range rows {
		fmt.Fprintf(&out, "| %s | %s |\n", r.figure, spread(results[r.figure], 1e6, sample.perReq))
	}

	// A department client: a fresh assertion per call, an access token, and
	// the anonymous catalog call as the reference.
	token, err := h.accessToken(ctx, g7.base, key)
	if err != nil {
		return err
	}
	list := g7.base + "/api/v1/department/submissions?limit=20"
	calls := []row{
		{"Anonymous `GET /api/v1/services` (reference)", target{name: "gw", pid: g7.pid, url: g7.base + "/api/v1/services"}},
		{"Department list, a fresh ES256 assertion per call", target{name: "gw", pid: g7.pid, url: list, client: h.bearer(func() string {
			a, _ := assertion(key, g7.base)
			return a
		})}},
		{"Department list, an access token", target{name: "gw", pid: g7.pid, url: list, client: h.bearer(func() string { return token })}},
	}
	for round := 0; round < h.o.rounds; round++ {
		for _, r := range calls {
			s, err := h.measure(ctx, r.t, "GET", nil, h.o.rate, h.o.conns)
			if err != nil {
				return fmt.Errorf("%s: %w", r.figure, err)
			}
			results[r.figure] = append(results[r.figure], s)
			fmt.Fprintf(os.Stderr, "round %d  %-60s %6.0f req/s  %8.1f µs CPU/req  %d errors\n", round+1, r.figure, float64(s.reqs)/s.wall.Seconds(), s.perReq()*1e6, s.bad)
		}
	}
	fmt.Fprintf(&out, "\n| Department client (offered %.0f req/s) | Gateway (this tree): µs CPU/req |\n|---|---|\n", h.o.rate)
	for _, r := range calls {
		fmt.Fprintf(&out, "| %s | %s |\n", r.figure, spread(results[r.figure], 1e6, sample.perReq))
	}

	// Instructions per request under callgrind.
	if _, err := exec.LookPath("valgrind"); err != nil {
		fmt.Fprintln(&out, "\nvalgrind is not on the PATH (Debian: apt-get install valgrind): no instruction counts.")
	} else if err := h.instructions(ctx, &out, g7.base, func() (string, int, error) {
		g := &gw{n: 7, valgrind: true}
		err := startGW(2, g)
		return g.base, g.pid, err
	}); err != nil {
		return err
	}
	fmt.Fprintf(&out, "\nLoad average after the run: %s\n", loadavg())
	fmt.Print(out.String())
	return nil
}

// signIn signs a persona of the development identity provider in and
// returns its client (cookie jar) and the session's CSRF token.
func (h *harness) signIn(ctx context.Context, base, persona string) (*http.Client, string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: h.client.Timeout, Transport: h.client.Transport}
	if _, err := h.fetchWith(c, base+"/auth/login?return_to=%2Fmy&login_hint="+persona); err != nil {
		return nil, "", err
	}
	b, err := h.fetchWith(c, base+"/api/v1/me")
	if err != nil {
		return nil, "", fmt.Errorf("%s is not signed in after the login: %w", persona, err)
	}
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.Unmarshal(b, &me); err != nil || me.CSRF == "" {
		return nil, "", fmt.Errorf("%s: no csrf_token in /api/v1/me (%v)", persona, err)
	}
	return c, me.CSRF, ctx.Err()
}

// fill sends n submissions as the signed-in client, 16 at a time.
func (h *harness) fill(ctx context.Context, c *http.Client, csrf, base string, n int) error {
	body := []byte(`{"kind":"pothole","description":"Ett djupt hål i cykelbanan vid bron","location":"Storgatan 1"}`)
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/services/street-fault/submissions", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-CSRF-Token", csrf)
				res, err := c.Do(req)
				if err == nil {
					res.Body.Close()
					if res.StatusCode != http.StatusAccepted {
						err = errors.New(res.Status)
					}
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// assertion is a fresh client assertion (RFC 7523) for the department
// client: its own jti each time.
func assertion(key *ecdsa.PrivateKey, aud string) (string, error) {
	now := time.Now()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	return jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": extraClient, "sub": extraClient, "aud": aud,
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": fmt.Sprintf("%x", jti)}).SignedString(key)
}

// accessToken trades an assertion for an access token at /oauth/token.
func (h *harness) accessToken(ctx context.Context, base string, key *ecdsa.PrivateKey) (string, error) {
	a, err := assertion(key, base)
	if err != nil {
		return "", err
	}
	form := "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=" + a
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/oauth/token", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := h.client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("/oauth/token: %s (%v)", res.Status, err)
	}
	return tok.AccessToken, nil
}

// bearer is the shared client with Authorization: Bearer credential() on
// each request.
func (h *harness) bearer(credential func() string) *http.Client {
	return &http.Client{Timeout: h.client.Timeout, Transport: bearerTransport{h.client.Transport, credential}}
}

type bearerTransport struct {
	next       http.RoundTripper
	credential func() string
}

func (t bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.credential())
	return t.next.RoundTrip(r)
}

// callgrindArgv runs a program under callgrind, its output in dir.
func callgrindArgv(dir, name string) []string {
	return []string{"valgrind", "--tool=callgrind", "--callgrind-out-file=" + filepath.Join(dir, "callgrind."+name)}
}

// instrRequests are the requests counted per target under callgrind, after
// as many to warm up.
const instrRequests = 500

// instructions counts user-space instructions per request (callgrind's Ir)
// of nginx and of a gateway started under valgrind, for the catalog JSON
// and the front page of 7 services: the counters are zeroed after a
// warm-up, the requests sent one after another on one keep-alive
// connection, then the counters dumped.
func (h *harness) instructions(ctx context.Context, out *strings.Builder, plain string, startGW func() (string, int, error)) error {
	if _, err := exec.LookPath("callgrind_control"); err != nil {
		return errors.New("callgrind_control is not on the PATH (it comes with valgrind)")
	}
	n := instrRequests
	if h.o.smoke {
		n = 20
	}
	// nginx serves the bytes the gateway answers, under callgrind too.
	www := filepath.Join(h.dir, "www-extra", "7")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return err
	}
	for path, file := range map[string]string{"/api/v1/services": "services.json", "/": "index.html"} {
		b, err := h.fetch(plain + path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(www, file), b, 0o644); err != nil {
			return err
		}
	}
	nginxAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
	conf, err := h.nginxConf(nginxAddr, filepath.Dir(www))
	if err != nil {
		return err
	}
	ngx, err := h.start(ctx, "nginx-callgrind", 0, nil, append(callgrindArgv(h.dir, "nginx"), "nginx", "-c", conf, "-p", h.dir)...)
	if err != nil {
		return err
	}
	if err := h.waitHTTP(ctx, "http://"+nginxAddr+"/7/services.json"); err != nil {
		return err
	}
	gwBase, gwPid, err := startGW()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n| User-space instructions per request (callgrind, %d requests after %d to warm up, one keep-alive connection) | nginx, same bytes | Gateway (this tree) | ratio |\n|---|---|---|---|\n", n, n)
	for _, f := range []struct{ figure, nginx, gw string }{
		{"Catalog JSON, 7 services", "/7/services.json", "/api/v1/services"},
		{"Front page, 7 services", "/7/index.html", "/"},
	} {
		ni, err := h.countInstructions(ctx, ngx.Process.Pid, "http://"+nginxAddr+f.nginx, n, "nginx")
		if err != nil {
			return fmt.Errorf("nginx: %w", err)
		}
		gi, err := h.countInstructions(ctx, gwPid, gwBase+f.gw, n, "gateway-2")
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		fmt.Fprintf(os.Stderr, "instructions  %-26s nginx %9.0f  gateway %9.0f per request\n", f.figure, ni, gi)
		fmt.Fprintf(out, "| %s | %.1fk | %.1fk | %.1fx |\n", f.figure, ni/1e3, gi/1e3, gi/ni)
	}
	return nil
}

// countInstructions warms up, zeroes the counters of pid, sends n GETs and
// dumps the counters: instructions per request.
func (h *harness) countInstructions(ctx context.Context, pid int, url string, n int, name string) (float64, error) {
	c := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	get := func() error {
		for i := 0; i < n; i++ {
			if _, err := h.fetchWith(c, url); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
	if err := get(); err != nil {
		return 0, err
	}
	if b, err := exec.CommandContext(ctx, "callgrind_control", "-z", strconv.Itoa(pid)).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("callgrind_control -z: %v: %s", err, b)
	}
	if err := get(); err != nil {
		return 0, err
	}
	before, _ := filepath.Glob(filepath.Join(h.dir, "callgrind."+name+"*"))
	if b, err := exec.CommandContext(ctx, "callgrind_control", "-d", strconv.Itoa(pid)).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("callgrind_control -d: %v: %s", err, b)
	}
	// The dump is a new file beside the ones before.
	var dump string
	for i := 0; i < 100 && dump == ""; i++ {
		after, _ := filepath.Glob(filepath.Join(h.dir, "callgrind."+name+"*"))
		for _, f := range after {
			if !slices.Contains(before, f) {
				dump = f
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if dump == "" {
		return 0, errors.New("callgrind wrote no dump")
	}
	ir, err := summaryIr(dump)
	if err != nil {
		return 0, err
	}
	return ir / float64(n), nil
}

var summaryLine = regexp.MustCompile(`(?m)^(?:summary|totals): (\d+)`)

// summaryIr reads the instructions (Ir) of a callgrind dump; a dump being
// written is read again until it has its summary.
func summaryIr(path string) (float64, error) {
	for i := 0; i < 100; i++ {
		b, err := os.ReadFile(path)
		if err == nil {
			if m := summaryLine.FindSubmatch(b); m != nil {
				return strconv.ParseFloat(string(m[1]), 64)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s has no summary line", path)
}
