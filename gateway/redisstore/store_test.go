package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// backend starts a Redis for one test and returns a store on it.
type backend struct {
	name  string
	start func(t *testing.T) (*Store, redis.UniversalClient)
}

func realRedis(t *testing.T) (*Store, redis.UniversalClient) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	return New(rdb, "test"), rdb
}

func embeddedRedis(t *testing.T) (*Store, redis.UniversalClient) {
	addr, stop, err := StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	rdb, err := NewClient(ClientConfig{URL: "redis://" + addr + "/0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return New(rdb, "test"), rdb
}

// backends are the servers every store test runs against: a real
// redis-server, and the embedded miniredis of the demo, to prove the demo
// supports every script and command the gateway uses.
var backends = []backend{
	{"redis-server", realRedis},
	{"miniredis", embeddedRedis},
}

// forEachBackend runs fn once per backend as a subtest.
func forEachBackend(t *testing.T, fn func(t *testing.T, s *Store, rdb redis.UniversalClient)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, rdb := b.start(t)
			fn(t, s, rdb)
		})
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newSubmission() *gateway.Submission {
	return &gateway.Submission{
		Service:        "street-fault",
		ServiceVersion: "1",
		Department:     "streets",
		Channel:        gateway.ChannelDigital,
		Locale:         "sv",
		Subject:        "199001012384",
		Payload:        map[string]any{"description": "Trasig gatlykta", "count": 2.0},
	}
}

func mustCreate(t *testing.T, s *Store) *gateway.Submission {
	t.Helper()
	sub, created, err := s.Create(testCtx(t), newSubmission(), Idempotency{})
	if err != nil || !created {
		t.Fatalf("Create: created=%v err=%v", created, err)
	}
	return sub
}

func errCode(err error) string {
	var gerr *gateway.Error
	if errors.As(err, &gerr) {
		return gerr.Code
	}
	return ""
}

func TestCreateGet(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		in := newSubmission()
		sub, created, err := s.Create(ctx, in, Idempotency{})
		if err != nil || !created {
			t.Fatalf("Create: created=%v err=%v", created, err)
		}
		if !validID(sub.ID) || len(sub.Reference) != 14 || sub.Status != gateway.StatusReceived ||
			sub.CreatedAt.IsZero() || len(sub.History) != 1 {
			t.Fatalf("Create filled in %+v", sub)
		}
		got, err := s.Get(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct {
			name      string
			got, want any
		}{
			{"id", got.ID, sub.ID},
			{"reference", got.Reference, sub.Reference},
			{"service", got.Service, "street-fault"},
			{"version", got.ServiceVersion, "1"},
			{"department", got.Department, "streets"},
			{"channel", got.Channel, gateway.ChannelDigital},
			{"locale", got.Locale, "sv"},
			{"subject", got.Subject, "199001012384"},
			{"status", got.Status, gateway.StatusReceived},
			{"attempts", got.Attempts, 0},
			{"delayed", got.Delayed, false},
			{"created", got.CreatedAt.Equal(sub.CreatedAt), true},
			{"payload", fmt.Sprint(got.Payload), fmt.Sprint(in.Payload)},
			{"history", len(got.History), 1},
			{"history status", got.History[0].Status, gateway.StatusReceived},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
			}
		}
		if id, err := s.LookupReference(ctx, sub.Reference); err != nil || id != sub.ID {
			t.Errorf("LookupReference = %q, %v", id, err)
		}
		// The stream entry is there, in the same step.
		if n := rdb.XLen(ctx, s.keys.deliveries()).Val(); n != 1 {
			t.Errorf("stream length = %d, want 1", n)
		}
	})
}

func TestGetNotFound(t *testing.T) {
	s, _ := realRedis(t)
	for _, id := range []string{"", "short", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "a:{q}:b", gateway.NewID()} {
		_, err := s.Get(testCtx(t), id)
		if errCode(err) != gateway.ENotFound {
			t.Errorf("Get(%q) = %v, want not_found", id, err)
		}
	}
}

