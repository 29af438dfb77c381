package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

// drainOutbox reads every event in the outbox (as a notifier would) and
// marks it done.
func drainOutbox(t *testing.T, s *Store) []gateway.NotifyEvent {
	t.Helper()
	ctx := testCtx(t)
	var all []gateway.NotifyEvent
	for {
		evs, err := s.ReadNotifications(ctx, "t", 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return all
		}
		for _, ev := range evs {
			if err := s.NotificationDone(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, evs...)
	}
}

func webhooksOf(evs []gateway.NotifyEvent) (out []gateway.NotifyEvent) {
	for _, ev := range evs {
		if ev.Kind == gateway.KindWebhook {
			out = append(out, ev)
		}
	}
	return out
}

// Department webhook events are written to the notification outbox by the
// scripts that make the events (create, complete, status update), in the
// same step, once each, only for a subscribed department and type.
func TestWebhookEventsWrittenWithTheEvent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		if err := s.EnsureNotifyGroup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.SetWebhookSubscriptions(ctx, map[string][]string{
			"streets": {gateway.EventSubmissionReceived, gateway.EventSubmissionDelivered, gateway.EventStatusChanged},
			"schools": {gateway.EventStatusChanged},
		}); err != nil {
			t.Fatal(err)
		}
		sub := mustCreate(t, s) // department streets
		other := newSubmission()
		other.Department = "schools"
		osub, _, err := s.Create(ctx, other, Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			job := readOne(t, s, "c1")
			if err := s.Complete(ctx, job, "CASE-1", time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		change := gateway.StatusChange{Status: gateway.StatusInProgress, At: time.Now().UTC()}
		for range 2 { // the second is a replay
			for _, id := range []string{sub.ID, osub.ID} {
				if _, _, err := s.UpdateStatusOnce(ctx, id, change, "", "", 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		hooks := webhooksOf(drainOutbox(t, s))
		var got []string
		for _, ev := range hooks {
			got = append(got, ev.Department+" "+ev.Type+" "+string(ev.Status))
			if ev.AtMs <= 0 || !strings.HasPrefix(ev.Event, ev.SubmissionID+".w") {
				t.Errorf("event %+v: want a time and an id <submission>.w<n>", ev)
			}
		}
		want := "streets submission.received received|streets submission.delivered delivered|streets status.changed in_progress|schools status.changed in_progress"
		if strings.Join(got, "|") != want {
			t.Errorf("webhook events:\n got %s\nwant %s", strings.Join(got, "|"), want)
		}
		// Unsubscribed: nothing more.
		if err := s.SetWebhookSubscriptions(ctx, nil); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, s)
		if hooks := webhooksOf(drainOutbox(t, s)); len(hooks) != 0 {
			t.Errorf("events without a subscription: %+v", hooks)
		}
	})
}

// Status updates kept for a submission id the store did not have are
// applied when the submission is there (restored, or replicated late):
// the status page (Get) shows them, once, with the notification event;
// updates from another service's back-end are not applied.
func TestUnknownStatusesShowOnceTheSubmissionIsKnown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		if err := s.EnsureNotifyGroup(ctx); err != nil {
			t.Fatal(err)
		}
		id := gateway.NewID()
		at := time.Now().UTC().Truncate(time.Millisecond)
		for _, u := range []struct {
			service string
			change  gateway.StatusChange
		}{
			{"street-fault", gateway.StatusChange{Status: gateway.StatusDelivered, At: at, Note: "status_update"}},
			{"department:streets", gateway.StatusChange{Status: gateway.StatusInProgress, At: at.Add(time.Second), Note: "status_update", Message: "Vi tittar på det"}},
			{"another-service", gateway.StatusChange{Status: gateway.StatusClosed, At: at.Add(2 * time.Second), Note: "status_update"}},
		} {
			if _, err := s.RecordUnknownStatus(ctx, id, u.service, u.change, "CASE-9", "", 0); err != nil {
				t.Fatal(err)
			}
		}
		s.newID = func() string { return id } // the submission becomes known under that id
		filed := newSubmission()
		filed.ReplyEmail = "r@example.org" // someone to tell (see TestNoNotifyEventWithoutSomeoneToTell)
		sub, created, err := s.Create(ctx, filed, Idempotency{})
		if err != nil || !created || sub.ID != id {
			t.Fatalf("create: %v %v", created, err)
		}
		for range 2 {
			got, err := s.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var hist []string
			for _, h := range got.History {
				hist = append(hist, string(h.Status))
			}
			if got.Status != gateway.StatusInProgress || got.CaseReference != "CASE-9" ||
				strings.Join(hist, ",") != "received,delivered,in_progress" || got.History[2].Message != "Vi tittar på det" {
				t.Fatalf("status page reads %s %q history %v", got.Status, got.CaseReference, hist)
			}
		}
		if n := rdb.Exists(ctx, s.keys.unknownStatus(id)).Val(); n != 0 {
			t.Errorf("the kept updates are still kept after being applied")
		}
		if n := rdb.ZScore(ctx, s.keys.unknownIndex(), id).Err(); n != redis.Nil {
			t.Errorf("the id is still in the index: %v", n)
		}
		var statuses []string
		for _, ev := range drainOutbox(t, s) {
			statuses = append(statuses, string(ev.Status))
		}
		if strings.Join(statuses, ",") != "delivered,in_progress" {
			t.Errorf("notification events %v, want one per applied move", statuses)
		}
	})
}

