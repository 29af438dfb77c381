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
	"github.com/kommun/servicegateway/gateway/redisstore"
)

// messageDeadLetters makes a dead-lettered webhook event and a
// dead-lettered follow-up of a streets-parks submission.
func messageDeadLetters(t *testing.T, s *redisstore.Store) (*gateway.Submission, gateway.NotifyEvent) {
	t.Helper()
	ctx := context.Background()
	if err := s.EnsureNotifyGroup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.SetWebhookSubscriptions(ctx, map[string][]string{"streets-parks": {gateway.EventSubmissionReceived}}); err != nil {
		t.Fatal(err)
	}
	sub, _, err := s.Create(ctx, &gateway.Submission{Service: "street-fault", ServiceVersion: "1.0.0", Department: "streets-parks",
		Channel: gateway.ChannelAPI, Locale: "sv", Payload: map[string]any{"description": payloadText}}, gateway.Idempotency{})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.ReadNotifications(ctx, "t", 10, 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("outbox: %v %v", evs, err)
	}
	if err := s.DeadLetterNotification(ctx, evs[0], "webhook receiver answered 410"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UpdateStatusOnce(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusNeedsInfo, Message: "Var?"}, "", "", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Answer(ctx, sub.ID, "tok", "Var?", "Vid dammen", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureFollowUpGroup(ctx); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.ReadFollowUps(ctx, "t", 10, 0)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("follow-ups: %v %v", jobs, err)
	}
	if err := s.FollowUpDeadLetter(ctx, jobs[0], "streets-parks", "case system refused"); err != nil {
		t.Fatal(err)
	}
	return sub, evs[0]
}

// Message dead letters (webhooks, messages, follow-ups) by department:
// another department's administrator neither sees nor replays them; the
// own department's replays each once (a second replay is 404), and each
// replay is audited with the reference. The page lists them and replays
// through a form.
func TestMessageDeadLettersReplayByDepartment(t *testing.T) {
	deps, store, _ := baseDeps(t)
	deps.MessageDeadLetters = store
	deps.Authenticate = httpapi.AuthenticateForTests(map[string]*gateway.Principal{
		"admin":        {Subject: "admin-1", Roles: []gateway.Role{gateway.RoleAdmin}},
		"admin-social": {Subject: "admin-2", Roles: []gateway.Role{gateway.RoleAdmin}, Department: "social-care"},
		"admin-street": {Subject: "admin-3", Roles: []gateway.Role{gateway.RoleAdmin}, Department: "streets-parks"},
		"resident":     {Subject: "res-1", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceSubstantial},
	})
	e := &env{app: build(t, deps), store: store}
	sub, ev := messageDeadLetters(t, store)
	list := func(who string) (n, f int, body string) {
		r := e.get(t, "/api/v1/admin/message-dead-letters", "X-Test-Principal", who)
		var v struct {
			Notifications []gateway.NotifyEvent  `json:"notifications"`
			FollowUps     []gateway.FollowUpDead `json:"followups"`
		}
		if r.status != 200 || json.Unmarshal([]byte(r.body), &v) != nil {
			t.Fatalf("list as %s: %d %s", who, r.status, r.body)
		}
		return len(v.Notifications), len(v.FollowUps), r.body
	}
	if r := e.get(t, "/api/v1/admin/message-dead-letters", "X-Test-Principal", "resident"); r.status != 403 {
		t.Errorf("a resident lists: %d", r.status)
	}
	if n, f, body := list("admin-social"); n+f != 0 {
		t.Fatalf("another department's admin lists them: %s", body)
	}
	if n, f, body := list("admin"); n != 1 || f != 1 || strings.Contains(body, payloadText) || !strings.Contains(body, `"kind":"webhook"`) {
		t.Fatalf("the municipality's admin: %d %d %s", n, f, body)
	}
	replayN := `{"event":"` + ev.Event + `"}`
	replayF := `{"id":"` + sub.ID + `","seq":1}`
	for _, tc := range []struct{ path, body string }{
		{"/api/v1/admin/message-dead-letters/notifications/replay", replayN},
		{"/api/v1/admin/message-dead-letters/followups/replay", replayF},
	} {
		if r := e.postJSON(t, tc.path, tc.body, "X-Test-Principal", "admin-social"); r.status != 404 {
			t.Errorf("another department's admin replays %s: %d", tc.path, r.status)
		}
		if r := e.postJSON(t, tc.path, tc.body, "X-Test-Principal", "admin-street"); r.status != 202 || !strings.Contains(r.body, sub.Reference) {
			t.Fatalf("own department's admin replays %s: %d %s", tc.path, r.status, r.body)
		}
		if r := e.postJSON(t, tc.path, tc.body, "X-Test-Principal", "admin-street"); r.status != 404 {
			t.Errorf("a second replay of %s: %d, want 404", tc.path, r.status)
		}
	}
	if r := e.postJSON(t, "/api/v1/admin/message-dead-letters/notifications/replay", `{"event":"x","more":1}`, "X-Test-Principal", "admin"); r.status != 400 && r.status != 422 {
		t.Errorf("an unknown field: %d", r.status)
	}
	ctx := context.Background()
	evs, _ := store.ReadNotifications(ctx, "t", 10, 0)
	jobs, _ := store.ReadFollowUps(ctx, "t", 10, 0)
	if len(evs) != 1 || evs[0].Event != ev.Event || evs[0].Attempt != 1 || len(jobs) != 1 {
		t.Fatalf("queued after replays: %+v %+v", evs, jobs)
	}
	entries, _, err := store.Audit(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, a := range entries {
		actions[a.Action] = a.Reference + " " + a.Actor
	}
	if actions["message_replayed"] != sub.Reference+" admin-3" || actions["followup_replayed"] != sub.Reference+" admin-3" {
		t.Errorf("audit: %+v", entries)
	}
	for _, a := range entries {
		if strings.Contains(a.Reference+a.Service, sub.ID) {
			t.Errorf("the audit names the submission id: %+v", a)
		}
	}

	// The page: both lists, replay through the form.
	sub2, ev2 := messageDeadLetters(t, store)
	r := e.get(t, "/admin/message-dead-letters?lang=en", "X-Test-Principal", "admin")
	if r.status != 200 || !strings.Contains(r.body, sub2.Reference) || !strings.Contains(r.body, "Webhook") ||
		strings.Contains(r.body, payloadText) || strings.Contains(r.body, "<script") {
		t.Fatalf("page: %d\n%s", r.status, r.body)
	}
	var cookie string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "gw_csrf=") {
			cookie = strings.SplitN(c, ";", 2)[0]
		}
	}
	csrf := hidden(t, r.body, "_csrf")
	r = e.postForm(t, "/admin/message-dead-letters/notifications/replay", cookie, url.Values{"_csrf": {csrf}, "event": {ev2.Event}}, "X-Test-Principal", "admin")
	if r.status != 303 || !strings.HasPrefix(r.header.Get("Location"), "/admin/message-dead-letters?done=replayed") {
		t.Fatalf("replay form: %d %q", r.status, r.header.Get("Location"))
	}
	if r = e.get(t, r.header.Get("Location"), "X-Test-Principal", "admin"); !strings.Contains(r.body, `role="status"`) {
		t.Errorf("no notice after the replay")
	}
	if dead, _ := store.NotificationDeadLetters(ctx, 10); len(dead) != 0 {
		t.Errorf("still dead after the form's replay: %+v", dead)
	}
}

