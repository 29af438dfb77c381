package redisstore

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// TestWaitReplicasReplay: the retry of a keyed submission whose write no
// replica confirmed must not show a receipt either while no replica has
// it. Found by the Sentinel failover test (cmd/gateway/failovertest): after
// the primary was killed, the promoted replica had no replica of its own,
// the first request for a key was answered 503 outcome_unknown, and the
// client's retry with the same key got a 202 from the replay path, which
// ignored WAIT: a receipt for a submission held by one node only.
func TestWaitReplicasReplay(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.Start(t, redistest.WithArgs("--replicaof", "127.0.0.1", strconv.Itoa(port(t, primary.Addr()))))
	rdb := primary.Client(t)
	s := New(rdb, "test")
	s.WaitReplicas, s.WaitTimeout = 1, 200*time.Millisecond
	ctx := testCtx(t)
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Do(ctx, "WAIT", 1, 100).Val() != int64(1) {
		if time.Now().After(deadline) {
			t.Fatal("replica never connected")
		}
		rdb.Set(ctx, "test:sync", "1", time.Minute)
	}
	replica.Kill()
	idem := Idempotency{Key: "k", Scope: "ip:1", BodyHash: "h"}
	for try := 1; try <= 3; try++ {
		_, _, err := s.Create(ctx, newSubmission(), idem)
		if errCode(err) != CodeOutcomeUnknown || !errors.Is(err, ErrNotReplicated) {
			t.Fatalf("keyed create %d without the replica: %v (code %q), want outcome unknown, not replicated", try, err, errCode(err))
		}
	}
	replica.Restart()
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, created, err := s.Create(ctx, newSubmission(), idem)
		if err == nil {
			if created {
				t.Fatal("the retry made a second submission")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry after the replica came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
