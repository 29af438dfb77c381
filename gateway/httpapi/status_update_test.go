package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

// TestSignedStatusUpdateBoundAndOnce (issue 9, item 4): a signed status
// update names its submission (a signature made for X is refused for Y),
// a replayed request is recorded once, a repeated status is not a "move"
// (usage counts moves), and one submission takes a bounded number of
// updates. Before the fix the signature covered timestamp and body only,
// and every replay added a history entry and counted as moved.
func TestSignedStatusUpdateBoundAndOnce(t *testing.T) {
	deps, store, _ := baseDeps(t)
	deps.Authenticate = httpapi.AuthenticateForTests(testPrincipals)
	deps.Counter = store
	deps.Callbacks = func(id string) httpapi.CallbackVerifier {
		if id == "street-fault" {
			return testVerifier{}
		}
		return nil
	}
	e := &env{app: build(t, deps), store: store}
	ctx := context.Background()
	create := func() *gateway.Submission {
		sub, _, err := store.Create(ctx, &gateway.Submission{Service: "street-fault", ServiceVersion: "1.0.0", Department: "streets-parks",
			Channel: gateway.ChannelAPI, Locale: "sv", Payload: map[string]any{"description": payloadText}}, gateway.Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	x, y := create(), create()
	body := `{"status":"in_progress","message":"Vi tittar på det."}`
	ts := fmt.Sprint(time.Now().Unix())
	sigX := httpjson.Sign([]byte(callbackSecret), ts, gateway.StatusUpdateSigned("POST", x.ID, []byte(body)))
	hdr := []string{"X-Gateway-Timestamp", ts, "X-Gateway-Signature", sigX}
	type answer struct {
		Moved, Replayed bool
	}
	post := func(id, body string, hdr ...string) (int, answer) {
		t.Helper()
		r := e.postJSON(t, gateway.StatusUpdatePath(id), body, hdr...)
		var a answer
		_ = json.Unmarshal([]byte(r.body), &a)
		return r.status, a
	}
	history := func(id string) int {
		t.Helper()
		got, err := store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return len(got.History)
	}

	// Signed for X, sent for Y: refused.
	if code, _ := post(y.ID, body, hdr...); code != 401 {
		t.Errorf("X's signature on Y's path: %d, want 401", code)
	}
	// The old form, over timestamp and body only, names no submission:
	// refused everywhere.
	sigBody := httpjson.Sign([]byte(callbackSecret), ts, []byte(body))
	if code, _ := post(y.ID, body, "X-Gateway-Timestamp", ts, "X-Gateway-Signature", sigBody); code != 401 {
		t.Errorf("a signature over the body alone: %d, want 401", code)
	}
	if n := history(y.ID); n != 1 {
		t.Errorf("Y's history has %d entries after a misdirected update, want 1", n)
	}
	// Signed for X, sent five times: recorded once.
	for i := range 5 {
		code, a := post(x.ID, body, hdr...)
		if code != 200 || a.Moved != (i == 0) || a.Replayed != (i > 0) {
			t.Errorf("send %d: %d %+v, want 200 moved only the first time, replayed after", i+1, code, a)
		}
	}
	if n := history(x.ID); n != 2 {
		t.Errorf("X's history has %d entries after five sends of one update, want 2", n)
	}
	// The same status again, newer and from the department: recorded, but
	// not a move (usage counts moves).
	if code, a := post(x.ID, `{"status":"in_progress","message":"Fortfarande på gång."}`, "X-Test-Principal", "streets"); code != 200 || a.Moved {
		t.Errorf("repeated status: %d %+v, want 200 not moved", code, a)
	}
	// Bounded per submission: the 31st update within the hour is 429.
	var last int
	for i := range 40 {
		last, _ = post(y.ID, fmt.Sprintf(`{"status":"in_progress","message":"m%d"}`, i), "X-Test-Principal", "streets")
		if last == 429 {
			if i < 30-1 {
				t.Errorf("limited after %d updates", i+1)
			}
			break
		}
	}
	if last != 429 {
		t.Errorf("40 updates of one submission were all accepted")
	}
}

// TestStatusUpdateForUnknownSubmissionKept (issue 9, item 15): after a
// failover to a lagging replica the gateway may no longer have a submission
// the back-end holds. A signed update for it (the body names the service,
// so the signature can be checked) is kept (202, known false), once;
// without a valid signature it is 404 as before. Before, every such update
// was answered 404 and lost.
func TestStatusUpdateForUnknownSubmissionKept(t *testing.T) {
	deps, store, _ := baseDeps(t)
	deps.Counter = store
	deps.Callbacks = func(id string) httpapi.CallbackVerifier {
		if id == "street-fault" {
			return testVerifier{}
		}
		return nil
	}
	e := &env{app: build(t, deps), store: store}
	id := gateway.NewID() // never stored here
	body := `{"status":"decided","message":"Beviljat","case_reference":"KS-7","service":"street-fault"}`
	ts := fmt.Sprint(time.Now().Unix())
	sig := httpjson.Sign([]byte(callbackSecret), ts, gateway.StatusUpdateSigned("POST", id, []byte(body)))
	for i := range 2 {
		r := e.postJSON(t, gateway.StatusUpdatePath(id), body, "X-Gateway-Timestamp", ts, "X-Gateway-Signature", sig)
		if r.status != 202 || !strings.Contains(r.body, `"known":false`) || strings.Contains(r.body, `"replayed":true`) != (i > 0) {
			t.Fatalf("send %d: %d %s; want 202 known false (replayed the second time)", i+1, r.status, r.body)
		}
	}
	kept, err := store.UnknownStatuses(context.Background(), id)
	if err != nil || len(kept) != 1 || !strings.Contains(kept[0], `"KS-7"`) || !strings.Contains(kept[0], "decided") {
		t.Fatalf("kept %v, %v; want the one update", kept, err)
	}
	// Not signed, signed for another id, or naming no service: 404.
	id2 := gateway.NewID()
	other := httpjson.Sign([]byte(callbackSecret), ts, gateway.StatusUpdateSigned("POST", gateway.NewID(), []byte(body)))
	noService := `{"status":"decided"}`
	cases := []struct {
		name, body string
		hdr        []string
	}{
		{"unsigned", body, nil},
		{"signed for another id", body, []string{"X-Gateway-Timestamp", ts, "X-Gateway-Signature", other}},
		{"no service", noService, []string{"X-Gateway-Timestamp", ts, "X-Gateway-Signature",
			httpjson.Sign([]byte(callbackSecret), ts, gateway.StatusUpdateSigned("POST", id2, []byte(noService)))}},
	}
	for _, tc := range cases {
		if r := e.postJSON(t, gateway.StatusUpdatePath(id2), tc.body, tc.hdr...); r.status != 404 {
			t.Errorf("%s: %d, want 404", tc.name, r.status)
		}
	}
	if kept, _ := store.UnknownStatuses(context.Background(), id2); len(kept) != 0 {
		t.Errorf("refused updates were kept: %v", kept)
	}
}
