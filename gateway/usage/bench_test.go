package usage_test

import (
	"context"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/gateway/usage"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTrack is what a request pays for one usage event: the visitor
// hash and the hand-off to the buffer; cpu-ns/op adds the flusher's work
// (folding, and pipelines to a real redis-server every second), so it is
// the whole in-process cost of an event.
func BenchmarkTrack(b *testing.B) {
	srv := redistest.Start(b)
	store := redisstore.New(srv.Client(b), "bench")
	rec := usage.New(store, usage.Config{Buffer: 1 << 20, Logger: slog.New(slog.DiscardHandler)})
	rec.Start(context.Background())
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		i++
		rec.Track(usage.Event{Kind: usage.Viewed, Service: "street-fault", Department: "streets-parks", Channel: gateway.ChannelDigital,
			Locale: "sv", At: now, Visitor: rec.Visitor("203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64)", now)})
	}
	if err := rec.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if st := rec.Stats(); st.Dropped+st.Lost > 0 {
		b.Logf("dropped %d lost %d of %d", st.Dropped, st.Lost, st.Tracked)
	}
}
