package httpapi_test

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/kommun/servicegateway/gateway/usage"
)

// The cost of usage tracking on the hot paths: the catalog page and the
// API submission, with tracking off and on (a real recorder, flushing to
// a real redis-server every second). Requests go straight to the fiber
// handler (no network), so the figures are the gateway's own work.
// cpu-ns/op is the process's CPU time (user + system, every goroutine,
// the flusher included) per request; the redis-server process is not in it.

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runHandler(b *testing.B, tracking bool, method, path, body string, want int) {
	deps, store, _ := baseDeps(b)
	var rec *usage.Recorder
	if tracking {
		rec = usage.New(store, usage.Config{Logger: quiet})
		rec.Start(context.Background())
		deps.Usage, deps.UsageReports = rec, usage.NewReader(store, usage.Config{})
	}
	h := build(b, deps).Handler()
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.Header.Set("User-Agent", "Mozilla/5.0 (bench)")
	if body != "" {
		req.Header.SetContentType("application/json")
		req.SetBodyString(body)
	}
	addr := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 7), Port: 4711}
	var fctx fasthttp.RequestCtx
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		fctx.Init(&req, addr, nil)
		h(&fctx)
		if fctx.Response.StatusCode() != want {
			b.Fatalf("status %d", fctx.Response.StatusCode())
		}
	}
	if rec != nil {
		_ = rec.Stop(context.Background()) // the last flush is part of the cost
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.StopTimer()
	if rec != nil {
		if st := rec.Stats(); st.Dropped+st.Lost > 0 {
			b.Logf("usage events dropped %d, lost %d of %d", st.Dropped, st.Lost, st.Tracked)
		}
	}
}

func BenchmarkUsageCatalogPage(b *testing.B) {
	for _, tracking := range []bool{false, true} {
		b.Run(map[bool]string{false: "tracking=off", true: "tracking=on"}[tracking], func(b *testing.B) {
			runHandler(b, tracking, "GET", "/", "", 200)
		})
	}
}

func BenchmarkUsageSubmitAPI(b *testing.B) {
	body := `{"kind":"pothole","description":"Ett djupt hål i cykelbanan vid bron","location":"Storgatan 1"}`
	for _, tracking := range []bool{false, true} {
		b.Run(map[bool]string{false: "tracking=off", true: "tracking=on"}[tracking], func(b *testing.B) {
			runHandler(b, tracking, "POST", "/api/v1/services/street-fault/submissions", body, 202)
		})
	}
}
