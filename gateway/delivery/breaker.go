package delivery

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/kommun/servicegateway/gateway"
)

// Circuit breakers. Each back-end has its own breaker in each gateway
// process. A back-end is what a connector reports as its Target (the http
// connector: scheme, host and port of its URL), so services of one
// department that share a case system share its breaker, and a department
// whose system fails trips only its own. Connectors without a Target are
// keyed by the submission's department.
//
// Closed: deliveries pass; BreakerFailures consecutive failures (network
// errors, timeouts, 408, 429, 5xx; a permanent 4xx is an answer, not a
// failure) open it. Open: no delivery to that back-end is tried for
// BreakerOpen; jobs are put back in the retry schedule without counting an
// attempt, so workers are free at once for other departments and nothing
// is dead-lettered because a back-end was down. Half-open: BreakerProbes
// deliveries test the back-end; success closes the breaker, failure opens
// it again and the probe's job is deferred like the others, without an
// attempt counted (a probe tests the back-end, not the submission).

// Targeter is implemented by connectors that can name the back-end they
// deliver to, without secrets (e.g. "https://diarium.example.se:443").
type Targeter interface {
	Target() string
}

// Breaker states as Observer.BreakerState reports them.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half_open"
	BreakerOpen     = "open"
)

// Breaker defaults.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerOpen     = 30 * time.Second
	DefaultBreakerProbes   = 1
)

// Observer receives what the dispatcher does, for metrics. Implementations
// must be safe for concurrent use and must not block.
type Observer interface {
	// Outcome is called once per handled job with one of the Outcome*
	// values and how long the delivery attempt took (0 when none was made).
	Outcome(outcome string, took time.Duration)
	// Retry is called when a retry is scheduled, with the error class.
	Retry(reason string)
	// DeadLetter is called when a submission is dead-lettered.
	DeadLetter(reason string)
	// BreakerState is called when a back-end's breaker changes state.
	BreakerState(backend, state string)
}

// Outcomes reported to Observer.Outcome.
const (
	OutcomeDelivered  = "delivered"
	OutcomeRetry      = "retry"
	OutcomeDeadLetter = "dead_letter"
	OutcomeDeferred   = "deferred"   // breaker open: put back without an attempt
	OutcomeDropped    = "dropped"    // already delivered or gone
	OutcomeSuperseded = "superseded" // another consumer recorded the outcome first
	OutcomeError      = "error"      // the outcome could not be recorded; redelivered later
)

type nopObserver struct{}

func (nopObserver) Outcome(string, time.Duration) {}
func (nopObserver) Retry(string)                  {}
func (nopObserver) DeadLetter(string)             {}
func (nopObserver) BreakerState(string, string)   {}

// breakers holds one breaker per back-end, made on first use.
type breakers struct {
	d  *Dispatcher
	mu sync.Mutex
	m  map[string]*gobreaker.CircuitBreaker[string]
}

func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	}
	return BreakerClosed
}

// get returns the breaker of backend, or nil when breakers are off.
func (b *breakers) get(backend string) *gobreaker.CircuitBreaker[string] {
	if b.d.cfg.BreakerFailures < 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if cb, ok := b.m[backend]; ok {
		return cb
	}
	failures := uint32(b.d.cfg.BreakerFailures)
	cb := gobreaker.NewCircuitBreaker[string](gobreaker.Settings{
		Name:        backend,
		MaxRequests: b.d.cfg.BreakerProbes,
		Timeout:     b.d.cfg.BreakerOpen,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		IsSuccessful: func(err error) bool {
			// A permanent answer (a 4xx) means the back-end is up, and so
			// does an acceptance with an unreadable answer.
			return err == nil || classify(err) == ReasonPermanent || accepted(err)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.d.log.Warn("circuit breaker opened: deliveries to this back-end pause", "backend", name, "from", stateName(from), "pause", b.d.cfg.BreakerOpen)
			} else {
				b.d.log.Info("circuit breaker changed state", "backend", name, "from", stateName(from), "to", stateName(to))
			}
			b.d.obs.BreakerState(name, stateName(to))
		},
	})
	b.m[backend] = cb
	b.d.obs.BreakerState(backend, BreakerClosed)
	return cb
}

