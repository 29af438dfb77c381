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
		if err := s.CloseDeadLetter(ctx, a.ID, gateway.StatusFailed, "Kontakta oss", time.Hour); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, a.ID)
		if got.Status != gateway.StatusFailed || got.Payload != nil || got.Delayed {
			t.Errorf("closed: %+v", got)
		}
		if ttl := rdb.PTTL(ctx, s.keys.sub(a.ID)).Val(); ttl <= 0 {
			t.Errorf("closed record has no expiry: %v", ttl)
		}
		if err := s.CloseDeadLetter(ctx, a.ID, gateway.StatusFailed, "", time.Hour); errCode(err) != gateway.EConflict {
			t.Errorf("closing twice: %v", err)
		}
		if err := s.CloseDeadLetter(ctx, b.ID, gateway.StatusInProgress, "", time.Hour); errCode(err) != gateway.EInvalid {
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
