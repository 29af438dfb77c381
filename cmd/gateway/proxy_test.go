package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway/auth"
)

// seen is what the upstream e-service received.
type seen struct {
	mu   sync.Mutex
	reqs []*http.Request
	body map[string]string
}

func (s *seen) all() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

func (s *seen) last(t *testing.T) *http.Request {
	t.Helper()
	all := s.all()
	if len(all) == 0 {
		t.Fatal("the upstream saw no request")
	}
	return all[len(all)-1]
}

const bigAnswer = 16 << 20

// The example service book-premises is an existing e-service behind the
// front door: the real gateway binary forwards to a real upstream listener,
// which sees the identity the gateway signed (verified with the key set the
// gateway publishes) and never one the browser sent; a resident below the
// level, or not signed in, is sent to sign in; the catalog links to it; a
// large answer comes through whole; its use is counted.
func TestProxiedEServiceBinary(t *testing.T) {
	got := &seen{body: map[string]string{}}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.mu.Lock()
		got.reqs = append(got.reqs, r)
		got.body[r.URL.Path] = string(b)
		got.mu.Unlock()
		if r.URL.Path == "/big" {
			chunk := strings.Repeat("0123456789abcdef", 4096)
			for n := 0; n < bigAnswer; n += len(chunk) {
				io.WriteString(w, chunk)
			}
			return
		}
		io.WriteString(w, "upstream page "+r.URL.Path)
	}))
	defer up.Close()

	// The example service, and the same e-service once more open to
	// everyone (assurance none), where the identity comes only from a
	// signed-in person.
	dir := t.TempDir()
	src := "../../services/city-office/book-premises"
	for _, d := range []string{"book-premises", "book-premises-open"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(src)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if d != "book-premises" {
				b = []byte(strings.NewReplacer(`"book-premises`, `"book-premises-open`, `assurance = "substantial"`, `assurance = "none"`,
					`/e/book-premises/`, `/e/book-premises-open/`).Replace(string(b)))
			}
			if err := os.WriteFile(filepath.Join(dir, d, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, _, gw := startStack(t, map[string]string{"DEMO_ESERVICE_URL": up.URL, "GATEWAY_USAGE_FLUSH": "100ms", "GATEWAY_OPENDATA_MIN_COUNT": "1",
		"GATEWAY_SERVICES_DIR": dir})
	noFollow := func(c *http.Client) *http.Client {
		cc := *c
		cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return &cc
	}
	anon := noFollow(&http.Client{Timeout: 10 * time.Second})
	expectSignIn := func(c *http.Client, who string) {
		t.Helper()
		req, _ := http.NewRequest("GET", gw.URL+"/e/book-premises/bookings?week=12", nil)
		req.Header.Set("X-Gateway-Identity", "forged")
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, _ := url.Parse(res.Header.Get("Location"))
		if res.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/auth/login" ||
			loc.Query().Get("level") != "substantial" || loc.Query().Get("return_to") != "/e/book-premises/bookings?week=12" {
			t.Fatalf("%s: %d Location %q, want a sign-in at level substantial", who, res.StatusCode, res.Header.Get("Location"))
		}
	}
	expectSignIn(anon, "anonymous")
	// Open to everyone: forwarded, and a forged identity never arrives.
	req, _ := http.NewRequest("GET", gw.URL+"/e/book-premises-open/start", nil)
	req.Header.Set("X-Gateway-Identity", "forged")
	req.Header.Set("X-Forwarded-User", "forged")
	res, err := anon.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("anonymous on the open e-service: %d", res.StatusCode)
	}
	r := got.last(t)
	for _, h := range []string{"X-Gateway-Identity", "X-Forwarded-User"} {
		if v := r.Header.Get(h); v != "" {
			t.Errorf("the upstream saw %s: %q sent by the browser", h, v)
		}
	}
	got.mu.Lock()
	got.reqs = nil
	got.mu.Unlock()

	anna := signIn(t, gw.URL, "anna", "/my") // level low
	expectSignIn(noFollow(anna), "a resident signed in at level low")
	if n := len(got.all()); n != 0 {
		t.Fatalf("the upstream was reached %d times before anyone was signed in at the level", n)
	}

	// Bertil (substantial) signs in and is sent back to the e-service.
	bertil := signIn(t, gw.URL, "bertil", "/e/book-premises/")
	req, _ = http.NewRequest("POST", gw.URL+"/e/book-premises/book", strings.NewReader("room=12"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Gateway-Identity", "forged")
	req.Header.Set("x-gateway-identity", "forged too")
	req.Header.Set("Cookie", "app=1")
	res, err = bertil.Do(req) // no gateway CSRF token: the e-service guards its own forms
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(page) != "upstream page /book" {
		t.Fatalf("POST through the gateway: %d %q", res.StatusCode, page)
	}
	r = got.last(t)
	if ids := r.Header.Values("X-Gateway-Identity"); len(ids) != 1 || strings.Contains(ids[0], "forged") {
		t.Fatalf("upstream saw identity headers %q", ids)
	}
	if got.body["/book"] != "room=12" {
		t.Errorf("upstream got body %q", got.body["/book"])
	}
	if c := r.Header.Get("Cookie"); c != "app=1" {
		t.Errorf("upstream saw cookies %q, want only the e-service's own", c)
	}

	// The token verifies with the published key set, for this upstream.
	var set auth.JWKSet
	if code := getJSON(t, gw.URL+"/.well-known/gateway-keys.json", &set); code != 200 || len(set.Keys) != 1 {
		t.Fatalf("key set: %d %+v", code, set)
	}
	ks := &auth.KeySet{URL: gw.URL + "/.well-known/gateway-keys.json", Client: &http.Client{Timeout: 5 * time.Second}}
	var claims auth.IdentityClaims
	_, err = jwt.ParseWithClaims(r.Header.Get("X-Gateway-Identity"), &claims, ks.Keyfunc(context.Background()),
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(up.URL), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("the identity token does not verify with the published keys: %v", err)
	}
	if claims.Personnummer != "199001013011" || claims.Level != "substantial" || claims.Name != "Bertil Berg" || claims.Subject == "" ||
		len(claims.Roles) != 1 || claims.Roles[0] != "resident" {
		t.Errorf("claims: %+v", claims)
	}
	if life := claims.ExpiresAt.Sub(claims.IssuedAt.Time); life > 2*time.Minute {
		t.Errorf("identity token lives %s", life)
	}

	// A large answer comes through whole.
	res, err = bertil.Get(gw.URL + "/e/book-premises/big")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, res.Body)
	res.Body.Close()
	want := sha256.Sum256([]byte(strings.Repeat(strings.Repeat("0123456789abcdef", 4096), bigAnswer/65536)))
	if err != nil || n != bigAnswer || hex.EncodeToString(h.Sum(nil)) != hex.EncodeToString(want[:]) {
		t.Fatalf("large answer: %d bytes, err %v", n, err)
	}

	// The catalog links to the prefix; the service has no form and takes
	// no submissions.
	res, err = http.Get(gw.URL + "/?q=boka")
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), `href="/e/book-premises/"`) {
		t.Fatalf("the catalog has no link to /e/book-premises/:\n%s", page)
	}
	if code, _ := postJSON(t, gw.URL+"/api/v1/services/book-premises/submissions", `{}`); code != 404 {
		t.Errorf("a submission to a proxied service: %d, want 404", code)
	}

	// Counted like any other service: the entry page was viewed and started.
	eventually(t, 10*time.Second, "usage of book-premises", func() bool {
		row := openUsage(t, gw.URL)["book-premises|digital"]
		return val(row.Viewed) >= 1 && val(row.Started) >= 1
	})
}

