package redisstore

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

// Data minimisation: once delivered, the payload and then the record,
// history and reference go when the service's retention has passed (here
// a short one). Runs on redis-server and on the demo's miniredis, whose
// keys expire by the wall clock.
func TestRetentionRemovesPayloadAndMetadata(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		sub := mustCreate(t, s)
		job := readOne(t, s, "c1")
		if err := s.Complete(ctx, job, "KS-1", 400*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, sub.ID)
		if err != nil || got.Payload == nil || got.Status != gateway.StatusDelivered {
			t.Fatalf("right after delivery: %+v %v", got, err)
		}
		for _, k := range []string{s.keys.payload(sub.ID), s.keys.sub(sub.ID), s.keys.hist(sub.ID), s.keys.ref(sub.Reference)} {
			if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > 400*time.Millisecond {
				t.Errorf("%s: ttl %v, want the retention", k, ttl)
			}
		}
		// A status update keeps to the retention too.
		if _, err := s.UpdateStatus(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusInProgress}, ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(700 * time.Millisecond)
		if _, err := s.Get(ctx, sub.ID); errCode(err) != gateway.ENotFound {
			t.Fatalf("after the retention: %v, want not found", err)
		}
		n, _ := rdb.Exists(ctx, s.keys.payload(sub.ID), s.keys.sub(sub.ID), s.keys.hist(sub.ID), s.keys.ref(sub.Reference)).Result()
		if n != 0 {
			t.Errorf("%d keys outlived the retention", n)
		}
	})
}

func TestDeadLetterAdministration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		a, b := mustCreate(t, s), mustCreate(t, s)
		for range 2 {
			if err := s.DeadLetter(ctx, readOne(t, s, "c1"), "permanent"); err != nil {
				t.Fatal(err)
			}
		}
		list, total, err := s.DeadLetterPage(ctx, 0, 10)
		if err != nil || total != 2 || len(list) != 2 {
			t.Fatalf("page: %+v %d %v", list, total, err)
		}
		if list[0].Reason != "permanent" || list[0].Attempts != 1 || list[0].Reference == "" || list[0].DeadAt.IsZero() {
			t.Errorf("dead letter %+v", list[0])
		}
		if page, _, _ := s.DeadLetterPage(ctx, 1, 10); len(page) != 1 {
			t.Errorf("offset 1: %d", len(page))
		}
		// Close a: failed, payload gone at once, record expires.
		if moved, err := s.CloseDeadLetter(ctx, a.ID, gateway.StatusFailed, "Kontakta oss", time.Hour); err != nil || !moved {
			t.Fatalf("close: moved=%v %v", moved, err)
		}
		got, _ := s.Get(ctx, a.ID)
		if got.Status != gateway.StatusFailed || got.Payload != nil || got.Delayed {
			t.Errorf("closed: %+v", got)
		}
		if ttl := rdb.PTTL(ctx, s.keys.sub(a.ID)).Val(); ttl <= 0 {
			t.Errorf("closed record has no expiry: %v", ttl)
		}
		if _, err := s.CloseDeadLetter(ctx, a.ID, gateway.StatusFailed, "", time.Hour); errCode(err) != gateway.EConflict {
			t.Errorf("closing twice: %v", err)
		}
		if _, err := s.CloseDeadLetter(ctx, b.ID, gateway.StatusInProgress, "", time.Hour); errCode(err) != gateway.EInvalid {
			t.Errorf("closing as in_progress: %v", err)
		}
		if _, dead, _ := s.DeadLetterInfo(ctx, b.ID); !dead {
			t.Errorf("b is no longer dead")
		}
	})
}

// Defer puts a job back without counting an attempt.
func TestDefer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		sub := mustCreate(t, s)
		job := readOne(t, s, "c1")
		if err := s.Defer(ctx, job, time.Now().Add(-time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if err := s.Defer(ctx, job, time.Now()); !errors.Is(err, gateway.ErrNotPending) {
			t.Errorf("deferring twice: %v", err)
		}
		got, _ := s.Get(ctx, sub.ID)
		if got.Attempts != 0 {
			t.Errorf("attempts %d after a deferral, want 0", got.Attempts)
		}
		if n, err := s.PromoteDue(ctx, time.Now(), 10); err != nil || n != 1 {
			t.Fatalf("promote: %d %v", n, err)
		}
		if job := readOne(t, s, "c1"); job.SubmissionID != sub.ID {
			t.Errorf("deferred job did not come back")
		}
	})
}

