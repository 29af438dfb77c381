package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/usage"
	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

// The test principals, chosen per request with X-Test-Principal (see
// httpapi.FakeAuthenticateForTests, a test fixture).
var testPrincipals = map[string]*gateway.Principal{
	"admin":    {Subject: "admin-1", Name: "Ada Admin", Roles: []gateway.Role{gateway.RoleAdmin}},
	"resident": {Subject: "res-1", Name: "Rut Resident", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceSubstantial},
	"streets":  {Subject: "client-streets", Roles: []gateway.Role{gateway.RoleDepartment}, Department: "streets-parks", Machine: true},
	"social":   {Subject: "client-social", Roles: []gateway.Role{gateway.RoleDepartment}, Department: "social-care", Machine: true},
}

const callbackSecret = "callback-test-secret"

// testVerifier checks signatures like the http connector does.
type testVerifier struct{}

func (testVerifier) VerifyCallback(ts, sig string, body []byte) error {
	return httpjson.Verify([]byte(callbackSecret), ts, sig, body, time.Now(), 5*time.Minute)
}

// newDeliveryEnv is newEnv with the test principals, metrics and the
// verifier of signed status updates.
func newDeliveryEnv(t *testing.T) (*env, *httpapi.Metrics) {
	t.Helper()
	deps, store, _ := baseDeps(t)
	m := httpapi.NewMetrics(func(ctx context.Context) (httpapi.QueueStats, error) {
		st, err := store.Stats(ctx)
		return httpapi.QueueStats{Stream: st.Stream, Pending: st.Pending, Retrying: st.Retrying, Dead: st.Dead, OldestAge: st.OldestAge}, err
	})
	deps.Authenticate, deps.Metrics = httpapi.AuthenticateForTests(testPrincipals), m
	deps.Callbacks = func(id string) httpapi.CallbackVerifier {
		if id == "street-fault" {
			return testVerifier{}
		}
		return nil
	}
	return &env{app: build(t, deps), store: store}, m
}

const payloadText = "Trasig lyktstolpe vid dammen"

