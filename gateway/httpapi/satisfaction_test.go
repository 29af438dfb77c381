package httpapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/usage"
)

// The satisfaction question after a receipt: one answer per submission
// (bound to its receipt page by a token), counted per score in the KPIs,
// on the dashboard and, with small counts suppressed, in the open data;
// the comment is kept for the department and never published.
func TestSatisfaction(t *testing.T) {
	deps, store, srv := baseDeps(t)
	ucfg := usage.Config{Logger: quiet}
	rec := usage.New(store, ucfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec.Start(ctx)
	people := map[string]*gateway.Principal{"streets": testPrincipals["streets"], "social": testPrincipals["social"]}
	for k, v := range testPersonas {
		people[k] = v
	}
	deps.Authenticate, deps.Usage, deps.UsageReports = httpapi.AuthenticateForTests(people), rec, usage.NewReader(store, ucfg)
	deps.Satisfaction = store
	deps.Config = httpapi.Config{OpenDataMinCount: 3}
	e := &usageEnv{env: &env{app: build(t, deps), store: store}, srv: srv, rec: rec, rd: usage.NewReader(store, ucfg)}

	const secret = "HEMLIG-KOMMENTAR-om-hålet"
	var lastCookie, lastCSRF string
	answer := func(id string, v url.Values, token string) resp {
		t.Helper()
		page := e.get(t, "/s/"+id+"?receipt=1")
		if page.status != 200 || (token == "" && !strings.Contains(page.body, `name="score" value="5"`)) {
			t.Fatalf("receipt page without the question: %d", page.status)
		}
		cookie := ""
		for _, c := range page.header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "gw_csrf=") {
				cookie = strings.SplitN(c, ";", 2)[0]
			}
		}
		if strings.Contains(page.body, `name="_csrf"`) {
			lastCSRF, lastCookie = hidden(t, page.body, "_csrf"), cookie
		}
		cookie = lastCookie
		v.Set("_csrf", lastCSRF)
		if token == "" {
			token = hidden(t, page.body, "token")
		}
		v.Set("token", token)
		return e.postForm(t, "/s/"+id+"/satisfaction?receipt=1", cookie, v)
	}
	var ids []string
	for range 5 {
		r := e.postJSON(t, "/api/v1/services/street-fault/submissions", `{"kind":"pothole","description":"Ett djupt hål i vägen","location":"Storgatan 1"}`)
		var sub struct{ ID string }
		json.Unmarshal([]byte(r.body), &sub)
		ids = append(ids, sub.ID)
	}
	// Refused: a wrong token, no score, a score out of range, a long comment.
	if r := answer(ids[0], url.Values{"score": {"5"}}, "forged-token-forged-token"); r.status != 403 {
		t.Fatalf("wrong token: %d", r.status)
	}
	for name, v := range map[string]url.Values{"no score": {}, "score 7": {"score": {"7"}},
		"long comment": {"score": {"4"}, "comment": {strings.Repeat("å", 501)}}} {
		if r := answer(ids[0], v, ""); r.status != 422 || !strings.Contains(r.body, `id="survey-error"`) {
			t.Fatalf("%s: %d", name, r.status)
		}
	}
	// Three answer 5 (one with a comment), one answers 2.
	firstToken := hidden(t, e.get(t, "/s/"+ids[0]+"?receipt=1").body, "token")
	for i, id := range ids[:3] {
		v := url.Values{"score": {"5"}}
		if i == 0 {
			v.Set("comment", secret)
		}
		if r := answer(id, v, ""); r.status != 303 {
			t.Fatalf("answer: %d %s", r.status, r.body)
		}
	}
	if r := answer(ids[3], url.Values{"score": {"2"}}, ""); r.status != 303 {
		t.Fatalf("answer: %d", r.status)
	}
	// A second answer to the same receipt is not counted.
	if r := answer(ids[0], url.Values{"score": {"1"}}, firstToken); r.status != 303 {
		t.Fatalf("second answer: %d", r.status)
	}
	if p := e.get(t, "/s/"+ids[0]+"?receipt=1"); !strings.Contains(p.body, `id="survey-thanks"`) {
		t.Fatal("an answered receipt asks again")
	}
	if score, comment, ok, err := store.SatisfactionOf(context.Background(), ids[0]); err != nil || !ok || score != 5 || comment != secret {
		t.Fatalf("stored answer: %d %q %v %v", score, comment, ok, err)
	}
	// The owning department reads the comment with the submission; others
	// and anonymous readers of the status API do not.
	var st struct {
		Satisfaction *struct {
			Score   int
			Comment string
		}
	}
	json.Unmarshal([]byte(e.get(t, "/api/v1/submissions/"+ids[0], "X-Test-Principal", "streets").body), &st)
	if st.Satisfaction == nil || st.Satisfaction.Comment != secret || st.Satisfaction.Score != 5 {
		t.Fatalf("department's view: %+v", st.Satisfaction)
	}
	for _, who := range []string{"", "social", "staff"} {
		if r := e.get(t, "/api/v1/submissions/"+ids[0], "X-Test-Principal", who); strings.Contains(r.body, "HEMLIG") {
			t.Fatalf("%q reads the comment", who)
		}
	}
	e.flush(t)

	// The KPIs (exact, for staff).
	rep := e.report(t, "")
	if got := rep.Totals.Satisfaction; got != [5]int64{0, 1, 0, 0, 3} {
		t.Fatalf("satisfaction by score %v", got)
	}
	if m := rep.Totals.SatisfactionMean; m == nil || *m != 4.25 || rep.Totals.SatisfactionCount != 4 {
		t.Fatalf("mean %v count %d", m, rep.Totals.SatisfactionCount)
	}
	dash := e.get(t, "/dashboard?lang=en", "X-Test-Principal", "staff")
	if !strings.Contains(dash.body, "Satisfaction – By e-service") || !strings.Contains(dash.body, "<td>3</td><td>4</td><td>4.25</td>") {
		t.Fatalf("dashboard lacks the satisfaction table: %d\n%s", dash.status, dash.body)
	}
	// Open data: 3 shown, 1 suppressed; never the comment.
	csvBody := e.get(t, "/open-data/usage.csv").body
	jsonBody := e.get(t, "/open-data/usage.json").body
	if strings.Contains(csvBody+jsonBody+dash.body, "HEMLIG") {
		t.Fatal("the comment reached the open data or the dashboard")
	}
	var ds struct{ Rows []map[string]any }
	json.Unmarshal([]byte(jsonBody), &ds)
	found := false
	for _, row := range ds.Rows {
		if row["service"] == "street-fault" && row["channel"] == "api" {
			found = true
			if row["satisfaction_5"] != float64(3) || row["satisfaction_2"] != nil || row["satisfaction_1"] != float64(0) {
				t.Fatalf("open data row %v", row)
			}
		}
	}
	if !found || !strings.Contains(strings.SplitN(csvBody, "\n", 2)[0], "satisfaction_5") {
		t.Fatalf("open data lacks satisfaction:\n%s", csvBody)
	}
}