func TestGetInvalidIDDoesNotTouchRedis(t *testing.T) {
	// A client to nowhere: any Redis call would fail with unavailable.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	s := New(rdb, "")
	_, err := s.Get(testCtx(t), "not an id")
	if errCode(err) != gateway.ENotFound {
		t.Fatalf("Get = %v, want not_found", err)
	}
	_, err = s.Get(testCtx(t), gateway.NewID())
	if errCode(err) != gateway.EUnavailable {
		t.Fatalf("Get with Redis down = %v, want unavailable", err)
	}
}

func TestIdempotency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, _ redis.UniversalClient) {
		ctx := testCtx(t)
		first, created, err := s.Create(ctx, newSubmission(), Idempotency{Scope: "svc/anon", Key: "k1", BodyHash: "h1"})
		if err != nil || !created {
			t.Fatalf("first Create: created=%v err=%v", created, err)
		}
		tests := []struct {
			name        string
			idem        Idempotency
			wantCreated bool
			wantSame    bool
			wantCode    string
		}{
			{"same key same body", Idempotency{Scope: "svc/anon", Key: "k1", BodyHash: "h1"}, false, true, ""},
			{"same key other body", Idempotency{Scope: "svc/anon", Key: "k1", BodyHash: "h2"}, false, false, gateway.EConflict},
			{"other scope", Idempotency{Scope: "svc/someone", Key: "k1", BodyHash: "h1"}, true, false, ""},
			{"other key", Idempotency{Scope: "svc/anon", Key: "k2", BodyHash: "h1"}, true, false, ""},
			{"no key", Idempotency{Scope: "svc/anon", BodyHash: "h1"}, true, false, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				sub, created, err := s.Create(ctx, newSubmission(), tt.idem)
				if tt.wantCode != "" {
					var gerr *gateway.Error
					if !errors.As(err, &gerr) || gerr.Code != tt.wantCode || gerr.Message.ID != "error.idempotency_mismatch" {
						t.Fatalf("err = %v, want %s error.idempotency_mismatch", err, tt.wantCode)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if created != tt.wantCreated {
					t.Errorf("created = %v, want %v", created, tt.wantCreated)
				}
				if same := sub.ID == first.ID; same != tt.wantSame {
					t.Errorf("same submission = %v, want %v", same, tt.wantSame)
				}
				if tt.wantSame && (sub.Reference != first.Reference || len(sub.History) == 0) {
					t.Errorf("duplicate returned %+v", sub)
				}
			})
		}
	})
}

func TestIdempotencyConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		const n = 20
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			ids     = map[string]int{}
			created int
		)
		for range n {
			wg.Go(func() {
				sub, c, err := s.Create(ctx, newSubmission(), Idempotency{Scope: "s", Key: "same", BodyHash: "h"})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ids[sub.ID]++
				if c {
					created++
				}
			})
		}
		wg.Wait()
		if created != 1 || len(ids) != 1 {
			t.Fatalf("created=%d distinct ids=%d, want 1 and 1", created, len(ids))
		}
		if n := rdb.XLen(ctx, s.keys.deliveries()).Val(); n != 1 {
			t.Errorf("stream length = %d, want 1", n)
		}
	})
}

func TestIdempotencyAfterSubmissionExpired(t *testing.T) {
	s, rdb := realRedis(t)
	ctx := testCtx(t)
	idem := Idempotency{Scope: "s", Key: "k", BodyHash: "h"}
	first, _, err := s.Create(ctx, newSubmission(), idem)
	if err != nil {
		t.Fatal(err)
	}
	// The submission's retention passed but the key is still remembered.
	rdb.Del(ctx, s.keys.sub(first.ID))
	second, created, err := s.Create(ctx, newSubmission(), idem)
	if err != nil || !created || second.ID == first.ID {
		t.Fatalf("Create after expiry: created=%v same=%v err=%v", created, second != nil && second.ID == first.ID, err)
	}
}

