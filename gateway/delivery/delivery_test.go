package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/delivery"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

const (
	service = "street-fault"
	subject = "199001012384"
	secret  = "Trasig gatlykta vid lekplatsen" // payload text that must never be logged
)

// --- a back-end case system and a connector to it --------------------------

// caseSystem is an HTTP back-end that deduplicates on Idempotency-Key, as
// the departments' systems must.
type caseSystem struct {
	srv *httptest.Server

	mu    sync.Mutex
	calls map[string]int    // idempotency key -> requests
	cases map[string]string // idempotency key -> case reference
	seq   []int             // attempt numbers, in order of arrival
	// fail decides the answer to the n-th request (1-based) for a key: 0
	// for success, else an HTTP status. nil means always succeed.
	fail func(key string, n int) int
}

func newCaseSystem(t *testing.T, fail func(key string, n int) int) *caseSystem {
	cs := &caseSystem{calls: map[string]int{}, cases: map[string]string{}, fail: fail}
	cs.srv = httptest.NewServer(http.HandlerFunc(cs.serve))
	t.Cleanup(cs.srv.Close)
	return cs
}

func (cs *caseSystem) serve(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID      string         `json:"id"`
		Attempt int            `json:"attempt"`
		Payload map[string]any `json:"payload"`
	}
	key := r.Header.Get("Idempotency-Key")
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || key == "" || key != body.ID {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.calls[key]++
	cs.seq = append(cs.seq, body.Attempt)
	if cs.fail != nil {
		if status := cs.fail(key, cs.calls[key]); status != 0 {
			if status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "3600")
			}
			w.WriteHeader(status)
			return
		}
	}
	ref, ok := cs.cases[key]
	if !ok {
		ref = fmt.Sprintf("CASE-%d", len(cs.cases)+1)
		cs.cases[key] = ref
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"case_reference": ref})
}

func (cs *caseSystem) callsFor(key string) int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.calls[key]
}

func (cs *caseSystem) distinct() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.calls)
}

func (cs *caseSystem) attempts() []int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]int(nil), cs.seq...)
}

// httpConnector is a minimal JSON-over-HTTP connector for these tests.
type httpConnector struct{ url string }

