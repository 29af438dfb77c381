package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/delivery"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// followUpConnector is httpConnector with the follow-up ability: it posts
// the answer to the same case system, keyed by the answer's idempotency
// key.
type followUpConnector struct{ httpConnector }

func (c followUpConnector) DeliverFollowUp(ctx context.Context, f *gateway.FollowUp) error {
	body, _ := json.Marshal(map[string]any{"id": f.IdempotencyKey(), "attempt": f.Attempt, "payload": map[string]any{"answer": f.Answer}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return &gateway.DeliveryError{Permanent: true, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", f.IdempotencyKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &gateway.DeliveryError{Err: err}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4:
		return &gateway.DeliveryError{Permanent: true, Err: errors.New(resp.Status)}
	default:
		return &gateway.DeliveryError{Err: errors.New(resp.Status)}
	}
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type outcomes struct {
	mu sync.Mutex
	m  map[string]int
}

func (o *outcomes) Message(kind, channel, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m[kind+"/"+channel+"/"+outcome]++
}

// A follow-up the case system refuses for a while waits in the retry set
// (not pending in the stream, where it was retried only when claimed as
// idle work) until its backoff is due, and is delivered once the case
// system takes it; one refused for good becomes a dead letter of its
// department, and a replay delivers it.
func TestFollowUpBackoffDeadLetterAndReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := redisstore.New(redistest.Start(t).Client(t), "t")
	refuse := map[string]int{} // key -> status to answer until accepted
	var mu sync.Mutex
	cs := newCaseSystem(t, func(key string, n int) int {
		mu.Lock()
		defer mu.Unlock()
		status, special := refuse[key]
		if !special && n <= 2 {
			return http.StatusServiceUnavailable // the first two attempts of a transient one
		}
		return status
	})
	clk := &testClock{t: time.Now()}
	obs := &outcomes{m: map[string]int{}}
	f := &delivery.FollowUps{Queue: store, Consumer: "c1", MaxAttempts: 5, RetryBase: time.Minute, RetryMax: time.Hour,
		Now: clk.Now, Observer: obs, Routes: func(string) (delivery.Route, bool) {
			return delivery.Route{Connector: followUpConnector{httpConnector{url: cs.srv.URL}}}, true
		}}
	if err := store.EnsureFollowUpGroup(ctx); err != nil {
		t.Fatal(err)
	}
	answer := func(text string) *gateway.Submission {
		sub, _, err := store.Create(ctx, &gateway.Submission{Service: service, ServiceVersion: "1", Department: "streets",
			Channel: gateway.ChannelDigital, Locale: "sv", Subject: subject, Payload: map[string]any{"a": "b"}}, redisstore.Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := store.UpdateStatusOnce(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusNeedsInfo, Message: "Var?"}, "K", "", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Answer(ctx, sub.ID, text, "Var?", text, nil, clk.Now()); err != nil {
			t.Fatal(err)
		}
		return sub
	}
	round := func() int { // what the dispatcher's loop does once
		if _, err := store.PromoteFollowUps(ctx, clk.Now(), 100); err != nil {
			t.Fatal(err)
		}
		jobs, err := store.ReadFollowUps(ctx, "c1", 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			f.Handle(ctx, j)
		}
		return len(jobs)
	}
	transient := answer("Vid lekplatsen")
	key := transient.ID + ".answer.1"
	if n := round(); n != 1 {
		t.Fatalf("%d follow-ups read", n)
	}
	if pending, _ := store.ClaimFollowUps(ctx, "c2", 0, 10); len(pending) != 0 {
		t.Fatalf("the failed follow-up is still pending in the stream: %+v", pending)
	}
	if n := round(); n != 0 || cs.callsFor(key) != 1 {
		t.Fatalf("retried before its backoff was due: %d read, %d calls", n, cs.callsFor(key))
	}
	for range 4 {
		clk.Add(2 * time.Hour) // beyond RetryMax: whatever the jitter drew is due
		round()
	}
	if cs.callsFor(key) != 3 {
		t.Fatalf("case system saw %d attempts, want 3 (two refused, one taken)", cs.callsFor(key))
	}

	mu.Lock()
	gone := answer("Nummer 12")
	refuse[gone.ID+".answer.1"] = http.StatusUnprocessableEntity
	mu.Unlock()
	round()
	dead, err := store.FollowUpDeadLetters(ctx, 10)
	if err != nil || len(dead) != 1 || dead[0].SubmissionID != gone.ID || dead[0].Department != "streets" {
		t.Fatalf("dead letters %+v %v", dead, err)
	}
	mu.Lock()
	refuse[gone.ID+".answer.1"] = 0
	mu.Unlock()
	for range 2 {
		if _, _, err := store.ReplayFollowUp(ctx, gone.ID, 1); err != nil {
			t.Fatal(err)
		}
	}
	round()
	if got := cs.callsFor(gone.ID + ".answer.1"); got != 2 {
		t.Errorf("case system saw %d requests for the replayed follow-up, want 2 (refused, then the one replay)", got)
	}
	if d, _ := store.FollowUpDeadLetters(ctx, 10); len(d) != 0 {
		t.Errorf("still dead: %+v", d)
	}
	want := map[string]int{"followup/case_system/sent": 2, "followup/case_system/retry": 2, "followup/case_system/dead_letter": 1}
	for k, v := range want {
		if obs.m[k] != v {
			t.Errorf("%s counted %d, want %d (all: %v)", k, obs.m[k], v, obs.m)
		}
	}
}
