package httpapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/gateway/servicepoint"
	"github.com/kommun/servicegateway/gateway/usage"
	"github.com/kommun/servicegateway/services"
)

// Personas for the desk tests (test-only authentication, header
// X-Test-Principal). The real sign-in through the development identity
// provider is tested with real processes in cmd/gateway.
var deskPersonas = map[string]*gateway.Principal{
	"sara":     {Subject: "dev:sara", Name: "Sara Servicepunkt", Roles: []gateway.Role{gateway.RoleStaff}, Assurance: gateway.AssuranceSubstantial, ServicePoint: "sp-centrum"},
	"gustav":   {Subject: "dev:gustav", Name: "Gustav Gottsunda", Roles: []gateway.Role{gateway.RoleStaff}, Assurance: gateway.AssuranceSubstantial, ServicePoint: "sp-gottsunda"},
	"olle":     {Subject: "dev:olle", Name: "Olle utan punkt", Roles: []gateway.Role{gateway.RoleStaff}, Assurance: gateway.AssuranceSubstantial},
	"lowstaff": {Subject: "dev:low", Name: "Låg Nivå", Roles: []gateway.Role{gateway.RoleStaff}, Assurance: gateway.AssuranceLow, ServicePoint: "sp-centrum"},
	"bertil":   {Subject: "se-pnr:199001013011", Personnummer: "199001013011", Name: "Bertil Berg", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceSubstantial},
	"anna":     {Subject: "se-pnr:198507092388", Personnummer: "198507092388", Name: "Anna Andersson", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceLow},
	"admin":    {Subject: "dev:admin", Name: "Adam", Roles: []gateway.Role{gateway.RoleAdmin}, Assurance: gateway.AssuranceSubstantial},
	"machine":  {Subject: "social-care-system", Name: "social-care-system", Roles: []gateway.Role{gateway.RoleDepartment}, Department: "social-care", Machine: true},
}

type deskEnv struct {
	*env
	srv     *redistest.Server
	rec     *usage.Recorder
	catalog *services.Catalog
}

func newDeskEnv(t *testing.T) *deskEnv {
	t.Helper()
	deps, store, srv := baseDeps(t)
	rec := usage.New(store, usage.Config{FlushInterval: time.Hour, Logger: quiet})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec.Start(ctx)
	t.Cleanup(func() { _ = rec.Stop(context.Background()) })
	deps.Authenticate = httpapi.AuthenticateForTests(deskPersonas)
	deps.Usage, deps.UsageReports = rec, usage.NewReader(store, usage.Config{})
	deps.ServicePoints = servicepoint.Default()
	deps.Config = httpapi.Config{PublicURL: "https://e-tjanster.example.se"}
	return &deskEnv{env: &env{app: build(t, deps), store: store}, srv: srv, rec: rec, catalog: deps.Catalog}
}

const (
	bertilPnr    = "199001013011"
	bertilMasked = "19900101-****"
	homeCareBody = `"applying_for":"self","personnummer":"19900101-3011","help_types":["shopping"],"living_situation":"alone","needs":"Jag behöver hjälp med inköp och städning varje vecka","phone":"018-727 00 00","consent":true`
)

func onBehalf(check string, extra string) string {
	return `{` + homeCareBody + `,"on_behalf_of":{"personnummer":"19900101-3011","identity_check":"` + check + `","consent":true` + extra + `}}`
}

