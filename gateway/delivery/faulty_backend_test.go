package delivery_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

// realConnector provisions the http connector for url, as the gateway does.
func realConnector(t testing.TB, url string) gateway.Connector {
	t.Helper()
	s := &httpjson.Settings{URL: "${URL}/cases", Secret: "${SECRET}"}
	env := map[string]string{"URL": url, "SECRET": "0123456789abcdef0123456789abcdef"}
	c, err := s.Provision(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGarbledAnswerCountsAsDelivered (issue 9, item 18): a back-end that
// takes every delivery (2xx) but answers something unreadable has the case;
// the submission is recorded as delivered (no case reference) after one
// call. Before, each 2xx was a temporary failure, retried until the
// submission was dead-lettered although the department had it.
func TestGarbledAnswerCountsAsDelivered(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	var calls atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>Tack!</html>")
	}))
	t.Cleanup(be.Close)
	cfg := fastConfig(t, "a")
	cfg.MaxAttempts = 3
	start(t, s, routeTo(realConnector(t, be.URL)), cfg)
	sub := submit(t, s, service)
	waitFor(t, "delivered or dead-lettered", func() bool {
		got := get(t, s, sub.ID)
		return got.Status == gateway.StatusDelivered || got.Delayed
	})
	got := get(t, s, sub.ID)
	if got.Status != gateway.StatusDelivered || got.Delayed || got.CaseReference != "" {
		t.Fatalf("submission %s delayed=%v case %q; want delivered without a case reference", got.Status, got.Delayed, got.CaseReference)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the back-end was called %d times, want 1", n)
	}
	if st := stats(t, s); st.Dead != 0 {
		t.Errorf("dead letters: %+v", st)
	}
}

// TestHangingBackendDeadLettersNothing (issue 9, item 18): while a back-end
// hangs, the breaker's half-open probes must not count attempts against the
// submissions they carry. Before, each probe moved one queued submission
// towards the dead letters, so all of them ended there, one attempts x
// (open + timeout) after another. The back-end sees at least 15 requests
// here; with 6 submissions and 3 attempts each, counting every one would
// have dead-lettered at least one. Once the back-end answers, all are
// delivered.
func TestHangingBackendDeadLettersNothing(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	var calls atomic.Int64
	var healthy atomic.Bool
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		if !healthy.Load() {
			<-r.Context().Done() // hangs until the gateway gives up
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"case_reference":"KS-1"}`)
	}))
	t.Cleanup(be.Close)
	cfg := fastConfig(t, "a")
	cfg.MaxAttempts = 3
	cfg.Timeout = 100 * time.Millisecond
	cfg.BreakerFailures = 2
	cfg.BreakerOpen = 50 * time.Millisecond
	stop := start(t, s, routeTo(realConnector(t, be.URL)), cfg)
	var subs []*gateway.Submission
	for range 6 {
		subs = append(subs, submit(t, s, service))
	}
	waitFor(t, "15 requests to the hanging back-end", func() bool { return calls.Load() >= 15 })
	if st := stats(t, s); st.Dead != 0 {
		t.Fatalf("%d of 6 submissions dead-lettered while the back-end hung (%d requests)", st.Dead, calls.Load())
	}
	healthy.Store(true)
	for _, sub := range subs {
		waitFor(t, "delivery after the back-end recovered", isDelivered(t, s, sub.ID))
	}
	stop()
	if st := stats(t, s); st.Dead != 0 {
		t.Errorf("dead letters: %+v", st)
	}
}