func (c httpConnector) Deliver(ctx context.Context, d *gateway.Delivery) (string, error) {
	body, err := json.Marshal(map[string]any{
		"id": d.SubmissionID, "reference": d.Reference, "service": d.Service,
		"attempt": d.Attempt, "payload": d.Payload,
	})
	if err != nil {
		return "", &gateway.DeliveryError{Permanent: true, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return "", &gateway.DeliveryError{Permanent: true, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", d.IdempotencyKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		var out struct {
			CaseReference string `json:"case_reference"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return "", err
		}
		return out.CaseReference, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return "", &gateway.DeliveryError{RetryAfter: time.Duration(secs) * time.Second, Err: errors.New(resp.Status)}
	case resp.StatusCode/100 == 4:
		return "", &gateway.DeliveryError{Permanent: true, Err: errors.New(resp.Status)}
	default:
		return "", &gateway.DeliveryError{Err: errors.New(resp.Status)}
	}
}

// --- harness ---------------------------------------------------------------

// logBuffer collects log output so a test can check what was (not) logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	return b.out.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{out: t.Output()}
	return slog.New(slog.NewJSONHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// fastConfig keeps tests quick; no test depends on these timings.
func fastConfig(t *testing.T, consumer string) delivery.Config {
	log, _ := newLogger(t)
	return delivery.Config{
		Workers:      2,
		Consumer:     consumer,
		RetryBase:    5 * time.Millisecond,
		RetryMax:     20 * time.Millisecond,
		MaxAttempts:  10,
		ClaimIdle:    10 * time.Second,
		Timeout:      5 * time.Second,
		PollInterval: 10 * time.Millisecond,
		ReadBlock:    100 * time.Millisecond,
		Logger:       log,
	}
}

func newStore(t *testing.T, srv *redistest.Server) *redisstore.Store {
	return redisstore.New(srv.Client(t), "")
}

func routeTo(c gateway.Connector) func(string) (delivery.Route, bool) {
	return func(id string) (delivery.Route, bool) {
		if id != service {
			return delivery.Route{}, false
		}
		return delivery.Route{Connector: c, Retention: time.Hour}, true
	}
}

// start runs a dispatcher until the returned stop is called (or the test
// ends). stop waits for Run to return and fails the test if it does not.
func start(t *testing.T, q delivery.Queue, routes func(string) (delivery.Route, bool), cfg delivery.Config) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	d := delivery.New(q, routes, cfg)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func submit(t *testing.T, s *redisstore.Store, svc string) *gateway.Submission {
	t.Helper()
	sub, _, err := s.Create(ctxFor(t), &gateway.Submission{
		Service: svc, ServiceVersion: "1", Department: "streets", Channel: gateway.ChannelDigital,
		Locale: "sv", Subject: subject, Payload: map[string]any{"description": secret},
	}, redisstore.Idempotency{})
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// waitFor polls cond until it holds, with a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(t *testing.T, s *redisstore.Store, id string) *gateway.Submission {
	t.Helper()
	sub, err := s.Get(ctxFor(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

func deliveredEntries(sub *gateway.Submission) int {
	n := 0
	for _, h := range sub.History {
		if h.Status == gateway.StatusDelivered {
			n++
		}
	}
	return n
}

func stats(t *testing.T, s *redisstore.Store) redisstore.QueueStats {
	t.Helper()
	st, err := s.Stats(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func isDelivered(t *testing.T, s *redisstore.Store, id string) func() bool {
	return func() bool { return get(t, s, id).Status == gateway.StatusDelivered }
}

// --- tests -----------------------------------------------------------------

func TestDeliveredOnce(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	cs := newCaseSystem(t, nil)
	start(t, s, routeTo(httpConnector{cs.srv.URL}), fastConfig(t, "a"))

	sub := submit(t, s, service)
	waitFor(t, "delivery", isDelivered(t, s, sub.ID))
	got := get(t, s, sub.ID)
	if got.CaseReference != "CASE-1" || got.Attempts != 1 || deliveredEntries(got) != 1 || got.Delayed {
		t.Errorf("delivered submission = %+v", got)
	}
	if n := cs.callsFor(sub.ID); n != 1 {
		t.Errorf("back-end called %d times, want 1", n)
	}
	if st := stats(t, s); st != (redisstore.QueueStats{}) {
		t.Errorf("queue not empty: %+v", st)
	}
}

func TestRetryThenDeliver(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	cs := newCaseSystem(t, func(_ string, n int) int {
		if n <= 3 {
			return http.StatusBadGateway
		}
		return 0
	})
	cfg := fastConfig(t, "a")
	log, logs := newLogger(t)
	cfg.Logger = log
	start(t, s, routeTo(httpConnector{cs.srv.URL}), cfg)

	sub := submit(t, s, service)
	waitFor(t, "delivery after failures", isDelivered(t, s, sub.ID))
	got := get(t, s, sub.ID)
	if got.Attempts != 4 || deliveredEntries(got) != 1 || got.CaseReference == "" {
		t.Errorf("submission = %+v, want 4 attempts and one delivery", got)
	}
	if got := fmt.Sprint(cs.attempts()); got != "[1 2 3 4]" {
		t.Errorf("attempt numbers seen by the back-end = %s, want [1 2 3 4]", got)
	}
	out := logs.String()
	if !strings.Contains(out, `"error_class":"temporary"`) || !strings.Contains(out, sub.Reference) {
		t.Errorf("log lacks the retries:\n%s", out)
	}
	// The submission id is the secret of the status link: logs name the
	// receipt reference instead.
	for _, private := range []string{subject, secret, sub.ID} {
		if strings.Contains(out, private) {
			t.Errorf("log contains %q", private)
		}
	}
}

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name        string
		service     string
		fail        func(string, int) int
		maxAttempts int
		wantCalls   int
		wantClass   string
	}{
		{"permanent error", service, func(string, int) int { return http.StatusUnprocessableEntity }, 10, 1, delivery.ReasonPermanent},
		{"attempts used up", service, func(string, int) int { return http.StatusInternalServerError }, 3, 3, delivery.ReasonMaxAttempts},
		{"unknown service", "no-such-service", nil, 10, 0, delivery.ReasonUnknownService},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t)
			s := newStore(t, srv)
			cs := newCaseSystem(t, tt.fail)
			cfg := fastConfig(t, "a")
			cfg.MaxAttempts = tt.maxAttempts
			log, logs := newLogger(t)
			cfg.Logger = log
			start(t, s, routeTo(httpConnector{cs.srv.URL}), cfg)

			sub := submit(t, s, tt.service)
			waitFor(t, "dead letter", func() bool { return stats(t, s).Dead == 1 })
			got := get(t, s, sub.ID)
			if got.Status != gateway.StatusReceived || !got.Delayed {
				t.Errorf("submission = %+v, want received and delayed", got)
			}
			if n := cs.callsFor(sub.ID); n != tt.wantCalls {
				t.Errorf("back-end called %d times, want %d", n, tt.wantCalls)
			}
			if st := stats(t, s); st.Stream != 0 || st.Pending != 0 || st.Retrying != 0 {
				t.Errorf("queue = %+v", st)
			}
			if !strings.Contains(logs.String(), `"level":"ERROR","msg":"delivery given up`) ||
				!strings.Contains(logs.String(), `"error_class":"`+tt.wantClass+`"`) {
				t.Errorf("no error-level dead letter log with class %s:\n%s", tt.wantClass, logs.String())
			}
		})
	}
}

