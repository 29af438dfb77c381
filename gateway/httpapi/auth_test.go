package httpapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway/auth"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/gateway/servicepoint"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"
)

// The identity tests run the real HTTP layer on a real listener against a
// real redis-server; the gateway signs in with the development provider
// it serves itself (real HTTP to its own discovery, JWKS and token
// endpoints), and with a scripted "mock" OpenID provider whose token
// endpoint hands out whatever ID token a test case made, so every way an
// ID token can be bad goes through the real callback.

type authEnv struct {
	base    string
	rdb     *redis.Client
	store   *redisstore.Store
	idp     *auth.DevIdP
	mock    *mockOP
	clients map[string]*ecdsa.PrivateKey // machine client id -> key
	skew    *atomic.Int64                // added to the machine clients' clock (ns), to expire tokens
}

type authOpts struct {
	trustedProxies []string
	loginLimit     int
	submitLimit    int // default 1000
	production     bool
	providers      []*auth.RelyingParty // more providers, after dev and mock
	desk           bool                 // the service-point desk with the default points
	drafts         intake.DraftConfig   // the drafts' bounds (drafts_test.go)
}

func newAuthEnv(t *testing.T, o authOpts) *authEnv {
	t.Helper()
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store := redisstore.New(rdb, "test")
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	_, cat, err := services.LoadCatalog(services.Builtin, tr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	idp, err := auth.NewDevIdP(base + "/dev-idp")
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	devRP, err := auth.NewRelyingParty(auth.ProviderConfig{ID: "dev", Issuer: idp.Issuer, ClientID: idp.ClientID, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	mock := newMockOP(t)
	mockRP, err := auth.NewRelyingParty(auth.ProviderConfig{ID: "mock", Issuer: mock.URL, ClientID: "gw", ClientSecret: "s3cret", HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	e := &authEnv{base: base, rdb: rdb, store: store, idp: idp, mock: mock, clients: map[string]*ecdsa.PrivateKey{}, skew: new(atomic.Int64)}
	var clients []*auth.Client
	for id, dept := range map[string]string{"social-care-system": "social-care", "streets-system": "streets-parks"} {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e.clients[id] = k
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		js, _ := json.Marshal(map[string]any{"clients": []map[string]string{{"id": id, "department": dept, "algorithm": "ES256", "public_key": pemKey}}})
		cs, err := auth.ParseClients(js) // through the file format
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cs...)
	}
	assertions := auth.NewAssertions(clients, []string{base}, store)
	assertions.TokenKey = auth.TokenKey([]byte("0123456789abcdef0123456789abcdef"))
	assertions.TokenAudiences = []string{base + "/oauth/token"}
	assertions.Now = func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }
	a := &httpapi.Auth{
		Providers:  append([]*auth.RelyingParty{devRP, mockRP}, o.providers...),
		DevIdP:     idp,
		Sessions:   &auth.Sessions{Store: store, Key: []byte("0123456789abcdef0123456789abcdef")},
		Assertions: assertions,
		Store:      store,
		LoginLimit: o.loginLimit,
	}
	if o.submitLimit == 0 {
		o.submitLimit = 1000
	}
	deps := httpapi.Deps{Catalog: cat, Store: store, DeadLetters: store, Statuses: store, Translations: tr, Counter: store, Ready: store.Ping, Auth: a,
		Config: httpapi.Config{TrustedProxies: o.trustedProxies, SubmitLimit: o.submitLimit, Production: o.production}}
	if o.desk {
		deps.Desk, deps.ServicePoints = store, servicepoint.Default()
	}
	deps.Drafts = newDrafts(t, deps, o.drafts)
	app := build(t, deps)
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.ShutdownWithTimeout(5 * time.Second) })
	return e
}

// mockOP is a scripted OpenID provider: discovery, JWKS with its RSA key,
// and a token endpoint answering with the ID token next() makes.
type mockOP struct {
	URL  string
	Key  *rsa.PrivateKey
	Kid  string
	mu   sync.Mutex
	next func() string
}

func newMockOP(t *testing.T) *mockOP {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	m := &mockOP{Key: key, Kid: "mock-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": m.URL, "authorization_endpoint": m.URL + "/authorize",
			"token_endpoint": m.URL + "/token", "jwks_uri": m.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		j, _ := auth.PublicJWK(&key.PublicKey, m.Kid, "RS256")
		json.NewEncoder(w).Encode(auth.JWKSet{Keys: []auth.JWK{j}})
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "gw" || p != "s3cret" || r.FormValue("code_verifier") == "" {
			http.Error(w, `{"error":"invalid_client"}`, 401)
			return
		}
		m.mu.Lock()
		tok := m.next()
		m.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"id_token": tok, "token_type": "Bearer"})
	})
	srv := &http.Server{Handler: mux}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m.URL = "http://" + ln.Addr().String()
	return m
}

