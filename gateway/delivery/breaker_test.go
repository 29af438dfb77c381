package delivery_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/delivery"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// targetConnector is a back-end with a name (delivery.Targeter) whose
// health the test switches.
type targetConnector struct {
	name  string
	down  atomic.Bool
	calls atomic.Int64
}

func (c *targetConnector) Target() string { return c.name }

func (c *targetConnector) Deliver(ctx context.Context, d *gateway.Delivery) (string, error) {
	c.calls.Add(1)
	if c.down.Load() {
		return "", &gateway.DeliveryError{Err: errors.New("503 Service Unavailable")}
	}
	return "KS-" + d.Reference, nil
}

// recordingObserver keeps what the dispatcher reports.
type recordingObserver struct {
	mu       sync.Mutex
	outcomes map[string]int
	breakers map[string]string
}

func (o *recordingObserver) Outcome(outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes[outcome]++
}
func (o *recordingObserver) Retry(string)      {}
func (o *recordingObserver) DeadLetter(string) {}
func (o *recordingObserver) BreakerState(backend, state string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.breakers[backend] = state
}
func (o *recordingObserver) get(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.outcomes[outcome]
}
func (o *recordingObserver) state(backend string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.breakers[backend]
}

// A failing back-end trips its own breaker: its jobs are deferred without
// counting attempts (none is dead-lettered though the attempt limit is
// small), the other back-end's deliveries go on, and after recovery a
// half-open probe closes the breaker and everything is delivered.
func TestBreakerPerBackend(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	bad := &targetConnector{name: "http://bad.example"}
	good := &targetConnector{name: "http://good.example"}
	bad.down.Store(true)
	obs := &recordingObserver{outcomes: map[string]int{}, breakers: map[string]string{}}
	cfg := fastConfig(t, "a")
	cfg.MaxAttempts = 5
	cfg.BreakerFailures = 3
	cfg.BreakerOpen = 200 * time.Millisecond
	cfg.Observer = obs
	routes := func(id string) (delivery.Route, bool) {
		switch id {
		case "bad-service":
			return delivery.Route{Connector: bad, Retention: time.Hour}, true
		case "good-service":
			return delivery.Route{Connector: good, Retention: time.Hour}, true
		}
		return delivery.Route{}, false
	}
	start(t, s, routes, cfg)

	var bads []*gateway.Submission
	for range 10 {
		bads = append(bads, submit(t, s, "bad-service"))
	}
	waitFor(t, "the bad back-end's breaker opens", func() bool { return obs.state(bad.name) == delivery.BreakerOpen })
	waitFor(t, "deferred jobs", func() bool { return obs.get(delivery.OutcomeDeferred) >= 10 })
	g := submit(t, s, "good-service")
	waitFor(t, "the good back-end delivers", isDelivered(t, s, g.ID))
	if st := obs.state(good.name); st != delivery.BreakerClosed {
		t.Errorf("good back-end's breaker %q", st)
	}
	// Far more deferrals than calls: the breaker keeps jobs off the
	// failing back-end, and no attempt limit (5) is reached.
	if calls, deferred := bad.calls.Load(), obs.get(delivery.OutcomeDeferred); int64(deferred) <= calls {
		t.Errorf("%d calls reached the failing back-end and only %d jobs were deferred", calls, deferred)
	}
	bad.down.Store(false)
	for _, sub := range bads {
		waitFor(t, "delivery after recovery", isDelivered(t, s, sub.ID))
	}
	if st := stats(t, s); st.Dead != 0 {
		t.Errorf("dead letters while the breaker was open: %+v", st)
	}
	if st := obs.state(bad.name); st != delivery.BreakerClosed {
		t.Errorf("breaker %q after recovery", st)
	}
}