// recordingQueue records the due times of retries.
type recordingQueue struct {
	*redisstore.Store
	mu   sync.Mutex
	dues []time.Time
}

func (q *recordingQueue) Retry(ctx context.Context, job delivery.Job, due time.Time, reason string) error {
	err := q.Store.Retry(ctx, job, due, reason)
	q.mu.Lock()
	q.dues = append(q.dues, due)
	q.mu.Unlock()
	return err
}

func (q *recordingQueue) retries() []time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]time.Time(nil), q.dues...)
}

func TestRetryAfterIsHonoured(t *testing.T) {
	srv := redistest.Start(t)
	q := &recordingQueue{Store: newStore(t, srv)}
	cs := newCaseSystem(t, func(string, int) int { return http.StatusTooManyRequests }) // Retry-After: 3600
	start(t, q, routeTo(httpConnector{cs.srv.URL}), fastConfig(t, "a"))

	before := time.Now()
	submit(t, q.Store, service)
	waitFor(t, "a retry", func() bool { return len(q.retries()) == 1 })
	if due := q.retries()[0]; due.Before(before.Add(time.Hour)) {
		t.Errorf("retry due %v after submit, want at least the back-end's Retry-After of 1h", due.Sub(before))
	}
	if st := stats(t, q.Store); st.Retrying != 1 {
		t.Errorf("queue = %+v, want one waiting retry", st)
	}
}

func TestMissingSubmissionIsDropped(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	cs := newCaseSystem(t, nil)
	sub := submit(t, s, service)
	// Its record is gone before any dispatcher ran (e.g. removed by hand).
	rdb := srv.Client(t)
	keys, err := rdb.Keys(ctxFor(t), "*"+sub.ID).Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys of the submission: %v %v", keys, err)
	}
	rdb.Del(ctxFor(t), keys...)

	start(t, s, routeTo(httpConnector{cs.srv.URL}), fastConfig(t, "a"))
	waitFor(t, "the job to be dropped", func() bool {
		st := stats(t, s)
		return st.Stream == 0 && st.Pending == 0
	})
	if n := cs.distinct(); n != 0 {
		t.Errorf("back-end got %d submissions, want 0", n)
	}
}