func TestIdempotencyLock(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		idem := Idempotency{Scope: "ip:203.0.113.7", Key: "k1"}
		release, err := s.LockIdempotency(ctx, idem, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.LockIdempotency(ctx, idem, time.Minute); !errors.Is(err, ErrInFlight) || errCode(err) != CodeInFlight {
			t.Fatalf("second lock: %v, want in flight", err)
		}
		if _, err := s.LockIdempotency(ctx, Idempotency{Scope: "ip:203.0.113.8", Key: "k1"}, time.Minute); err != nil {
			t.Errorf("another caller's key is its own: %v", err)
		}
		release()
		release2, err := s.LockIdempotency(ctx, idem, time.Minute)
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		release() // a stale release does not free the new holder's lock
		if _, err := s.LockIdempotency(ctx, idem, time.Minute); !errors.Is(err, ErrInFlight) {
			t.Errorf("a stale release freed another request's lock: %v", err)
		}
		release2()
		if r, err := s.LockIdempotency(ctx, Idempotency{}, time.Minute); err != nil || r == nil {
			t.Errorf("no key: %v", err)
		}
	})
}

// Two updates of the same rank: the newer wins whatever order they
// arrive in.
func TestUpdateStatusSameRankByTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		sub := mustCreate(t, s)
		now := time.Now().UTC()
		if moved, err := s.UpdateStatus(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusInProgress, At: now}, ""); err != nil || !moved {
			t.Fatalf("in_progress: %v %v", moved, err)
		}
		if moved, _ := s.UpdateStatus(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusNeedsInfo, At: now.Add(-time.Minute)}, ""); moved {
			t.Errorf("an older needs_info moved the status")
		}
		if moved, _ := s.UpdateStatus(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusNeedsInfo, At: now.Add(time.Minute)}, ""); !moved {
			t.Errorf("a newer needs_info did not move the status")
		}
		got, _ := s.Get(ctx, sub.ID)
		if got.Status != gateway.StatusNeedsInfo || len(got.History) != 4 {
			t.Errorf("%s with %d entries", got.Status, len(got.History))
		}
	})
}

// deadLetterOne files sub and dead-letters it as the dispatcher would after
// a permanent refusal.
func deadLetterOne(t *testing.T, s *Store, sub *gateway.Submission) *gateway.Submission {
	t.Helper()
	ctx := testCtx(t)
	got, _, err := s.Create(ctx, sub, Idempotency{})
	if err != nil {
		t.Fatal(err)
	}
	job := readOne(t, s, "c1")
	if job.SubmissionID != got.ID {
		t.Fatalf("job for %s, want %s", job.SubmissionID, got.ID)
	}
	if err := s.DeadLetter(ctx, job, "permanent"); err != nil {
		t.Fatal(err)
	}
	return got
}