// gateway_messages_total has its children from the start (pre-resolved),
// and counts.
func TestMessageMetrics(t *testing.T) {
	e, m := newDeliveryEnv(t)
	m.Message("notification", "sms", "retry")
	m.Message("webhook", "http", "dead_letter")
	m.Message("bogus", "x", "y") // ignored
	r := e.get(t, "/metrics")
	for _, want := range []string{
		`gateway_messages_total{channel="email",kind="notification",outcome="sent"} 0`,
		`gateway_messages_total{channel="sms",kind="notification",outcome="retry"} 1`,
		`gateway_messages_total{channel="http",kind="webhook",outcome="dead_letter"} 1`,
		`gateway_messages_total{channel="case_system",kind="followup",outcome="sent"} 0`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(r.body, `kind="bogus"`) {
		t.Errorf("an unknown label set was created")
	}
}

// A status update for a submission the gateway lost (a failover to a
// lagging replica) is kept (202, known: false); when the submission comes
// back (restored), the resident's status page shows the update.
func TestKeptStatusUpdateShowsWhenTheSubmissionReturns(t *testing.T) {
	deps, store, srv := baseDeps(t)
	deps.Authenticate = httpapi.AuthenticateForTests(testPrincipals)
	e := &env{app: build(t, deps), store: store}
	ctx := context.Background()
	sub, _, err := store.Create(ctx, &gateway.Submission{Service: "street-fault", ServiceVersion: "1.0.0", Department: "streets-parks",
		Channel: gateway.ChannelAPI, Locale: "sv", Payload: map[string]any{"description": payloadText}}, gateway.Idempotency{})
	if err != nil {
		t.Fatal(err)
	}
	rdb := srv.Client(t)
	keys := []string{"test:{q}:sub:" + sub.ID, "test:{q}:hist:" + sub.ID, "test:{q}:payload:" + sub.ID}
	dumps := map[string]string{}
	for _, k := range keys {
		d, err := rdb.Dump(ctx, k).Result()
		if err != nil {
			t.Fatalf("dump %s: %v", k, err)
		}
		dumps[k] = d
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil { // lost
		t.Fatal(err)
	}
	const msg = "Vi byter lampan i veckan"
	r := e.postJSON(t, "/api/v1/submissions/"+sub.ID+"/status", `{"status":"in_progress","message":"`+msg+`","case_reference":"GATA-7"}`,
		"X-Test-Principal", "streets")
	if r.status != 202 || !strings.Contains(r.body, `"known":false`) {
		t.Fatalf("update for the lost submission: %d %s", r.status, r.body)
	}
	for k, d := range dumps { // restored
		if err := rdb.Restore(ctx, k, 0, d).Err(); err != nil {
			t.Fatal(err)
		}
	}
	page := e.get(t, "/s/"+sub.ID+"?lang=en")
	if page.status != 200 || !strings.Contains(page.body, msg) || !strings.Contains(page.body, "GATA-7") {
		t.Fatalf("status page after the submission returned: %d\n%s", page.status, page.body)
	}
	got, err := store.Get(ctx, sub.ID)
	if err != nil || got.Status != gateway.StatusInProgress || len(got.History) != 2 {
		t.Fatalf("after: %+v %v", got, err)
	}
}