// States returns the current state of every breaker made so far.
func (b *breakers) states() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]string, len(b.m))
	for k, cb := range b.m {
		out[k] = stateName(cb.State())
	}
	return out
}

// BreakerStates returns the state of each back-end's breaker in this
// process (closed, half_open or open), for metrics and operators.
func (d *Dispatcher) BreakerStates() map[string]string { return d.breakers.states() }

// Per-back-end concurrency. A process has at most Config.BackendLimit
// deliveries in flight to one back-end (default half the workers), so a
// back-end that answers slowly cannot hold every worker while the
// submissions for other back-ends wait. A worker whose job is over the
// limit waits up to backendBusyWait for a free slot; then the job is put
// back for about that long (with jitter) without counting an attempt, as
// for an open breaker, and the worker takes other work.

// errBackendBusy: the back-end kept BackendLimit deliveries of this
// process in flight for backendBusyWait.
var errBackendBusy = errors.New("delivery: back-end at its concurrency limit")

// backendBusyWait is how long a job over a back-end's limit waits for a
// slot, and then in the retry schedule.
const backendBusyWait = time.Second

// slots holds a semaphore per back-end.
type slots struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// acquire takes one of limit (> 0; otherwise there is no limit) slots of
// backend, waiting up to wait. release gives it back.
func (f *slots) acquire(backend string, limit int, wait time.Duration) (release func(), ok bool) {
	if limit <= 0 {
		return func() {}, true
	}
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]chan struct{}{}
	}
	sem, seen := f.m[backend]
	if !seen {
		sem = make(chan struct{}, limit) // back-ends are few: one per case system
		f.m[backend] = sem
	}
	f.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, true
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, true
	case <-t.C:
		return nil, false
	}
}

// backendOf names the back-end a route delivers to (see Targeter).
func backendOf(route Route, sub *gateway.Submission) string {
	if t, ok := route.Connector.(Targeter); ok {
		if s := t.Target(); s != "" {
			return s
		}
	}
	return "department:" + sub.Department
}

// deliver runs one delivery through the back-end's breaker. open reports
// that the breaker refused it (nothing was tried).
func (d *Dispatcher) deliver(ctx context.Context, route Route, backend string, del *gateway.Delivery) (caseRef string, open bool, err error) {
	release, ok := d.busy.acquire(backend, d.cfg.BackendLimit, backendBusyWait)
	if !ok {
		return "", true, errBackendBusy
	}
	defer release()
	cb := d.breakers.get(backend)
	if cb == nil {
		ref, err := route.Connector.Deliver(ctx, del)
		return ref, false, err
	}
	probe := cb.State() == gobreaker.StateHalfOpen
	ref, err := cb.Execute(func() (string, error) { return route.Connector.Deliver(ctx, del) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return "", true, err
	}
	if probe && err != nil && classify(err) != ReasonPermanent && !accepted(err) {
		// A failed probe says the back-end is still down, nothing about
		// this submission: it is deferred like the others, without
		// counting an attempt. Otherwise, while a back-end hangs, every
		// probe moves one queued submission towards the dead letters, and
		// all of them end there after attempts x (open + timeout) each.
		return "", true, err
	}
	return ref, false, err
}

// deferWait is how long a job waits when the breaker refused it: about
// the rest of the open period (spread with jitter so that the jobs do not
// all come back at once), or a short while when half-open probes are out.
func (d *Dispatcher) deferWait(err error) time.Duration {
	span := d.cfg.BreakerOpen
	if errors.Is(err, gobreaker.ErrTooManyRequests) {
		span = min(span, time.Second)
	}
	if errors.Is(err, errBackendBusy) {
		span = backendBusyWait
	}
	span = max(span, 10*time.Millisecond)
	return span/2 + time.Duration(d.rnd(int64(span/2)+1))
}
