package delivery_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/delivery"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// TestBackendLimit: a back-end that holds its requests gets at most
// BackendLimit deliveries at once from a process with more workers, the
// workers it cannot have deliver to another back-end meanwhile, and once
// it answers, every submission reaches it exactly once (the ones put back
// over the limit were never sent, and no attempt was counted for them).
func TestBackendLimit(t *testing.T) {
	rs := redistest.Start(t)
	s := newStore(t, rs)
	var (
		mu             sync.Mutex
		inFlight, most int
		calls          = map[string]int{}
		release        = make(chan struct{})
		releaseOnce    sync.Once
	)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		calls[key]++
		mu.Unlock()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"case_reference": "SLOW-" + key[:6]})
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	fast := newCaseSystem(t, nil)
	routes := func(id string) (delivery.Route, bool) {
		switch id {
		case "slow-service":
			return delivery.Route{Connector: httpConnector{slow.URL}}, true
		case service:
			return delivery.Route{Connector: httpConnector{fast.srv.URL}}, true
		}
		return delivery.Route{}, false
	}
	var slowIDs []string
	for range 6 {
		sub, _, err := s.Create(ctxFor(t), &gateway.Submission{
			Service: "slow-service", ServiceVersion: "1", Department: "parks", Channel: gateway.ChannelDigital,
			Locale: "sv", Payload: map[string]any{"description": "x"},
		}, redisstore.Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		slowIDs = append(slowIDs, sub.ID)
	}
	for range 4 {
		submit(t, s, service)
	}
	cfg := fastConfig(t, "limit")
	cfg.Workers, cfg.BackendLimit = 8, 2
	start(t, s, routes, cfg)

	waitFor(t, "the other back-end's deliveries while the slow one holds its slots", func() bool { return fast.distinct() == 4 })
	mu.Lock()
	heldMost := most
	mu.Unlock()
	if heldMost != 2 {
		t.Errorf("the held back-end had at most %d deliveries at once, want its limit 2", heldMost)
	}
	releaseOnce.Do(func() { close(release) })
	waitFor(t, "every submission delivered", func() bool {
		for _, id := range slowIDs {
			if get(t, s, id).Status != gateway.StatusDelivered {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	if most > 2 {
		t.Errorf("%d deliveries at once to a back-end limited to 2", most)
	}
	for _, id := range slowIDs {
		if calls[id] != 1 {
			t.Errorf("submission sent %d times, want once", calls[id])
		}
		if sub := get(t, s, id); sub.Attempts != 1 {
			t.Errorf("%d attempts counted, want 1 (waiting for a slot is not an attempt)", sub.Attempts)
		}
	}
}