func (m *mockOP) sign(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = m.Kid
	s, err := tok.SignedString(m.Key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// browser is a cookie-keeping HTTP client that does not follow redirects
// by itself.
type browser struct {
	t   *testing.T
	e   *authEnv
	c   *http.Client
	jar *cookiejar.Jar
}

func (e *authEnv) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, jar: jar, c: &http.Client{Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, body io.Reader, hdr ...string) answer {
	b.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = b.e.base + path
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	bb, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(bb)}
}

func (b *browser) get(path string, hdr ...string) answer { return b.do("GET", path, nil, hdr...) }

func (b *browser) post(path string, v url.Values, hdr ...string) answer {
	return b.do("POST", path, strings.NewReader(v.Encode()), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)...)
}

func (b *browser) postJSON(path, body string, hdr ...string) answer {
	return b.do("POST", path, strings.NewReader(body), append([]string{"Content-Type", "application/json"}, hdr...)...)
}

// follow GETs path and follows redirects (at most 10) to the final answer.
func (b *browser) follow(path string) (answer, string) {
	b.t.Helper()
	a := b.get(path)
	for i := 0; i < 10 && a.status >= 300 && a.status < 400; i++ {
		loc := a.header.Get("Location")
		if strings.HasPrefix(loc, b.e.base) {
			loc = strings.TrimPrefix(loc, b.e.base)
		}
		path = loc
		a = b.get(path)
	}
	return a, path
}

// signIn signs in as a development persona through login_hint.
func (b *browser) signIn(persona, returnTo string) answer {
	b.t.Helper()
	a, at := b.follow("/auth/login?login_hint=" + persona + "&return_to=" + url.QueryEscape(returnTo))
	if a.status != 200 || !strings.HasPrefix(at, returnTo) {
		b.t.Fatalf("sign-in as %s ended at %s with %d:\n%.500s", persona, at, a.status, a.body)
	}
	return a
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.base)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.e.base)
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// me returns GET /api/v1/me's status and CSRF token.
func (b *browser) me() (int, string) {
	a := b.get("/api/v1/me")
	var m struct {
		CSRF string `json:"csrf_token"`
	}
	_ = json.Unmarshal([]byte(a.body), &m)
	return a.status, m.CSRF
}

// formTokens fetches a form page and returns its hidden _csrf and _form.
func (b *browser) formTokens(path string) (csrf, form string) {
	b.t.Helper()
	a := b.get(path)
	if a.status != 200 {
		b.t.Fatalf("GET %s: %d", path, a.status)
	}
	return hidden(b.t, a.body, "_csrf"), hidden(b.t, a.body, "_form")
}

