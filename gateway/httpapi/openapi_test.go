package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway/httpapi"
)

// The OpenAPI document is loaded with a real OpenAPI library (kin-openapi)
// and every request the tests make through env.do to /api/v1 is checked
// against it (openAPICheck): the route must be in the document; a request
// the document calls invalid must not be accepted (2xx); and every answer
// must match its documented status, content type and schema.

type openAPIDoc struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	openAPIMu   sync.Mutex
	openAPIDocs = map[*fiber.App]*openAPIDoc{}
)

// loadOpenAPI fetches GET /api/v1/openapi.json from app and loads it.
func loadOpenAPI(t testing.TB, app *fiber.App) *openAPIDoc {
	t.Helper()
	openAPIMu.Lock()
	defer openAPIMu.Unlock()
	if d, ok := openAPIDocs[app]; ok {
		return d
	}
	res, err := app.Test(httptest.NewRequest("GET", "/api/v1/openapi.json", nil), 10000)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("openapi.json: %d %s", res.StatusCode, b)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(b)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("openapi router: %v", err)
	}
	d := &openAPIDoc{doc: doc, router: router}
	openAPIDocs[app] = d
	return d
}

var openAPIOptions = &openapi3filter.Options{
	IncludeResponseStatus:   true,
	MultiError:              false,
	SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.EnableJSONSchema2020()},
	// A scheme is satisfied when its credential is there; whether it is
	// good is the server's to say (401/403, which the document allows).
	AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		r, s := in.RequestValidationInput.Request, in.SecurityScheme
		if r.Header.Get("X-Test-Principal") != "" && in.SecuritySchemeName != "callbackSignature" {
			return nil // AuthenticateForTests stands in for a session (with its CSRF token) or a bearer assertion
		}
		switch {
		case s.Type == "http" && s.Scheme == "bearer":
			if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
				return nil
			}
		case s.In == "header":
			if r.Header.Get(s.Name) != "" {
				return nil
			}
		case s.In == "cookie":
			if _, err := r.Cookie(s.Name); err == nil {
				return nil
			}
		}
		return errors.New("no " + in.SecuritySchemeName)
	},
}

// openAPICheck validates one exchange with the app against its document;
// reqBody is the request's body, res and body the answer.
func openAPICheck(t testing.TB, app *fiber.App, req *http.Request, reqBody []byte, status int, header http.Header, body []byte) {
	t.Helper()
	d := loadOpenAPI(t, app)
	r := req.Clone(context.Background())
	if u, err := url.Parse(d.doc.Servers[0].URL); err == nil && u.Host != "" { // Config.PublicURL
		r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, u.Host
	} else if r.URL.Host == "" {
		r.URL.Scheme, r.URL.Host = "http", "example.com"
	}
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := d.router.FindRoute(r)
	if err != nil {
		t.Errorf("OpenAPI: %s %s is not in the document: %v", req.Method, req.URL.Path, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: openAPIOptions}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && status < 400 {
		t.Errorf("OpenAPI: the document refuses %s %s, the server answered %d: %v", req.Method, req.URL.Path, status, err)
	}
	if header.Get("Content-Encoding") == "gzip" { // compression is the transport's, not the document's
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Errorf("OpenAPI: %s %s: a gzip answer that does not decode: %v", req.Method, req.URL.Path, err)
			return
		}
		if body, err = io.ReadAll(io.LimitReader(zr, 64<<20)); err != nil {
			t.Errorf("OpenAPI: %s %s: a gzip answer that does not decode: %v", req.Method, req.URL.Path, err)
			return
		}
		header = header.Clone()
		header.Del("Content-Encoding")
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: openAPIOptions}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("OpenAPI: answer to %s %s (%d) does not match the document: %v\n%.300s", req.Method, req.URL.Path, status, err, body)
	}
}

