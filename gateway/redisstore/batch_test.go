package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// createCallFor builds one create call (keys, arguments, the drawn id and
// reference) as Create does.
func createCallFor(s *Store, sub *gateway.Submission, idem Idempotency, ref string) (*scriptCall, string) {
	now := time.Now().UTC()
	payload, _ := json.Marshal(sub.Payload)
	hist, _ := json.Marshal(gateway.StatusChange{Status: gateway.StatusReceived, At: now})
	useIdem := "0"
	if idem.Key != "" {
		useIdem = "1"
	}
	id := gateway.NewID()
	if ref == "" {
		ref = gateway.NewReference(now)
	}
	keys, args := s.createCall(sub, idem, useIdem, time.Hour, id, ref, now, payload, hist)
	return &scriptCall{script: createScript, keys: keys, args: args, replicated: true, done: make(chan struct{})}, id
}

// replyOf is a finished call's first reply word, or its error.
func replyOf(c *scriptCall) string {
	<-c.done
	if c.err != nil {
		return "error: " + c.err.Error()
	}
	r, err := stringsOf(c.reply)
	if err != nil || len(r) == 0 {
		return fmt.Sprintf("bad reply %v", c.reply)
	}
	return r[0]
}

// renew gives a finished call a fresh outcome, to be sent again.
func renew(c *scriptCall) *scriptCall {
	return &scriptCall{script: c.script, keys: c.keys, args: c.args, replicated: c.replicated, done: make(chan struct{})}
}

// TestBatchMembersIndependent sends one pipeline of creates in which two
// members are refused (an idempotency key reused with another body, a
// reference already taken), after the script cache was flushed (every
// member meets NOSCRIPT first): the others are written, each once, and the
// refused ones write nothing. The same batch sent again (as go-redis does
// after a broken connection) writes nothing more.
func TestBatchMembersIndependent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		first, _, err := s.Create(ctx, newSubmission(), Idempotency{Scope: "ip:1", Key: "k1", BodyHash: "h1"})
		if err != nil {
			t.Fatal(err)
		}
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		a, idA := createCallFor(s, newSubmission(), Idempotency{}, "")
		mismatch, idB := createCallFor(s, newSubmission(), Idempotency{Scope: "ip:1", Key: "k1", BodyHash: "h2"}, "")
		taken, idC := createCallFor(s, newSubmission(), Idempotency{}, first.Reference)
		d, idD := createCallFor(s, newSubmission(), Idempotency{Scope: "ip:1", Key: "k2", BodyHash: "h1"}, "")
		batch := []*scriptCall{a, mismatch, taken, d}
		for run := 1; run <= 2; run++ {
			s.batch.exec(batch)
			got := []string{replyOf(a), replyOf(mismatch), replyOf(taken), replyOf(d)}
			if want := []string{"ok", "mismatch", "ref", "ok"}; strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("run %d: replies %v, want %v", run, got, want)
			}
			for i, c := range batch {
				batch[i] = renew(c)
			}
			a, mismatch, taken, d = batch[0], batch[1], batch[2], batch[3]
		}
		for _, id := range []string{first.ID, idA, idD} {
			if rdb.Exists(ctx, s.keys.sub(id)).Val() != 1 {
				t.Errorf("accepted submission %s not stored", id)
			}
		}
		for _, id := range []string{idB, idC} {
			if rdb.Exists(ctx, s.keys.sub(id), s.keys.payload(id), s.keys.hist(id)).Val() != 0 {
				t.Errorf("refused member %s wrote its record", id)
			}
		}
		if n := rdb.XLen(ctx, s.keys.deliveries()).Val(); n != 3 {
			t.Errorf("deliveries stream has %d entries, want 3 (one per accepted submission)", n)
		}
		if n := rdb.ZCard(ctx, s.keys.dept("streets")).Val(); n != 3 {
			t.Errorf("department index has %d entries, want 3", n)
		}
	})
}

