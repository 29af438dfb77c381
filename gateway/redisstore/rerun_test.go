package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// Every write script must be safe to run twice with the same arguments:
// go-redis sends a command again when the connection broke before the
// reply came, and the first run may have completed.

// TestCreateScriptRunTwice runs the create script twice with the same
// arguments, as go-redis does after a broken connection. The second run
// must answer "ok" and write nothing: before the fix it answered "id",
// Create drew a new id, and one request became two submissions.
func TestCreateScriptRunTwice(t *testing.T) {
	for _, withKey := range []bool{false, true} {
		name := "no key"
		if withKey {
			name = "idempotency key"
		}
		t.Run(name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
				ctx := testCtx(t)
				sub := newSubmission()
				idem := Idempotency{}
				useIdem := "0"
				if withKey {
					idem = Idempotency{Key: "k1", Scope: "ip:1", BodyHash: "h"}
					useIdem = "1"
				}
				now := time.Now().UTC()
				payload, _ := json.Marshal(sub.Payload)
				hist, _ := json.Marshal(gateway.StatusChange{Status: gateway.StatusReceived, At: now})
				id, ref := gateway.NewID(), gateway.NewReference(now)
				keys, args := s.createCall(sub, idem, useIdem, time.Hour, id, ref, now, payload, hist)
				for run := 1; run <= 2; run++ {
					reply, err := createScript.Run(ctx, rdb, keys, args...).StringSlice()
					if err != nil {
						t.Fatal(err)
					}
					if len(reply) == 0 || reply[0] != "ok" {
						t.Fatalf("run %d replied %v, want ok", run, reply)
					}
				}
				if n := rdb.XLen(ctx, s.keys.deliveries()).Val(); n != 1 {
					t.Errorf("deliveries stream has %d entries, want 1", n)
				}
				if n := rdb.LLen(ctx, s.keys.hist(id)).Val(); n != 1 {
					t.Errorf("history has %d entries, want 1", n)
				}
				if n := rdb.ZCard(ctx, s.keys.dept(sub.Department)).Val(); n != 1 {
					t.Errorf("department index has %d entries, want 1", n)
				}
				// Another call (another id) with the same reference is
				// still refused: the check is by id and reference.
				keys2, args2 := s.createCall(sub, Idempotency{}, "0", time.Hour, gateway.NewID(), ref, now, payload, hist)
				if reply, _ := createScript.Run(ctx, rdb, keys2, args2...).StringSlice(); len(reply) == 0 || reply[0] != "ref" {
					t.Errorf("another id with a taken reference replied %v, want ref", reply)
				}
			})
		})
	}
}

// TestLockScriptRunTwice: the idempotency lock taken twice with the same
// token (a re-run) is held, not "in flight"; another token is refused.
func TestLockScriptRunTwice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		key := s.keys.idemLock("ip:1", "k")
		for run := 1; run <= 2; run++ {
			if n, err := lockScript.Run(ctx, rdb, []string{key}, "tok", 10000).Int(); err != nil || n != 1 {
				t.Fatalf("run %d: %d, %v; want 1 (held by the caller)", run, n, err)
			}
		}
		if n, _ := lockScript.Run(ctx, rdb, []string{key}, "other", 10000).Int(); n != 0 {
			t.Fatalf("another token got the lock (%d)", n)
		}
		if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 {
			t.Fatalf("lock has no TTL (%v)", ttl)
		}
	})
}

