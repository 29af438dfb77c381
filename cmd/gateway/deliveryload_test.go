package main

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// TestDeliveryKeepsUpLoad (issue 14, goal 2) submits at a fixed rate
// (DELIVERY_LOAD_RATE, default 2,000/s) for DELIVERY_LOAD_SECONDS (default
// 60) to a gateway process delivering to a casesim process, samples the
// stream backlog every 250 ms and reports its maximum, the deliveries per
// second and the gateway's CPU per delivery (from /proc). It asserts only
// exactly-once (every receipt one case, none twice), never speed. It is a
// measurement, not part of CI: it runs only with DELIVERY_LOAD=1.
func TestDeliveryKeepsUpLoad(t *testing.T) {
	if os.Getenv("DELIVERY_LOAD") != "1" {
		t.Skip("load run; set DELIVERY_LOAD=1 (see README, Speed)")
	}
	rate, seconds := envInt("DELIVERY_LOAD_RATE", 2000), envInt("DELIVERY_LOAD_SECONDS", 60)
	rs := redistest.Start(t, redistest.WithAOF("everysec"))
	cs := casesimProc(t)
	env := gatewayEnv(rs.URL(), cs.URL)
	env["GATEWAY_LOG_LEVEL"] = "error"
	if w := os.Getenv("DELIVERY_LOAD_WORKERS"); w != "" {
		env["GATEWAY_WORKERS"] = w
	}
	env["GATEWAY_CLAIM_IDLE"] = "1m"
	env["GATEWAY_MAX_CONNS_PER_IP"] = "0" // the load generator is one address
	gw := gatewayProc(t, env)
	store := storeOf(t, rs)

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	total := rate * seconds
	var (
		mu        sync.Mutex
		receipts  []string
		latencies []time.Duration // of accepted submissions, for p50/p99
		refused   atomic.Int64
		wg        sync.WaitGroup
		tokens    = make(chan int, 256)
		maxBacklg int64
		stopS     = make(chan struct{})
		sampled   sync.WaitGroup
	)
	sampled.Go(func() {
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopS:
				return
			case <-tk.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := store.Stats(ctx)
			cancel()
			if err == nil && st.Stream+st.Retrying > maxBacklg {
				maxBacklg = st.Stream + st.Retrying
			}
		}
	})
	for range 64 {
		wg.Go(func() {
			for i := range tokens {
				t0 := time.Now()
				code, id, err := submitTo(hc, gw.URL, "street-fault", streetFaultN(i), "load-"+strconv.Itoa(i))
				took := time.Since(t0)
				if err != nil || code != http.StatusAccepted {
					refused.Add(1)
					continue
				}
				mu.Lock()
				receipts = append(receipts, id)
				latencies = append(latencies, took)
				mu.Unlock()
			}
		})
	}
	cpu0 := procCPU(t, gw)
	start := time.Now()
	for i := range total {
		// Pace: submission i is due at start + i/rate.
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
			time.Sleep(d)
		}
		tokens <- i
	}
	close(tokens)
	wg.Wait()
	intake := time.Since(start)
	eventually(t, 10*time.Minute, "the queue to drain", func() bool {
		time.Sleep(250 * time.Millisecond)
		st, err := store.Stats(context.Background())
		return err == nil && st.Stream == 0 && st.Retrying == 0
	})
	drained := time.Since(start)
	cpu := procCPU(t, gw) - cpu0
	close(stopS)
	sampled.Wait()
	cases := caseRecords(t, cs.URL)
	if len(cases) != len(receipts) {
		t.Errorf("%d receipts, %d cases", len(receipts), len(cases))
	}
	exactlyOnce(t, cases, receipts)
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(int(p*float64(len(latencies))), len(latencies)-1)].Round(10 * time.Microsecond)
	}
	t.Logf("offered %d/s for %ds: %d accepted (%.0f/s over %v), %d refused; submit latency p50 %v, p99 %v (client side, wall clock; reported, not asserted); backlog max %d; all delivered after %v (%.0f deliveries/s); gateway CPU %v, %.0f µs per accepted-and-delivered submission",
		rate, seconds, len(receipts), float64(len(receipts))/intake.Seconds(), intake.Round(time.Millisecond), refused.Load(),
		pct(0.50), pct(0.99), maxBacklg, drained.Round(time.Millisecond), float64(len(cases))/drained.Seconds(), cpu.Round(time.Millisecond),
		float64(cpu.Microseconds())/float64(max(len(cases), 1)))
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// procCPU is the user+system CPU time the process has used so far, from
// /proc/<pid>/stat (clock ticks of 10 ms).
func procCPU(t *testing.T, p *proc) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.Cmd.Process.Pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