// assertion makes a machine client's signed assertion.
func (e *authEnv) assertion(t *testing.T, client string, mod func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"iss": client, "sub": client, "aud": e.base, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": auth.RandomToken(16)}
	if mod != nil {
		mod(c)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(e.clients[client])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// snapshot describes everything stored, except the keys below: each
// key with its size, so a test can assert an attack stored or changed
// nothing.
func (e *authEnv) snapshot(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	keys, err := e.rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		// Rate limit counters and assertion ids (replay memory) change with
		// every request; sessions and sign-ins in progress are counted
		// apart (see the attack table).
		if strings.HasPrefix(k, "test:rl:") || strings.HasPrefix(k, "test:jti:") || strings.HasPrefix(k, "test:sess:") || strings.HasPrefix(k, "test:sessidx:") || strings.HasPrefix(k, "test:login:") {
			continue
		}
		var n int64
		switch e.rdb.Type(ctx, k).Val() {
		case "string":
			n = e.rdb.StrLen(ctx, k).Val()
		case "hash":
			for f, v := range e.rdb.HGetAll(ctx, k).Val() {
				n += int64(len(f) + len(v))
			}
		case "list":
			n = e.rdb.LLen(ctx, k).Val()
		case "zset":
			n = e.rdb.ZCard(ctx, k).Val()
		case "stream":
			n = e.rdb.XLen(ctx, k).Val()
		}
		fmt.Fprintf(&b, "%s=%d\n", k, n)
	}
	return b.String()
}

func (e *authEnv) count(t *testing.T, pattern string) int {
	keys, err := e.rdb.Keys(context.Background(), pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// submitAPI submits to a service as a signed-in browser (session cookie +
// X-CSRF-Token) and returns the submission id.
func (b *browser) submitAPI(service, body string) string {
	b.t.Helper()
	_, csrf := b.me()
	a := b.postJSON("/api/v1/services/"+service+"/submissions", body, "X-CSRF-Token", csrf)
	if a.status != 202 {
		b.t.Fatalf("submit %s: %d %s", service, a.status, a.body)
	}
	var r struct{ ID string }
	_ = json.Unmarshal([]byte(a.body), &r)
	return r.ID
}

const homeCare = `{"applying_for":"self","personnummer":"19900101-3011","help_types":["shopping"],"living_situation":"alone","needs":"Jag behöver hjälp med inköp och städning varje vecka","phone":"018-727 00 00","consent":true}`

func TestHomeCarePayloadIsValid(t *testing.T) {
	// Guards the fixture the attack table relies on.
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	b.signIn("bertil", "/my")
	if id := b.submitAPI("home-care", homeCare); id == "" {
		t.Fatal("no id")
	}
}

// TestAttackTable: every case asserts the exact status and that nothing
// was stored or changed (a snapshot of every key but rate limit counters).
func TestAttackTable(t *testing.T) {
	e := newAuthEnv(t, authOpts{})

	// Fixtures: Bertil (substantial) owns a home-care submission of
	// social-care; an anonymous street fault belongs to streets-parks.
	bertil := e.browser(t)
	bertil.signIn("bertil", "/my")
	owned := bertil.submitAPI("home-care", homeCare)
	anon := e.browser(t).postJSON("/api/v1/services/street-fault/submissions", `{"kind":"litter","description":"Mycket skräp vid bänkarna","location":"Stadsparken"}`)
	if anon.status != 202 {
		t.Fatalf("anonymous submit: %d %s", anon.status, anon.body)
	}

	// idTokenCase signs in through the mock provider, whose token endpoint
	// answers with the token the case makes (with the right nonce).
	idTokenCase := func(t *testing.T, mk func(nonce string) string) answer {
		b := e.browser(t)
		a := b.get("/auth/login?provider=mock")
		if a.status != 303 {
			t.Fatalf("login: %d", a.status)
		}
		u, _ := url.Parse(a.header.Get("Location"))
		nonce, state := u.Query().Get("nonce"), u.Query().Get("state")
		if u.Query().Get("code_challenge_method") != "S256" || len(u.Query().Get("code_challenge")) != 43 || nonce == "" {
			t.Fatalf("authorization request lacks PKCE or nonce: %s", u)
		}
		e.mock.mu.Lock()
		e.mock.next = func() string { return mk(nonce) }
		e.mock.mu.Unlock()
		res := b.get("/auth/callback?code=abc&state=" + url.QueryEscape(state))
		if b.cookie("gw_session") != "" {
			t.Errorf("a session cookie was set")
		}
		return res
	}
	claims := func(nonce string) jwt.MapClaims {
		now := time.Now()
		return jwt.MapClaims{"iss": e.mock.URL, "aud": "gw", "sub": "u1", "name": "Eva Ek", "nonce": nonce,
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "acr": "http://id.elegnamnden.se/loa/1.0/loa3",
			"https://id.oidc.se/claim/personalIdentityNumber": "198803151649"}
	}
	with := func(nonce string, mod func(jwt.MapClaims)) jwt.MapClaims { c := claims(nonce); mod(c); return c }
	pubPEM := func() []byte {
		der, _ := x509.MarshalPKIXPublicKey(&e.mock.Key.PublicKey)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	// A real ID token from the development provider, for the misuse cases.
	devIDToken, err := e.idp.Sign(jwt.MapClaims{"iss": e.idp.Issuer, "aud": e.idp.ClientID, "sub": "bertil", "nonce": "n",
		"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(), "acr": "http://id.elegnamnden.se/loa/1.0/loa3",
		"https://id.oidc.se/claim/personalIdentityNumber": "199001013011"})
	if err != nil {
		t.Fatal(err)
	}

	// sessions is how many sessions the case's own actors legitimately
	// hold afterwards (their sign-ins); the attack itself must add none.
	cases := []struct {
		name     string
		status   int
		sessions int
		run      func(t *testing.T) answer
	}{
		{"alg none", 401, 0, func(t *testing.T) answer {
			return idTokenCase(t, func(n string) string {
				s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(n)).SignedString(jwt.UnsafeAllowNoneSignatureType)
				return s
			})
		}},
		{"HS256 signed with the provider's public key", 401, 0, func(t *testing.T) answer {
			return idTokenCase(t, func(n string) string {
				tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(n))
				tok.Header["kid"] = e.mock.Kid
				s, _ := tok.SignedString(pubPEM)
				return s
			})
		}},
		{"signed with a foreign key under the provider's kid", 401, 0, func(t *testing.T) answer {
			other, _ := rsa.GenerateKey(rand.Reader, 2048)
			return idTokenCase(t, func(n string) string {
				tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(n))
				tok.Header["kid"] = e.mock.Kid
				s, _ := tok.SignedString(other)
				return s
			})
		}},
		{"foreign aud", 401, 0, func(t *testing.T) answer {
			return idTokenCase(t, func(n string) string {
				return e.mock.sign(t, with(n, func(c jwt.MapClaims) { c["aud"] = "someone-else" }))
			})
		}},
		{"foreign iss", 401, 0, func(t *testing.T) answer {
			return idTokenCase(t, func(n string) string {
				return e.mock.sign(t, with(n, func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }))
			})
		}},
		{"missing exp", 401, 0, func(t *testing.T) answer {
			return idTokenCase(t, func(n string) string { return e.mock.sign(t, with(n, func(c jwt.MapClaims) { delete(c, "exp") })) })
		}},
		{"expired", 401, 0, func(t *testing.T) answer {
			return idTokenCase(t, func(n string) string {
				return e.mock.sign(t, with(n, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))
			})
		}},
		{"nbf in the future", 401, 0, func(t *testing.T) answer {
			return idTokenCase(t, func(n string) string {
				return e.mock.sign(t, with(n, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }))
			})
		}},
		{"wrong nonce", 401, 0, func(t *testing.T) answer {
			return idTokenCase(t, func(n string) string { return e.mock.sign(t, claims("another-nonce")) })
		}},
		{"callback with a state this browser did not start", 403, 0, func(t *testing.T) answer {
			victim, attacker := e.browser(t), e.browser(t)
			a := attacker.get("/auth/login?provider=mock")
			u, _ := url.Parse(a.header.Get("Location"))
			return victim.get("/auth/callback?code=abc&state=" + url.QueryEscape(u.Query().Get("state")))
		}},
		{"Authorization header of 1 MB of dots", 431, 0, func(t *testing.T) answer {
			return rawHeaderRequest(t, e.base, "Authorization: Bearer "+strings.Repeat(".", 1<<20))
		}},
		{"ID token used as an API token", 401, 0, func(t *testing.T) answer {
			return e.browser(t).get("/api/v1/me", "Authorization", "Bearer "+devIDToken)
		}},
		{"ID token used as a session cookie", 401, 0, func(t *testing.T) answer {
			b := e.browser(t)
			b.setCookie("gw_session", devIDToken)
			return b.get("/api/v1/me")
		}},
		{"cookie replayed after logout", 401, 0, func(t *testing.T) answer {
			b := e.browser(t)
			b.signIn("anna", "/my")
			old := b.cookie("gw_session")
			csrf, _ := b.formTokens("/services/street-fault")
			if a := b.post("/auth/logout", url.Values{"_csrf": {csrf}}); a.status != 303 {
				t.Fatalf("logout: %d", a.status)
			}
			replay := e.browser(t)
			replay.setCookie("gw_session", old)
			return replay.get("/api/v1/me")
		}},
		{"session id planted before sign-in", 401, 1, func(t *testing.T) answer {
			attacker := e.browser(t)
			attacker.signIn("anna", "/my")
			planted := attacker.cookie("gw_session")
			victim := e.browser(t)
			victim.setCookie("gw_session", planted)
			victim.signIn("cecilia", "/my")
			if got := victim.cookie("gw_session"); got == planted || got == "" {
				t.Fatalf("the victim kept the planted session")
			}
			if st, _ := victim.me(); st != 200 {
				t.Fatalf("victim's own session: %d", st)
			}
			// The planted session is gone: the attacker holds nothing.
			return attacker.get("/api/v1/me")
		}},
		{"cross-site POST of a form without CSRF token", 403, 0, func(t *testing.T) answer {
			return bertil.post("/services/street-fault", url.Values{"kind": {"pothole"}, "description": {"Ett stort hål i cykelbanan"}, "location": {"Storgatan 1"}})
		}},
		{"cookie-authenticated API POST without X-CSRF-Token", 403, 0, func(t *testing.T) answer {
			return bertil.postJSON("/api/v1/services/street-fault/submissions", `{"kind":"litter","description":"Mycket skräp vid bänkarna","location":"Stadsparken"}`)
		}},
		{"submission to a substantial service with a low session (API)", 403, 1, func(t *testing.T) answer {
			b := e.browser(t)
			b.signIn("anna", "/my")
			_, csrf := b.me()
			return b.postJSON("/api/v1/services/home-care/submissions", homeCare, "X-CSRF-Token", csrf)
		}},
		{"submission to a substantial service with a low session (form: step-up)", 303, 1, func(t *testing.T) answer {
			b := e.browser(t)
			b.signIn("anna", "/my")
			csrf, form := b.formTokens("/services/home-care")
			a := b.post("/services/home-care", url.Values{"_csrf": {csrf}, "_form": {form}, "needs": {"Jag behöver hjälp med inköp varje vecka"}})
			if loc := a.header.Get("Location"); !strings.HasPrefix(loc, "/auth/login?") || !strings.Contains(loc, "level=substantial") {
				t.Errorf("step-up to %q", loc)
			}
			// The kept values are a draft; the snapshot ignores them.
			ctx := context.Background()
			for _, k := range e.rdb.Keys(ctx, "test:draft:*").Val() {
				e.rdb.Del(ctx, k)
			}
			return a
		}},
		{"resident A reading resident B's submission (API)", 404, 1, func(t *testing.T) answer {
			b := e.browser(t)
			b.signIn("cecilia", "/my")
			return b.get("/api/v1/submissions/" + owned)
		}},
		{"resident A reading resident B's submission (status page)", 404, 1, func(t *testing.T) answer {
			b := e.browser(t)
			b.signIn("cecilia", "/my")
			return b.get("/s/" + owned)
		}},
		{"anonymous holder of the link to an owned submission", 404, 0, func(t *testing.T) answer {
			return e.browser(t).get("/api/v1/submissions/" + owned)
		}},
		{"department client posting a status to another department's submission", 403, 0, func(t *testing.T) answer {
			return e.browser(t).postJSON("/api/v1/submissions/"+owned+"/status", `{"status":"decided","message":"Beviljat"}`,
				"Authorization", "Bearer "+e.assertion(t, "streets-system", nil))
		}},
		{"department client reading another department's submission", 404, 0, func(t *testing.T) answer {
			return e.browser(t).get("/api/v1/submissions/"+owned, "Authorization", "Bearer "+e.assertion(t, "streets-system", nil))
		}},
		{"client assertion replayed (same jti)", 401, 0, func(t *testing.T) answer {
			a := e.assertion(t, "social-care-system", nil)
			if r := e.browser(t).get("/api/v1/department/submissions", "Authorization", "Bearer "+a); r.status != 200 {
				t.Fatalf("first use: %d %s", r.status, r.body)
			}
			return e.browser(t).get("/api/v1/department/submissions", "Authorization", "Bearer "+a)
		}},
		{"client assertion living longer than 5 minutes", 401, 0, func(t *testing.T) answer {
			return e.browser(t).get("/api/v1/department/submissions", "Authorization", "Bearer "+e.assertion(t, "social-care-system",
				func(c jwt.MapClaims) { c["exp"] = time.Now().Add(time.Hour).Unix() }))
		}},
		{"client assertion for another audience", 401, 0, func(t *testing.T) answer {
			return e.browser(t).get("/api/v1/department/submissions", "Authorization", "Bearer "+e.assertion(t, "social-care-system",
				func(c jwt.MapClaims) { c["aud"] = "https://other-gateway.example" }))
		}},
		{"client assertion without jti", 401, 0, func(t *testing.T) answer {
			return e.browser(t).get("/api/v1/department/submissions", "Authorization", "Bearer "+e.assertion(t, "social-care-system",
				func(c jwt.MapClaims) { delete(c, "jti") }))
		}},
		{"client assertion alg none", 401, 0, func(t *testing.T) answer {
			c := jwt.MapClaims{"iss": "social-care-system", "sub": "social-care-system", "aud": e.base, "exp": time.Now().Add(time.Minute).Unix(), "jti": "x1"}
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return e.browser(t).get("/api/v1/department/submissions", "Authorization", "Bearer "+s)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot(t)
			sessions := e.count(t, "test:sess:*")
			a := tc.run(t)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", a.status, tc.status, a.body)
			}
			if after := e.snapshot(t); after != before {
				t.Fatalf("the attack stored or changed something:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if n := e.count(t, "test:sess:*") - sessions; n != tc.sessions {
				t.Fatalf("%d new sessions, want %d (those of the case's own sign-ins)", n, tc.sessions)
			}
		})
	}
	// Bertil still reads his own; the department sees it; the anonymous
	// submission is still readable by its link.
	if a := bertil.get("/api/v1/submissions/" + owned); a.status != 200 {
		t.Fatalf("owner reads: %d", a.status)
	}
	if a := e.browser(t).get("/api/v1/submissions/"+owned, "Authorization", "Bearer "+e.assertion(t, "social-care-system", nil)); a.status != 200 {
		t.Fatalf("owning department reads: %d", a.status)
	}
	var rec struct{ ID string }
	_ = json.Unmarshal([]byte(anon.body), &rec)
	if a := e.browser(t).get("/api/v1/submissions/" + rec.ID); a.status != 200 {
		t.Fatalf("anonymous link: %d", a.status)
	}
}