// TestAckScriptsRunTwice: Complete, Retry and DeadLetter re-run with the
// same arguments answer "done", not "another consumer finished the job".
func TestAckScriptsRunTwice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"complete", "retry", "dead"} {
			sub := mustCreate(t, s)
			jobs, err := s.ReadNew(ctx, "c1", 10, 0)
			if err != nil || len(jobs) != 1 {
				t.Fatalf("ReadNew: %v %v", jobs, err)
			}
			j, k, id, tok := jobs[0], s.keys, sub.ID, "token-"+kind
			run := func() (int, error) {
				switch kind {
				case "complete":
					return completeScript.Run(ctx, rdb,
						[]string{k.sub(id), k.payload(id), k.hist(id), k.ref(sub.Reference), k.deliveries(), k.retry(), k.dead(), k.outbox(), k.hooks()},
						group, j.StreamID, "{}", "", 0, "delivered", gateway.StatusDelivered.Rank(), id, MaxOutbox, tok).Int()
				case "retry":
					return retryScript.Run(ctx, rdb, []string{k.sub(id), k.deliveries(), k.retry()},
						group, j.StreamID, 1, id, "x", tok).Int()
				default:
					return deadLetterScript.Run(ctx, rdb, []string{k.sub(id), k.deliveries(), k.dead()},
						group, j.StreamID, 1, id, "x", tok).Int()
				}
			}
			for r := 1; r <= 2; r++ {
				if n, err := run(); err != nil || n != 1 {
					t.Fatalf("%s run %d: %d, %v; want 1", kind, r, n, err)
				}
			}
			if got, _ := s.Get(ctx, id); got.Attempts != 1 {
				t.Errorf("%s: %d attempts counted, want 1", kind, got.Attempts)
			}
			// Another consumer's call (another token) still learns that
			// the job was finished by someone else.
			if err := s.Retry(ctx, j, time.Now(), "x"); !errors.Is(err, gateway.ErrNotPending) {
				t.Errorf("%s: a second outcome from another call: %v, want gateway.ErrNotPending", kind, err)
			}
		}
	})
}

// TestCreateUnderClientKills creates submissions while another client
// kills every normal client connection in a loop (bounded), so go-redis
// re-sends scripts whose first run completed. No call may leave two
// submissions (before the fix: about one in 300), and every receipt must
// name a stored submission with its delivery job.
func TestCreateUnderClientKills(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	admin := srv.Client(t)
	s := New(rdb, "test")
	var (
		mu    sync.Mutex
		drawn = map[string][]string{} // per call: every id it drew
	)
	ctx := testCtx(t)
	stop := make(chan struct{})
	var kills atomic.Int64
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		for i := 0; i < 2000; i++ { // bounded: at most 2,000 kills
			select {
			case <-stop:
				return
			default:
			}
			if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err(); err == nil {
				kills.Add(1)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	const workers, perWorker = 8, 150
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	receipts := make(chan string, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				call := fmt.Sprintf("%d-%d", w, i)
				st := *s
				st.newID = func() string {
					id := gateway.NewID()
					mu.Lock()
					drawn[call] = append(drawn[call], id)
					mu.Unlock()
					return id
				}
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				sub, created, err := st.Create(cctx, newSubmission(), Idempotency{})
				cancel()
				if err != nil {
					failed.Add(1)
					continue
				}
				if !created {
					t.Errorf("created=false without an idempotency key")
				}
				ok.Add(1)
				receipts <- sub.ID
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-killerDone
	close(receipts)
	check := srv.Client(t)
	for id := range receipts {
		if check.Exists(ctx, s.keys.sub(id)).Val() != 1 {
			t.Errorf("receipt %s names no stored submission", id)
		}
	}
	dups := 0
	stored := 0
	for _, ids := range drawn {
		n := 0
		for _, id := range ids {
			if check.Exists(ctx, s.keys.sub(id)).Val() == 1 {
				n++
			}
		}
		stored += n
		if n > 1 {
			dups++
		}
	}
	stream := check.XLen(ctx, s.keys.deliveries()).Val()
	t.Logf("%d calls: %d receipts, %d errors, %d stored, %d stream entries, %d client kills", len(drawn), ok.Load(), failed.Load(), stored, stream, kills.Load())
	if dups > 0 {
		t.Errorf("%d calls made two or more submissions", dups)
	}
	if int64(stored) != stream {
		t.Errorf("%d submissions stored but %d delivery jobs", stored, stream)
	}
	if kills.Load() == 0 {
		t.Fatal("no client connection was killed: the test proves nothing")
	}
}

// TestStatusHistoryCappedAndOnce: the history keeps its first entry and the
// newest up to MaxHistory; a nonce seen is a replay; the same entry sent
// twice (a re-run) is recorded once.
func TestStatusHistoryCappedAndOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		sub := mustCreate(t, s)
		at := time.Now().UTC()
		for i := range MaxHistory + 20 {
			ch := gateway.StatusChange{Status: gateway.StatusInProgress, At: at.Add(time.Duration(i) * time.Millisecond), Message: fmt.Sprint(i)}
			if _, err := s.UpdateStatus(ctx, sub.ID, ch, ""); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Get(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.History) != MaxHistory || got.History[0].Status != gateway.StatusReceived ||
			got.History[len(got.History)-1].Message != fmt.Sprint(MaxHistory+19) {
			t.Fatalf("history of %d entries, first %q, last %q", len(got.History), got.History[0].Status, got.History[len(got.History)-1].Message)
		}
		ch := gateway.StatusChange{Status: gateway.StatusDecided, At: at.Add(time.Hour)}
		moved, replayed, err := s.UpdateStatusOnce(ctx, sub.ID, ch, "", "sig-1", time.Minute)
		if err != nil || !moved || replayed {
			t.Fatalf("first: moved=%v replayed=%v err=%v", moved, replayed, err)
		}
		ch.At = ch.At.Add(time.Second) // another entry, the same nonce
		if moved, replayed, _ = s.UpdateStatusOnce(ctx, sub.ID, ch, "", "sig-1", time.Minute); moved || !replayed {
			t.Fatalf("replayed nonce: moved=%v replayed=%v", moved, replayed)
		}
		if _, replayed, _ = s.UpdateStatusOnce(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusDecided, At: at.Add(time.Hour)}, "", "", 0); !replayed {
			t.Fatalf("the last entry again was recorded again")
		}
	})
}

