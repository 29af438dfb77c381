package main

import (
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// Three replicas, 10,000 submissions, the back-end flapping (503 for a
// while every second and a half) and one replica SIGKILLed half-way:
// exactly 10,000 cases in casesim, none twice. The time it takes is
// logged, not asserted. TENK_SUBMISSIONS overrides the count for a quick
// local run.
func TestDeliveryTenThousandThreeReplicas(t *testing.T) {
	total := 10000
	if v, err := strconv.Atoi(os.Getenv("TENK_SUBMISSIONS")); err == nil && v > 0 {
		total = v
	}
	rs := redistest.Start(t, redistest.WithAOF("always"))
	cs := casesimProc(t)
	px := newFaultProxy(t, cs.URL)
	began := time.Now()
	px.setModeFn(func() string {
		// 1.2 s up, 0.3 s down.
		if time.Since(began)%(1500*time.Millisecond) >= 1200*time.Millisecond {
			return mode503
		}
		return modePass
	})
	env := gatewayEnv(rs.URL(), px.URL())
	env["GATEWAY_WORKERS"] = "8"
	env["GATEWAY_LOG_LEVEL"] = "error"
	env["GATEWAY_RETRY_BASE"] = "50ms"
	env["GATEWAY_RETRY_MAX"] = "1s"
	env["GATEWAY_RETRY_ATTEMPTS"] = "1000"
	env["GATEWAY_BREAKER_FAILURES"] = "5"
	env["GATEWAY_BREAKER_OPEN"] = "300ms"
	env["GATEWAY_CLAIM_IDLE"] = "3s"
	env["GATEWAY_DELIVERY_TIMEOUT"] = "2s"
	replicas := []*proc{gatewayProc(t, env), gatewayProc(t, env), gatewayProc(t, env)}
	var dead atomic.Bool // replica 0 killed

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var (
		mu       sync.Mutex
		receipts = make([]string, total)
		got      atomic.Int64
		retries  atomic.Int64
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := range 24 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				key := "load-" + strconv.Itoa(i)
				body := streetFaultN(i)
				for try := 0; ; try++ {
					r := (i + try + w) % 3
					if r == 0 && dead.Load() {
						r = 1 + (i+try)%2
					}
					code, id, err := submitTo(hc, replicas[r].URL, "street-fault", body, key)
					if err == nil && code == http.StatusAccepted {
						mu.Lock()
						receipts[i] = id
						mu.Unlock()
						if got.Add(1) == int64(total/2) {
							replicas[0].Kill()
							dead.Store(true)
						}
						break
					}
					// 409: the same key is in flight, e.g. on the replica
					// just killed; its lock expires within 10 s.
					retries.Add(1)
					if try > 1000 {
						t.Errorf("submission %d: no receipt after %d tries (last %d %v)", i, try, code, err)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	submitted := time.Since(start)
	if t.Failed() {
		return
	}
	if !dead.Load() {
		t.Fatal("replica 0 was never killed")
	}
	eventually(t, 5*time.Minute, "every case in casesim", func() bool {
		time.Sleep(time.Second)
		return len(caseRecords(t, cs.URL)) >= total
	})
	took := time.Since(start)
	// Let anything still in flight settle, then count.
	time.Sleep(2 * time.Second)
	cases := caseRecords(t, cs.URL)
	if len(cases) != total {
		t.Fatalf("want exactly %d cases, got %d", total, len(cases))
	}
	exactlyOnce(t, cases, receipts)
	redelivered := 0
	for _, c := range cases {
		if c.Deliveries > 1 {
			redelivered++
		}
	}
	t.Logf("%d submissions through 3 replicas (one SIGKILLed at %d receipts), back-end flapping: all accepted in %v, all %d cases in casesim after %v; %d client retries, %d cases delivered more than once (deduplicated by casesim), %d answers 503 from the flapping back-end",
		total, total/2, submitted.Round(time.Millisecond), len(cases), took.Round(time.Millisecond), retries.Load(), redelivered, px.count(mode503))
}