func TestReferenceCollision(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		const taken = "2026-TAKE-N000"
		if err := rdb.Set(ctx, s.keys.ref(taken), "someone-else", 0).Err(); err != nil {
			t.Fatal(err)
		}
		refs := []string{taken, taken, "2026-FREE-0001"}
		calls := 0
		s.newRef = func(time.Time) string {
			r := refs[min(calls, len(refs)-1)]
			calls++
			return r
		}
		sub := mustCreate(t, s)
		if sub.Reference != "2026-FREE-0001" || calls != 3 {
			t.Fatalf("reference = %q after %d draws, want 2026-FREE-0001 after 3", sub.Reference, calls)
		}
		if v := rdb.Get(ctx, s.keys.ref(taken)).Val(); v != "someone-else" {
			t.Errorf("taken reference overwritten: %q", v)
		}
		// Nothing of the refused attempts was written.
		if n := rdb.XLen(ctx, s.keys.deliveries()).Val(); n != 1 {
			t.Errorf("stream length = %d, want 1", n)
		}

		// Always taken: Create gives up with unavailable.
		s.newRef = func(time.Time) string { return taken }
		_, _, err := s.Create(ctx, newSubmission(), Idempotency{})
		if errCode(err) != gateway.EUnavailable {
			t.Fatalf("Create with no free reference = %v, want unavailable", err)
		}
	})
}

func TestUpdateStatusNeverBackwards(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, _ redis.UniversalClient) {
		ctx := testCtx(t)
		sub := mustCreate(t, s)
		steps := []struct {
			status    gateway.Status
			caseRef   string
			wantMoved bool
			want      gateway.Status
		}{
			{gateway.StatusInProgress, "CASE-1", true, gateway.StatusInProgress},
			{gateway.StatusReceived, "", false, gateway.StatusInProgress},
			{gateway.StatusDelivered, "", false, gateway.StatusInProgress},
			{gateway.StatusNeedsInfo, "", true, gateway.StatusNeedsInfo}, // same rank: allowed
			{gateway.StatusInProgress, "", true, gateway.StatusInProgress},
			{gateway.StatusDecided, "", true, gateway.StatusDecided},
			{gateway.StatusNeedsInfo, "", false, gateway.StatusDecided},
			{gateway.StatusClosed, "", true, gateway.StatusClosed},
		}
		for i, st := range steps {
			moved, err := s.UpdateStatus(ctx, sub.ID, gateway.StatusChange{Status: st.status, Message: "m"}, st.caseRef)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			got, err := s.Get(ctx, sub.ID)
			if err != nil {
				t.Fatal(err)
			}
			if moved != st.wantMoved || got.Status != st.want {
				t.Errorf("step %d (%s): moved=%v status=%s, want %v %s", i, st.status, moved, got.Status, st.wantMoved, st.want)
			}
			if len(got.History) != i+2 {
				t.Errorf("step %d: %d history entries, want %d", i, len(got.History), i+2)
			}
			if got.CaseReference != "CASE-1" {
				t.Errorf("step %d: case reference %q", i, got.CaseReference)
			}
		}
		if _, err := s.UpdateStatus(ctx, gateway.NewID(), gateway.StatusChange{Status: gateway.StatusClosed}, ""); errCode(err) != gateway.ENotFound {
			t.Errorf("unknown id: %v, want not_found", err)
		}
		if _, err := s.UpdateStatus(ctx, sub.ID, gateway.StatusChange{Status: "weird"}, ""); errCode(err) != gateway.EInvalid {
			t.Errorf("unknown status: %v, want invalid", err)
		}
	})
}

