package httpapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// stepper posts one page of a multi-step form as a signed-in person.
type stepper struct {
	e                    *deskEnv
	path, persona        string
	cookie, csrf, formID string
	values               url.Values // every answer so far
}

func newStepper(t *testing.T, e *deskEnv, service, persona string) *stepper {
	st := &stepper{e: e, path: "/services/" + service, persona: persona, values: url.Values{}}
	st.cookie, st.csrf, st.formID = formAs(t, e, st.path, persona)
	return st
}

// post sends the answers with the button nav pressed on page step.
func (s *stepper) post(t *testing.T, step, nav string, answers ...string) resp {
	t.Helper()
	for i := 0; i+1 < len(answers); i += 2 {
		s.values.Set(answers[i], answers[i+1])
	}
	v := url.Values{"_csrf": {s.csrf}, "_form": {s.formID}, "_step": {step}, "_nav": {nav}}
	for k, xs := range s.values {
		v[k] = xs
	}
	return s.e.postForm(t, s.path, s.cookie, v, "X-Test-Principal", s.persona)
}

func TestMultiStepJourney(t *testing.T) {
	e := newDeskEnv(t)
	first := e.get(t, "/services/building-permit", "X-Test-Principal", "bertil")
	if first.status != 200 || !strings.Contains(first.body, "Steg 1 av 4") || !strings.Contains(first.body, `name="project"`) || strings.Contains(first.body, `name="phone"`) {
		t.Fatalf("first page: %d\n%s", first.status, first.body)
	}
	s := newStepper(t, e, "building-permit", "bertil")

	// Continue validates the page's fields only.
	r := s.post(t, "0", "next")
	if r.status != 422 || !strings.Contains(r.body, `href="#f-project"`) || strings.Contains(r.body, `href="#f-phone"`) || !strings.Contains(r.body, "Steg 1 av 4") {
		t.Fatalf("empty first page: %d\n%s", r.status, r.body)
	}
	r = s.post(t, "0", "next", "project", "demolition", "property", "Kåbo 12:3")
	if r.status != 200 || !strings.Contains(r.body, "Vem söker?") || !strings.Contains(r.body, `type="hidden" name="property" value="Kåbo 12:3"`) {
		t.Fatalf("second page: %d\n%s", r.status, r.body)
	}
	// Who applies is not asked: name and personnummer come from the sign-in.
	if !strings.Contains(r.body, `name="applicant_name" value="Bertil Berg" readonly`) ||
		!strings.Contains(r.body, `name="applicant_personnummer" value="19900101-3011" readonly`) {
		t.Fatalf("applicant not prefilled from the sign-in:\n%s", r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("a page carrying answers may be cached: %q", r.header.Get("Cache-Control"))
	}
	// A representative must name the owner (a condition on this page).
	r = s.post(t, "1", "next", "applying_as", "representative")
	if r.status != 422 || !strings.Contains(r.body, `href="#f-owner_name"`) {
		t.Fatalf("representative without owner: %d\n%s", r.status, r.body)
	}
	// Back keeps every answer and does not validate.
	r = s.post(t, "1", "back")
	if r.status != 200 || !strings.Contains(r.body, `value="Kåbo 12:3"`) || !strings.Contains(r.body, "Steg 1 av 4") {
		t.Fatalf("back: %d\n%s", r.status, r.body)
	}
	r = s.post(t, "1", "next", "owner_name", "Olle Ägare", "owner_consent", "true")
	// Demolition: the reason is asked, the floor area is not.
	if r.status != 200 || !strings.Contains(r.body, `name="demolition_reason"`) || strings.Contains(r.body, `name="floor_area"`) {
		t.Fatalf("details page: %d\n%s", r.status, r.body)
	}
	r = s.post(t, "2", "next", "demolition_reason", "Huset är fuktskadat och går inte att rädda.", "description", "Riva det gamla huset och så gräs på platsen.")
	if r.status != 200 || !strings.Contains(r.body, `name="phone"`) {
		t.Fatalf("contact page: %d\n%s", r.status, r.body)
	}
	// A floor area smuggled in for a demolition is neither shown nor stored.
	r = s.post(t, "3", "next", "phone", "018-727 00 00", "correct", "true", "floor_area", "99")
	if r.status != 200 || !strings.Contains(r.body, "Kontrollera dina svar") || !strings.Contains(r.body, "Rivning") ||
		!strings.Contains(r.body, "Olle Ägare") || strings.Contains(r.body, "Byggnadsarea") {
		t.Fatalf("check page: %d\n%s", r.status, r.body)
	}
	if !strings.Contains(r.body, `value="goto:0"`) || !strings.Contains(r.body, `value="goto:3"`) {
		t.Fatalf("check page without change buttons:\n%s", r.body)
	}
	// Change: back to a page with its answers.
	r = s.post(t, "", "goto:0")
	if r.status != 200 || !strings.Contains(r.body, `value="Kåbo 12:3"`) || !strings.Contains(r.body, "Steg 1 av 4") {
		t.Fatalf("change: %d\n%s", r.status, r.body)
	}
	// A forged personnummer for the applicant is ignored.
	r = s.post(t, "", "send", "applicant_personnummer", "19850709-2388", "applicant_name", "Någon Annan")
	if r.status != 303 || !strings.HasPrefix(r.header.Get("Location"), "/s/") {
		t.Fatalf("send: %d\n%s", r.status, r.body)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(r.header.Get("Location"), "/s/"), "?receipt=1")
	sub, err := e.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sub.Payload["floor_area"]; ok || sub.Payload["demolition_reason"] == nil || sub.Payload["owner_name"] != "Olle Ägare" ||
		sub.Payload["applicant_personnummer"] != bertilPnr || sub.Payload["applicant_name"] != "Bertil Berg" {
		t.Fatalf("stored payload: %v", sub.Payload)
	}
}

// The JSON API takes the whole payload at once and applies the same
// conditions; the schema says when a conditional field is required.
func TestConditionsInTheAPI(t *testing.T) {
	e := newDeskEnv(t)
	body := map[string]any{"project": "garage", "property": "Kåbo 12:3", "applying_as": "owner",
		"description": "Ett garage i trä vid infarten, grått.", "phone": "018-727 00 00", "correct": true,
		"demolition_reason": "inte en rivning"}
	b, _ := json.Marshal(body)
	r := e.postJSON(t, "/api/v1/services/building-permit/submissions", string(b), "X-Test-Principal", "bertil")
	var problem struct{ Errors map[string]string }
	_ = json.Unmarshal([]byte(r.body), &problem)
	if r.status != 422 || problem.Errors["floor_area"] == "" || len(problem.Errors) != 1 {
		t.Fatalf("garage without floor area: %d %s", r.status, r.body)
	}
	body["floor_area"] = 24
	b, _ = json.Marshal(body)
	r = e.postJSON(t, "/api/v1/services/building-permit/submissions", string(b), "X-Test-Principal", "bertil")
	var accepted struct{ ID string }
	_ = json.Unmarshal([]byte(r.body), &accepted)
	if r.status != 202 {
		t.Fatalf("garage: %d %s", r.status, r.body)
	}
	sub, err := e.store.Get(context.Background(), accepted.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sub.Payload["demolition_reason"]; ok || sub.Payload["floor_area"] != 24.0 {
		t.Fatalf("stored payload: %v", sub.Payload)
	}

	svc := e.get(t, "/api/v1/services/building-permit")
	var doc struct {
		Schema struct {
			Required []string `json:"required"`
			AllOf    []struct {
				If   map[string]any `json:"if"`
				Then struct {
					Required []string `json:"required"`
				} `json:"then"`
			} `json:"allOf"`
		} `json:"schema"`
	}
	if err := json.Unmarshal([]byte(svc.body), &doc); err != nil {
		t.Fatal(err)
	}
	if contains(doc.Schema.Required, "floor_area") {
		t.Fatalf("a conditional field is required always: %v", doc.Schema.Required)
	}
	found := false
	for _, a := range doc.Schema.AllOf {
		if len(a.Then.Required) == 1 && a.Then.Required[0] == "floor_area" {
			b, _ := json.Marshal(a.If)
			found = strings.Contains(string(b), `"enum":["new-house","extension","garage"]`)
		}
	}
	if !found {
		t.Fatalf("no if/then for floor_area in %s", svc.body)
	}
}

// Prefill: the JSON API takes a signed-in resident's name and number from
// the sign-in whatever is sent; at the desk, the visitor's number fills it.
func TestPrefillFromIdentity(t *testing.T) {
	e := newDeskEnv(t)
	body := `{"project":"facade","property":"Kåbo 12:3","applying_as":"owner","description":"Måla om fasaden i ljusgrått.",` +
		`"phone":"018-727 00 00","correct":true,"applicant_personnummer":"19850709-2388"}`
	r := e.postJSON(t, "/api/v1/services/building-permit/submissions", body, "X-Test-Principal", "bertil")
	var accepted struct{ ID string }
	_ = json.Unmarshal([]byte(r.body), &accepted)
	if r.status != 202 {
		t.Fatalf("resident: %d %s", r.status, r.body)
	}
	sub, err := e.store.Get(context.Background(), accepted.ID)
	if err != nil {
		t.Fatal(err)
	}
	if sub.Payload["applicant_personnummer"] != bertilPnr || sub.Payload["applicant_name"] != "Bertil Berg" {
		t.Fatalf("resident's payload: %v", sub.Payload)
	}
	// Anonymous: nothing to prefill, so the fields are asked (and required).
	r = e.postJSON(t, "/api/v1/services/street-fault/submissions", `{"kind":"litter","description":"Skräp vid bänkarna i parken","location":"Parken"}`)
	if r.status != 202 {
		t.Fatalf("anonymous street fault: %d %s", r.status, r.body)
	}
	// The desk: the visitor's checked number fills the field; staff type the name.
	desk := `{"project":"facade","property":"Kåbo 12:3","applying_as":"owner","description":"Måla om fasaden i ljusgrått.",` +
		`"phone":"018-727 00 00","correct":true,"applicant_name":"Bertil Berg","applicant_personnummer":"19850709-2388",` +
		`"on_behalf_of":{"personnummer":"19900101-3011","identity_check":"id_document","consent":true}}`
	r = e.postJSON(t, "/api/v1/services/building-permit/submissions", desk, "X-Test-Principal", "sara")
	_ = json.Unmarshal([]byte(r.body), &accepted)
	if r.status != 202 {
		t.Fatalf("desk: %d %s", r.status, r.body)
	}
	if sub, err = e.store.Get(context.Background(), accepted.ID); err != nil {
		t.Fatal(err)
	}
	if sub.Payload["applicant_personnummer"] != bertilPnr {
		t.Fatalf("desk payload: %v", sub.Payload)
	}
	page := e.get(t, "/desk/services/building-permit", "X-Test-Principal", "sara")
	if !strings.Contains(page.body, `name="applicant_personnummer" value="" readonly`) {
		t.Fatalf("desk form asks for the visitor's number twice:\n%s", page.body)
	}
}
