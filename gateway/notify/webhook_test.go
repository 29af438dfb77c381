package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/notify"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/gateway/webhook"
	"github.com/kommun/servicegateway/locales"
)

// receiver is a department's webhook endpoint: it verifies signatures,
// refuses while refuse > 0 (503), and keeps what it accepted.
type receiver struct {
	mu      sync.Mutex
	secret  []byte
	refuse  int
	gone    bool // answer 410 (permanent)
	got     []webhook.Payload
	refused int
	bad     int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<16))
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := webhook.Verify(r.secret, req.Header.Get(webhook.HeaderTimestamp), req.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
		r.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if r.gone {
		r.refused++
		w.WriteHeader(http.StatusGone)
		return
	}
	if r.refuse > 0 {
		r.refuse--
		r.refused++
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var p webhook.Payload
	if err := json.Unmarshal(body, &p); err != nil || p.ID != req.Header.Get(webhook.HeaderEventID) || p.Type != req.Header.Get(webhook.HeaderEvent) {
		r.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.got = append(r.got, p)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) payloads() []webhook.Payload {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]webhook.Payload(nil), r.got...)
}

// counts records the notifier's observations (what the metrics count).
type counts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *counts) Message(kind, channel, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[kind+"/"+channel+"/"+outcome]++
}

func (c *counts) get(k string) int { c.mu.Lock(); defer c.mu.Unlock(); return c.m[k] }

// Department webhooks from the outbox: a receiver that refuses at first
// gets each event once it accepts, signed, with a stable id and no form
// content; a receiver that answers 410 makes a dead letter, and replaying
// it twice delivers it once.
func TestWebhookRefusedThenAcceptedAndReplayedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rdb := redistest.Start(t).Client(t)
	store := redisstore.New(rdb, "t")
	if err := store.EnsureNotifyGroup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.SetWebhookSubscriptions(ctx, map[string][]string{"streets": {gateway.EventSubmissionReceived, gateway.EventStatusChanged}}); err != nil {
		t.Fatal(err)
	}
	rcv := &receiver{secret: []byte("a-webhook-secret-of-32-bytes-000"), refuse: 2}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	obs := &counts{}
	n := notify.New(notify.Config{Outbox: store, Submissions: store, Translations: tr, Now: clk.Now, Consumer: "t1", Observer: obs,
		Webhooks: &webhook.Sender{Subscriptions: map[string]webhook.Subscription{"streets": {URL: srv.URL + "/hooks",
			Secret: rcv.secret, Events: []string{gateway.EventSubmissionReceived, gateway.EventStatusChanged}}}}})
	sub, _, err := store.Create(ctx, &gateway.Submission{Service: "street-fault", ServiceVersion: "1", Department: "streets",
		Channel: gateway.ChannelDigital, Locale: "sv", Payload: map[string]any{"description": "secret case content"}}, redisstore.Idempotency{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.UpdateStatusOnce(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusInProgress, Message: "Vi tittar"}, "K-1", "", 0); err != nil {
		t.Fatal(err)
	}
	drain := func() int {
		evs, err := store.ReadNotifications(ctx, "t1", 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			n.Handle(ctx, ev)
		}
		return len(evs)
	}
	if got := drain(); got != 2 {
		t.Fatalf("outbox held %d events, want 2", got)
	}
	for range 4 {
		clk.Add(2 * time.Hour)
		if _, err := store.PromoteNotifications(ctx, clk.Now(), 100); err != nil {
			t.Fatal(err)
		}
		drain()
	}
	got := rcv.payloads()
	if len(got) != 2 || rcv.refused != 2 || rcv.bad != 0 {
		t.Fatalf("receiver accepted %d (refused %d, bad %d): %+v", len(got), rcv.refused, rcv.bad, got)
	}
	if got[0].Type != gateway.EventSubmissionReceived || got[1].Type != gateway.EventStatusChanged ||
		got[1].Submission.Status != "in_progress" || got[1].Submission.Reference != sub.Reference ||
		got[1].Submission.CaseReference != "K-1" || got[0].ID == got[1].ID || got[0].OccurredAt.IsZero() {
		t.Errorf("payloads %+v", got)
	}
	raw, _ := json.Marshal(got)
	if strings.Contains(string(raw), "secret case content") || strings.Contains(string(raw), "Vi tittar") {
		t.Errorf("a payload carries form content or the message: %s", raw)
	}
	if obs.get("webhook/http/sent") != 2 || obs.get("webhook/http/retry") != 2 {
		t.Errorf("observed %v", obs.m)
	}

	// Permanent refusal: a dead letter; replayed twice, delivered once.
	rcv.mu.Lock()
	rcv.gone = true
	rcv.mu.Unlock()
	if _, _, err := store.UpdateStatusOnce(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusDecided}, "", "", 0); err != nil {
		t.Fatal(err)
	}
	drain()
	dead, err := store.NotificationDeadLetters(ctx, 10)
	if err != nil || len(dead) != 1 || dead[0].Kind != gateway.KindWebhook || dead[0].Department != "streets" {
		t.Fatalf("dead letters %+v %v", dead, err)
	}
	if obs.get("webhook/http/dead_letter") != 1 {
		t.Errorf("observed %v", obs.m)
	}
	rcv.mu.Lock()
	rcv.gone = false
	rcv.mu.Unlock()
	for range 2 {
		if _, _, err := store.ReplayNotification(ctx, dead[0].Event); err != nil {
			t.Fatal(err)
		}
	}
	drain()
	got = rcv.payloads()
	if len(got) != 3 || got[2].Type != gateway.EventStatusChanged || got[2].Submission.Status != "decided" {
		t.Fatalf("after two replays the receiver has %d: %+v", len(got), got)
	}
	// The same event again (e.g. replayed after it was sent): not posted again.
	for range 2 {
		ev := dead[0]
		ev.Attempt = 1
		n.Handle(ctx, ev)
	}
	if len(rcv.payloads()) != 3 {
		t.Errorf("a repeat of a sent event was posted again")
	}
}