// readOne reads one job, which the test expects to be there.
func readOne(t *testing.T, s *Store, consumer string) gateway.Job {
	t.Helper()
	jobs, err := s.ReadNew(testCtx(t), consumer, 1, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 {
		t.Fatalf("ReadNew got %d jobs, want 1", len(jobs))
	}
	return jobs[0]
}

func TestQueueFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureGroup(ctx); err != nil { // BUSYGROUP ignored
			t.Fatal(err)
		}
		sub := mustCreate(t, s)

		// Nothing else to read; the empty read returns no error.
		job := readOne(t, s, "c1")
		if job.SubmissionID != sub.ID || job.Deliveries != 1 {
			t.Fatalf("job = %+v", job)
		}
		if jobs, err := s.ReadNew(ctx, "c1", 10, 50*time.Millisecond); err != nil || len(jobs) != 0 {
			t.Fatalf("second ReadNew = %v, %v", jobs, err)
		}
		st, err := s.Stats(ctx)
		if err != nil || st.Stream != 1 || st.Pending != 1 {
			t.Fatalf("Stats = %+v, %v", st, err)
		}

		// A failed attempt: retry later.
		now := time.Now()
		if err := s.Retry(ctx, job, now.Add(time.Hour), "temporary"); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, sub.ID)
		if got.Attempts != 1 || got.Status != gateway.StatusReceived || len(got.History) != 1 {
			t.Fatalf("after Retry: %+v", got)
		}
		if st, _ := s.Stats(ctx); st.Stream != 0 || st.Pending != 0 || st.Retrying != 1 {
			t.Fatalf("Stats after Retry = %+v", st)
		}
		// A second outcome for the same job is ignored.
		if err := s.Retry(ctx, job, now, "temporary"); !errors.Is(err, gateway.ErrNotPending) {
			t.Fatalf("stale Retry = %v, want gateway.ErrNotPending", err)
		}
		if got, _ := s.Get(ctx, sub.ID); got.Attempts != 1 {
			t.Fatalf("stale Retry counted: attempts=%d", got.Attempts)
		}

		// Not due yet, then due.
		if n, err := s.PromoteDue(ctx, now, 10); err != nil || n != 0 {
			t.Fatalf("PromoteDue before due = %d, %v", n, err)
		}
		if n, err := s.PromoteDue(ctx, now.Add(2*time.Hour), 10); err != nil || n != 1 {
			t.Fatalf("PromoteDue when due = %d, %v", n, err)
		}
		job = readOne(t, s, "c1")

		// Success.
		if err := s.Complete(ctx, job, "CASE-42", time.Hour); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Get(ctx, sub.ID)
		if got.Status != gateway.StatusDelivered || got.CaseReference != "CASE-42" || got.Attempts != 2 ||
			len(got.History) != 2 || got.History[1].Status != gateway.StatusDelivered {
			t.Fatalf("after Complete: %+v", got)
		}
		for _, key := range []string{s.keys.sub(sub.ID), s.keys.payload(sub.ID), s.keys.hist(sub.ID), s.keys.ref(sub.Reference)} {
			if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Hour {
				t.Errorf("TTL of %s = %v, want (0, 1h]", key, ttl)
			}
		}
		// Completing again (a slower consumer) changes nothing.
		if err := s.Complete(ctx, job, "CASE-43", time.Hour); !errors.Is(err, gateway.ErrNotPending) {
			t.Fatalf("second Complete = %v, want gateway.ErrNotPending", err)
		}
		got, _ = s.Get(ctx, sub.ID)
		if got.CaseReference != "CASE-42" || len(got.History) != 2 {
			t.Fatalf("second Complete changed the record: %+v", got)
		}
		if st, _ := s.Stats(ctx); st != (QueueStats{}) {
			t.Fatalf("Stats at the end = %+v, want zero", st)
		}
	})
}

func TestDeadLetterAndRedrive(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, _ redis.UniversalClient) {
		ctx := testCtx(t)
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		sub := mustCreate(t, s)
		job := readOne(t, s, "c1")
		if err := s.DeadLetter(ctx, job, "permanent"); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Get(ctx, sub.ID)
		if got.Status != gateway.StatusReceived || !got.Delayed || got.Attempts != 1 {
			t.Fatalf("after DeadLetter: %+v", got)
		}
		if st, _ := s.Stats(ctx); st.Dead != 1 || st.Stream != 0 || st.Pending != 0 {
			t.Fatalf("Stats = %+v", st)
		}
		if ids, err := s.DeadLetters(ctx, 10); err != nil || len(ids) != 1 || ids[0] != sub.ID {
			t.Fatalf("DeadLetters = %v, %v", ids, err)
		}
		if err := s.Redrive(ctx, sub.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Redrive(ctx, sub.ID); errCode(err) != gateway.EConflict {
			t.Fatalf("second Redrive = %v, want conflict", err)
		}
		if err := s.Redrive(ctx, gateway.NewID()); errCode(err) != gateway.ENotFound {
			t.Fatalf("Redrive unknown = %v, want not_found", err)
		}
		job = readOne(t, s, "c1")
		if err := s.Complete(ctx, job, "C", 0); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Get(ctx, sub.ID)
		if got.Status != gateway.StatusDelivered || got.Delayed || got.Attempts != 1 {
			t.Fatalf("after redrive and Complete: %+v", got)
		}
	})
}