// TestTwoDispatchers runs two replicas on one Redis: every submission is
// delivered, and marked delivered exactly once, although some deliveries
// fail at first.
func TestTwoDispatchers(t *testing.T) {
	const n = 500
	srv := redistest.Start(t)
	cs := newCaseSystem(t, func(key string, call int) int {
		if call == 1 && key[0]%7 == 0 { // about one in seven fails once
			return http.StatusServiceUnavailable
		}
		return 0
	})
	routes := routeTo(httpConnector{cs.srv.URL})
	stores := []*redisstore.Store{newStore(t, srv), newStore(t, srv)}
	for i, s := range stores {
		cfg := fastConfig(t, fmt.Sprintf("replica-%d", i))
		cfg.Workers = 4
		start(t, s, routes, cfg)
	}

	ids := make([]string, n)
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := range 10 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ids[i] = submit(t, stores[w%2], service).ID
			}
		})
	}
	wg.Wait()

	s := stores[0]
	waitFor(t, "all deliveries", func() bool {
		st := stats(t, s)
		return cs.distinct() == n && st.Stream == 0 && st.Pending == 0 && st.Retrying == 0
	})
	for _, id := range ids {
		if cs.callsFor(id) < 1 {
			t.Errorf("%s never reached the back-end", id)
		}
		got := get(t, s, id)
		if got.Status != gateway.StatusDelivered || deliveredEntries(got) != 1 || got.CaseReference == "" {
			t.Errorf("%s: status %s, %d delivered entries, case %q", id, got.Status, deliveredEntries(got), got.CaseReference)
		}
	}
	if st := stats(t, s); st.Dead != 0 {
		t.Errorf("dead letters: %d", st.Dead)
	}
}

// blockingConnector hangs until released, like a dispatcher that froze or
// died in the middle of a delivery.
type blockingConnector struct {
	entered chan struct{} // closed on the first call
	once    sync.Once
	release chan error
}