func (e *deskEnv) audit(t *testing.T) []servicepoint.AuditEntry {
	t.Helper()
	entries, _, err := e.store.Audit(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// auditRaw is every field of every entry in the audit stream, as stored.
func (e *deskEnv) auditRaw(t *testing.T) string {
	t.Helper()
	c := e.srv.Client(t)
	msgs, err := c.XRange(context.Background(), "test:{q}:audit", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var vals []map[string]any
	for _, m := range msgs {
		vals = append(vals, m.Values)
	}
	b, _ := json.Marshal(vals)
	return string(b)
}

func TestDeskFileOnBehalfAPI(t *testing.T) {
	e := newDeskEnv(t)
	r := e.postJSON(t, "/api/v1/services/home-care/submissions", onBehalf("id_document", ""), "X-Test-Principal", "sara")
	if r.status != 202 {
		t.Fatalf("file on behalf: %d %s", r.status, r.body)
	}
	var rec struct{ ID, Reference, Channel, Subject string }
	_ = json.Unmarshal([]byte(r.body), &rec)
	if rec.Channel != "assisted" || rec.Subject != bertilMasked {
		t.Fatalf("answer %s", r.body)
	}
	if strings.Contains(r.body, bertilPnr) || strings.Contains(r.body, "19900101-3011") {
		t.Fatalf("the answer shows the personnummer in full: %s", r.body)
	}
	sub, err := e.store.Get(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sub.Subject != "se-pnr:"+bertilPnr || sub.Actor != "dev:sara" || sub.ServicePoint != "sp-centrum" ||
		sub.Channel != gateway.ChannelAssisted || sub.IdentityCheck != "id_document" {
		t.Fatalf("stored %+v", sub)
	}
	// The visitor reads it as their own; the staff member through the
	// desk's list and receipt, never through the resident's routes.
	if r := e.get(t, "/api/v1/submissions/"+rec.ID, "X-Test-Principal", "bertil"); r.status != 200 {
		t.Fatalf("the visitor reads it: %d", r.status)
	}
	list := e.get(t, "/api/v1/desk/submissions", "X-Test-Principal", "sara")
	if list.status != 200 || !strings.Contains(list.body, rec.Reference) || !strings.Contains(list.body, bertilMasked) || strings.Contains(list.body, bertilPnr) {
		t.Fatalf("desk list %d %s", list.status, list.body)
	}
	receipt := e.get(t, "/desk/receipt/"+rec.ID+"?lang=en", "X-Test-Principal", "sara") // filed through the API in Swedish; ?lang= overrides
	if receipt.status != 200 || !strings.Contains(receipt.body, rec.Reference) || !strings.Contains(receipt.body, "https://e-tjanster.example.se/s/"+rec.ID) ||
		!strings.Contains(receipt.body, "Servicepunkt Centrum") || !strings.Contains(receipt.body, "Receipt for your submission") ||
		!strings.Contains(receipt.body, bertilMasked) || strings.Contains(receipt.body, bertilPnr) {
		t.Fatalf("receipt %d:\n%s", receipt.status, receipt.body)
	}
	// Idempotency-Key: the same filing twice is one submission.
	a := e.postJSON(t, "/api/v1/services/street-fault/submissions", `{"kind":"pothole","description":"Djupt hål i körbanan","location":"Storgatan 1","on_behalf_of":{"personnummer":"197010632276","identity_check":"known","consent":true}}`,
		"X-Test-Principal", "sara", "Idempotency-Key", "k1")
	b := e.postJSON(t, "/api/v1/services/street-fault/submissions", `{"kind":"pothole","description":"Djupt hål i körbanan","location":"Storgatan 1","on_behalf_of":{"personnummer":"197010632276","identity_check":"known","consent":true}}`,
		"X-Test-Principal", "sara", "Idempotency-Key", "k1")
	if a.status != 202 || b.status != 202 || b.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("idempotent filing: %d %d %q", a.status, b.status, b.header.Get("Idempotent-Replayed"))
	}
	// A samordningsnummer works and shows masked.
	if !strings.Contains(a.body, "19701063-****") {
		t.Fatalf("samordningsnummer: %s", a.body)
	}
}

func TestDeskValidationAndAssurance(t *testing.T) {
	e := newDeskEnv(t)
	cases := []struct {
		name, persona, body string
		status              int
		fields              []string
		contains            string
	}{
		{"bad personnummer", "sara", `{` + homeCareBody + `,"on_behalf_of":{"personnummer":"19900101-3012","identity_check":"id_document","consent":true}}`, 422, []string{"on_behalf_of.personnummer"}, ""},
		{"no consent", "sara", `{` + homeCareBody + `,"on_behalf_of":{"personnummer":"19900101-3011","identity_check":"id_document","consent":false}}`, 422, []string{"on_behalf_of.consent"}, ""},
		{"unknown check", "sara", onBehalf("looked_trustworthy", ""), 422, []string{"on_behalf_of.identity_check"}, ""},
		{"unknown key in on_behalf_of", "sara", onBehalf("id_document", `,"name":"x"`), 422, []string{"on_behalf_of"}, ""},
		{"form errors with the visitor", "sara", `{"applying_for":"self","on_behalf_of":{"personnummer":"19900101-3011","identity_check":"id_document","consent":true}}`, 422, []string{"needs", "personnummer"}, ""},
		{"known is not enough for substantial", "sara", onBehalf("known", ""), 403, nil, "räcker bara för nivå låg"},
		{"staff signed in low caps the level", "lowstaff", onBehalf("eid", ""), 403, nil, "väsentlig"},
		{"no service point chosen", "olle", onBehalf("id_document", ""), 422, []string{"on_behalf_of.service_point"}, ""},
		{"unknown service point", "olle", onBehalf("id_document", `,"service_point":"sp-nowhere"`), 422, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.postJSON(t, "/api/v1/services/home-care/submissions", tc.body, "X-Test-Principal", tc.persona)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			var p struct{ Errors map[string]string }
			_ = json.Unmarshal([]byte(r.body), &p)
			for _, f := range tc.fields {
				if p.Errors[f] == "" {
					t.Errorf("no error for %s: %s", f, r.body)
				}
			}
			if !strings.Contains(r.body, tc.contains) {
				t.Errorf("answer lacks %q: %s", tc.contains, r.body)
			}
			if strings.Contains(r.body, bertilPnr) {
				t.Errorf("answer shows the personnummer: %s", r.body)
			}
		})
	}
	// Staff without a point from sign-in name one in the request.
	if r := e.postJSON(t, "/api/v1/services/home-care/submissions", onBehalf("id_document", `,"service_point":"sp-gottsunda"`), "X-Test-Principal", "olle"); r.status != 202 || !strings.Contains(r.body, `"service_point":"sp-gottsunda"`) {
		t.Fatalf("olle at sp-gottsunda: %d %s", r.status, r.body)
	}
}

// Each refused attempt is its own case: the status, and nothing written to
// the audit stream.
func TestDeskRefusals(t *testing.T) {
	e := newDeskEnv(t)
	// Fixtures: Bertil's own submission (he filed it alone), and one Sara
	// filed for him at sp-centrum.
	own := e.postJSON(t, "/api/v1/services/home-care/submissions", `{`+homeCareBody+`}`, "X-Test-Principal", "bertil")
	filed := e.postJSON(t, "/api/v1/services/home-care/submissions", onBehalf("id_document", ""), "X-Test-Principal", "sara")
	if own.status != 202 || filed.status != 202 {
		t.Fatalf("fixtures: %d %d", own.status, filed.status)
	}
	var o, f struct{ ID string }
	_ = json.Unmarshal([]byte(own.body), &o)
	_ = json.Unmarshal([]byte(filed.body), &f)
	before := len(e.audit(t))
	streetBehalf := `{"kind":"pothole","description":"Djupt hål i körbanan","location":"Storgatan 1","on_behalf_of":{"personnummer":"198507092388","identity_check":"id_document","consent":true}}`
	cases := []struct {
		name, persona, method, path, body string
		status                            int
	}{
		{"a resident cannot reach the desk", "anna", "GET", "/desk", "", 403},
		{"a resident cannot open a desk form", "anna", "GET", "/desk/services/street-fault", "", 403},
		{"a resident cannot file on behalf of anyone", "anna", "POST", "/api/v1/services/street-fault/submissions", streetBehalf, 403},
		{"a resident cannot file on behalf of anyone, high level", "bertil", "POST", "/api/v1/services/home-care/submissions", onBehalf("id_document", ""), 403},
		{"anonymous cannot file on behalf", "", "POST", "/api/v1/services/street-fault/submissions", streetBehalf, 403},
		{"a machine client cannot file on behalf", "machine", "POST", "/api/v1/services/home-care/submissions", onBehalf("id_document", ""), 403},
		{"an administrator cannot file on behalf", "admin", "POST", "/api/v1/services/street-fault/submissions", streetBehalf, 403},
		{"a resident cannot register contacts", "anna", "POST", "/api/v1/contacts", `{"service":"street-fault","channel":"phone","outcome":"resolved"}`, 403},
		{"anonymous cannot register contacts", "", "POST", "/api/v1/contacts", `{"service":"street-fault","channel":"phone","outcome":"resolved"}`, 401},
		{"a resident cannot list the desk's work", "anna", "GET", "/api/v1/desk/submissions", "", 403},
		{"staff cannot read a resident's own submission (API)", "sara", "GET", "/api/v1/submissions/" + o.ID, "", 404},
		{"staff cannot read a resident's own submission (status page)", "sara", "GET", "/s/" + o.ID, "", 404},
		{"staff cannot print a resident's own submission", "sara", "GET", "/desk/receipt/" + o.ID, "", 404},
		{"staff of another point cannot print the receipt", "gustav", "GET", "/desk/receipt/" + f.ID, "", 404},
		{"staff cannot read a filing through the resident's API", "sara", "GET", "/api/v1/submissions/" + f.ID, "", 404},
		{"staff cannot file for another point than their sign-in's", "sara", "POST", "/api/v1/services/home-care/submissions", onBehalf("id_document", `,"service_point":"sp-gottsunda"`), 403},
		{"staff cannot read the audit", "sara", "GET", "/api/v1/admin/audit", "", 403},
		{"a resident cannot read the audit page", "anna", "GET", "/admin/audit", "", 403},
		{"a resident cannot print a receipt of their own", "bertil", "GET", "/desk/receipt/" + f.ID, "", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r resp
			if tc.method == "GET" {
				r = e.get(t, tc.path, "X-Test-Principal", tc.persona)
			} else {
				r = e.postJSON(t, tc.path, tc.body, "X-Test-Principal", tc.persona)
			}
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.status, tc.status, r.body)
			}
			if n := len(e.audit(t)); n != before {
				t.Fatalf("the audit stream changed: %d entries, want %d", n, before)
			}
		})
	}
}