func TestDropAndMissingRecord(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		sub := mustCreate(t, s)
		rdb.Del(ctx, s.keys.sub(sub.ID), s.keys.payload(sub.ID), s.keys.hist(sub.ID))
		job := readOne(t, s, "c1")
		live := mustCreate(t, s)
		subs, errs := s.Load(ctx, []gateway.Job{job, {SubmissionID: live.ID}, {SubmissionID: "not-an-id"}})
		if errCode(errs[0]) != gateway.ENotFound || errCode(errs[2]) != gateway.ENotFound {
			t.Fatalf("Load of gone and malformed = %v, %v, want not_found", errs[0], errs[2])
		}
		if errs[1] != nil || subs[1] == nil || subs[1].Reference != live.Reference || subs[1].Payload["description"] != live.Payload["description"] {
			t.Fatalf("Load of the live one in the same batch = %+v, %v", subs[1], errs[1])
		}
		if err := s.Drop(ctx, job); err != nil {
			t.Fatal(err)
		}
		if err := s.Drop(ctx, readOne(t, s, "c1")); err != nil { // the live one's job
			t.Fatal(err)
		}
		if st, _ := s.Stats(ctx); st.Stream != 0 || st.Pending != 0 {
			t.Fatalf("Stats after Drop = %+v", st)
		}
		// An entry that names no submission is dropped by ReadNew.
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.keys.deliveries(), Values: []string{"junk", "1"}})
		if jobs, err := s.ReadNew(ctx, "c1", 10, 0); err != nil || len(jobs) != 0 {
			t.Fatalf("ReadNew of a malformed entry = %v, %v", jobs, err)
		}
		if st, _ := s.Stats(ctx); st.Stream != 0 || st.Pending != 0 {
			t.Fatalf("Stats after malformed entry = %+v", st)
		}
	})
}

func TestClaim(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, _ redis.UniversalClient) {
		ctx := testCtx(t)
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		sub := mustCreate(t, s)
		job := readOne(t, s, "dead-consumer") // read, never acknowledged

		// Not idle long enough yet.
		if jobs, err := s.Claim(ctx, "alive", time.Hour, 10); err != nil || len(jobs) != 0 {
			t.Fatalf("early Claim = %v, %v", jobs, err)
		}
		var claimed []gateway.Job
		deadline := time.Now().Add(10 * time.Second)
		for len(claimed) == 0 && time.Now().Before(deadline) {
			var err error
			if claimed, err = s.Claim(ctx, "alive", 20*time.Millisecond, 10); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(claimed) != 1 || claimed[0].SubmissionID != sub.ID || claimed[0].StreamID != job.StreamID {
			t.Fatalf("Claim = %+v, want the job %+v", claimed, job)
		}
		if claimed[0].Deliveries < 2 {
			t.Errorf("Deliveries = %d, want >= 2", claimed[0].Deliveries)
		}
		if err := s.Complete(ctx, claimed[0], "C", 0); err != nil {
			t.Fatal(err)
		}
		// The dead consumer's late outcome does not count.
		if err := s.DeadLetter(ctx, job, "late"); !errors.Is(err, gateway.ErrNotPending) {
			t.Fatalf("late DeadLetter = %v, want gateway.ErrNotPending", err)
		}
		got, _ := s.Get(ctx, sub.ID)
		if got.Status != gateway.StatusDelivered || got.Delayed || got.Attempts != 1 {
			t.Fatalf("after late DeadLetter: %+v", got)
		}
		if st, _ := s.Stats(ctx); st != (QueueStats{}) {
			t.Fatalf("Stats = %+v, want zero", st)
		}
	})
}

