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

// TestWaitReplicasCoversTheReplayedWrite: a replay on other connections
// (another gateway process) while the one replica, frozen, lacks the
// submission is not acknowledged. WAIT is documented to cover the writes
// made on its own connection, so the replay rewrites a field (createScript)
// and its WAIT covers the submission's write. Without that rewrite this
// test still passes with go-redis here (a fresh go-redis connection's WAIT
// waited, where redis-cli's passed at once with the replica frozen and
// behind), so it guards the property, not the rewrite.
func TestWaitReplicasCoversTheReplayedWrite(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.Start(t, redistest.WithArgs("--replicaof", "127.0.0.1", strconv.Itoa(port(t, primary.Addr()))))
	rdb := primary.Client(t)
	s := New(rdb, "test")
	s.WaitReplicas, s.WaitTimeout = 1, 300*time.Millisecond
	ctx := testCtx(t)
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Do(ctx, "WAIT", 1, 100).Val() != int64(1) {
		if time.Now().After(deadline) {
			t.Fatal("replica never connected")
		}
		rdb.Set(ctx, "test:sync", "1", time.Minute)
	}
	replica.Pause() // connected, but it takes nothing in
	t.Cleanup(replica.Resume)
	idem := Idempotency{Key: "k", Scope: "ip:1", BodyHash: "h"}
	if _, _, err := s.Create(ctx, newSubmission(), idem); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("first create with the replica frozen: %v, want not replicated", err)
	}
	// Another replica of the gateway (its own connections, none of which
	// wrote anything) gets the client's retry.
	other := New(primary.Client(t), "test")
	other.WaitReplicas, other.WaitTimeout = 1, 300*time.Millisecond
	if _, _, err := other.Create(ctx, newSubmission(), idem); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("replay on fresh connections with the replica frozen: %v, want not replicated (a receipt the replica does not have)", err)
	}
	replica.Resume()
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, created, err := other.Create(ctx, newSubmission(), idem)
		if err == nil {
			if created {
				t.Fatal("the retry made a second submission")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry after the replica went on: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
