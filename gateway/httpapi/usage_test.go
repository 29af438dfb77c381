package httpapi_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/gateway/usage"
)

// Personas for the test-only authentication: the header X-Test-Principal
// names one. (The real identity work signs in through the development
// identity provider; cmd/gateway has a real-process test through it.)
var testPersonas = map[string]*gateway.Principal{
	"staff":    {Subject: "staff-1", Name: "Sara", Roles: []gateway.Role{gateway.RoleStaff}, Assurance: gateway.AssuranceSubstantial},
	"admin":    {Subject: "admin-1", Name: "Adam", Roles: []gateway.Role{gateway.RoleAdmin}, Assurance: gateway.AssuranceSubstantial},
	"resident": {Subject: "resident-1", Name: "Anna", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceLow},
}

func testAuthenticate() fiber.Handler {
	return httpapi.AuthenticateForTests(testPersonas)
}

type usageEnv struct {
	*env
	srv *redistest.Server
	rec *usage.Recorder
	rd  *usage.Reader
}

func newUsageEnv(t *testing.T, ucfg usage.Config, minCount int) *usageEnv {
	t.Helper()
	deps, store, srv := baseDeps(t)
	if ucfg.Logger == nil {
		ucfg.Logger = quiet
	}
	rec := usage.New(store, ucfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec.Start(ctx)
	t.Cleanup(func() { _ = rec.Stop(context.Background()) })
	rd := usage.NewReader(store, ucfg)
	deps.Authenticate, deps.Usage, deps.UsageReports = testAuthenticate(), rec, rd
	deps.Config = httpapi.Config{OpenDataMinCount: minCount, PublicURL: "https://e-tjanster.example.se"}
	return &usageEnv{env: &env{app: build(t, deps), store: store}, srv: srv, rec: rec, rd: rd}
}

// flush stops the recorder, which writes everything tracked so far: the
// test reads the counts afterwards without waiting on a timer.
func (e *usageEnv) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.rec.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := e.rec.Stats(); st.Dropped != 0 || st.Lost != 0 {
		t.Fatalf("events dropped: %+v", st)
	}
}