func TestReadNewRecreatesGroup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		// No group yet (e.g. Redis restarted without persistence).
		if jobs, err := s.ReadNew(ctx, "c", 1, 0); err != nil || len(jobs) != 0 {
			t.Fatalf("ReadNew without group = %v, %v", jobs, err)
		}
		if jobs, err := s.Claim(ctx, "c", time.Millisecond, 1); err != nil || len(jobs) != 0 {
			t.Fatalf("Claim = %v, %v", jobs, err)
		}
		if st, err := s.Stats(ctx); err != nil || st != (QueueStats{}) {
			t.Fatalf("Stats = %+v, %v", st, err)
		}
		rdb.FlushAll(ctx)
		if st, err := s.Stats(ctx); err != nil || st != (QueueStats{}) {
			t.Fatalf("Stats on an empty Redis = %+v, %v", st, err)
		}
		sub := mustCreate(t, s) // the stream is back, the group is not
		job := readOne(t, s, "c")
		if job.SubmissionID != sub.ID {
			t.Fatalf("job = %+v", job)
		}
	})
}

// TestCreateSurvivesCrash is the promise behind the receipt: with
// appendfsync always, a submission Create returned for survives a SIGKILL of
// Redis, record and stream entry together.
func TestCreateSurvivesCrash(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAOF("always"))
	rdb := srv.Client(t)
	s := New(rdb, "")
	ctx := testCtx(t)
	if err := s.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	var subs []*gateway.Submission
	for range 5 {
		subs = append(subs, mustCreate(t, s))
	}
	srv.Kill()
	srv.Restart()

	for _, sub := range subs {
		got, err := s.Get(ctx, sub.ID)
		if err != nil {
			t.Fatalf("after crash: %v", err)
		}
		if got.Reference != sub.Reference || got.Payload["description"] != "Trasig gatlykta" {
			t.Fatalf("after crash: %+v", got)
		}
	}
	jobs, err := s.ReadNew(ctx, "c", 10, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != len(subs) {
		t.Fatalf("after crash the stream holds %d jobs, want %d", len(jobs), len(subs))
	}
	for i, j := range jobs {
		if j.SubmissionID != subs[i].ID {
			t.Errorf("job %d names %s, want %s", i, j.SubmissionID, subs[i].ID)
		}
	}
}

func TestKeysShareOneSlot(t *testing.T) {
	k := newKeys("")
	id := gateway.NewID()
	all := []string{k.sub(id), k.payload(id), k.hist(id), k.ref("2026-AAAA-BBBB"), k.idem("s", "k"),
		k.deliveries(), k.retry(), k.dead(), k.subPrefix() + id}
	for _, key := range all {
		if want := "gw:{q}:"; key[:len(want)] != want {
			t.Errorf("key %q lacks %q", key, want)
		}
	}
	if k.idem("a", "bc") == k.idem("ab", "c") {
		t.Error("idempotency keys of different scopes collide")
	}
	if got := newKeys("city").deliveries(); got != "city:{q}:deliveries" {
		t.Errorf("prefixed key = %q", got)
	}
}

func TestNewClient(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ClientConfig
		want    string // type of client
		wantErr bool
	}{
		{"url", ClientConfig{URL: "redis://:pw@127.0.0.1:6379/2"}, "*redis.Client", false},
		{"one addr", ClientConfig{Addrs: []string{"127.0.0.1:6379"}}, "*redis.Client", false},
		{"sentinel", ClientConfig{Addrs: []string{"a:26379", "b:26379"}, MasterName: "mymaster"}, "*redis.Client", false},
		{"cluster", ClientConfig{Addrs: []string{"a:6379", "b:6379", "c:6379"}}, "*redis.ClusterClient", false},
		{"nothing", ClientConfig{}, "", true},
		{"both", ClientConfig{URL: "redis://x", Addrs: []string{"y"}}, "", true},
		{"bad url", ClientConfig{URL: "http://x"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer c.Close()
			if got := fmt.Sprintf("%T", c); got != tt.want {
				t.Errorf("client type = %s, want %s", got, tt.want)
			}
		})
	}
	c, _ := NewClient(ClientConfig{URL: "redis://u:p@127.0.0.1:6379/2", PoolSize: 7})
	defer c.Close()
	o := c.(*redis.Client).Options()
	if o.DB != 2 || o.Username != "u" || o.Password != "p" || o.PoolSize != 7 || !o.ContextTimeoutEnabled ||
		o.ReadTimeout != ReadTimeout || o.DialTimeout != DialTimeout {
		t.Errorf("options = db %d user %q pool %d ctx %v read %v", o.DB, o.Username, o.PoolSize, o.ContextTimeoutEnabled, o.ReadTimeout)
	}
}

