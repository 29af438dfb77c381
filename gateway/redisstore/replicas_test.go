package redisstore

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// TestIndexesTrimmedByRetention (issue 9, item 17): the department's and a
// person's indexes drop entries older than IndexKeep on write and on list,
// however many there are. Before, only the newest 500 were ever looked at,
// so ids past retention stayed for ever.
func TestIndexesTrimmedByRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		s.IndexKeep = time.Hour
		now := time.Now()
		s.now = func() time.Time { return now.Add(-2 * time.Hour) }
		for range 3 {
			mustCreate(t, s)
		}
		sub := newSubmission()
		dept, owner := s.keys.dept(sub.Department), s.keys.subject(sub.Subject)
		s.now = func() time.Time { return now }
		// On list: the old entries go, although their records still exist.
		if _, err := s.DepartmentSubmissions(ctx, sub.Department, 10); err != nil {
			t.Fatal(err)
		}
		if n := rdb.ZCard(ctx, dept).Val(); n != 0 {
			t.Errorf("department index keeps %d entries past IndexKeep after a list", n)
		}
		// On write: a new submission trims the person's index.
		mustCreate(t, s)
		if n := rdb.ZCard(ctx, owner).Val(); n != 1 {
			t.Errorf("person's index has %d entries after a write, want 1 (the new one)", n)
		}
		if n := rdb.ZCard(ctx, dept).Val(); n != 1 {
			t.Errorf("department index has %d entries, want 1", n)
		}
	})
}

// TestWaitReplicas (issue 9, item 15): with WaitReplicas set, Create issues
// WAIT on the connection of the write; with the replica gone the receipt
// is not given (outcome unknown: the submission is on the primary, and may
// be lost on a failover or delivered), and with it back it is.
func TestWaitReplicas(t *testing.T) {
	primary, replica, s := replicatedStore(t, 300*time.Millisecond)
	rdb := primary.Client(t)
	ctx := testCtx(t)
	if _, created, err := s.Create(ctx, newSubmission(), Idempotency{}); err != nil || !created {
		t.Fatalf("with the replica: created=%v err=%v", created, err)
	}
	replica.Kill()
	_, _, err := s.Create(ctx, newSubmission(), Idempotency{})
	if errCode(err) != CodeOutcomeUnknown || !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("without the replica: %v (code %q), want outcome unknown, not replicated", err, errCode(err))
	}
	// The write itself is on the primary: it is not refused, only unconfirmed.
	if n := rdb.XLen(ctx, s.keys.deliveries()).Val(); n != 2 {
		t.Errorf("%d delivery jobs on the primary, want 2", n)
	}
	// With an idempotency key, the retry the client is told to make returns
	// the same submission once the replica is back.
	idem := Idempotency{Key: "k", Scope: "ip:1", BodyHash: "h"}
	if _, _, err := s.Create(ctx, newSubmission(), idem); errCode(err) != CodeOutcomeUnknown {
		t.Fatalf("keyed, without the replica: %v", err)
	}
	replica.Restart()
	if sub := retryUntilStored(t, s, idem, "retry after the replica came back"); sub.Status != gateway.StatusReceived {
		t.Errorf("retry answered %+v", sub)
	}
}

func port(t testing.TB, addr string) int {
	t.Helper()
	i := len(addr) - 1
	for i >= 0 && addr[i] != ':' {
		i--
	}
	p, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// replicatedStore starts a primary and a replica of it, and returns them
// with a store on the primary that WAITs for the one replica (at most
// wait), once the replica is in sync.
func replicatedStore(t *testing.T, wait time.Duration) (primary, replica *redistest.Server, s *Store) {
	t.Helper()
	primary = redistest.Start(t)
	replica = redistest.Start(t, redistest.WithArgs("--replicaof", "127.0.0.1", strconv.Itoa(port(t, primary.Addr()))))
	rdb := primary.Client(t)
	s = New(rdb, "test")
	s.WaitReplicas, s.WaitTimeout = 1, wait
	ctx := testCtx(t)
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Do(ctx, "WAIT", 1, 100).Val() != int64(1) {
		if time.Now().After(deadline) {
			t.Fatal("replica never connected")
		}
		rdb.Set(ctx, "test:sync", "1", time.Minute)
	}
	return primary, replica, s
}

// retryUntilStored retries a keyed create, as the client is told to after
// 503 outcome_unknown, until it is answered; the answer must be the
// submission of the first try, not a second one.
func retryUntilStored(t *testing.T, s *Store, idem Idempotency, what string) *gateway.Submission {
	t.Helper()
	ctx := testCtx(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		sub, created, err := s.Create(ctx, newSubmission(), idem)
		if err == nil {
			if created {
				t.Fatal("the retry made a second submission")
			}
			return sub
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
