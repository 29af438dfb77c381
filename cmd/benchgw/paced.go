package main

// Paced submissions (issue 14, goal 3: "p99 < 10 ms at 2,000/s"): an
// open-loop load generator sends POST /api/v1/services/street-fault/
// submissions on a fixed schedule (every 1/rate seconds, whether or not
// earlier requests have been answered) and counts each request's latency
// from the time it was scheduled, not from when it could be sent, so that a
// stall of the gateway shows in the percentiles instead of quietly slowing
// the load down (coordinated omission).

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	submitRate    = flag.Float64("submit-rate", 0, "also run paced submissions at this many per second (open loop, latency from the scheduled time), AOF everysec and always, each gateway of 7 services; 0: off")
	submitSeconds = flag.Duration("submit-seconds", 10*time.Second, "length of one paced submit run (-submit-rate)")
)

// pacedConns bounds the paced load's connections to one gateway.
const pacedConns = 48

// pacedResult is one paced run against one gateway.
type pacedResult struct {
	fsync, label        string
	offered, accepted   int64
	bad                 int64
	firstErr            string
	wall                time.Duration
	lat                 []time.Duration // of accepted requests, from their scheduled time
	gwCPU, redisCPU     float64         // seconds over the run (deliveries running alongside included)
	backlogMax          int64           // deliveries stream length, sampled every 100 ms
	gwDrained, rDrained float64         // CPU seconds from the start until the deliveries drained
}

func (r pacedResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(p * float64(len(r.lat)-1))
	return r.lat[i]
}

// paced offers rate submissions per second to t for d, open loop.
func (h *harness) paced(ctx context.Context, t target, body []byte, rate float64, d time.Duration, streamKey string) (pacedResult, error) {
	res := pacedResult{}
	n := int64(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, n)
	var ok, bad atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup

	// Backlog: the deliveries stream's length, sampled.
	stopSampling := make(chan struct{})
	var backlogMax atomic.Int64
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
				out, err := exec.CommandContext(ctx, "redis-cli", "-p", strconv.Itoa(h.rport), "xlen", streamKey).Output()
				if v, perr := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && perr == nil && v > backlogMax.Load() {
					backlogMax.Store(v)
				}
			}
		}
	})

	// At most pacedConns connections (the gateway refuses more than
	// GATEWAY_MAX_CONNS_PER_IP, 64, from one address); a request that
	// finds them all busy waits in the client, and that wait counts.
	h.client.CloseIdleConnections()
	tr := &http.Transport{MaxIdleConnsPerHost: pacedConns, MaxConnsPerHost: pacedConns, DisableCompression: true, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 30 * time.Second, Transport: tr}

	r0 := cpuSeconds(h.redis.Process.Pid, h.tck)
	g0 := cpuSeconds(t.pid, h.tck)
	start := time.Now()
	for i := int64(0); i < n && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "POST", t.url, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if t.idem {
				req.Header.Set("Idempotency-Key", fmt.Sprintf("benchgw-paced-%d-%d", start.UnixNano(), idemSeq.Add(1)))
			}
			r, err := client.Do(req)
			if err != nil {
				bad.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			took := time.Since(at) // from the scheduled time
			if r.StatusCode/100 != 2 {
				bad.Add(1)
				firstErr.CompareAndSwap(nil, r.Status)
				return
			}
			ok.Add(1)
			mu.Lock()
			lat = append(lat, took)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.wall = time.Since(start)
	res.gwCPU = cpuSeconds(t.pid, h.tck) - g0
	res.redisCPU = cpuSeconds(h.redis.Process.Pid, h.tck) - r0
	h.drain(ctx, streamKey)
	res.gwDrained = cpuSeconds(t.pid, h.tck) - g0
	res.rDrained = cpuSeconds(h.redis.Process.Pid, h.tck) - r0
	close(stopSampling)
	sampler.Wait()
	slices.Sort(lat)
	res.offered, res.accepted, res.bad, res.lat, res.backlogMax = n, ok.Load(), bad.Load(), lat, backlogMax.Load()
	if v, isStr := firstErr.Load().(string); isStr {
		res.firstErr = v
	}
	if res.accepted == 0 {
		return res, fmt.Errorf("paced submit: nothing accepted by %s (%s)", t.url, res.firstErr)
	}
	return res, ctx.Err()
}

// pacedTable runs the paced submissions, AOF everysec then always, each
// gateway in turn, and returns the table's lines.
func (h *harness) pacedTable(ctx context.Context, gws []pacedTarget, body []byte) (string, error) {
	if *submitRate <= 0 {
		return "", nil
	}
	d := *submitSeconds
	if h.o.smoke {
		d = time.Second
	}
	var rows []pacedResult
	for _, fsync := range []string{"everysec", "always"} {
		if err := exec.CommandContext(ctx, "redis-cli", "-p", strconv.Itoa(h.rport), "config", "set", "appendfsync", fsync).Run(); err != nil {
			return "", fmt.Errorf("redis-cli config set appendfsync: %w", err)
		}
		for round := 0; round < max(h.o.rounds, 1); round++ {
			for _, g := range gws {
				r, err := h.paced(ctx, g.t, body, *submitRate, d, g.stream)
				if err != nil {
					return "", err
				}
				r.fsync, r.label = fsync, g.t.name
				rows = append(rows, r)
				fmt.Fprintf(os.Stderr, "paced %.0f/s (appendfsync %s) %-5s accepted %7.0f/s  p50 %s p90 %s p99 %s max %s  %6.1f µs gateway CPU per submission  backlog max %d  %d errors %s\n",
					*submitRate, fsync, g.t.name, float64(r.accepted)/r.wall.Seconds(), ms(r.pct(0.5)), ms(r.pct(0.9)), ms(r.pct(0.99)), ms(r.pct(1)),
					1e6*r.gwCPU/float64(max(r.accepted, 1)), r.backlogMax, r.bad, r.firstErr)
			}
		}
	}
	var out strings.Builder
	keys := map[bool]string{true: ", each with its own Idempotency-Key", false: ", no Idempotency-Key"}[h.o.submitKeys]
	fmt.Fprintf(&out, "| Paced submit, %.0f/s offered for %v, open loop%s | accepted/s | p50 | p90 | p99 | max | gateway µs CPU per submission (%s) | Redis µs CPU per submission | backlog max | errors |\n", *submitRate, d, keys,
		map[bool]string{true: "this tree: intake alone, -deliverer", false: "delivery alongside"}[*delivererMode])
	fmt.Fprintln(&out, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		name := "this tree"
		if r.label == "base" {
			name = h.o.baseline
		}
		fmt.Fprintf(&out, "| AOF %s, %s | %.0f | %s | %s | %s | %s | %.0f | %.0f | %d | %d |\n", r.fsync, name, float64(r.accepted)/r.wall.Seconds(),
			ms(r.pct(0.5)), ms(r.pct(0.9)), ms(r.pct(0.99)), ms(r.pct(1)),
			1e6*r.gwCPU/float64(max(r.accepted, 1)), 1e6*r.redisCPU/float64(max(r.accepted, 1)), r.backlogMax, r.bad)
	}
	return out.String(), nil
}

// pacedTarget is a gateway for the paced run and its deliveries stream.
type pacedTarget struct {
	t      target
	stream string
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