// deadLetter makes a submission and dead-letters it as the dispatcher
// would after a permanent refusal.
func deadLetter(t *testing.T, s *redisstore.Store) *gateway.Submission {
	t.Helper()
	ctx := context.Background()
	sub, _, err := s.Create(ctx, &gateway.Submission{Service: "street-fault", ServiceVersion: "1.0.0", Department: "streets-parks",
		Channel: gateway.ChannelAPI, Locale: "sv", Payload: map[string]any{"description": payloadText}}, gateway.Idempotency{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.ReadNew(ctx, "test", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.SubmissionID == sub.ID {
			if err := s.DeadLetter(ctx, j, "permanent"); err != nil {
				t.Fatal(err)
			}
			return sub
		}
	}
	t.Fatal("no job for the submission")
	return nil
}

func TestAdminDeadLettersNeedAdmin(t *testing.T) {
	e, _ := newDeliveryEnv(t)
	sub := deadLetter(t, e.store)
	for _, path := range []string{"/api/v1/admin/dead-letters", "/api/v1/admin/dead-letters/" + sub.ID, "/admin/dead-letters", "/admin/dead-letters/" + sub.Reference} {
		for who, want := range map[string]int{"": 401, "resident": 403, "streets": 403} {
			if r := e.get(t, path, "X-Test-Principal", who); r.status != want {
				t.Errorf("GET %s as %q: %d, want %d", path, who, r.status, want)
			}
		}
	}
	for _, path := range []string{"/api/v1/admin/dead-letters/" + sub.ID + "/replay", "/api/v1/admin/dead-letters/" + sub.ID + "/close"} {
		for who, want := range map[string]int{"": 401, "resident": 403} {
			if r := e.postJSON(t, path, `{}`, "X-Test-Principal", who); r.status != want {
				t.Errorf("POST %s as %q: %d, want %d", path, who, r.status, want)
			}
		}
	}
	if _, dead, _ := e.store.DeadLetterInfo(context.Background(), sub.ID); !dead {
		t.Fatal("a refused request changed the dead letter")
	}
}

func TestAdminDeadLetterAPI(t *testing.T) {
	e, _ := newDeliveryEnv(t)
	sub := deadLetter(t, e.store)
	admin := []string{"X-Test-Principal", "admin"}

	// List: reason and attempts, never the payload.
	r := e.get(t, "/api/v1/admin/dead-letters", admin...)
	var list struct {
		DeadLetters []map[string]any `json:"dead_letters"`
		Total       int              `json:"total"`
	}
	if r.status != 200 || json.Unmarshal([]byte(r.body), &list) != nil || list.Total != 1 || len(list.DeadLetters) != 1 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	dl := list.DeadLetters[0]
	if dl["reference"] != sub.Reference || dl["reason"] != "permanent" || dl["attempts"] != float64(1) || dl["service"] != "street-fault" {
		t.Errorf("dead letter %v", dl)
	}
	if strings.Contains(r.body, payloadText) || strings.Contains(r.body, "payload") {
		t.Errorf("the list shows the payload: %s", r.body)
	}

	// Inspect, by id or by reference: history, no payload.
	for _, key := range []string{sub.ID, sub.Reference} {
		r = e.get(t, "/api/v1/admin/dead-letters/"+key, admin...)
		var one struct {
			Reference    string                 `json:"reference"`
			DeadLettered bool                   `json:"dead_lettered"`
			History      []gateway.StatusChange `json:"history"`
		}
		if r.status != 200 || json.Unmarshal([]byte(r.body), &one) != nil || !one.DeadLettered || len(one.History) != 1 || one.Reference != sub.Reference {
			t.Fatalf("inspect %s: %d %s", key, r.status, r.body)
		}
		if strings.Contains(r.body, payloadText) {
			t.Errorf("inspect shows the payload")
		}
	}

	// Replay: back in the stream with fresh attempts.
	if r = e.postJSON(t, "/api/v1/admin/dead-letters/"+sub.ID+"/replay", ``, admin...); r.status != 202 {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	st, _ := e.store.Stats(context.Background())
	if st.Dead != 0 || st.Stream != 1 {
		t.Fatalf("after replay: %+v", st)
	}
	if r = e.postJSON(t, "/api/v1/admin/dead-letters/"+sub.ID+"/replay", ``, admin...); r.status != 422 {
		t.Errorf("replay of a submission that is not dead-lettered: %d", r.status)
	}
	if r = e.get(t, "/api/v1/admin/dead-letters/"+gateway.NewID(), admin...); r.status != 404 {
		t.Errorf("unknown id: %d", r.status)
	}

	// Close: status failed with a message to the resident; the payload
	// is deleted at once.
	sub2 := deadLetter(t, e.store)
	if r = e.postJSON(t, "/api/v1/admin/dead-letters/"+sub2.Reference+"/close", `{"status":"paused"}`, admin...); r.status != 422 {
		t.Errorf("close with a bad status: %d %s", r.status, r.body)
	}
	if r = e.postJSON(t, "/api/v1/admin/dead-letters/"+sub2.Reference+"/close", `{"status":"failed","message":"Vi har ringt dig om felanmälan."}`, admin...); r.status != 200 {
		t.Fatalf("close: %d %s", r.status, r.body)
	}
	got, err := e.store.Get(context.Background(), sub2.ID)
	if err != nil || got.Status != gateway.StatusFailed || got.Delayed || got.Payload != nil {
		t.Fatalf("after close: %+v %v", got, err)
	}
	if last := got.History[len(got.History)-1]; last.Message != "Vi har ringt dig om felanmälan." {
		t.Errorf("history %+v", got.History)
	}
	r = e.get(t, "/api/v1/admin/dead-letters", admin...)
	if !strings.Contains(r.body, `"total":0`) {
		t.Errorf("list after replay and close: %s", r.body)
	}
}

func TestAdminDeadLettersPage(t *testing.T) {
	e, _ := newDeliveryEnv(t)
	sub := deadLetter(t, e.store)
	r := e.get(t, "/admin/dead-letters?lang=en", "X-Test-Principal", "admin")
	if r.status != 200 || !strings.Contains(r.body, sub.Reference) || !strings.Contains(r.body, "refused it") || strings.Contains(r.body, payloadText) {
		t.Fatalf("page: %d\n%s", r.status, r.body)
	}
	if strings.Contains(r.body, "<script") {
		t.Errorf("the page uses JavaScript")
	}
	var cookie string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "gw_csrf=") {
			cookie = strings.SplitN(c, ";", 2)[0]
		}
	}
	csrf := hidden(t, r.body, "_csrf")
	detail := e.get(t, "/admin/dead-letters/"+sub.Reference, "X-Test-Principal", "admin", "Cookie", cookie)
	if detail.status != 200 || !strings.Contains(detail.body, `action="/admin/dead-letters/`+sub.Reference+`/close"`) {
		t.Fatalf("detail page: %d", detail.status)
	}
	// Without the CSRF token: refused.
	if r := e.postForm(t, "/admin/dead-letters/"+sub.Reference+"/replay", cookie, url.Values{}, "X-Test-Principal", "admin"); r.status != 403 {
		t.Errorf("replay without CSRF token: %d", r.status)
	}
	r = e.postForm(t, "/admin/dead-letters/"+sub.Reference+"/replay", cookie, url.Values{"_csrf": {csrf}}, "X-Test-Principal", "admin")
	if r.status != 303 || !strings.HasPrefix(r.header.Get("Location"), "/admin/dead-letters?done=replayed") {
		t.Fatalf("replay form: %d %q", r.status, r.header.Get("Location"))
	}
	r = e.get(t, r.header.Get("Location"), "X-Test-Principal", "admin")
	if !strings.Contains(r.body, sub.Reference) || !strings.Contains(r.body, "role=\"status\"") {
		t.Errorf("no notice after replay:\n%s", r.body)
	}
	// Close through the form.
	sub2 := deadLetter(t, e.store)
	r = e.postForm(t, "/admin/dead-letters/"+sub2.Reference+"/close", cookie, url.Values{"_csrf": {csrf}, "status": {"closed"}, "message": {"Lämnat över manuellt."}}, "X-Test-Principal", "admin")
	if r.status != 303 {
		t.Fatalf("close form: %d %s", r.status, r.body)
	}
	if got, _ := e.store.Get(context.Background(), sub2.ID); got.Status != gateway.StatusClosed {
		t.Errorf("status after close %q", got.Status)
	}
}

func TestStatusUpdateAPI(t *testing.T) {
	e, _ := newDeliveryEnv(t)
	ctx := context.Background()
	sub, _, err := e.store.Create(ctx, &gateway.Submission{Service: "street-fault", ServiceVersion: "1.0.0", Department: "streets-parks",
		Channel: gateway.ChannelAPI, Locale: "sv", Payload: map[string]any{"description": payloadText}}, gateway.Idempotency{})
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/submissions/" + sub.ID + "/status"
	signed := func(body string) []string {
		ts := fmt.Sprint(time.Now().Unix())
		return []string{"X-Gateway-Timestamp", ts, "X-Gateway-Signature", httpjson.Sign([]byte(callbackSecret), ts, gateway.StatusUpdateSigned("POST", sub.ID, []byte(body)))}
	}
	status := func() gateway.Status {
		got, err := e.store.Get(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	older := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name   string
		body   string
		hdr    []string
		want   int
		status gateway.Status
	}{
		{"anonymous", `{"status":"in_progress"}`, nil, 401, gateway.StatusReceived},
		{"a resident", `{"status":"in_progress"}`, []string{"X-Test-Principal", "resident"}, 403, gateway.StatusReceived},
		{"another department", `{"status":"in_progress"}`, []string{"X-Test-Principal", "social"}, 403, gateway.StatusReceived},
		{"bad signature", `{"status":"in_progress"}`, []string{"X-Gateway-Timestamp", fmt.Sprint(time.Now().Unix()), "X-Gateway-Signature", "sha256=abcd"}, 401, gateway.StatusReceived},
		{"stale signature", `{"status":"in_progress"}`, []string{"X-Gateway-Timestamp", "1000", "X-Gateway-Signature", httpjson.Sign([]byte(callbackSecret), "1000", []byte(`{"status":"in_progress"}`))}, 401, gateway.StatusReceived},
		{"unknown status", `{"status":"lost"}`, []string{"X-Test-Principal", "streets"}, 422, gateway.StatusReceived},
		{"received is not for back-ends", `{"status":"received"}`, []string{"X-Test-Principal", "streets"}, 422, gateway.StatusReceived},
		{"time in the future", `{"status":"closed","at":"2099-01-01T00:00:00Z"}`, []string{"X-Test-Principal", "streets"}, 422, gateway.StatusReceived},
		{"the owning department", `{"status":"in_progress","message":"Vi tittar på det.","case_reference":"KS-2026-000042"}`, []string{"X-Test-Principal", "streets"}, 200, gateway.StatusInProgress},
		{"signed by the back-end", `{"status":"decided","message":"Lagas vecka 48."}`, signed(`{"status":"decided","message":"Lagas vecka 48."}`), 200, gateway.StatusDecided},
		{"older: recorded, not moved", `{"status":"in_progress","at":"` + older + `"}`, []string{"X-Test-Principal", "streets"}, 200, gateway.StatusDecided},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.postJSON(t, path, tc.body, tc.hdr...)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if r.status >= 400 && !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
				t.Errorf("error is not a problem: %s", r.header.Get("Content-Type"))
			}
			if got := status(); got != tc.status {
				t.Errorf("submission status %q, want %q", got, tc.status)
			}
		})
	}
	got, _ := e.store.Get(ctx, sub.ID)
	if got.CaseReference != "KS-2026-000042" || len(got.History) != 4 {
		t.Errorf("case %q, history %+v", got.CaseReference, got.History)
	}
	// The resident sees the messages on the status page.
	page := e.get(t, "/s/"+sub.ID)
	if !strings.Contains(page.body, "Vi tittar på det.") || !strings.Contains(page.body, "Lagas vecka 48.") {
		t.Errorf("status page lacks the messages")
	}
	// An unknown submission: kept for the department (see
	// TestStatusUpdateForUnknownSubmissionKept), not found for others.
	if r := e.postJSON(t, "/api/v1/submissions/"+gateway.NewID()+"/status", `{"status":"closed"}`, "X-Test-Principal", "streets"); r.status != 202 {
		t.Errorf("unknown submission from a department: %d", r.status)
	}
	if r := e.postJSON(t, "/api/v1/submissions/"+gateway.NewID()+"/status", `{"status":"closed"}`); r.status != 404 {
		t.Errorf("unknown submission, anonymous: %d", r.status)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	e, m := newDeliveryEnv(t)
	deadLetter(t, e.store)
	m.DeadLetter("permanent")
	m.BreakerState("https://diarium.example.se", "open")
	m.Outcome("delivered", 30*time.Millisecond)
	e.get(t, "/healthz")
	e.get(t, "/healthz") // the second through the resolved children
	e.get(t, "/api/v1/submissions/"+gateway.NewID())
	r := e.get(t, "/metrics")
	if r.status != 200 {
		t.Fatalf("metrics: %d", r.status)
	}
	for _, want := range []string{
		`gateway_http_requests_total{method="GET",route="/healthz",status="200"} 2`,
		`gateway_http_request_duration_seconds_count{method="GET",route="/healthz"} 2`,
		`gateway_http_requests_total{method="GET",route="/api/v1/submissions/:id",status="404"} 1`,
		`gateway_http_request_duration_seconds_bucket{method="GET",route="/healthz"`,
		`gateway_dead_letters_total{reason="permanent"} 1`,
		`gateway_breaker_state{backend="https://diarium.example.se"} 2`,
		`gateway_deliveries_total{outcome="delivered"} 1`,
		`gateway_queue_entries{state="dead"} 1`,
		`gateway_queue_oldest_age_seconds`,
		`gateway_queue_stats_up 1`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// No path with a status link's id is a label.
	if strings.Contains(r.body, "/api/v1/submissions/a") || strings.Contains(r.body, "/s/") {
		t.Errorf("a path is used as a label")
	}
}

// Closing a dead letter is a status change: counted once in the usage
// statistics (as a case system's status update is), and the
// administrator's message is the department's message on the resident's
// status page. (Before, the close counted nothing.)
func TestCloseDeadLetterIsAStatusChange(t *testing.T) {
	e := newUsageEnv(t, usage.Config{FlushInterval: time.Hour}, 1)
	sub := deadLetter(t, e.store)
	admin := []string{"X-Test-Principal", "admin"}
	path := "/api/v1/admin/dead-letters/" + sub.ID + "/close"
	// The message gets a status update's checks.
	bad := deadLetter(t, e.store)
	if r := e.postJSON(t, "/api/v1/admin/dead-letters/"+bad.ID+"/close", `{"status":"closed","message":"Vi har ringt dig\u0007."}`, admin...); r.status != 422 || !strings.Contains(r.body, `"message"`) {
		t.Errorf("a message with a control character: %d %s", r.status, r.body)
	}
	if _, dead, _ := e.store.DeadLetterInfo(context.Background(), bad.ID); !dead {
		t.Errorf("a refused close closed the dead letter")
	}
	if r := e.postJSON(t, path, `{"status":"closed","message":"Vi har ringt dig.\r\nÄrendet är avslutat."}`, admin...); r.status != 200 {
		t.Fatalf("close: %d %s", r.status, r.body)
	}
	if r := e.postJSON(t, path, `{"status":"closed"}`, admin...); r.status != 422 {
		t.Errorf("closing twice: %d %s", r.status, r.body)
	}
	got, err := e.store.Get(context.Background(), sub.ID)
	if err != nil || got.Status != gateway.StatusClosed {
		t.Fatalf("after close: %+v %v", got, err)
	}
	if last := got.History[len(got.History)-1]; last.Message != "Vi har ringt dig.\nÄrendet är avslutat." {
		t.Errorf("stored message %q", last.Message)
	}
	if page := e.get(t, "/s/"+sub.ID+"?lang=sv"); page.status != 200 || !strings.Contains(page.body, "Vi har ringt dig.") {
		t.Errorf("status page lacks the message: %d", page.status)
	}
	e.flush(t)
	if n := e.report(t, "service=street-fault").Totals.StatusChanged; n != 1 {
		t.Errorf("status changes counted %d, want 1", n)
	}
}