// TestDeadLetterScriptsRunTwice: replaying or closing a dead letter, re-run
// with the same arguments, answers "done" (before: "not dead-lettered",
// an error for a request sent once); another call still gets the conflict.
func TestDeadLetterScriptsRunTwice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		k := s.keys
		for _, kind := range []string{"redrive", "close"} {
			sub := mustCreate(t, s)
			id := sub.ID
			if err := rdb.ZAdd(ctx, k.dead(), redis.Z{Score: 1, Member: id}).Err(); err != nil {
				t.Fatal(err)
			}
			run := func(tok string) (int, error) {
				if kind == "redrive" {
					return redriveScript.Run(ctx, rdb, []string{k.sub(id), k.deliveries(), k.dead()}, id, tok).Int()
				}
				return closeDeadScript.Run(ctx, rdb, []string{k.sub(id), k.payload(id), k.hist(id), k.ref(sub.Reference), k.dead(), k.outbox(), k.hooks()},
					id, "closed", gateway.StatusClosed.Rank(), "{}", 0, 1, tok, MaxHistory, MaxOutbox).Int()
			}
			for r := 1; r <= 2; r++ {
				if n, err := run("tok"); err != nil || n != 1 {
					t.Fatalf("%s run %d: %d, %v; want 1", kind, r, n, err)
				}
			}
			if n, _ := run("other"); n != 0 {
				t.Errorf("%s by another call: %d, want 0 (not dead-lettered)", kind, n)
			}
		}
	})
}

// TestCountAndAuditScriptsRunTwice: a contact counted and an audit entry
// appended by a script re-sent with the same token are written once.
// (Before, HINCRBY and XADD re-sent by go-redis wrote twice.)
func TestCountAndAuditScriptsRunTwice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		k := s.keys
		for range 2 {
			if err := onceCountScript.Run(ctx, rdb, []string{k.deskDay("2026-12-01"), k.onceUsage("tok")}, "p|s|phone|done", 60000).Err(); err != nil {
				t.Fatal(err)
			}
			if err := onceAppendScript.Run(ctx, rdb, []string{k.audit(), k.onceAudit("tok")}, "e", "{}", 60000).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if n := rdb.HGet(ctx, k.deskDay("2026-12-01"), "p|s|phone|done").Val(); n != "1" {
			t.Errorf("contact counted %s times, want 1", n)
		}
		if n := rdb.XLen(ctx, k.audit()).Val(); n != 1 {
			t.Errorf("%d audit entries, want 1", n)
		}
		// Calls with their own tokens count each.
		if err := s.AddDeskContact(ctx, "2026-12-01", "p", "s", "phone", "done"); err != nil {
			t.Fatal(err)
		}
		if n := rdb.HGet(ctx, k.deskDay("2026-12-01"), "p|s|phone|done").Val(); n != "2" {
			t.Errorf("after another contact: %s, want 2", n)
		}
	})
}

