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
