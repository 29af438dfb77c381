package redisstore

import (
	"errors"
	"testing"
	"time"
)

// TestWaitReplicasReplay: the retry of a keyed submission whose write no
// replica confirmed must not show a receipt either while no replica has
// it. Found by the Sentinel failover test (cmd/gateway/failovertest): after
// the primary was killed, the promoted replica had no replica of its own,
// the first request for a key was answered 503 outcome_unknown, and the
// client's retry with the same key got a 202 from the replay path, which
// ignored WAIT: a receipt for a submission held by one node only.
func TestWaitReplicasReplay(t *testing.T) {
	_, replica, s := replicatedStore(t, 200*time.Millisecond)
	ctx := testCtx(t)
	replica.Kill()
	idem := Idempotency{Key: "k", Scope: "ip:1", BodyHash: "h"}
	for try := 1; try <= 3; try++ {
		_, _, err := s.Create(ctx, newSubmission(), idem)
		if errCode(err) != CodeOutcomeUnknown || !errors.Is(err, ErrNotReplicated) {
			t.Fatalf("keyed create %d without the replica: %v (code %q), want outcome unknown, not replicated", try, err, errCode(err))
		}
	}
	replica.Restart()
	retryUntilStored(t, s, idem, "retry after the replica came back")
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
	primary, replica, s := replicatedStore(t, 300*time.Millisecond)
	ctx := testCtx(t)
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
	retryUntilStored(t, other, idem, "retry after the replica went on")
}