// TestUsageCountedOnceWhenResent: the usage counters of one flush, sent
// twice with the same token (a pipeline go-redis re-sent), count once.
func TestUsageCountedOnceWhenResent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		k := s.keys
		keys := []string{k.onceUsage("tok"), k.usageDay("2026-12-01"), k.usageDay("2026-12-02")}
		for range 2 {
			if err := usageAddScript.Run(ctx, rdb, keys, 60000, 2, "a", 3, 3, "b", 4).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if a, b := rdb.HGet(ctx, keys[1], "a").Val(), rdb.HGet(ctx, keys[2], "b").Val(); a != "3" || b != "4" {
			t.Errorf("counted a=%s b=%s, want 3 and 4", a, b)
		}
		// AddUsage itself still adds per call.
		for range 2 {
			if err := s.AddUsage(ctx, map[string]map[string]int64{"2026-12-01": {"a": 1}}, map[string]map[string][]string{"2026-12-01": {"": {"v1"}}}); err != nil {
				t.Fatal(err)
			}
		}
		if a := rdb.HGet(ctx, keys[1], "a").Val(); a != "5" {
			t.Errorf("after two flushes a=%s, want 5", a)
		}
	})
}

// TestUnknownStatusBounded: updates kept for unknown submissions are
// bounded in entries per id, in ids (the lists of dropped ids go too) and
// in time.
func TestUnknownStatusBounded(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := New(rdb, "test")
	ctx := testCtx(t)
	base := time.Now()
	var ids []string
	for i := range maxUnknownIDs + 5 {
		s.now = func() time.Time { return base.Add(time.Duration(i) * time.Millisecond) }
		id := gateway.NewID()
		ids = append(ids, id)
		if _, err := s.RecordUnknownStatus(ctx, id, "svc", gateway.StatusChange{Status: gateway.StatusInProgress}, "", "", 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := rdb.ZCard(ctx, s.keys.unknownIndex()).Val(); n != maxUnknownIDs {
		t.Errorf("index holds %d ids, want %d", n, maxUnknownIDs)
	}
	for _, id := range ids[:5] {
		if rdb.Exists(ctx, s.keys.unknownStatus(id)).Val() != 0 {
			t.Errorf("the list of a dropped id is still there")
		}
	}
	last := ids[len(ids)-1]
	for i := range maxUnknownEntries + 5 {
		ch := gateway.StatusChange{Status: gateway.StatusInProgress, Message: fmt.Sprint(i)}
		if _, err := s.RecordUnknownStatus(ctx, last, "svc", ch, "", "", 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := rdb.LLen(ctx, s.keys.unknownStatus(last)).Val(); n != maxUnknownEntries {
		t.Errorf("%d entries kept for one id, want %d", n, maxUnknownEntries)
	}
	if ttl := rdb.PTTL(ctx, s.keys.unknownStatus(last)).Val(); ttl <= 0 || ttl > UnknownStatusKeep {
		t.Errorf("list TTL %v", ttl)
	}
	// An id that exists is not kept here.
	sub := mustCreate(t, s)
	if _, err := s.RecordUnknownStatus(ctx, sub.ID, "svc", gateway.StatusChange{Status: gateway.StatusInProgress}, "", "", 0); errCode(err) != gateway.EConflict {
		t.Errorf("a known id: %v, want a conflict", err)
	}
}