// Follow-ups: a failed one waits in the retry set until due; a dead
// letter names its department and is replayed once (a second replay
// finds nothing), with a fresh count of attempts.
func TestFollowUpRetryAndReplay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		sub := mustCreate(t, s)
		if _, _, err := s.UpdateStatusOnce(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusNeedsInfo, Message: "Var?"}, "", "", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Answer(ctx, sub.ID, "tok", "Var?", "Här", nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureFollowUpGroup(ctx); err != nil {
			t.Fatal(err)
		}
		read := func() []FollowUpJob {
			jobs, err := s.ReadFollowUps(ctx, "c", 10, 0)
			if err != nil {
				t.Fatal(err)
			}
			return jobs
		}
		jobs := read()
		if len(jobs) != 1 {
			t.Fatalf("%d follow-ups", len(jobs))
		}
		now := time.Now()
		if err := s.FollowUpRetry(ctx, jobs[0], now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.PromoteFollowUps(ctx, now, 10); n != 0 {
			t.Fatalf("promoted %d before due", n)
		}
		if n, _ := s.PromoteFollowUps(ctx, now.Add(2*time.Minute), 10); n != 1 {
			t.Fatalf("promoted %d when due", n)
		}
		jobs = read()
		if len(jobs) != 1 || jobs[0].SubmissionID != sub.ID || jobs[0].Seq != 1 {
			t.Fatalf("after promotion: %+v", jobs)
		}
		if _, err := s.LoadFollowUp(ctx, jobs[0]); err != nil {
			t.Fatal(err)
		}
		if err := s.FollowUpDeadLetter(ctx, jobs[0], "streets", "refused"); err != nil {
			t.Fatal(err)
		}
		dead, err := s.FollowUpDeadLetters(ctx, 10)
		if err != nil || len(dead) != 1 || dead[0].Department != "streets" || dead[0].Reason != "refused" || dead[0].Seq != 1 {
			t.Fatalf("dead letters %+v %v", dead, err)
		}
		for i, want := range []bool{true, false} {
			if _, found, err := s.ReplayFollowUp(ctx, sub.ID, 1); err != nil || found != want {
				t.Fatalf("replay %d: found=%v err=%v", i, found, err)
			}
		}
		jobs = read()
		if len(jobs) != 1 {
			t.Fatalf("%d follow-ups queued by two replays, want 1", len(jobs))
		}
		fu, err := s.LoadFollowUp(ctx, jobs[0])
		if err != nil || fu.Attempt != 1 {
			t.Fatalf("after replay: attempt %v %v", fu, err)
		}
	})
}

// A dead-lettered notification is replayed once, under its event id, with
// attempt 1 and its fields intact.
func TestNotificationReplay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		if err := s.EnsureNotifyGroup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.SetWebhookSubscriptions(ctx, map[string][]string{"streets": {gateway.EventSubmissionReceived}}); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, s)
		evs, err := s.ReadNotifications(ctx, "c", 10, 0)
		if err != nil || len(evs) != 1 {
			t.Fatalf("%d events %v", len(evs), err)
		}
		ev := evs[0]
		ev.Attempt = 5
		if err := s.DeadLetterNotification(ctx, ev, "refused"); err != nil {
			t.Fatal(err)
		}
		for i, want := range []bool{true, false} {
			if _, found, err := s.ReplayNotification(context.Background(), ev.Event); err != nil || found != want {
				t.Fatalf("replay %d: found=%v err=%v", i, found, err)
			}
		}
		again := drainOutbox(t, s)
		if len(again) != 1 {
			t.Fatalf("%d events after two replays, want 1", len(again))
		}
		g := again[0]
		if g.Event != ev.Event || g.Attempt != 1 || g.Kind != gateway.KindWebhook || g.Type != gateway.EventSubmissionReceived ||
			g.Department != "streets" || g.AtMs != ev.AtMs {
			t.Errorf("replayed %+v, was %+v", g, ev)
		}
		if dead, _ := s.NotificationDeadLetters(ctx, 10); len(dead) != 0 {
			t.Errorf("still dead: %+v", dead)
		}
	})
}