// rawHeaderRequest sends a GET /api/v1/me with an oversized header over a
// plain TCP connection, reading the answer while it writes: the server
// answers (and closes) before the header is all sent, which net/http's
// client reports as a broken connection instead of the answer.
func rawHeaderRequest(t *testing.T, base, header string) answer {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, _ = io.WriteString(conn, "GET /api/v1/me HTTP/1.1\r\nHost: x\r\n"+header+"\r\n\r\n")
	}()
	line := make([]byte, 0, 64)
	buf := make([]byte, 1)
	for len(line) < 64 {
		if _, err := conn.Read(buf); err != nil {
			break
		}
		if buf[0] == '\n' {
			break
		}
		line = append(line, buf[0])
	}
	var status int
	if _, err := fmt.Sscanf(string(line), "HTTP/1.1 %d", &status); err != nil {
		t.Fatalf("no status line: %q", line)
	}
	return answer{status: status}
}

// A good ID token from the scripted provider signs in: the control that
// shows the attack table's refusals are not refusals of everything.
func TestMockProviderSignsIn(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	a := b.get("/auth/login?provider=mock&return_to=/my")
	u, _ := url.Parse(a.header.Get("Location"))
	if u.Query().Get("client_id") != "gw" || u.Query().Get("redirect_uri") != e.base+"/auth/callback" {
		t.Fatalf("authorization request %s", u)
	}
	now := time.Now()
	e.mock.next = func() string {
		return e.mock.sign(t, jwt.MapClaims{"iss": e.mock.URL, "aud": "gw", "sub": "u1", "name": "Eva Ek", "nonce": u.Query().Get("nonce"),
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "acr": "http://eidas.europa.eu/LoA/high",
			"https://id.oidc.se/claim/personalIdentityNumber": "19880315-1649"})
	}
	if r := b.get("/auth/callback?code=abc&state=" + url.QueryEscape(u.Query().Get("state"))); r.status != 303 || r.header.Get("Location") != "/my" {
		t.Fatalf("callback: %d %s %s", r.status, r.header.Get("Location"), r.body)
	}
	r := b.get("/api/v1/me")
	var me struct {
		Subject, Name, Assurance, Personnummer, CSRF string
		Roles                                        []string
	}
	_ = json.Unmarshal([]byte(strings.ReplaceAll(r.body, "csrf_token", "csrf")), &me)
	if r.status != 200 || me.Subject != "se-pnr:19880315-****" || me.Assurance != "high" || me.Personnummer != "19880315-****" ||
		me.Name != "Eva Ek" || len(me.Roles) != 1 || me.Roles[0] != "resident" || len(me.CSRF) != 43 {
		t.Fatalf("me: %d %s", r.status, r.body)
	}
	// The personnummer is never shown in full, in the subject neither
	// (issue 9, item 11).
	if strings.Contains(r.body, "198803151649") || strings.Contains(r.body, "1649") {
		t.Fatalf("personnummer shown in full: %s", r.body)
	}
}

