package redisstore

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

// The outbox event is written by the status script itself, once per move,
// and only for a submission with someone to tell.
func TestStatusMoveWritesOneOutboxEvent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, _ redis.UniversalClient) { testOutbox(t, s) })
}

func testOutbox(t *testing.T, s *Store) {
	ctx := testCtx(t)
	if err := s.EnsureNotifyGroup(ctx); err != nil {
		t.Fatal(err)
	}
	owned := &gateway.Submission{Service: "svc", ServiceVersion: "1", Department: "d", Channel: gateway.ChannelDigital,
		Locale: "sv", Subject: "199001012380", Payload: map[string]any{"a": "b"}}
	anon := &gateway.Submission{Service: "svc", ServiceVersion: "1", Department: "d", Channel: gateway.ChannelDigital,
		Locale: "sv", Payload: map[string]any{"a": "b"}}
	var ids []string
	for _, sub := range []*gateway.Submission{owned, anon} {
		got, _, err := s.Create(ctx, sub, Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got.ID)
	}
	// the owner saves preferences after filing: someone to tell
	if err := s.SetNotifyPrefs(ctx, owned.Subject, gateway.NotifyPrefs{Email: "a@example.org",
		Events: []gateway.Status{gateway.StatusInProgress}, UpdatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	change := gateway.StatusChange{Status: gateway.StatusInProgress, At: time.Now().UTC()}
	for _, id := range ids {
		for range 2 { // the second is a replay of the same entry
			if _, _, err := s.UpdateStatusOnce(ctx, id, change, "", "", 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	evs, err := s.ReadNotifications(ctx, "t", 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].SubmissionID != ids[0] || evs[0].Status != gateway.StatusInProgress || evs[0].Event != ids[0]+".1" {
		t.Fatalf("outbox: %+v", evs)
	}
	// Retry then promote: the same event id comes back with attempt 2.
	if err := s.RetryNotification(ctx, evs[0], time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryNotification(ctx, evs[0], time.Now()); err != nil { // a re-run moves nothing
		t.Fatal(err)
	}
	if n, err := s.PromoteNotifications(ctx, time.Now().Add(time.Second), 10); err != nil || n != 1 {
		t.Fatalf("promote: %d %v", n, err)
	}
	again, err := s.ReadNotifications(ctx, "t", 10, 0)
	if err != nil || len(again) != 1 || again[0].Event != evs[0].Event || again[0].Attempt != 2 {
		t.Fatalf("after retry: %+v %v", again, err)
	}
	// A second question while one is open is a new event; its replay is not.
	for i, q := range []string{"Which lamp?", "Which street?", "Which street?"} {
		if _, _, err := s.UpdateStatusOnce(ctx, ids[0], gateway.StatusChange{Status: gateway.StatusNeedsInfo, Message: q,
			At: change.At.Add(time.Duration(min(i, 1)+1) * time.Second)}, "", "", 0); err != nil {
			t.Fatal(err)
		}
	}
	if qs, err := s.ReadNotifications(ctx, "t", 10, 0); err != nil || len(qs) != 2 || qs[1].Event != ids[0]+".3" {
		t.Fatalf("questions: %+v %v", qs, err)
	}
	if err := s.DeadLetterNotification(ctx, again[0], "smtp 550"); err != nil {
		t.Fatal(err)
	}
	dead, err := s.NotificationDeadLetters(ctx, 10)
	if err != nil || len(dead) != 1 || dead[0].Reason != "smtp 550" {
		t.Fatalf("dead: %+v %v", dead, err)
	}
}

// Issue 10 "Measured": a submission whose owner never saved notification
// preferences and gave no reply address writes no notification event on
// delivery or status change (the notifier would read it and the
// preferences to send nothing), while the department's webhooks still get
// theirs; once the owner saves preferences, even after filing, the next
// status change writes the event, and a later filing sees them at once.
func TestNoNotifyEventWithoutSomeoneToTell(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, _ redis.UniversalClient) {
		ctx := testCtx(t)
		if err := s.EnsureNotifyGroup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.SetWebhookSubscriptions(ctx, map[string][]string{
			"streets": {gateway.EventSubmissionDelivered, gateway.EventStatusChanged},
		}); err != nil {
			t.Fatal(err)
		}
		visitor := newSubmission() // department streets
		visitor.Subject = "199001012380"
		sub, _, err := s.Create(ctx, visitor, Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, readOne(t, s, "c1"), "CASE-1", time.Hour); err != nil {
			t.Fatal(err)
		}
		at := time.Now().UTC()
		if _, _, err := s.UpdateStatusOnce(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusInProgress, At: at}, "", "", 0); err != nil {
			t.Fatal(err)
		}
		evs := drainOutbox(t, s)
		hooks := webhooksOf(evs)
		if len(evs) != 2 || len(hooks) != 2 || hooks[0].Type != gateway.EventSubmissionDelivered || hooks[1].Type != gateway.EventStatusChanged {
			t.Fatalf("without preferences want the 2 webhook events only, got %+v", evs)
		}

		// preferences saved after filing: the next change is told
		if err := s.SetNotifyPrefs(ctx, visitor.Subject, gateway.NotifyPrefs{Email: "v@example.org",
			Events: []gateway.Status{gateway.StatusDecided}, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.UpdateStatusOnce(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusDecided, At: at.Add(time.Second)}, "", "", 0); err != nil {
			t.Fatal(err)
		}
		evs = drainOutbox(t, s)
		if len(evs) != 2 || len(webhooksOf(evs)) != 1 {
			t.Fatalf("after saving preferences want the resident's event and the webhook's, got %+v", evs)
		}
		for _, ev := range evs {
			if ev.Kind == "" && (ev.SubmissionID != sub.ID || ev.Status != gateway.StatusDecided || ev.Event != sub.ID+".1") {
				t.Fatalf("resident's event: %+v", ev)
			}
		}

		// a later filing by the same owner knows at once
		again := newSubmission()
		again.Subject = visitor.Subject
		next, _, err := s.Create(ctx, again, Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.UpdateStatusOnce(ctx, next.ID, gateway.StatusChange{Status: gateway.StatusInProgress, At: at}, "", "", 0); err != nil {
			t.Fatal(err)
		}
		if evs = drainOutbox(t, s); len(evs) != 2 || len(webhooksOf(evs)) != 1 {
			t.Fatalf("a filing after the preferences: %+v", evs)
		}

		// anonymous with a reply address: told without preferences
		anon := newSubmission()
		anon.Subject, anon.ReplyEmail = "", "r@example.org"
		asub, _, err := s.Create(ctx, anon, Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.UpdateStatusOnce(ctx, asub.ID, gateway.StatusChange{Status: gateway.StatusInProgress, At: at}, "", "", 0); err != nil {
			t.Fatal(err)
		}
		if evs = drainOutbox(t, s); len(evs) != 2 || len(webhooksOf(evs)) != 1 {
			t.Fatalf("reply address: %+v", evs)
		}
	})
}