// Two replicas of the gateway on one Redis, each keeping sessions in its
// cache (for the longest allowed, a minute, so that only being told can
// end a cached session in the test's few seconds): a resident signs out everywhere on one, and the other stops
// passing that resident's identity to the e-service, from its cache, with
// the old cookie replayed.
func TestSignOutEverywhereEndsCachedIdentityOnEveryReplica(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get("X-Gateway-Identity"))
		mu.Unlock()
		io.WriteString(w, "upstream page")
	}))
	defer up.Close()
	lastID := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(ids) == 0 {
			return ""
		}
		return ids[len(ids)-1]
	}
	extra := map[string]string{"DEMO_ESERVICE_URL": up.URL, "GATEWAY_SESSION_CACHE": "1m",
		"GATEWAY_SESSION_KEY": strings.Repeat("s", 40)}
	rs, cs, a := startStack(t, extra)
	env := gatewayEnv(rs.URL(), cs.URL)
	for k, v := range extra {
		env[k] = v
	}
	b := gatewayProc(t, env)

	// Signed in on a; the cookie works on both (one host, two ports).
	bertil := signIn(t, a.URL, "bertil", "/e/book-premises/")
	u, _ := url.Parse(a.URL)
	var cookie string
	for _, c := range bertil.Jar.Cookies(u) {
		if c.Name == "gw_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" {
		t.Fatal("no session cookie after sign-in")
	}
	raw := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(gw string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", gw+"/e/book-premises/bookings", nil)
		req.Header.Set("Cookie", cookie)
		res, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, gw := range []string{a.URL, b.URL, b.URL} {
		if code := get(gw); code != 200 || lastID() == "" {
			t.Fatalf("signed in, through %s: %d, identity %q", gw, code, lastID())
		}
	}

	// Sign out everywhere, on a.
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	req, _ := http.NewRequest("GET", a.URL+"/api/v1/me", nil)
	req.Header.Set("Cookie", cookie)
	res, err := raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(res.Body).Decode(&me)
	res.Body.Close()
	if err != nil || me.CSRF == "" {
		t.Fatalf("/api/v1/me: %v %+v", err, me)
	}
	req, _ = http.NewRequest("POST", a.URL+"/auth/logout", strings.NewReader("everywhere=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", me.CSRF)
	req.Header.Set("Cookie", cookie)
	if res, err = raw.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode >= 400 {
		t.Fatalf("sign out everywhere: %d", res.StatusCode)
	}
	if code := get(a.URL); code != http.StatusSeeOther {
		t.Fatalf("the old cookie on the replica that signed out: %d, want a sign-in", code)
	}
	eventually(t, 5*time.Second, "the other replica refuses the old cookie", func() bool { return get(b.URL) == http.StatusSeeOther })
	mu.Lock()
	n := len(ids)
	mu.Unlock()
	for _, gw := range []string{a.URL, b.URL} {
		if code := get(gw); code != http.StatusSeeOther {
			t.Fatalf("the old cookie through %s: %d", gw, code)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != n {
		t.Fatalf("the e-service was reached with a signed-out session: %q", ids[n:])
	}
}
