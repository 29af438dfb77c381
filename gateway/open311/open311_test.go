package open311_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/gateway/open311"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"
	_ "github.com/kommun/servicegateway/services/connectors/email"
	_ "github.com/kommun/servicegateway/services/connectors/httpjson"
	_ "github.com/kommun/servicegateway/services/connectors/proxy"
)

const apiKey = "test-key-0123456789"

// bulky is a service made in Go for what the shipped manifests lack: a
// multi-valued attribute. It shares street-fault's department.
var bulky = &gateway.Service{
	ID: "bulky-waste", Version: "1.0.0", Department: "streets-parks", Category: "streets-traffic",
	Channels: []gateway.Channel{gateway.ChannelAPI}, Retention: 24 * time.Hour,
	Fields: []gateway.Field{
		{Name: "items", Type: gateway.FieldMultiSelect, Required: true, Options: []string{"sofa", "fridge", "bed"}},
		{Name: "count", Type: gateway.FieldNumber},
		{Name: "where", Type: gateway.FieldText, Required: true, MaxLength: 200},
	},
	Open311: &gateway.Open311{ServiceCode: "bulky", LocationField: "where"},
}

// secret is a service of the same department that Open311 does not
// publish: its requests must never show there.
var secret = &gateway.Service{
	ID: "secret-permit", Version: "1.0.0", Department: "streets-parks", Category: "streets-traffic",
	Channels: []gateway.Channel{gateway.ChannelAPI}, Retention: 24 * time.Hour,
	Fields: []gateway.Field{{Name: "note", Type: gateway.FieldText, Required: true}},
}

type env struct {
	app   *fiber.App
	store *redisstore.Store
	in    *intake.Intake
}