// TestBatchUnderClientKills sends creates in batches of 32 while another
// client kills every normal connection in a loop (bounded), so go-redis
// re-sends whole pipelines whose scripts ran, or some of them. A call whose
// outcome is unknown (an error) is sent again with the same arguments, as
// a client repeats a request with its Idempotency-Key. In the end every
// call is one stored submission with one delivery job: nothing lost,
// nothing twice.
func TestBatchUnderClientKills(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	admin := srv.Client(t)
	s := New(rdb, "test")
	s.OpTimeout = 2 * time.Second
	ctx := testCtx(t)
	stop := make(chan struct{})
	var kills atomic.Int64
	var killer sync.WaitGroup
	killer.Go(func() {
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
	})
	const batches, size = 30, 32
	var ids []string
	resent := 0
	for b := range batches {
		batch := make([]*scriptCall, size)
		for i := range batch {
			var id string
			batch[i], id = createCallFor(s, newSubmission(), Idempotency{Scope: "kill", Key: fmt.Sprint(b, "-", i), BodyHash: "h"}, "")
			ids = append(ids, id)
		}
		for try := 0; len(batch) > 0; try++ {
			if try > 50 {
				t.Fatalf("batch %d: calls still failing after 50 tries", b)
			}
			s.batch.exec(batch)
			var again []*scriptCall
			for _, c := range batch {
				switch r := replyOf(c); {
				case strings.HasPrefix(r, "error"):
					again = append(again, renew(c))
				case r != "ok":
					t.Fatalf("reply %q, want ok", r)
				}
			}
			resent += len(again)
			batch = again
		}
	}
	close(stop)
	killer.Wait()
	check := srv.Client(t)
	for _, id := range ids {
		if check.Exists(ctx, s.keys.sub(id)).Val() != 1 {
			t.Errorf("call with id %s left no submission", id)
		}
	}
	subs := len(check.Keys(ctx, s.keys.subPrefix()+"*").Val())
	stream := check.XLen(ctx, s.keys.deliveries()).Val()
	t.Logf("%d calls, %d sent again after an error, %d client kills: %d submissions, %d stream entries", len(ids), resent, kills.Load(), subs, stream)
	if subs != len(ids) || stream != int64(len(ids)) {
		t.Errorf("%d calls made %d submissions and %d delivery jobs, want one each", len(ids), subs, stream)
	}
	if kills.Load() == 0 {
		t.Fatal("no client connection was killed: the test proves nothing")
	}
}

// TestBatchGathersConcurrentCreates: creates that arrive together share
// pipelines (fewer pipelines than calls), and every one is stored once.
func TestBatchGathersConcurrentCreates(t *testing.T) {
	srv := redistest.Start(t)
	s := New(srv.Client(t), "test")
	ctx := testCtx(t)
	const n = 400
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			if _, _, err := s.Create(ctx, newSubmission(), Idempotency{}); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := srv.Client(t).XLen(ctx, s.keys.deliveries()).Val(); got != n {
		t.Errorf("%d stream entries, want %d", got, n)
	}
	p := s.batch.pipelines.Load()
	t.Logf("%d creates in %d pipelines", n, p)
	if p >= n {
		t.Errorf("%d creates sent in %d pipelines: nothing was gathered", n, p)
	}
}

// TestBatchSkipsAbandonedCalls: a call whose caller gave up (its context
// ended) before its batch left is not sent, so a request answered "outcome
// unknown" while waiting for its batch did not happen after all; the other
// members of the batch are written.
func TestBatchSkipsAbandonedCalls(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	s := New(rdb, "test")
	ctx := testCtx(t)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	abandoned, idA := createCallFor(s, newSubmission(), Idempotency{}, "")
	abandoned.ctx = gone
	kept, idK := createCallFor(s, newSubmission(), Idempotency{}, "")
	kept.ctx = ctx
	s.batch.exec([]*scriptCall{abandoned, kept})
	if r := replyOf(abandoned); !strings.Contains(r, context.Canceled.Error()) {
		t.Errorf("abandoned call replied %q, want its context's error", r)
	}
	if r := replyOf(kept); r != "ok" {
		t.Errorf("kept call replied %q", r)
	}
	if rdb.Exists(ctx, s.keys.sub(idA)).Val() != 0 {
		t.Error("the abandoned call was written")
	}
	if rdb.Exists(ctx, s.keys.sub(idK)).Val() != 1 {
		t.Error("the other member was not written")
	}
}