// Registered contacts change digital take-up exactly as defined:
// submitted(digital) / (every submission + every registered contact), and a
// filed_with_help contact is not counted again.
func TestDeskContactsChangeDigitalTakeUp(t *testing.T) {
	type contact struct{ channel, outcome string }
	cases := []struct {
		name             string
		digital, behalf  int
		contacts         []contact
		takeUp, assisted *float64
		all              int64
	}{
		{"digital only", 2, 0, nil, ptr(1), ptr(0), 2},
		{"a phone call halves it", 1, 0, []contact{{"phone", "resolved"}}, ptr(0.5), ptr(0), 2},
		{"a visit is assisted", 1, 0, []contact{{"visit", "shown_self_service"}}, ptr(0.5), ptr(0.5), 2},
		{"paper and e-mail count", 2, 0, []contact{{"paper", "referred"}, {"email", "resolved"}}, ptr(0.5), ptr(0), 4},
		{"filed with help is not counted twice", 1, 1, []contact{{"visit", "filed_with_help"}}, ptr(0.5), ptr(0.5), 2},
		{"filed with help by phone is not counted either", 1, 0, []contact{{"phone", "filed_with_help"}}, ptr(1), ptr(0), 1},
		{"contacts only", 0, 0, []contact{{"visit", "resolved"}, {"phone", "referred"}, {"visit", "referred"}}, ptr(0), ptr(2.0 / 3), 3},
		{"nothing", 0, 0, nil, nil, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newDeskEnv(t)
			for range tc.digital {
				cookie, csrf, form := e.form(t, "/services/street-fault")
				v := url.Values{"_csrf": {csrf}, "_form": {form}, "kind": {"pothole"}, "description": {"Ett djupt hål i cykelbanan"}, "location": {"Storgatan 1"}}
				if r := e.postForm(t, "/services/street-fault", cookie, v); r.status != 303 {
					t.Fatalf("digital submit %d", r.status)
				}
			}
			for range tc.behalf {
				if r := e.postJSON(t, "/api/v1/services/street-fault/submissions", `{"kind":"pothole","description":"Ett djupt hål i körbanan","location":"Storgatan 2","on_behalf_of":{"personnummer":"198507092388","identity_check":"known","consent":true}}`, "X-Test-Principal", "sara"); r.status != 202 {
					t.Fatalf("assisted submit %d %s", r.status, r.body)
				}
			}
			for _, c := range tc.contacts {
				r := e.postJSON(t, "/api/v1/contacts", `{"service":"street-fault","channel":"`+c.channel+`","outcome":"`+c.outcome+`","language":"ar"}`, "X-Test-Principal", "sara")
				if r.status != 201 {
					t.Fatalf("contact %v: %d %s", c, r.status, r.body)
				}
				counted := strings.Contains(r.body, `"counted_in_usage":true`)
				if counted == (c.outcome == "filed_with_help") {
					t.Fatalf("contact %v counted in usage: %v (%s)", c, counted, r.body)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.rec.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			r := e.get(t, "/api/v1/usage?service=street-fault", "X-Test-Principal", "sara")
			var rep usage.Report
			if err := json.Unmarshal([]byte(r.body), &rep); err != nil {
				t.Fatalf("%d %s", r.status, r.body)
			}
			k := rep.Totals
			if k.AllContacts != tc.all || !same(k.DigitalTakeUp, tc.takeUp) || !same(k.AssistedShare, tc.assisted) {
				t.Fatalf("all %d take-up %v assisted %v; want %d %v %v", k.AllContacts, deref(k.DigitalTakeUp), deref(k.AssistedShare), tc.all, deref(tc.takeUp), deref(tc.assisted))
			}
		})
	}
	// The language and the channel are checked.
	e := newDeskEnv(t)
	for _, body := range []string{
		`{"service":"street-fault","channel":"pigeon","outcome":"resolved"}`,
		`{"service":"street-fault","channel":"phone","outcome":"ignored"}`,
		`{"service":"no-such","channel":"phone","outcome":"resolved"}`,
		`{"service":"street-fault","channel":"phone","outcome":"resolved","language":"not a language!"}`,
		`{"service":"street-fault","channel":"phone","outcome":"resolved","extra":1}`,
	} {
		if r := e.postJSON(t, "/api/v1/contacts", body, "X-Test-Principal", "sara"); r.status != 422 {
			t.Errorf("%s: %d, want 422", body, r.status)
		}
	}
}

func ptr(f float64) *float64 { return &f }

func same(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	d := *a - *b
	return d < 1e-9 && d > -1e-9
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// The audit stream holds one entry per action on behalf of a resident,
// with who, when, where, the subject masked, and what; administrators read
// it.
func TestDeskAuditOneEntryPerAction(t *testing.T) {
	e := newDeskEnv(t)
	filed := e.postJSON(t, "/api/v1/services/home-care/submissions", onBehalf("id_document", ""), "X-Test-Principal", "sara")
	var f struct{ ID, Reference string }
	_ = json.Unmarshal([]byte(filed.body), &f)
	if n := len(e.audit(t)); n != 1 {
		t.Fatalf("after filing: %d entries, want 1", n)
	}
	if r := e.postJSON(t, "/api/v1/services/home-care/submissions", onBehalf("known", ""), "X-Test-Principal", "sara"); r.status != 403 {
		t.Fatalf("refused: %d", r.status)
	}
	if n := len(e.audit(t)); n != 2 {
		t.Fatalf("after a refusal: %d entries, want 2", n)
	}
	if r := e.get(t, "/desk/receipt/"+f.ID, "X-Test-Principal", "sara"); r.status != 200 {
		t.Fatalf("receipt %d", r.status)
	}
	// A contact concerns no resident: not audited.
	if r := e.postJSON(t, "/api/v1/contacts", `{"service":"street-fault","channel":"phone","outcome":"resolved"}`, "X-Test-Principal", "sara"); r.status != 201 {
		t.Fatalf("contact %d", r.status)
	}
	entries := e.audit(t)
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3: %+v", len(entries), entries)
	}
	wantActions := []string{servicepoint.ActionReceiptPrinted, servicepoint.ActionRefused, servicepoint.ActionFiled} // newest first
	for i, en := range entries {
		if en.Action != wantActions[i] || en.Actor != "dev:sara" || en.ActorName != "Sara Servicepunkt" || en.ServicePoint != "sp-centrum" ||
			en.Subject != bertilMasked || en.At == "" || en.Service != "home-care" {
			t.Errorf("entry %d: %+v", i, en)
		}
	}
	if entries[2].Reference != f.Reference || entries[2].IdentityCheck != "id_document" || entries[1].IdentityCheck != "known" {
		t.Errorf("filed entry %+v", entries[2])
	}
	raw := e.auditRaw(t)
	if regexp.MustCompile(`\d{12}|\d{8}-\d{4}|\d{6}-\d{4}`).MatchString(raw) || strings.Contains(raw, f.ID) {
		t.Fatalf("the stream holds a personnummer or a submission id: %s", raw)
	}
	// Administrators read it: API and page.
	r := e.get(t, "/api/v1/admin/audit?limit=2", "X-Test-Principal", "admin")
	var out struct {
		Entries []servicepoint.AuditEntry
		Total   int64
		Next    string
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || r.status != 200 || len(out.Entries) != 2 || out.Total != 3 || out.Next == "" {
		t.Fatalf("audit API %d %s", r.status, r.body)
	}
	r = e.get(t, "/api/v1/admin/audit?before="+out.Next, "X-Test-Principal", "admin")
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || len(out.Entries) != 1 || out.Entries[0].Action != servicepoint.ActionFiled {
		t.Fatalf("audit page 2: %s", r.body)
	}
	if r := e.get(t, "/api/v1/admin/audit?before=nonsense", "X-Test-Principal", "admin"); r.status != 422 {
		t.Fatalf("bad cursor: %d", r.status)
	}
	page := e.get(t, "/admin/audit", "X-Test-Principal", "admin")
	if page.status != 200 || !strings.Contains(page.body, bertilMasked) || !strings.Contains(page.body, "Servicepunkt Centrum") || strings.Contains(page.body, bertilPnr) {
		t.Fatalf("audit page %d", page.status)
	}
}

// The desk in HTML: the page, a form filled in for a visitor (errors keep
// what was typed but never send a valid personnummer back), the receipt,
// and a contact in one form post.
func TestDeskPages(t *testing.T) {
	e := newDeskEnv(t)
	desk := e.get(t, "/desk", "X-Test-Principal", "sara")
	for _, s := range []string{"Servicepunkt Centrum", "Stationsgatan 12", "arabiska", `href="/desk/services/street-fault"`, `name="outcome" value="filed_with_help"`} {
		if !strings.Contains(desk.body, s) {
			t.Errorf("desk lacks %q", s)
		}
	}
	if desk.status != 200 || strings.Contains(desk.body, "<script") {
		t.Fatalf("desk %d", desk.status)
	}
	// Staff without a point choose one first.
	if r := e.get(t, "/desk", "X-Test-Principal", "olle"); r.status != 200 || !strings.Contains(r.body, `action="/desk/point"`) {
		t.Fatalf("olle's desk %d", r.status)
	}
	cookie, csrf, form := formAs(t, e, "/desk/services/street-fault", "sara")
	bad := url.Values{"_csrf": {csrf}, "_form": {form}, "_visitor": {"19900101-3011"}, "_identity_check": {"id_document"}, "_consent": {"true"},
		"kind": {"pothole"}, "description": {"kort"}, "location": {"Storgatan 1"}}
	r := e.postForm(t, "/desk/services/street-fault", cookie, bad, "X-Test-Principal", "sara")
	if r.status != 422 || strings.Contains(r.body, "19900101-3011") || strings.Contains(r.body, bertilPnr) || !strings.Contains(r.body, "Storgatan 1") {
		t.Fatalf("form with an error: %d (a valid personnummer must not come back)", r.status)
	}
	invalid := url.Values{"_csrf": {csrf}, "_form": {form}, "_visitor": {"19900101-3012"}, "_identity_check": {"id_document"},
		"kind": {"pothole"}, "description": {"Ett djupt hål i körbanan"}, "location": {"Storgatan 1"}}
	r = e.postForm(t, "/desk/services/street-fault", cookie, invalid, "X-Test-Principal", "sara")
	if r.status != 422 || !strings.Contains(r.body, "inte ett giltigt personnummer") || !strings.Contains(r.body, "måste samtycka") {
		t.Fatalf("invalid visitor: %d", r.status)
	}
	good := url.Values{"_csrf": {csrf}, "_form": {form}, "_visitor": {"19900101-3011"}, "_identity_check": {"known"}, "_consent": {"true"},
		"_visitor_lang": {"en"}, "kind": {"pothole"}, "description": {"Ett djupt hål i körbanan"}, "location": {"Storgatan 1"}}
	r = e.postForm(t, "/desk/services/street-fault", cookie, good, "X-Test-Principal", "sara")
	loc := r.header.Get("Location")
	if r.status != 303 || !regexp.MustCompile(`^/desk/receipt/[a-z2-7]{32}$`).MatchString(loc) {
		t.Fatalf("filed: %d %q", r.status, loc)
	}
	receipt := e.get(t, loc, "X-Test-Principal", "sara")
	if receipt.status != 200 || !strings.Contains(receipt.body, "Receipt for your submission") || !strings.Contains(receipt.body, bertilMasked) {
		t.Fatalf("receipt %d", receipt.status)
	}
	desk = e.get(t, "/desk", "X-Test-Principal", "sara")
	if !strings.Contains(desk.body, bertilMasked) || strings.Contains(desk.body, bertilPnr) || !strings.Contains(desk.body, `id="work-today"`) {
		t.Fatalf("today's work lacks the filing")
	}
	// Home care needs substantial: "known" is refused with a clear message.
	cookie, csrf, form = formAs(t, e, "/desk/services/home-care", "sara")
	hc := url.Values{"_csrf": {csrf}, "_form": {form}, "_visitor": {"19900101-3011"}, "_identity_check": {"known"}, "_consent": {"true"}}
	r = e.postForm(t, "/desk/services/home-care", cookie, hc, "X-Test-Principal", "sara")
	if r.status != 403 || !strings.Contains(r.body, "kräver tillitsnivå väsentlig") {
		t.Fatalf("home care with known: %d", r.status)
	}
	// A contact: one post with service, channel and the outcome button.
	cookie, csrf, _ = formAs(t, e, "/desk", "sara")
	c := url.Values{"_csrf": {csrf}, "service": {"street-fault"}, "channel": {"phone"}, "outcome": {"resolved"}, "language": {""}}
	r = e.postForm(t, "/desk/contacts", cookie, c, "X-Test-Principal", "sara")
	if r.status != 303 || r.header.Get("Location") != "/desk?done=contact" {
		t.Fatalf("contact: %d %q", r.status, r.header.Get("Location"))
	}
	// Without the form's CSRF token: refused, nothing counted.
	c.Del("_csrf")
	if r := e.postForm(t, "/desk/contacts", cookie, c, "X-Test-Principal", "sara"); r.status != 403 {
		t.Fatalf("contact without CSRF token: %d", r.status)
	}
	if r := e.get(t, "/desk", "X-Test-Principal", "sara"); !strings.Contains(r.body, "<tr><td>Löst vid disken</td><td>1</td></tr>") {
		t.Fatalf("contacts today should be 1 resolved")
	}
	// Not signed in: the desk sends the browser to sign in.
	if r := e.get(t, "/desk"); r.status != 303 || !strings.HasPrefix(r.header.Get("Location"), "/auth/login?return_to=%2Fdesk") {
		t.Fatalf("anonymous desk: %d %q", r.status, r.header.Get("Location"))
	}
}

// formAs fetches a page as a persona and returns its CSRF cookie and
// hidden tokens (the form token may be absent).
func formAs(t *testing.T, e *deskEnv, path, persona string) (cookie, csrf, form string) {
	t.Helper()
	r := e.get(t, path, "X-Test-Principal", persona)
	if r.status != 200 {
		t.Fatalf("GET %s: %d", path, r.status)
	}
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "gw_csrf=") {
			cookie = strings.SplitN(c, ";", 2)[0]
		}
	}
	csrf = hidden(t, r.body, "_csrf")
	if m := regexp.MustCompile(`name="_form" value="([^"]+)"`).FindStringSubmatch(r.body); m != nil {
		form = m[1]
	}
	return
}