// Closing a dead letter is a status change like a case system's: the
// resident with a reply address gets exactly one notification event and
// the subscribed department exactly one status.changed event, written with
// the status; a submission nobody can be told about gets none. (Before,
// the close wrote no event at all: residents and departments were never
// told that the submission was closed.)
func TestCloseDeadLetterTellsResidentAndDepartment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		if err := s.EnsureNotifyGroup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.SetWebhookSubscriptions(ctx, map[string][]string{"streets": {gateway.EventStatusChanged}}); err != nil {
			t.Fatal(err)
		}
		anon := newSubmission() // department streets: subscribed
		anon.Subject, anon.ReplyEmail = "", "svar@example.org"
		told := deadLetterOne(t, s, anon)
		silent := newSubmission() // an owner without preferences, no reply address
		silent.Department = "schools"
		untold := deadLetterOne(t, s, silent)
		drainOutbox(t, s) // nothing so far but what filing wrote

		if moved, err := s.CloseDeadLetter(ctx, told.ID, gateway.StatusFailed, "Vi har ringt dig.", time.Hour); err != nil || !moved {
			t.Fatalf("close: moved=%v %v", moved, err)
		}
		evs := drainOutbox(t, s)
		var resident, hooks []gateway.NotifyEvent
		for _, ev := range evs {
			if ev.Kind == gateway.KindWebhook {
				hooks = append(hooks, ev)
			} else {
				resident = append(resident, ev)
			}
		}
		if len(resident) != 1 || resident[0].SubmissionID != told.ID || resident[0].Status != gateway.StatusFailed || resident[0].Event != told.ID+".1" {
			t.Errorf("resident's events %+v, want one for failed", resident)
		}
		if len(hooks) != 1 || hooks[0].Type != gateway.EventStatusChanged || hooks[0].Status != gateway.StatusFailed || hooks[0].Department != "streets" {
			t.Errorf("webhook events %+v, want one status.changed", hooks)
		}
		got, err := s.Get(ctx, told.ID)
		if err != nil {
			t.Fatal(err)
		}
		if last := got.History[len(got.History)-1]; got.Status != gateway.StatusFailed || last.Message != "Vi har ringt dig." {
			t.Errorf("after close: %s, last entry %+v", got.Status, last)
		}

		if moved, err := s.CloseDeadLetter(ctx, untold.ID, gateway.StatusClosed, "", time.Hour); err != nil || !moved {
			t.Fatalf("close: moved=%v %v", moved, err)
		}
		if evs := drainOutbox(t, s); len(evs) != 0 {
			t.Errorf("events for a submission nobody can be told about: %+v", evs)
		}
		if got, _ := s.Get(ctx, untold.ID); got.Status != gateway.StatusClosed {
			t.Errorf("status %q, want closed", got.Status)
		}
	})
}

// A close re-sent by go-redis after a broken connection (the same token)
// writes no second event and answers as the first run did.
func TestCloseDeadLetterRerunWritesOneEvent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		if err := s.EnsureNotifyGroup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.SetWebhookSubscriptions(ctx, map[string][]string{"streets": {gateway.EventStatusChanged}}); err != nil {
			t.Fatal(err)
		}
		anon := newSubmission()
		anon.Subject, anon.ReplyEmail = "", "svar@example.org"
		sub := deadLetterOne(t, s, anon)
		drainOutbox(t, s)
		k, id := s.keys, sub.ID
		run := func(status gateway.Status, tok string) int {
			n, err := closeDeadScript.Run(ctx, rdb,
				[]string{k.sub(id), k.payload(id), k.hist(id), k.ref(sub.Reference), k.dead(), k.outbox(), k.hooks()},
				id, string(status), status.Rank(), `{"status":"`+string(status)+`"}`, 0, time.Now().UnixMilli(), tok, MaxHistory, MaxOutbox).Int()
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		for r := 1; r <= 2; r++ {
			if n := run(gateway.StatusClosed, "tok"); n != 1 {
				t.Fatalf("run %d: %d, want 1", r, n)
			}
		}
		if evs := drainOutbox(t, s); len(evs) != 2 || len(webhooksOf(evs)) != 1 {
			t.Errorf("after a close and its re-run: %+v, want the resident's event and the webhook's", evs)
		}
		if n := rdb.LLen(ctx, k.hist(id)).Val(); n != 2 {
			t.Errorf("history of %d entries, want 2 (received, closed)", n)
		}
		if n := run(gateway.StatusClosed, "other"); n != 0 {
			t.Errorf("another close: %d, want 0 (not dead-lettered)", n)
		}

		// Closed with the status it had already: no move, no event; its
		// re-run answers the same.
		if err := rdb.ZAdd(ctx, k.dead(), redis.Z{Score: 1, Member: id}).Err(); err != nil {
			t.Fatal(err)
		}
		for r := 1; r <= 2; r++ {
			if n := run(gateway.StatusClosed, "tok2"); n != 2 {
				t.Fatalf("same status, run %d: %d, want 2", r, n)
			}
		}
		if evs := drainOutbox(t, s); len(evs) != 0 {
			t.Errorf("events without a move: %+v", evs)
		}
	})
}