func (c *blockingConnector) Deliver(ctx context.Context, _ *gateway.Delivery) (string, error) {
	c.once.Do(func() { close(c.entered) })
	select {
	case err := <-c.release:
		return "", err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func TestClaimFromStuckDispatcher(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	cs := newCaseSystem(t, nil)

	stuck := &blockingConnector{entered: make(chan struct{}), release: make(chan error, 1)}
	cfgA := fastConfig(t, "stuck")
	cfgA.Timeout = time.Hour
	cfgA.ClaimIdle = 2 * time.Hour
	stopA := start(t, s, routeTo(stuck), cfgA)

	sub := submit(t, s, service)
	select {
	case <-stuck.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("the first dispatcher never took the job")
	}
	// Tell A to stop; it cannot, its delivery hangs, and it never acknowledges.
	stoppedA := make(chan struct{})
	go func() { stopA(); close(stoppedA) }()

	cfgB := fastConfig(t, "rescuer")
	cfgB.ClaimIdle = 200 * time.Millisecond
	cfgB.Timeout = 100 * time.Millisecond // below ClaimIdle, as it should be
	start(t, s, routeTo(httpConnector{cs.srv.URL}), cfgB)
	waitFor(t, "the rescuer to deliver", isDelivered(t, s, sub.ID))

	// A finally comes back with a failure; its outcome must not count.
	stuck.release <- errors.New("connection reset")
	select {
	case <-stoppedA:
	case <-time.After(60 * time.Second):
		t.Fatal("the stuck dispatcher did not stop")
	}
	got := get(t, s, sub.ID)
	if got.Status != gateway.StatusDelivered || deliveredEntries(got) != 1 || got.Attempts != 1 {
		t.Errorf("submission = %+v", got)
	}
	if st := stats(t, s); st != (redisstore.QueueStats{}) {
		t.Errorf("queue = %+v, want empty (no retry from the stale outcome)", st)
	}
	if n := cs.callsFor(sub.ID); n != 1 {
		t.Errorf("back-end called %d times, want 1", n)
	}
}

// slowConnector takes a while and ignores nothing: it finishes unless its
// context ends.
type slowConnector struct {
	entered chan struct{}
	once    sync.Once
	delay   time.Duration
}

func (c *slowConnector) Deliver(ctx context.Context, d *gateway.Delivery) (string, error) {
	c.once.Do(func() { close(c.entered) })
	select {
	case <-time.After(c.delay):
		return "CASE-" + d.Reference, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	slow := &slowConnector{entered: make(chan struct{}), delay: 300 * time.Millisecond}
	stop := start(t, s, routeTo(slow), fastConfig(t, "a"))

	sub := submit(t, s, service)
	select {
	case <-slow.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("delivery never started")
	}
	stop() // returns only when Run has
	got := get(t, s, sub.ID)
	if got.Status != gateway.StatusDelivered || got.CaseReference != "CASE-"+sub.Reference {
		t.Errorf("after shutdown: %+v, want the in-flight delivery recorded", got)
	}
}

func TestRunWithoutRedisStopsCleanly(t *testing.T) {
	// Redis is down the whole time: Run keeps trying and still stops.
	srv := redistest.Start(t)
	s := newStore(t, srv)
	srv.Kill()
	stop := start(t, s, routeTo(httpConnector{"http://127.0.0.1:1"}), fastConfig(t, "a"))
	time.Sleep(50 * time.Millisecond)
	stop()
}

func TestBackoff(t *testing.T) {
	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	tests := []struct {
		name      string
		attempt   int
		base, max time.Duration
		rnd       func(int64) int64
		want      time.Duration
	}{
		{"first retry, top of range", 0, time.Second, time.Minute, highest, time.Second - 1},
		{"doubles", 3, time.Second, time.Minute, highest, 8*time.Second - 1},
		{"capped", 10, time.Second, time.Minute, highest, time.Minute - 1},
		{"huge attempt capped", 1000, time.Second, time.Minute, highest, time.Minute - 1},
		{"overflowing shift capped", 40, time.Hour, 24 * time.Hour, highest, 24*time.Hour - 1},
		{"full jitter reaches zero", 5, time.Second, time.Minute, lowest, 0},
		{"zero base", 3, 0, time.Minute, highest, 0},
		{"zero max", 3, time.Second, 0, highest, 0},
		{"negative attempt as first", -1, time.Second, time.Minute, highest, time.Second - 1},
		{"bad rnd clamped high", 0, time.Second, time.Minute, func(n int64) int64 { return n + 5 }, time.Second - 1},
		{"bad rnd clamped low", 0, time.Second, time.Minute, func(int64) int64 { return -5 }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := delivery.Backoff(tt.attempt, tt.base, tt.max, tt.rnd); got != tt.want {
				t.Errorf("Backoff = %v, want %v", got, tt.want)
			}
		})
	}

	// With the real random source every value is in [0, ceiling).
	for attempt := range 12 {
		ceil := min(time.Minute, time.Second<<attempt)
		for range 200 {
			if got := delivery.Backoff(attempt, time.Second, time.Minute, nil); got < 0 || got >= ceil {
				t.Fatalf("Backoff(%d) = %v, outside [0, %v)", attempt, got, ceil)
			}
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	d := delivery.New(nil, nil, delivery.Config{})
	c := d.Config()
	if c.Workers != 128 || c.BackendLimit != 64 || c.RetryBase != 2*time.Second || c.RetryMax != 10*time.Minute || c.MaxAttempts != 10 ||
		c.ClaimIdle != time.Minute || c.Timeout != 30*time.Second || c.PollInterval != time.Second ||
		c.Consumer == "" || c.Logger == nil {
		t.Errorf("defaults = %+v", c)
	}
	if err := d.Run(context.Background()); err == nil {
		t.Error("Run without a queue did not fail")
	}
}

func TestRunLeavesNoGoroutines(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	if err := s.Ping(ctxFor(t)); err != nil { // warm the connection pool
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	slow := &slowConnector{entered: make(chan struct{}), delay: 10 * time.Millisecond}
	cfg := fastConfig(t, "a")
	cfg.Workers = 8
	stop := start(t, s, routeTo(slow), cfg)
	sub := submit(t, s, service)
	waitFor(t, "delivery", isDelivered(t, s, sub.ID))
	stop()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// countingConnector is slowConnector that counts its calls.
type countingConnector struct {
	slowConnector
	mu    sync.Mutex
	calls int
}

func (c *countingConnector) Deliver(ctx context.Context, d *gateway.Delivery) (string, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.slowConnector.Deliver(ctx, d)
}

// A delivery slower than ClaimIdle is not claimed and sent a second time
// by the very process that is still delivering it.
func TestOwnSlowDeliveryNotReclaimed(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	conn := &countingConnector{slowConnector: slowConnector{entered: make(chan struct{}), delay: 600 * time.Millisecond}}
	cfg := fastConfig(t, "a")
	cfg.ClaimIdle = 50 * time.Millisecond // far shorter than the delivery
	start(t, s, routeTo(conn), cfg)

	sub := submit(t, s, service)
	waitFor(t, "delivery", isDelivered(t, s, sub.ID))
	conn.mu.Lock()
	calls := conn.calls
	conn.mu.Unlock()
	if calls != 1 {
		t.Fatalf("back-end called %d times for one submission, want 1", calls)
	}
}