// The dashboard's service-point tables: contacts per point by channel and
// outcome, assisted share per service, the services that most need help.
func TestDeskDashboard(t *testing.T) {
	e := newDeskEnv(t)
	if r := e.postJSON(t, "/api/v1/services/street-fault/submissions", `{"kind":"pothole","description":"Ett djupt hål i körbanan","location":"Storgatan 2","on_behalf_of":{"personnummer":"198507092388","identity_check":"known","consent":true}}`, "X-Test-Principal", "sara"); r.status != 202 {
		t.Fatalf("filing %d", r.status)
	}
	for _, c := range []string{
		`{"service":"street-fault","channel":"phone","outcome":"resolved"}`,
		`{"service":"street-fault","channel":"phone","outcome":"resolved"}`,
		`{"service":"home-care","channel":"visit","outcome":"referred"}`,
	} {
		if r := e.postJSON(t, "/api/v1/contacts", c, "X-Test-Principal", "sara"); r.status != 201 {
			t.Fatalf("contact %d", r.status)
		}
	}
	if r := e.postJSON(t, "/api/v1/contacts", `{"service":"public-documents","channel":"email","outcome":"shown_self_service","service_point":"sp-gottsunda"}`, "X-Test-Principal", "olle"); r.status != 201 {
		t.Fatalf("olle's contact %d", r.status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.rec.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	r := e.get(t, "/dashboard?lang=en", "X-Test-Principal", "sara")
	if r.status != 200 {
		t.Fatalf("dashboard %d", r.status)
	}
	row := func(cells ...string) string {
		return `<th scope="row">` + cells[0] + "</th><td>" + strings.Join(cells[1:], "</td><td>") + "</td>"
	}
	for _, want := range []string{
		"Contacts per service point, channel and outcome",
		row("Servicepunkt Centrum", "Visit", "Filed with help", "1"),
		row("Servicepunkt Centrum", "Visit", "Referred elsewhere", "1"),
		row("Servicepunkt Centrum", "Phone", "Resolved at the desk", "2"),
		row("Servicepunkt Gottsunda", "E-mail", "Shown how to use the e-service", "1"),
		"Assisted share per e-service",
		row("Report a fault in a street, park or playground", "1", "3", "33.3%"), // 1 assisted filing of 1 + 2 phone contacts
		"E-services where most people need help: improve these first",
		row("1", "Report a fault in a street, park or playground", "3", "100.0%"),
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
}