// The document is a valid OpenAPI 3.1 document; it describes every JSON
// route the app has, each service's payload with an example the service
// accepts, the problem shape and the security schemes.
func TestOpenAPIDocument(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	d := loadOpenAPI(t, e.app)
	if d.doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", d.doc.OpenAPI)
	}
	for _, want := range []string{"/api/v1/services", "/api/v1/services/{id}", "/api/v1/services/{id}/submissions",
		"/api/v1/submissions/{id}", "/api/v1/submissions/{id}/status", "/api/v1/me", "/api/v1/openapi.json",
		"/api/v1/services/street-fault/submissions", "/api/v1/services/building-permit/submissions"} {
		if d.doc.Paths.Find(want) == nil {
			t.Errorf("no path %s", want)
		}
	}
	for _, s := range []string{"session", "csrfHeader", "bearerAssertion", "callbackSignature"} {
		if d.doc.Components.SecuritySchemes[s] == nil {
			t.Errorf("no security scheme %s", s)
		}
	}
	if p := d.doc.Components.Schemas["Problem"]; p == nil || p.Value.Properties["errors"] == nil {
		t.Fatal("no Problem schema with errors")
	}
	// Each service's example is accepted by the service (202) and by the
	// document (checked in e.do).
	for path, item := range d.doc.Paths.Map() {
		if !strings.HasPrefix(path, "/api/v1/services/") || !strings.HasSuffix(path, "/submissions") || strings.Contains(path, "{") {
			continue
		}
		mt := item.Post.RequestBody.Value.Content.Get("application/json")
		if mt == nil || mt.Schema == nil {
			t.Errorf("%s: no schema", path)
			continue
		}
		if mt.Schema.Value.AdditionalProperties.Has == nil || *mt.Schema.Value.AdditionalProperties.Has {
			t.Errorf("%s: the payload schema allows any member", path)
		}
		if mt.Example == nil {
			patterned := false
			for _, r := range mt.Schema.Value.Required {
				patterned = patterned || mt.Schema.Value.Properties[r].Value.Pattern != ""
			}
			if !patterned {
				t.Errorf("%s: no example", path)
			}
			continue
		}
		b, _ := json.Marshal(mt.Example)
		r := e.postJSON(t, path, string(b))
		svc := strings.TrimSuffix(strings.TrimPrefix(path, "/api/v1/services/"), "/submissions")
		if r.status != 202 && r.status != 401 && r.status != 403 { // signed-in services and channels without api refuse
			t.Errorf("%s example: %d %s", svc, r.status, r.body)
		}
	}
}

// A route under /api/v1 without a description stops the server from being
// built, so the document cannot miss it.
func TestOpenAPIUndescribedRouteFails(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	if err := httpapi.CheckAPIDocs(e.app); err != nil {
		t.Fatalf("the routes as registered: %v", err)
	}
	e.app.Get("/api/v1/undescribed", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{}) })
	if err := httpapi.CheckAPIDocs(e.app); err == nil || !strings.Contains(err.Error(), "GET /api/v1/undescribed") {
		t.Fatalf("an undescribed route: %v", err)
	}
}

// The hook itself fails on what the document does not allow.
func TestOpenAPICheckCatchesMismatches(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	cases := []struct {
		name   string
		req    *http.Request
		status int
		header http.Header
		body   string
	}{
		{"route missing", httptest.NewRequest("GET", "/api/v1/nowhere", nil), 200, http.Header{"Content-Type": {"application/json"}}, `{}`},
		{"answer of the wrong shape", httptest.NewRequest("GET", "/api/v1/services", nil), 200, http.Header{"Content-Type": {"application/json"}}, `{"services":[{"id":1}]}`},
		{"undocumented status", httptest.NewRequest("GET", "/api/v1/services", nil), 201, http.Header{"Content-Type": {"application/json"}}, `{"services":[]}`},
		{"problem without status", httptest.NewRequest("GET", "/api/v1/services/x", nil), 404, http.Header{"Content-Type": {"application/problem+json"}}, `{"type":"about:blank","title":"x"}`},
		{"invalid payload accepted", func() *http.Request {
			r := httptest.NewRequest("POST", "/api/v1/services/street-fault/submissions", nil)
			r.Header.Set("Content-Type", "application/json")
			return r
		}(), 202, http.Header{"Content-Type": {"application/json"}}, `{"id":"a","reference":"b","status":"received","status_url":"c","receipt_url":"d"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ft := &fakeT{TB: t}
			reqBody := []byte(`{"kind":"volcano"}`)
			openAPICheck(ft, e.app, tc.req, reqBody, tc.status, tc.header, []byte(tc.body))
			if !ft.failed {
				t.Fatal("the check let it pass")
			}
		})
	}
}

// fakeT records a failure instead of failing the test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Helper()               {}