func TestPruneConsumers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		if n, err := s.PruneConsumers(ctx, "me", 0); err != nil || n != 0 {
			t.Fatalf("PruneConsumers without a group = %d, %v", n, err)
		}
		if err := s.EnsureGroup(ctx); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, s)
		mustCreate(t, s)
		if err := s.Drop(ctx, readOne(t, s, "gone")); err != nil { // worked, then went away
			t.Fatal(err)
		}
		readOne(t, s, "busy") // holds a pending job
		if err := rdb.XGroupCreateConsumer(ctx, s.keys.deliveries(), group, "me").Err(); err != nil {
			t.Fatal(err)
		}
		n, err := s.PruneConsumers(ctx, "me", 0)
		if strings.HasSuffix(t.Name(), "/miniredis") {
			// miniredis does not track when a consumer last read (XINFO
			// says idle -1), so nothing is pruned; harmless in the demo.
			if err != nil || n != 0 {
				t.Fatalf("PruneConsumers = %d, %v; want 0 on miniredis", n, err)
			}
			return
		}
		if err != nil || n != 1 {
			t.Fatalf("PruneConsumers = %d, %v; want 1", n, err)
		}
		infos, err := rdb.XInfoConsumers(ctx, s.keys.deliveries(), group).Result()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range infos {
			names = append(names, c.Name)
		}
		if fmt.Sprint(names) != "[busy me]" {
			t.Errorf("consumers left = %v, want [busy me]", names)
		}
		if n, _ := s.PruneConsumers(ctx, "me", time.Hour); n != 0 {
			t.Errorf("PruneConsumers with a long idle time removed %d", n)
		}
	})
}

func TestHit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		for want := int64(1); want <= 3; want++ {
			n, ttl, err := s.Hit(ctx, "submit:203.0.113.7", time.Minute)
			if err != nil || n != want || ttl <= 0 || ttl > time.Minute {
				t.Fatalf("Hit #%d = %d, %v, %v", want, n, ttl, err)
			}
		}
		if n, _, _ := s.Hit(ctx, "submit:198.51.100.1", time.Minute); n != 1 {
			t.Errorf("another key counted %d, want 1", n)
		}
		keys, _ := rdb.Keys(ctx, "*").Result()
		for _, k := range keys {
			if strings.Contains(k, "203.0.113.7") {
				t.Errorf("key %q holds the IP address in clear", k)
			}
		}
	})
}

// Create lists a submission in its owner's and its department's index in
// the same atomic write, so My pages never miss a submission that has a
// receipt; one without an owner is listed for the department only.
func TestCreateIndexesOwnerAndDepartment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		owned := mustCreate(t, s)
		anon := newSubmission()
		anon.Subject = ""
		anonSub, _, err := s.Create(ctx, anon, Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		mine, err := s.SubjectSubmissions(ctx, "199001012384", 10)
		if err != nil || len(mine) != 1 || mine[0].ID != owned.ID {
			t.Fatalf("owner's list: %v %+v", err, mine)
		}
		dept, err := s.DepartmentSubmissions(ctx, "streets", 10)
		if err != nil || len(dept) != 2 {
			t.Fatalf("department's list: %v %d", err, len(dept))
		}
		ids := map[string]bool{dept[0].ID: true, dept[1].ID: true}
		if !ids[owned.ID] || !ids[anonSub.ID] {
			t.Fatalf("department's list lacks a submission: %v", ids)
		}
	})
}