// journey makes a fixed set of requests: the catalog, a form drawn, a
// failed and a good form post, a failed and a good API submission, the
// service described through the API; and registers two phone contacts.
func (e *usageEnv) journey(t *testing.T) {
	t.Helper()
	if r := e.get(t, "/"); r.status != 200 {
		t.Fatalf("catalog %d", r.status)
	}
	if r := e.do(t, httptest.NewRequest("HEAD", "/", nil)); r.status != 200 { // not a visit
		t.Fatalf("HEAD catalog %d", r.status)
	}
	// Three form pages drawn (three starts); the resident fills in the last.
	e.get(t, "/services/street-fault?lang=en")
	cookie, csrfTok, formTok := e.form(t, "/services/street-fault")
	r := e.get(t, "/services/street-fault")
	stamp := hidden(t, r.body, "_started")
	bad := url.Values{"_csrf": {csrfTok}, "_form": {formTok}, "_started": {stamp}, "kind": {"pothole"}, "description": {"kort"}}
	if r := e.postForm(t, "/services/street-fault", cookie, bad); r.status != 422 {
		t.Fatalf("bad form post %d", r.status)
	}
	good := url.Values{"_csrf": {csrfTok}, "_form": {formTok}, "_started": {stamp}, "kind": {"pothole"},
		"description": {"Ett djupt hål i cykelbanan"}, "location": {"Storgatan 1"}}
	if r := e.postForm(t, "/services/street-fault", cookie, good); r.status != 303 {
		t.Fatalf("form post %d %s", r.status, r.body)
	}
	// The same form again is an idempotent replay: not a second submission.
	if r := e.postForm(t, "/services/street-fault", cookie, good); r.status != 303 {
		t.Fatalf("form replay %d", r.status)
	}
	if r := e.postJSON(t, "/api/v1/services/street-fault/submissions", `{"kind":"pothole","descripton":"typo in the key"}`); r.status != 422 {
		t.Fatalf("bad api submit %d", r.status)
	}
	if r := e.postJSON(t, "/api/v1/services/street-fault/submissions", `{"kind":"pothole","description":"Djupt hål mitt i körbanan","location":"Vaksalagatan 3"}`); r.status != 202 {
		t.Fatalf("api submit %d", r.status)
	}
	if r := e.get(t, "/api/v1/services/street-fault"); r.status != 200 {
		t.Fatalf("api service %d", r.status)
	}
	for range 2 {
		if err := e.rec.RecordContact("street-fault", "streets-parks", gateway.ChannelPhone, "sv", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	e.flush(t)
}

func (e *usageEnv) report(t *testing.T, query string) usage.Report {
	t.Helper()
	r := e.get(t, "/api/v1/usage?"+query, "X-Test-Principal", "staff")
	if r.status != 200 {
		t.Fatalf("usage API %d: %s", r.status, r.body)
	}
	var rep usage.Report
	if err := json.Unmarshal([]byte(r.body), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestUsageFromRequests(t *testing.T) {
	e := newUsageEnv(t, usage.Config{FlushInterval: time.Hour}, 5)
	e.journey(t)
	rep := e.report(t, "service=street-fault")
	k := rep.Totals
	want := map[string][2]int64{
		"viewed (3 form pages + 1 API)": {k.Viewed, 4},
		"started (3 form pages)":        {k.Started, 3},
		"submitted (form + API)":        {k.Submitted, 2},
		"digital submissions":           {k.SubmittedBy[gateway.ChannelDigital], 1},
		"api submissions":               {k.SubmittedBy[gateway.ChannelAPI], 1},
		"phone contacts":                {k.ContactsBy[gateway.ChannelPhone], 2},
		"all contacts":                  {k.AllContacts, 4},
		"validation failures":           {k.ValidationFailed, 4}, // form and API: description, location (the typo key is not a field)
		"timed from start to submit":    {k.StartToSubmitMeasured, 1},
		"catalog views":                 {e.report(t, "").CatalogViews, 1},
	}
	for name, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s = %d, want %d", name, v[0], v[1])
		}
	}
	if k.DigitalTakeUp == nil || *k.DigitalTakeUp != 0.25 {
		t.Errorf("take-up %v, want 1/4", k.DigitalTakeUp)
	}
	fields := map[string]int64{}
	for _, f := range rep.DropOff {
		fields[f.Field] = f.Failures
	}
	if fields["description"] != 2 || fields["location"] != 2 || len(fields) != 2 {
		t.Errorf("drop-off %v", fields)
	}
	// The filters: another department has nothing.
	if rep := e.report(t, "department=education"); rep.Totals.AllContacts != 0 {
		t.Errorf("education: %+v", rep.Totals)
	}
	if r := e.get(t, "/api/v1/usage?granularity=year", "X-Test-Principal", "staff"); r.status != 422 {
		t.Errorf("bad granularity: %d", r.status)
	}
}

func TestUsageAccess(t *testing.T) {
	e := newUsageEnv(t, usage.Config{FlushInterval: time.Hour}, 5)
	e.journey(t)
	cases := []struct {
		persona, path string
		status        int
		contains      []string
	}{
		{"staff", "/dashboard", 200, []string{`role="img"`, `<title id="chart-trend-title">`, `<desc id="chart-trend-desc">`, `<table class="data">`, "Digital andel", "Fält där flest fastnar", "25,0 %"}},
		{"admin", "/dashboard?lang=en&granularity=week", 200, []string{`role="img"`, "Digital take-up", "25.0%"}},
		{"admin", "/dashboard?lang=fi", 200, []string{`<html lang="fi" dir="ltr">`, "Digitaalinen osuus", "25,0 %"}},
		{"admin", "/dashboard?lang=uk", 200, []string{"Цифрова частка", "25,0%"}},
		{"admin", "/dashboard?lang=ar", 200, []string{`<html lang="ar" dir="rtl">`, "النسبة الرقمية", "٢٥٫٠٪"}},
		{"resident", "/dashboard", 403, nil},
		{"", "/dashboard", 401, nil},
		{"resident", "/api/v1/usage", 403, nil},
		{"", "/api/v1/usage", 401, nil},
		{"admin", "/api/v1/usage", 200, nil},
	}
	for _, tc := range cases {
		t.Run(tc.persona+tc.path, func(t *testing.T) {
			r := e.get(t, tc.path, "X-Test-Principal", tc.persona)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d", r.status, tc.status)
			}
			for _, s := range tc.contains {
				if !strings.Contains(r.body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			if tc.status == 200 && strings.Contains(r.body, "<script") {
				t.Error("the dashboard needs no script")
			}
		})
	}
}

// The open datasets parse with encoding/csv and encoding/json, say the
// same, and agree with the exact figures of the API except where a count
// from 1 to 4 is suppressed.
func TestOpenDataAgrees(t *testing.T) {
	e := newUsageEnv(t, usage.Config{FlushInterval: time.Hour}, 3)
	e.journey(t)
	r := e.get(t, "/open-data/usage.csv")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("usage.csv %d %s", r.status, r.header.Get("Content-Type"))
	}
	if len(r.header.Values("Set-Cookie")) != 0 {
		t.Error("open data sets cookies")
	}
	recs, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	r = e.get(t, "/open-data/usage.json")
	var ds struct {
		MinCount int              `json:"suppression_min_count"`
		License  string           `json:"license"`
		Rows     []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal([]byte(r.body), &ds); err != nil {
		t.Fatal(err)
	}
	if ds.MinCount != 3 || ds.License != httpapi.CC0 {
		t.Fatalf("json head %+v", ds)
	}
	if len(recs) < 3 || len(recs)-1 != len(ds.Rows) {
		t.Fatalf("csv %d lines, json %d rows", len(recs), len(ds.Rows))
	}
	api := e.report(t, "granularity=day&from="+time.Now().AddDate(0, 0, -364).Format(time.DateOnly))
	exact := map[string]usage.Row{}
	for _, row := range api.Rows {
		exact[row.Period+"|"+row.Service+"|"+string(row.Channel)] = row
	}
	head := recs[0]
	suppressed, shown := 0, 0
	for i, rec := range recs[1:] {
		js := ds.Rows[i]
		key := rec[0] + "|" + rec[1] + "|" + rec[3]
		row, ok := exact[key]
		if !ok {
			t.Fatalf("open data row %s not in the API", key)
		}
		for j, col := range head {
			jv := js[col]
			if j < 4 {
				if jv != rec[j] {
					t.Errorf("%s %s: csv %q json %v", key, col, rec[j], jv)
				}
				continue
			}
			n := column(row, col)
			if rec[j] == "" {
				if jv != nil || n < 1 || n >= 3 {
					t.Errorf("%s %s: suppressed, json %v, exact %d", key, col, jv, n)
				}
				suppressed++
				continue
			}
			f, isNum := jv.(float64)
			if !isNum || rec[j] != strconv.FormatInt(n, 10) || int64(f) != n {
				t.Errorf("%s %s: csv %q json %v exact %d", key, col, rec[j], jv, n)
			}
			shown++
		}
	}
	if suppressed == 0 || shown == 0 {
		t.Fatalf("suppressed %d shown %d: the journey should give both", suppressed, shown)
	}
	// The catalog datasets.
	r = e.get(t, "/open-data/services.csv")
	srecs, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(srecs) < 8 || srecs[0][0] != "id" {
		t.Fatalf("services.csv: %v %d", err, len(srecs))
	}
	var svcs struct {
		Services []struct {
			ID    string            `json:"id"`
			Title map[string]string `json:"title"`
		} `json:"services"`
	}
	r = e.get(t, "/open-data/services.json")
	if err := json.Unmarshal([]byte(r.body), &svcs); err != nil || len(svcs.Services) != len(srecs)-1 {
		t.Fatalf("services.json: %v %d", err, len(svcs.Services))
	}
	for _, s := range svcs.Services {
		if s.Title["sv"] == "" || s.Title["en"] == "" || s.Title["sv"] == s.ID+".title" {
			t.Errorf("service %s titles %v", s.ID, s.Title)
		}
	}
	// The page explains it in both languages, and the footer links to it.
	for lang, text := range map[string]string{"sv": "Användning per dag", "en": "Usage per day"} {
		r = e.get(t, "/open-data/?lang="+lang)
		if r.status != 200 || !strings.Contains(r.body, text) || !strings.Contains(r.body, "CC0") || !strings.Contains(r.body, "usage.csv") {
			t.Errorf("open data page in %s: %d", lang, r.status)
		}
	}
	if r = e.get(t, "/"); !strings.Contains(r.body, `href="/open-data/"`) {
		t.Error("no open data link in the footer")
	}
}

func column(r usage.Row, col string) int64 {
	switch col {
	case "viewed":
		return r.Viewed
	case "started":
		return r.Started
	case "validation_failed":
		return r.ValidationFailed
	case "submitted":
		return r.Submitted
	case "contacts":
		return r.Contacts
	case "delivered":
		return r.Delivered
	case "dead_lettered":
		return r.DeadLettered
	}
	if n, ok := strings.CutPrefix(col, "satisfaction_"); ok { // satisfaction_1 ... _5
		if i, err := strconv.Atoi(n); err == nil && i >= 1 && i <= 5 {
			return r.Satisfaction[i-1]
		}
	}
	return -1
}

// The DCAT-AP document is JSON-LD: every term is a keyword or a compact
// IRI with a prefix from its @context; a catalog with datasets whose
// distributions point at the downloads, which answer.
func TestDCATCatalog(t *testing.T) {
	e := newUsageEnv(t, usage.Config{FlushInterval: time.Hour}, 5)
	r := e.get(t, "/open-data/catalog.jsonld")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/ld+json") {
		t.Fatalf("catalog %d %s", r.status, r.header.Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
		t.Fatal(err)
	}
	ctx, _ := doc["@context"].(map[string]any)
	for prefix, iri := range map[string]string{"dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/", "foaf": "http://xmlns.com/foaf/0.1/"} {
		if ctx[prefix] != iri {
			t.Errorf("@context %s = %v", prefix, ctx[prefix])
		}
	}
	checkTerms(t, doc, ctx, "$")
	if doc["@type"] != "dcat:Catalog" {
		t.Fatalf("@type %v", doc["@type"])
	}
	datasets, _ := doc["dcat:dataset"].([]any)
	if len(datasets) != 2 {
		t.Fatalf("datasets: %d", len(datasets))
	}
	base := "https://e-tjanster.example.se"
	urls := map[string]bool{}
	for _, d := range datasets {
		ds := d.(map[string]any)
		if ds["@type"] != "dcat:Dataset" || ds["dct:title"] == nil || ds["dct:description"] == nil {
			t.Errorf("dataset %v", ds["@id"])
		}
		if lic, _ := ds["dct:license"].(map[string]any); lic["@id"] != httpapi.CC0 {
			t.Errorf("dataset licence %v", ds["dct:license"])
		}
		dists, _ := ds["dcat:distribution"].([]any)
		for _, x := range dists {
			dist := x.(map[string]any)
			acc, _ := dist["dcat:accessURL"].(map[string]any)
			dl, _ := dist["dcat:downloadURL"].(map[string]any)
			u, _ := dl["@id"].(string)
			if dist["@type"] != "dcat:Distribution" || acc["@id"] != u || !strings.HasPrefix(u, base+"/open-data/") {
				t.Errorf("distribution %v", dist)
			}
			urls[u] = true
		}
	}
	for _, f := range []string{"usage.csv", "usage.json", "services.csv", "services.json"} {
		u := base + "/open-data/" + f
		if !urls[u] {
			t.Errorf("no distribution %s", u)
		}
		if r := e.get(t, strings.TrimPrefix(u, base)); r.status != 200 {
			t.Errorf("GET %s: %d", f, r.status)
		}
	}
}

// checkTerms walks a JSON-LD node: keys are keywords or compact IRIs whose
// prefix the context defines, and @id values are absolute IRIs.
func checkTerms(t *testing.T, v any, ctx map[string]any, path string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			switch {
			case k == "@context":
				continue
			case strings.HasPrefix(k, "@"):
				if k != "@id" && k != "@type" && k != "@value" && k != "@language" {
					t.Errorf("%s: unknown keyword %s", path, k)
				}
				if k == "@id" {
					if s, _ := val.(string); !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
						t.Errorf("%s: @id %v is not an absolute IRI", path, val)
					}
				}
			default:
				prefix, _, ok := strings.Cut(k, ":")
				if _, known := ctx[prefix]; !ok || !known {
					t.Errorf("%s: term %s has no prefix in @context", path, k)
				}
			}
			checkTerms(t, val, ctx, path+"."+k)
		}
	case []any:
		for i, e := range x {
			checkTerms(t, e, ctx, path+"["+strconv.Itoa(i)+"]")
		}
	}
}

