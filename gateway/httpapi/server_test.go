package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/gateway/usage"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"
	_ "github.com/kommun/servicegateway/services/connectors/httpjson"
)

// quiet discards the request log in tests.
var quiet = slog.New(slog.DiscardHandler)

type env struct {
	app   *fiber.App
	store *redisstore.Store
}

// baseDeps starts a real redis-server and returns what every test server
// shares: the built-in catalog, translations and the real store.
func baseDeps(t testing.TB) (httpapi.Deps, *redisstore.Store, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	store := redisstore.New(srv.Client(t), "test")
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	_, cat, err := services.LoadCatalog(services.Builtin, tr)
	if err != nil {
		t.Fatal(err)
	}
	return httpapi.Deps{Catalog: cat, Store: store, Desk: store, DeadLetters: store, Statuses: store, Translations: tr, Ready: store.Ping, Logger: quiet}, store, srv
}

// build makes the fiber app from deps; without an intake, one on deps'
// store (the real Redis store) with deps' usage recorder and clock, as
// cmd/gateway wires it.
func build(t testing.TB, deps httpapi.Deps) *fiber.App {
	t.Helper()
	if deps.Intake == nil {
		deps.Intake = newIntake(t, deps)
	}
	if deps.Drafts == nil {
		deps.Drafts = newDrafts(t, deps, intake.DraftConfig{})
	}
	app, err := httpapi.NewServer(deps)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// newEnv builds the real HTTP layer on a real redis-server.
func newEnv(t *testing.T, cfg httpapi.Config) *env {
	t.Helper()
	deps, store, _ := baseDeps(t)
	deps.Counter, deps.Config = store, cfg
	return &env{app: build(t, deps), store: store}
}

func newIntake(t testing.TB, deps httpapi.Deps) *intake.Intake {
	t.Helper()
	store := deps.Store.(*redisstore.Store)
	var events intake.Events
	if rec, ok := deps.Usage.(*usage.Recorder); ok && rec != nil {
		events = rec
	}
	in, err := intake.New(intake.Deps{Store: store, Locker: store, Desk: store, Events: events, Logger: quiet,
		Config: intake.Config{Now: deps.Config.Now, StoreTimeout: deps.Config.StoreTimeout}})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// newDrafts is the drafts' use case on deps' store (the real Redis store),
// as cmd/gateway wires it.
func newDrafts(t testing.TB, deps httpapi.Deps, cfg intake.DraftConfig) *intake.Drafts {
	t.Helper()
	store := deps.Store.(*redisstore.Store)
	if cfg.Now == nil {
		cfg.Now = deps.Config.Now
	}
	d, err := intake.NewDrafts(store, store, quiet, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(t *testing.T, req *http.Request) resp {
	t.Helper()
	var reqBody []byte // for the OpenAPI check (openapi_test.go)
	if api := strings.HasPrefix(req.URL.Path, "/api/v1/"); api && req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	res, err := e.app.Test(req, 10000)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if strings.HasPrefix(req.URL.Path, "/api/v1/") {
		openAPICheck(t, e.app, req, reqBody, res.StatusCode, res.Header, b)
	}
	return resp{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (e *env) get(t *testing.T, path string, hdr ...string) resp {
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(t, req)
}

// form fetches a form page and returns its CSRF cookie and hidden tokens.
func (e *env) form(t *testing.T, path string) (cookie, csrf, formToken string) {
	t.Helper()
	r := e.get(t, path)
	if r.status != 200 {
		t.Fatalf("GET %s: %d", path, r.status)
	}
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "gw_csrf=") {
			cookie = strings.SplitN(c, ";", 2)[0]
		}
	}
	csrf = hidden(t, r.body, "_csrf")
	formToken = hidden(t, r.body, "_form")
	return
}

func hidden(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no hidden %s in form", name)
	}
	return m[1]
}

func (e *env) postForm(t *testing.T, path, cookie string, v url.Values, hdr ...string) resp {
	req := httptest.NewRequest("POST", path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(t, req)
}

func (e *env) postJSON(t *testing.T, path, body string, hdr ...string) resp {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(t, req)
}

func TestCatalogPageLanguages(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	cases := []struct {
		name, path string
		hdr        []string
		lang, text string
	}{
		{"default swedish", "/", nil, "sv", "Hitta en e-tjänst"},
		{"accept-language", "/", []string{"Accept-Language", "en-GB,en;q=0.8"}, "en", "Find an e-service"},
		{"query wins", "/?lang=sv", []string{"Accept-Language", "en"}, "sv", "Hitta en e-tjänst"},
		{"cookie", "/", []string{"Cookie", "lang=en"}, "en", "Find an e-service"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.get(t, tc.path, tc.hdr...)
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			if !strings.Contains(r.body, `<html lang="`+tc.lang+`" dir="ltr">`) || !strings.Contains(r.body, tc.text) {
				t.Fatalf("want lang %s and %q in page:\n%.600s", tc.lang, tc.text, r.body)
			}
			// A language switch on every page.
			if !strings.Contains(r.body, `hreflang="`) || !strings.Contains(r.body, "Svenska") || !strings.Contains(r.body, "English") {
				t.Fatal("no language switch")
			}
			if r.header.Get("Content-Security-Policy") == "" || !strings.Contains(r.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Fatal("no CSP")
			}
		})
	}
	// ?lang= is remembered in a cookie.
	r := e.get(t, "/?lang=en")
	if !strings.Contains(strings.Join(r.header.Values("Set-Cookie"), ";"), "lang=en") {
		t.Fatal("lang cookie not set")
	}
}

func TestCatalogSearch(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	r := e.get(t, "/?q=forskola")
	if !strings.Contains(r.body, `href="/services/preschool-place"`) || strings.Contains(r.body, `href="/services/street-fault"`) {
		t.Fatalf("search forskola:\n%s", r.body)
	}
	if !strings.Contains(r.body, "1 e-tjänst matchar") {
		t.Fatal("no result count")
	}
	r = e.get(t, "/?q=pothole&lang=en")
	if !strings.Contains(r.body, `href="/services/street-fault"`) {
		t.Fatal("english search for pothole did not find street-fault")
	}
	// The same search through the API.
	r = e.get(t, "/api/v1/services?q=f%C3%B6rskola")
	var list struct {
		Services []map[string]any `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list.Services) != 1 || list.Services[0]["id"] != "preschool-place" {
		t.Fatalf("api search: %v %s", err, r.body)
	}
}

func TestAPIServicesContract(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	r := e.get(t, "/api/v1/services", "Accept-Language", "en")
	var list struct {
		Services []map[string]any `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Services) < 7 {
		t.Fatalf("services: %d", len(list.Services))
	}
	for _, s := range list.Services {
		for _, k := range []string{"id", "title", "summary", "department", "category", "assurance"} {
			if v, ok := s[k].(string); !ok || v == "" {
				t.Errorf("service %v lacks %s", s["id"], k)
			}
		}
	}
	r = e.get(t, "/api/v1/services/street-fault", "Accept-Language", "en")
	var svc struct {
		ID     string           `json:"id"`
		Title  string           `json:"title"`
		Fields []map[string]any `json:"fields"`
		Schema struct {
			Type       string                    `json:"type"`
			Required   []string                  `json:"required"`
			Properties map[string]map[string]any `json:"properties"`
			Additional bool                      `json:"additionalProperties"`
		} `json:"schema"`
	}
	if err := json.Unmarshal([]byte(r.body), &svc); err != nil {
		t.Fatal(err)
	}
	if svc.ID != "street-fault" || svc.Title != "Report a fault in a street, park or playground" || len(svc.Fields) != 4 {
		t.Fatalf("service: %+v", svc)
	}
	if svc.Schema.Type != "object" || svc.Schema.Additional || strings.Join(svc.Schema.Required, ",") != "kind,description,location" {
		t.Fatalf("schema: %+v", svc.Schema)
	}
	if svc.Schema.Properties["email"]["format"] != "email" || svc.Schema.Properties["description"]["minLength"] != 10.0 {
		t.Fatalf("schema properties: %+v", svc.Schema.Properties)
	}
	if r := e.get(t, "/api/v1/services/nope"); r.status != 404 || r.header.Get("Content-Type") != "application/problem+json; charset=utf-8" {
		t.Fatalf("unknown service: %d %s", r.status, r.header.Get("Content-Type"))
	}
}

func TestFormJourney(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	cookie, csrf, token := e.form(t, "/services/street-fault")

	// Without the CSRF token: refused, nothing stored.
	v := url.Values{"kind": {"pothole"}, "description": {"Ett stort hål i cykelbanan"}, "location": {"Storgatan 1"}, "_form": {token}}
	if r := e.postForm(t, "/services/street-fault", cookie, v); r.status != 403 {
		t.Fatalf("no csrf: %d", r.status)
	}
	// A cross-site post with a token but without the cookie: refused.
	v.Set("_csrf", csrf)
	if r := e.postForm(t, "/services/street-fault", "", v); r.status != 403 {
		t.Fatalf("no cookie: %d", r.status)
	}

	// One mistake: 422, the message in Swedish, everything typed kept.
	bad := url.Values{"_csrf": {csrf}, "_form": {token}, "kind": {"pothole"}, "description": {"kort"}, "location": {"Storgatan 1"}, "email": {"anna@example.se"}}
	r := e.postForm(t, "/services/street-fault", cookie, bad)
	if r.status != 422 {
		t.Fatalf("invalid form: %d", r.status)
	}
	for _, want := range []string{"Skriv minst 10 tecken.", `value="Storgatan 1"`, `value="anna@example.se"`, ">kort</textarea>",
		`<option value="pothole" selected>`, `aria-invalid="true"`, `href="#f-description"`, "Något behöver rättas"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("invalid form page lacks %q", want)
		}
	}

	// Corrected: 303 to the receipt.
	good := bad
	good.Set("description", "Ett stort hål i cykelbanan vid korsningen")
	r = e.postForm(t, "/services/street-fault", cookie, good)
	if r.status != 303 {
		t.Fatalf("valid form: %d %s", r.status, r.body)
	}
	loc := r.header.Get("Location")
	m := regexp.MustCompile(`^/s/([a-z2-7]{32})\?receipt=1$`).FindStringSubmatch(loc)
	if m == nil {
		t.Fatalf("redirect %q", loc)
	}
	// Sending the same form again (a double click): the same receipt.
	if r2 := e.postForm(t, "/services/street-fault", cookie, good); r2.header.Get("Location") != loc {
		t.Fatalf("double submit made another submission: %q vs %q", r2.header.Get("Location"), loc)
	}

	page := e.get(t, loc)
	if page.status != 200 || !strings.Contains(page.body, "Tack! Vi har tagit emot ditt ärende") || !strings.Contains(page.body, `data-status="received"`) {
		t.Fatalf("receipt page: %d\n%s", page.status, page.body)
	}
	sub, err := e.store.Get(t.Context(), m[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.body, sub.Reference) || sub.Channel != "digital" || !reflect.DeepEqual(sub.Payload["location"], map[string]any{"address": "Storgatan 1"}) || sub.Locale != "sv" {
		t.Fatalf("stored submission: %+v", sub)
	}
}

func TestSignInRequiredKeepsValues(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	cookie, csrf, token := e.form(t, "/services/home-care")
	v := url.Values{"_csrf": {csrf}, "_form": {token}, "needs": {"Jag behöver hjälp med inköp"}}
	r := e.postForm(t, "/services/home-care", cookie, v)
	if r.status != 403 || !strings.Contains(r.body, "Jag behöver hjälp med inköp") || !strings.Contains(r.body, "e-legitimation") {
		t.Fatalf("sign-in required: %d\n%s", r.status, r.body)
	}
	if r := e.postJSON(t, "/api/v1/services/home-care/submissions", `{}`); r.status != 401 {
		t.Fatalf("api sign-in required: %d %s", r.status, r.body)
	}
}

func TestAPISubmit(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	const path = "/api/v1/services/street-fault/submissions"
	good := `{"kind":"streetlight","description":"Lampan lyser inte på natten","location":"Parkvägen 3"}`

	cases := []struct {
		name, body, ctype, lang string
		status                  int
		fields                  map[string]string // field -> message
	}{
		{"invalid english", `{"kind":"streetlight","description":"short","location":"x","email":"nope"}`, "application/json", "en", 422,
			map[string]string{"description": "Enter at least 10 characters.", "location": "Enter at least 3 characters.", "email": "Enter a valid e-mail address, for example name@example.com."}},
		{"invalid swedish", `{"kind":"ufo","description":"Lampan lyser inte","location":"Parkvägen 3"}`, "application/json", "sv", 422,
			map[string]string{"kind": "Välj ett av alternativen."}},
		{"unknown field", `{"kind":"streetlight","description":"Lampan lyser inte","location":"Parkvägen 3","colour":"red"}`, "application/json", "en", 422,
			map[string]string{"colour": "This e-service has no such field."}},
		{"object value", `{"kind":{"a":1},"description":"Lampan lyser inte","location":"Parkvägen 3"}`, "application/json", "en", 422,
			map[string]string{"kind": "The value has the wrong type."}},
		{"not json", `kind=x`, "application/json", "en", 422, nil},
		{"wrong content type", good, "text/plain", "en", 415, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ctype)
			req.Header.Set("Accept-Language", tc.lang)
			r := e.do(t, req)
			if r.status != tc.status || r.header.Get("Content-Type") != "application/problem+json; charset=utf-8" {
				t.Fatalf("status %d (%s), want %d problem: %s", r.status, r.header.Get("Content-Type"), tc.status, r.body)
			}
			var p struct {
				Status int               `json:"status"`
				Title  string            `json:"title"`
				Errors map[string]string `json:"errors"`
			}
			if err := json.Unmarshal([]byte(r.body), &p); err != nil || p.Status != tc.status || p.Title == "" {
				t.Fatalf("problem: %v %s", err, r.body)
			}
			for f, msg := range tc.fields {
				if p.Errors[f] != msg {
					t.Errorf("errors[%s] = %q, want %q", f, p.Errors[f], msg)
				}
			}
		})
	}

	r := e.postJSON(t, path, good)
	if r.status != 202 {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	var rec struct{ ID, Reference, Status, StatusURL string }
	_ = json.Unmarshal([]byte(strings.ReplaceAll(r.body, "status_url", "statusurl")), &rec)
	if rec.ID == "" || rec.Reference == "" || rec.Status != "received" || rec.StatusURL != "/api/v1/submissions/"+rec.ID {
		t.Fatalf("receipt: %s", r.body)
	}
	st := e.get(t, rec.StatusURL)
	var sub map[string]any
	if err := json.Unmarshal([]byte(st.body), &sub); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "reference", "service", "status", "case_reference", "history"} {
		if _, ok := sub[k]; !ok {
			t.Errorf("submission lacks %s: %s", k, st.body)
		}
	}
	if _, leaked := sub["payload"]; leaked {
		t.Error("the status API must not show the payload")
	}
	if r := e.get(t, "/api/v1/submissions/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); r.status != 404 {
		t.Fatalf("unknown submission: %d", r.status)
	}
	if r := e.get(t, "/s/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); r.status != 404 || !strings.Contains(r.body, "Sidan finns inte") {
		t.Fatalf("unknown status page: %d", r.status)
	}
}

func TestAPIIdempotency(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	const path = "/api/v1/services/street-fault/submissions"
	body := `{"kind":"litter","description":"Mycket skräp vid bänkarna","location":"Stadsparken"}`
	first := e.postJSON(t, path, body, "Idempotency-Key", "k-1")
	again := e.postJSON(t, path, `{"location":"Stadsparken","kind":"litter","description":"Mycket skräp vid bänkarna"}`, "Idempotency-Key", "k-1")
	if first.status != 202 || again.status != 202 || first.body != again.body || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("repeat: %d %s / %d %s", first.status, first.body, again.status, again.body)
	}
	other := e.postJSON(t, path, `{"kind":"litter","description":"Något helt annat här","location":"Stadsparken"}`, "Idempotency-Key", "k-1")
	if other.status != 422 {
		t.Fatalf("same key, other body: %d %s", other.status, other.body)
	}
	fresh := e.postJSON(t, path, body, "Idempotency-Key", "k-2")
	if fresh.status != 202 || fresh.body == first.body {
		t.Fatalf("new key: %d %s", fresh.status, fresh.body)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, httpapi.Config{SubmitLimit: 3, SubmitWindow: time.Minute})
	const path = "/api/v1/services/street-fault/submissions"
	body := `{"kind":"litter","description":"Mycket skräp vid bänkarna","location":"Stadsparken"}`
	for i := 0; i < 3; i++ {
		if r := e.postJSON(t, path, body); r.status != 202 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := e.postJSON(t, path, body)
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %v", r.status, r.header)
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	if r := e.get(t, "/healthz"); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := e.get(t, "/readyz"); r.status != 200 || !strings.Contains(r.body, `"ready"`) {
		t.Fatal(r.status, r.body)
	}
}