// newEnv serves the real HTTP layer (routes.go) with the Open311 facade on
// a real redis-server; now is Open311's clock (nil: the real one).
func newEnv(t *testing.T, now func() time.Time) *env {
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
	quiet := slog.New(slog.DiscardHandler)
	in, err := intake.New(intake.Deps{Store: store, Locker: store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	h, err := open311.New(open311.Deps{
		Services: append(cat.All(), bulky, secret), Intake: in, Store: store,
		Localizer: func(c ...string) (open311.Localizer, string) {
			tag, _ := locales.Match(c...)
			return tr.Localizer(tag), tag.String()
		},
		Config: open311.Config{Jurisdiction: "kommun.example", Keys: map[string]string{apiKey: "fixa-app"}, Now: now},
	})
	if err != nil {
		t.Fatal(err)
	}
	app, err := httpapi.NewServer(httpapi.Deps{Catalog: cat, Intake: in, Store: store, Translations: tr, Logger: quiet,
		Ready: store.Ping, Open311: h})
	if err != nil {
		t.Fatal(err)
	}
	return &env{app: app, store: store, in: in}
}

type resp struct {
	status int
	ctype  string
	body   string
}

func (e *env) do(t *testing.T, req *http.Request) resp {
	t.Helper()
	res, err := e.app.Test(req, 10000)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header.Get("Content-Type"), string(b)}
}

func (e *env) get(t *testing.T, path string) resp {
	t.Helper()
	return e.do(t, httptest.NewRequest("GET", "/open311/v2"+path, nil))
}

func (e *env) post(t *testing.T, path string, v url.Values) resp {
	t.Helper()
	req := httptest.NewRequest("POST", "/open311/v2"+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return e.do(t, req)
}

// decode checks the content type of the format and decodes the body.
func decode(t *testing.T, r resp, format string, v any) {
	t.Helper()
	if format == "json" {
		if r.ctype != open311.ContentJSON {
			t.Fatalf("content type %q, want %q", r.ctype, open311.ContentJSON)
		}
		if err := json.Unmarshal([]byte(r.body), v); err != nil {
			t.Fatalf("json: %v\n%s", err, r.body)
		}
		return
	}
	if r.ctype != open311.ContentXML {
		t.Fatalf("content type %q, want %q", r.ctype, open311.ContentXML)
	}
	if !strings.HasPrefix(r.body, `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Fatalf("no XML declaration: %.80s", r.body)
	}
	if err := xml.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("xml: %v\n%s", err, r.body)
	}
}

// The list shapes, readable from both formats.
type errorsDoc struct {
	XMLName xml.Name `xml:"errors"`
	Errors  []struct {
		Code        int    `json:"code" xml:"code"`
		Description string `json:"description" xml:"description"`
	} `xml:"error"`
}

func (d *errorsDoc) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &d.Errors) }

type service struct {
	Code     string `json:"service_code" xml:"service_code"`
	Name     string `json:"service_name" xml:"service_name"`
	Metadata bool   `json:"metadata" xml:"metadata"`
	Type     string `json:"type" xml:"type"`
	Keywords string `json:"keywords" xml:"keywords"`
	Group    string `json:"group" xml:"group"`
}

type servicesDoc struct {
	XMLName  xml.Name  `xml:"services"`
	Services []service `xml:"service"`
}

func (d *servicesDoc) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &d.Services) }

type request struct {
	ID          string   `json:"service_request_id" xml:"service_request_id"`
	Token       string   `json:"token" xml:"token"`
	Status      string   `json:"status" xml:"status"`
	StatusNotes string   `json:"status_notes" xml:"status_notes"`
	ServiceCode string   `json:"service_code" xml:"service_code"`
	Description string   `json:"description" xml:"description"`
	Agency      string   `json:"agency_responsible" xml:"agency_responsible"`
	Requested   string   `json:"requested_datetime" xml:"requested_datetime"`
	Updated     string   `json:"updated_datetime" xml:"updated_datetime"`
	Address     string   `json:"address" xml:"address"`
	Lat         *float64 `json:"lat" xml:"lat"`
	Long        *float64 `json:"long" xml:"long"`
}

type requestsDoc struct {
	XMLName  xml.Name  `xml:"service_requests"`
	Requests []request `xml:"request"`
}

func (d *requestsDoc) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &d.Requests) }

var formats = []string{"json", "xml"}

// wantError checks an error answer: the status, and the same code in the
// spec's error list, in the format asked for.
func wantError(t *testing.T, r resp, format string, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var d errorsDoc
	decode(t, r, format, &d)
	if len(d.Errors) == 0 || d.Errors[0].Code != status || d.Errors[0].Description == "" {
		t.Fatalf("errors %+v, want code %d with a description", d.Errors, status)
	}
}

func streetFault(extra ...string) url.Values {
	v := url.Values{"api_key": {apiKey}, "service_code": {"street-fault"}, "attribute[kind]": {"pothole"},
		"description": {"A deep hole by the bus stop"}, "lat": {"59.858600"}, "long": {"17.638900"},
		"email": {"resident@example.se"}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			v.Del(extra[i])
		} else {
			v.Set(extra[i], extra[i+1])
		}
	}
	return v
}

func TestDiscoveryAndServicesInBothFormats(t *testing.T) {
	e := newEnv(t, nil)
	for _, f := range formats {
		t.Run(f, func(t *testing.T) {
			r := e.get(t, "/discovery."+f)
			if r.status != 200 || !strings.Contains(r.body, open311.Specification) || !strings.Contains(r.body, "application/json") {
				t.Fatalf("discovery: %d %s", r.status, r.body)
			}
			var d struct {
				XMLName   xml.Name `xml:"discovery"`
				Changeset string   `json:"changeset" xml:"changeset"`
				Endpoints []struct {
					URL     string   `json:"url" xml:"url"`
					Formats []string `json:"formats" xml:"formats>format"`
				} `json:"endpoints" xml:"endpoints>endpoint"`
			}
			decode(t, r, f, &d)
			if len(d.Endpoints) != 1 || !strings.HasSuffix(d.Endpoints[0].URL, "/open311/v2") || len(d.Endpoints[0].Formats) != 2 {
				t.Fatalf("endpoints: %+v", d.Endpoints)
			}
			if _, err := time.Parse(time.RFC3339, d.Changeset); err != nil {
				t.Fatalf("changeset %q: %v", d.Changeset, err)
			}

			r = e.get(t, "/services."+f)
			var s servicesDoc
			decode(t, r, f, &s)
			codes := map[string]service{}
			for _, x := range s.Services {
				codes[x.Code] = x
			}
			sf, ok := codes["street-fault"]
			if !ok || len(codes) != 2 || codes["bulky"].Code == "" {
				t.Fatalf("services %+v, want street-fault and bulky only", s.Services)
			}
			if sf.Name != "Felanmälan gata, park och lekplats" || !sf.Metadata || sf.Type != "realtime" || !strings.Contains(sf.Keywords, "pothole") || sf.Group == "" {
				t.Fatalf("street-fault: %+v", sf)
			}
			// English on request.
			r = e.do(t, func() *http.Request {
				req := httptest.NewRequest("GET", "/open311/v2/services."+f, nil)
				req.Header.Set("Accept-Language", "en")
				return req
			}())
			if !strings.Contains(r.body, "Report a fault in a street, park or playground") {
				t.Fatalf("no English title: %s", r.body)
			}
			// jurisdiction_id: empty and ours are fine, another is 404.
			if r := e.get(t, "/services."+f+"?jurisdiction_id="); r.status != 200 {
				t.Fatalf("empty jurisdiction_id: %d", r.status)
			}
			if r := e.get(t, "/services."+f+"?jurisdiction_id=kommun.example"); r.status != 200 {
				t.Fatalf("our jurisdiction_id: %d", r.status)
			}
			wantError(t, e.get(t, "/services."+f+"?jurisdiction_id=elsewhere.example"), f, 404)
			wantError(t, e.get(t, "/no-such-thing."+f), f, 404)
		})
	}
	// An unknown format is 404, answered in XML (the spec's required one).
	wantError(t, e.get(t, "/services.csv"), "xml", 404)
}

func TestServiceDefinition(t *testing.T) {
	e := newEnv(t, nil)
	type attr struct {
		Variable bool   `json:"variable" xml:"variable"`
		Code     string `json:"code" xml:"code"`
		Datatype string `json:"datatype" xml:"datatype"`
		Required bool   `json:"required" xml:"required"`
		Order    int    `json:"order" xml:"order"`
		Desc     string `json:"description" xml:"description"`
		Values   []struct {
			Key  string `json:"key" xml:"key"`
			Name string `json:"name" xml:"name"`
		} `json:"values" xml:"values>value"`
	}
	type def struct {
		XMLName    xml.Name `xml:"service_definition"`
		Code       string   `json:"service_code" xml:"service_code"`
		Attributes []attr   `json:"attributes" xml:"attributes>attribute"`
	}
	for _, f := range formats {
		t.Run(f, func(t *testing.T) {
			var d def
			decode(t, e.get(t, "/services/street-fault."+f), f, &d)
			// description, location and email are standard arguments;
			// only kind is an attribute.
			if d.Code != "street-fault" || len(d.Attributes) != 1 {
				t.Fatalf("definition: %+v", d)
			}
			a := d.Attributes[0]
			if a.Code != "kind" || a.Datatype != "singlevaluelist" || !a.Required || !a.Variable || a.Order != 1 || a.Desc != "Vad gäller det?" || len(a.Values) != 7 || a.Values[0].Key != "pothole" || a.Values[0].Name == "" {
				t.Fatalf("kind: %+v", a)
			}
			var b def
			decode(t, e.get(t, "/services/bulky."+f), f, &b)
			types := map[string]string{}
			for _, a := range b.Attributes {
				types[a.Code] = a.Datatype
			}
			if len(types) != 2 || types["items"] != "multivaluelist" || types["count"] != "number" {
				t.Fatalf("bulky: %+v", b)
			}
			wantError(t, e.get(t, "/services/no-such."+f), f, 404)
			wantError(t, e.get(t, "/services/secret-permit."+f), f, 404) // not published
		})
	}
}

func TestPostRequestsAndReadBack(t *testing.T) {
	e := newEnv(t, nil)
	for _, f := range formats {
		t.Run(f, func(t *testing.T) {
			r := e.post(t, "/requests."+f, streetFault("jurisdiction_id", "kommun.example"))
			if r.status != 200 {
				t.Fatalf("post: %d %s", r.status, r.body)
			}
			var posted requestsDoc
			decode(t, r, f, &posted)
			if len(posted.Requests) != 1 || posted.Requests[0].ID == "" || posted.Requests[0].Token == "" {
				t.Fatalf("posted: %s", r.body)
			}
			id, token := posted.Requests[0].ID, posted.Requests[0].Token

			// It went through the intake: a submission of street-fault,
			// channel api, with the coordinates in the location field.
			sub, err := e.store.Get(context.Background(), token)
			if err != nil {
				t.Fatal(err)
			}
			if sub.Service != "street-fault" || sub.Channel != gateway.ChannelAPI || sub.Reference != id ||
				!reflect.DeepEqual(sub.Payload["location"], map[string]any{"lat": 59.8586, "lon": 17.6389}) || sub.Payload["email"] != "resident@example.se" || sub.Payload["kind"] != "pothole" {
				t.Fatalf("submission: %+v", sub)
			}

			var got requestsDoc
			r = e.get(t, "/requests/"+id+"."+f)
			decode(t, r, f, &got)
			if len(got.Requests) != 1 {
				t.Fatalf("get: %s", r.body)
			}
			g := got.Requests[0]
			if g.ID != id || g.Status != "open" || g.ServiceCode != "street-fault" || g.Description != "A deep hole by the bus stop" ||
				g.Lat == nil || *g.Lat != 59.8586 || g.Long == nil || *g.Long != 17.6389 || g.Address != "" || g.Agency == "" {
				t.Fatalf("request: %+v", g)
			}
			for _, dt := range []string{g.Requested, g.Updated} {
				if _, err := time.Parse(time.RFC3339, dt); err != nil || !(strings.HasSuffix(dt, "+01:00") || strings.HasSuffix(dt, "+02:00")) {
					t.Fatalf("datetime %q is not W3C with the zone's offset", dt)
				}
			}
			if strings.Contains(r.body, "resident@example.se") {
				t.Fatal("the e-mail address is shown")
			}

			// Token and id are not interchangeable.
			var tok requestsDoc
			decode(t, e.get(t, "/tokens/"+token+"."+f), f, &tok)
			if len(tok.Requests) != 1 || tok.Requests[0].ID != id || tok.Requests[0].Token != token {
				t.Fatalf("token: %+v", tok)
			}
			wantError(t, e.get(t, "/requests/"+token+"."+f), f, 404)
			wantError(t, e.get(t, "/tokens/"+id+"."+f), f, 404)
			wantError(t, e.get(t, "/requests/2026-AAAA-AAAA."+f), f, 404)
		})
	}

	t.Run("address and coordinates", func(t *testing.T) {
		addr, desc := "Drottninggatan 1 <hörnet> & Kungsgatan", `Ett "djupt" hål & en trasig </description> kant`
		r := e.post(t, "/requests.json", streetFault("address_string", addr, "description", desc))
		var p requestsDoc
		decode(t, r, "json", &p)
		for _, f := range formats {
			var got requestsDoc
			decode(t, e.get(t, "/requests/"+p.Requests[0].ID+"."+f), f, &got)
			if g := got.Requests[0]; g.Address != addr || g.Description != desc || g.Lat == nil || *g.Lat != 59.8586 || g.Long == nil || *g.Long != 17.6389 {
				t.Fatalf("%s request: %+v", f, g)
			}
		}
	})
	t.Run("address only, empty optional arguments", func(t *testing.T) {
		r := e.post(t, "/requests.json", streetFault("lat", "", "long", "", "email", "", "address_string", "Storgatan 5", "jurisdiction_id", "", "device_id", "", "account_id", ""))
		var p requestsDoc
		decode(t, r, "json", &p)
		sub, err := e.store.Get(context.Background(), p.Requests[0].Token)
		if err != nil || !reflect.DeepEqual(sub.Payload["location"], map[string]any{"address": "Storgatan 5"}) || sub.Payload["email"] != nil {
			t.Fatalf("%v %+v", err, sub)
		}
	})
	t.Run("bracketed multi-valued attribute", func(t *testing.T) {
		v := url.Values{"api_key": {apiKey}, "service_code": {"bulky"}, "attribute[items][]": {"sofa", "bed"},
			"attribute[count]": {"2"}, "address_string": {"Storgatan 5"}}
		r := e.post(t, "/requests.xml", v)
		var p requestsDoc
		decode(t, r, "xml", &p)
		if len(p.Requests) != 1 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		sub, err := e.store.Get(context.Background(), p.Requests[0].Token)
		if err != nil {
			t.Fatal(err)
		}
		items, _ := sub.Payload["items"].([]any)
		if len(items) != 2 || items[0] != "sofa" || items[1] != "bed" || sub.Payload["where"] != "Storgatan 5" {
			t.Fatalf("payload %+v", sub.Payload)
		}
	})
}

func TestPostRequestsErrors(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name   string
		v      url.Values
		status int
	}{
		{"no api_key", streetFault("api_key", ""), 403},
		{"wrong api_key", streetFault("api_key", "not-a-key-at-all"), 403},
		{"other jurisdiction", streetFault("jurisdiction_id", "elsewhere.example"), 404},
		{"no service_code", streetFault("service_code", ""), 400},
		{"unknown service_code", streetFault("service_code", "no-such"), 404},
		{"unpublished service", streetFault("service_code", "secret-permit"), 404},
		{"no location", streetFault("lat", "", "long", ""), 400},
		{"lat without long", streetFault("long", ""), 400},
		{"lat out of range", streetFault("lat", "91"), 400},
		{"long out of range", streetFault("long", "-180.5"), 400},
		{"lat not a number", streetFault("lat", "north"), 400},
		{"outside the municipality", streetFault("lat", "59.329300", "long", "18.068600"), 400},
		{"unknown attribute", streetFault("attribute[colour]", "red"), 400},
		{"a standard argument as attribute", streetFault("attribute[email]", "x@example.se"), 400},
		{"invalid attribute value", streetFault("attribute[kind]", "volcano"), 400},
		{"required attribute missing", streetFault("attribute[kind]", ""), 400},
		{"description too short", streetFault("description", "hole"), 400},
		{"invalid e-mail", streetFault("email", "not-an-address"), 400},
	}
	for _, f := range formats {
		for _, tc := range cases {
			t.Run(f+"/"+tc.name, func(t *testing.T) {
				wantError(t, e.post(t, "/requests."+f, tc.v), f, tc.status)
			})
		}
		t.Run(f+"/not form-encoded", func(t *testing.T) {
			req := httptest.NewRequest("POST", "/open311/v2/requests."+f, strings.NewReader(`{"service_code":"street-fault"}`))
			req.Header.Set("Content-Type", "application/json")
			wantError(t, e.do(t, req), f, 400)
		})
	}
	// Field errors name the field.
	r := e.post(t, "/requests.json", streetFault("description", "hole"))
	if !strings.Contains(r.body, "description: ") {
		t.Fatalf("field error does not name the field: %s", r.body)
	}
	// Nothing above was stored.
	list, err := e.store.DepartmentSubmissionsBetween(context.Background(), "streets-parks", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), 0, 100)
	if err != nil || len(list) != 0 {
		t.Fatalf("stored %d submissions (%v), want none", len(list), err)
	}
}

// GET requests: filters, the 90-day window, the limits, and only published
// services.
func TestGetRequestsFilters(t *testing.T) {
	var clock time.Time // Open311's clock; zero: now
	e := newEnv(t, func() time.Time {
		if clock.IsZero() {
			return time.Now()
		}
		return clock
	})
	post := func(v url.Values) request {
		t.Helper()
		r := e.post(t, "/requests.json", v)
		var p requestsDoc
		decode(t, r, "json", &p)
		if len(p.Requests) != 1 {
			t.Fatalf("post: %d %s", r.status, r.body)
		}
		return p.Requests[0]
	}
	a := post(streetFault())
	b := post(streetFault("attribute[kind]", "graffiti"))
	c := post(url.Values{"api_key": {apiKey}, "service_code": {"bulky"}, "attribute[items]": {"sofa"}, "address_string": {"Storgatan 5"}})
	// A submission of an unpublished service of the same department.
	res, err := e.in.Submit(context.Background(), intake.Request{Service: secret, Channel: gateway.ChannelAPI, Values: map[string][]string{"note": {"private"}}})
	if err != nil {
		t.Fatal(err)
	}
	hidden := res.Submission.Reference
	// The department closes b with a message to the resident.
	if _, err := e.store.UpdateStatus(context.Background(), b.Token, gateway.StatusChange{Status: gateway.StatusClosed, At: time.Now().Add(time.Second), Message: "Klottret är borttaget."}, "CASE-1"); err != nil {
		t.Fatal(err)
	}

	ids := func(path string) []string {
		t.Helper()
		r := e.get(t, path)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		var d requestsDoc
		decode(t, r, "json", &d)
		var out []string
		for _, x := range d.Requests {
			out = append(out, x.ID)
			if x.ID == b.ID && (x.Status != "closed" || x.StatusNotes != "Klottret är borttaget.") {
				t.Fatalf("closed request: %+v", x)
			}
		}
		return out
	}
	same := func(got []string, want ...string) bool {
		if len(got) != len(want) {
			return false
		}
		seen := map[string]bool{}
		for _, g := range got {
			seen[g] = true
		}
		for _, w := range want {
			if !seen[w] {
				return false
			}
		}
		return true
	}
	now := time.Now()
	day := func(d int) string {
		return url.QueryEscape(now.Add(time.Duration(d) * 24 * time.Hour).Format(time.RFC3339))
	}
	cases := []struct {
		name, path string
		want       []string
	}{
		{"default: the last 90 days, newest first", "/requests.json", []string{c.ID, b.ID, a.ID}},
		{"empty optional arguments", "/requests.json?service_code=&status=&start_date=&end_date=&jurisdiction_id=", []string{c.ID, b.ID, a.ID}},
		{"by service_code", "/requests.json?service_code=street-fault", []string{b.ID, a.ID}},
		{"several service_codes", "/requests.json?service_code=street-fault,bulky", []string{c.ID, b.ID, a.ID}},
		{"open", "/requests.json?status=open", []string{c.ID, a.ID}},
		{"closed", "/requests.json?status=closed", []string{b.ID}},
		{"open,closed", "/requests.json?status=open,closed", []string{c.ID, b.ID, a.ID}},
		{"ids override the other arguments", "/requests.json?service_request_id=" + a.ID + "," + b.ID + "&status=closed&service_code=bulky", []string{a.ID, b.ID}},
		{"an unpublished id is not found", "/requests.json?service_request_id=" + hidden + "," + c.ID, []string{c.ID}},
		{"start and end around now", "/requests.json?start_date=" + day(-1) + "&end_date=" + day(1), []string{c.ID, b.ID, a.ID}},
		{"start only: 90 days from it", "/requests.json?start_date=" + day(-89), []string{c.ID, b.ID, a.ID}},
		{"start only, too early", "/requests.json?start_date=" + day(-100), nil},
		{"end only: 90 days up to it", "/requests.json?end_date=" + day(89), []string{c.ID, b.ID, a.ID}},
		{"end only, too late", "/requests.json?end_date=" + day(100), nil},
		{"exactly 90 days", "/requests.json?start_date=" + day(-45) + "&end_date=" + day(45), []string{c.ID, b.ID, a.ID}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(tc.path)
			if !same(got, tc.want...) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if tc.name == "default: the last 90 days, newest first" && (len(got) != 3 || got[0] != c.ID || got[2] != a.ID) {
				t.Fatalf("order %v", got)
			}
		})
	}
	t.Run("the default window moves with the clock", func(t *testing.T) {
		clock = now.Add(91 * 24 * time.Hour)
		defer func() { clock = time.Time{} }()
		if got := ids("/requests.json"); len(got) != 0 {
			t.Fatalf("91 days later the default window shows %v", got)
		}
		if got := ids("/requests.json?start_date=" + day(-1)); len(got) != 3 {
			t.Fatalf("an explicit start_date still finds them: %v", got)
		}
	})
	for _, f := range formats {
		bad := []struct {
			path   string
			status int
		}{
			{"/requests." + f + "?start_date=" + day(-50) + "&end_date=" + day(41), 400}, // 91 days
			{"/requests." + f + "?start_date=" + day(1) + "&end_date=" + day(-1), 400},   // backwards
			{"/requests." + f + "?start_date=2026-01-01T00:00:00", 400},                  // no zone
			{"/requests." + f + "?end_date=yesterday", 400},
			{"/requests." + f + "?status=pending", 400},
			{"/requests." + f + "?service_code=no-such", 404},
			{"/requests." + f + "?jurisdiction_id=elsewhere.example", 404},
			{"/requests." + f + "?service_request_id=" + strings.Repeat("x,", open311.MaxIDs+1), 400},
		}
		for _, tc := range bad {
			t.Run(tc.path, func(t *testing.T) { wantError(t, e.get(t, tc.path), f, tc.status) })
		}
	}
	// XML lists the same requests.
	var x requestsDoc
	decode(t, e.get(t, "/requests.xml?status=closed"), "xml", &x)
	if len(x.Requests) != 1 || x.Requests[0].ID != b.ID || x.Requests[0].StatusNotes != "Klottret är borttaget." {
		t.Fatalf("xml: %+v", x)
	}
}

func TestStatusMapping(t *testing.T) {
	want := map[gateway.Status]string{
		gateway.StatusReceived: "open", gateway.StatusDelivered: "open", gateway.StatusInProgress: "open",
		gateway.StatusNeedsInfo: "open", gateway.StatusDecided: "closed", gateway.StatusClosed: "closed", gateway.StatusFailed: "closed",
	}
	for _, s := range gateway.Statuses {
		if got := open311.Status(s); got != want[s] {
			t.Errorf("%s: %s, want %s", s, got, want[s])
		}
	}
}