// Step-up keeps what was typed: an anonymous resident fills in a form that
// needs "substantial", sends it, signs in, finds the form filled in, sends
// again and sees the submission on My pages. A sign-in at too low a level
// is refused and the values stay.
func TestStepUpKeepsValuesAndMyPages(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	csrf, form := b.formTokens("/services/home-care")
	v := url.Values{"_csrf": {csrf}, "_form": {form}, "applying_for": {"self"}, "personnummer": {"19900101-3011"},
		"help_types": {"shopping", "cleaning"}, "living_situation": {"alone"}, "needs": {"Jag behöver hjälp med inköp och städning"},
		"phone": {"018-727 00 00"}, "consent": {"true"}}
	a := b.post("/services/home-care", v)
	loc := a.header.Get("Location")
	if a.status != 303 || !strings.HasPrefix(loc, "/auth/login?") {
		t.Fatalf("anonymous send: %d %q", a.status, loc)
	}
	lu, _ := url.Parse(loc)
	if lu.Query().Get("level") != "substantial" || !strings.HasPrefix(lu.Query().Get("return_to"), "/services/home-care?draft=") {
		t.Fatalf("step-up %s", loc)
	}
	if n := e.count(t, "test:{q}:sub:*"); n != 0 {
		t.Fatalf("%d submissions stored before sign-in", n)
	}
	// The provider is asked for the level.
	r := b.get(loc + "&login_hint=anna")
	au, _ := url.Parse(r.header.Get("Location"))
	if au.Query().Get("acr_values") != "http://id.elegnamnden.se/loa/1.0/loa3" {
		t.Fatalf("authorize without acr_values: %s", au)
	}
	// Anna signs in at "low": refused, with the values kept.
	r, _ = b.follow(r.header.Get("Location"))
	if r.status != 403 || !strings.Contains(r.body, "väsentlig") {
		t.Fatalf("too low: %d %.2000s", r.status, r.body)
	}
	// Another browser cannot open the draft.
	other := e.browser(t)
	if r := other.get(lu.Query().Get("return_to")); strings.Contains(r.body, "inköp och städning") {
		t.Fatal("another browser sees the kept values")
	}
	// Bertil (substantial) signs in and is back at the form, filled in.
	page, at := b.follow(loc + "&login_hint=bertil")
	if page.status != 200 || !strings.HasPrefix(at, "/services/home-care?draft=") {
		t.Fatalf("after sign-in: %d at %s", page.status, at)
	}
	for _, want := range []string{"Jag behöver hjälp med inköp och städning", `value="018-727 00 00"`, `value="19900101-3011"`, `action="/services/home-care?draft=`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("form after step-up lacks %q", want)
		}
	}
	// Send again (the resident presses Send).
	v.Set("_csrf", hidden(t, page.body, "_csrf"))
	v.Set("_form", hidden(t, page.body, "_form"))
	action := regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(page.body)[1]
	a = b.post(strings.ReplaceAll(action, "&amp;", "&"), v)
	m := regexp.MustCompile(`^/s/([a-z2-7]{32})\?receipt=1$`).FindStringSubmatch(a.header.Get("Location"))
	if a.status != 303 || m == nil {
		t.Fatalf("send after step-up: %d %q %.300s", a.status, a.header.Get("Location"), a.body)
	}
	if n := e.count(t, "test:draft:*"); n != 0 {
		t.Errorf("the draft was kept after sending")
	}
	sub, err := e.store.Get(context.Background(), m[1])
	if err != nil || sub.Subject != "se-pnr:199001013011" {
		t.Fatalf("stored submission: %v %+v", err, sub)
	}
	// My pages, as a page and as JSON.
	my := b.get("/my")
	if my.status != 200 || !strings.Contains(my.body, sub.Reference) || !strings.Contains(my.body, "19900101-****") || strings.Contains(my.body, "199001013011") {
		t.Fatalf("my page: %d %.800s", my.status, my.body)
	}
	js := b.get("/api/v1/me/submissions")
	var list struct {
		Submissions []struct{ ID, Reference, Status, Department string } `json:"submissions"`
	}
	if err := json.Unmarshal([]byte(js.body), &list); err != nil || len(list.Submissions) != 1 || list.Submissions[0].ID != m[1] ||
		list.Submissions[0].Status != "received" || list.Submissions[0].Department != "social-care" {
		t.Fatalf("me/submissions: %v %s", err, js.body)
	}
	// The owning department lists it; another department does not.
	for client, want := range map[string]bool{"social-care-system": true, "streets-system": false} {
		r := e.browser(t).get("/api/v1/department/submissions", "Authorization", "Bearer "+e.assertion(t, client, nil))
		if r.status != 200 || strings.Contains(r.body, m[1]) != want || strings.Contains(r.body, "payload") {
			t.Errorf("%s lists: %d %s", client, r.status, r.body)
		}
	}
	// A resident and an anonymous caller may not use the department list.
	if r := b.get("/api/v1/department/submissions"); r.status != 403 {
		t.Errorf("resident on the department list: %d", r.status)
	}
	if r := e.browser(t).get("/api/v1/department/submissions"); r.status != 401 {
		t.Errorf("anonymous on the department list: %d", r.status)
	}
	// Sign out: the session ends at once.
	csrf2, _ := b.formTokens("/services/street-fault")
	if r := b.post("/auth/logout", url.Values{"_csrf": {csrf2}}); r.status != 303 {
		t.Fatalf("logout: %d", r.status)
	}
	if st, _ := b.me(); st != 401 {
		t.Fatalf("after logout /me: %d", st)
	}
	if r := b.get("/my"); r.status != 303 {
		t.Fatalf("after logout /my: %d", r.status)
	}
}