// With Redis gone, pages still answer (the catalog is in memory) and the
// usage events are dropped and counted, never waited for.
func TestRedisOutageDropsUsage(t *testing.T) {
	e := newUsageEnv(t, usage.Config{FlushInterval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond}, 5)
	e.srv.Kill()
	for range 20 {
		if r := e.get(t, "/"); r.status != 200 || !strings.Contains(r.body, "Hitta en e-tjänst") {
			t.Fatalf("catalog during the outage: %d", r.status)
		}
	}
	if r := e.get(t, "/services/street-fault"); r.status != 200 {
		t.Fatalf("form page during the outage: %d", r.status)
	}
	deadline := time.Now().Add(20 * time.Second)
	for e.rec.Stats().Lost < 22 {
		if time.Now().After(deadline) {
			t.Fatalf("lost events not counted: %+v", e.rec.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := e.rec.Stats(); st.Flushed != 0 || st.FlushFails == 0 {
		t.Fatalf("stats %+v", st)
	}
	// And back: after a restart the counters are written again.
	e.srv.Restart()
	if r := e.get(t, "/"); r.status != 200 {
		t.Fatal(r.status)
	}
	deadline = time.Now().Add(20 * time.Second)
	for e.rec.Stats().Flushed == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nothing written after Redis came back: %+v", e.rec.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