// Logout through the API: the session's CSRF token in X-CSRF-Token, 204.
func TestAPILogout(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	b.signIn("cecilia", "/my")
	_, csrf := b.me()
	if r := b.do("POST", "/auth/logout", nil, "X-CSRF-Token", "wrong"); r.status != 403 {
		t.Fatalf("logout with a wrong token: %d", r.status)
	}
	if st, _ := b.me(); st != 200 {
		t.Fatal("a refused logout ended the session")
	}
	if r := b.do("POST", "/auth/logout", nil, "X-CSRF-Token", csrf); r.status != 204 {
		t.Fatalf("logout: %d", r.status)
	}
	if st, _ := b.me(); st != 401 {
		t.Fatal("session alive after logout")
	}
}

// The client IP comes from X-Forwarded-For only when the peer is a trusted
// proxy: from an untrusted peer a spoofed header does not escape the limit.
func TestSpoofedForwardedFor(t *testing.T) {
	cases := []struct {
		name    string
		trusted []string
		xff     []string
		want    []int
	}{
		{"untrusted peer, a new spoofed address each time", []string{"10.9.9.9"}, []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"}, []int{303, 303, 429}},
		{"trusted proxy, different clients", []string{"127.0.0.1"}, []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"}, []int{303, 303, 303}},
		{"trusted proxy, the same client", []string{"127.0.0.1"}, []string{"203.0.113.9", "203.0.113.9", "203.0.113.9"}, []int{303, 303, 429}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newAuthEnv(t, authOpts{trustedProxies: tc.trusted, loginLimit: 2})
			for i, ip := range tc.xff {
				logins := e.count(t, "test:login:*")
				r := e.browser(t).get("/auth/login", "X-Forwarded-For", ip)
				if r.status != tc.want[i] {
					t.Fatalf("request %d: %d, want %d", i+1, r.status, tc.want[i])
				}
				if r.status == 429 && e.count(t, "test:login:*") != logins {
					t.Fatal("a refused sign-in stored a sign-in state")
				}
			}
		})
	}
}

// Security headers hold on the new pages too: no inline script.
func TestAuthPagesHeaders(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	r := b.get("/auth/login")
	pick := b.get(r.header.Get("Location"))
	if pick.status != 200 || !strings.Contains(pick.body, `name="persona"`) || !strings.Contains(pick.body, "Välj en testperson") {
		t.Fatalf("picker: %d %.300s", pick.status, pick.body)
	}
	b.signIn("bertil", "/my")
	my := b.get("/my")
	for _, a := range []answer{pick, my} {
		csp := a.header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("CSP %q", csp)
		}
		if strings.Contains(a.body, "<script") {
			t.Error("a page with script")
		}
	}
	if cc := my.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("my page Cache-Control %q", cc)
	}
}

// The picker is a form: choosing a persona signs in, without JavaScript.
func TestPersonaPicker(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	r := b.get("/auth/login?return_to=/my")
	pick := b.get(r.header.Get("Location"))
	v := url.Values{"persona": {"dragan"}}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`).FindAllStringSubmatch(pick.body, -1) {
		v.Set(m[1], strings.ReplaceAll(m[2], "&amp;", "&"))
	}
	a := b.post("/dev-idp/authorize", v)
	if a.status != 303 {
		t.Fatalf("picker post: %d %.300s", a.status, a.body)
	}
	my, at := b.follow(a.header.Get("Location"))
	if at != "/my" || !strings.Contains(my.body, "Dragan Dimitrov") || !strings.Contains(my.body, "19701063-****") {
		t.Fatalf("after picking: %s %.500s", at, my.body)
	}
	// Without the picker's CSRF token: refused.
	v.Del("_csrf")
	if a := b.post("/dev-idp/authorize", v); a.status != 403 {
		t.Fatalf("picker post without CSRF: %d", a.status)
	}
	// The personas as JSON (contract).
	var ps struct {
		Personas []struct {
			ID, Name, Assurance, Personnummer string
			Roles                             []string
		} `json:"personas"`
	}
	if err := json.Unmarshal([]byte(b.get("/dev-idp/personas").body), &ps); err != nil || len(ps.Personas) < 6 {
		t.Fatalf("personas: %v", err)
	}
	levels := map[string]bool{}
	for _, p := range ps.Personas {
		if p.Personnummer != "" {
			levels[p.Assurance] = true
		}
	}
	if !levels["low"] || !levels["substantial"] || !levels["high"] {
		t.Errorf("resident levels %v", levels)
	}
}

// return_to takes only local paths: sign-in cannot send anyone elsewhere.
func TestReturnToIsLocal(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	cases := []struct{ returnTo, want string }{
		{"/services/street-fault?lang=en", "/services/street-fault?lang=en"},
		{"//evil.example/x", "/my"},
		{"https://evil.example/", "/my"},
		{"/\\evil.example", "/my"},
		{"javascript:alert(1)", "/my"},
		{"", "/my"},
	}
	for _, tc := range cases {
		t.Run(tc.returnTo, func(t *testing.T) {
			b := e.browser(t)
			a := b.get("/auth/login?login_hint=bertil&return_to=" + url.QueryEscape(tc.returnTo))
			a = b.get(a.header.Get("Location")) // the provider approves
			loc := strings.TrimPrefix(a.header.Get("Location"), e.base)
			a = b.get(loc) // the callback
			if a.status != 303 || a.header.Get("Location") != tc.want {
				t.Fatalf("after sign-in: %d to %q, want %q", a.status, a.header.Get("Location"), tc.want)
			}
		})
	}
}

// The header links to sign-in, and to My pages once signed in.
func TestAccountLink(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	if r := b.get("/"); !strings.Contains(r.body, `id="account-link">Logga in<`) {
		t.Fatal("no sign-in link")
	}
	b.signIn("bertil", "/my")
	if r := b.get("/"); !strings.Contains(r.body, `id="account-link">Mina sidor<`) {
		t.Fatal("no My pages link")
	}
}

// Submissions are limited per signed-in person as well as per client IP:
// a person behind many addresses (a trusted proxy forwarding each) is
// still limited.
func TestSubmitLimitPerPerson(t *testing.T) {
	e := newAuthEnv(t, authOpts{trustedProxies: []string{"127.0.0.1"}, submitLimit: 2})
	b := e.browser(t)
	b.signIn("bertil", "/my")
	_, csrf := b.me()
	body := `{"kind":"litter","description":"Mycket skräp vid bänkarna","location":"Stadsparken"}`
	for i, want := range []int{202, 202, 429} {
		r := b.postJSON("/api/v1/services/street-fault/submissions", body, "X-CSRF-Token", csrf, "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
		if r.status != want {
			t.Fatalf("submission %d: %d, want %d: %s", i+1, r.status, want, r.body)
		}
	}
	// Another person from one of those addresses is not limited by Bertil.
	o := e.browser(t)
	o.signIn("cecilia", "/my")
	_, csrf = o.me()
	if r := o.postJSON("/api/v1/services/street-fault/submissions", body, "X-CSRF-Token", csrf, "X-Forwarded-For", "203.0.113.4"); r.status != 202 {
		t.Fatalf("another person: %d", r.status)
	}
}
