package delivery_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/delivery"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// BenchmarkDrain measures the dispatcher draining b.N queued submissions
// into a real HTTP back-end through the real http connector, on a real
// redis-server: ns/op is the wall time per delivery, and with
// -cpuprofile it shows where the dispatcher's time goes. Queueing the
// submissions is outside the timer.
func BenchmarkDrain(b *testing.B) {
	rs := redistest.Start(b)
	s := redisstore.New(rs.Client(b), "")
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"case_reference":"CASE-1"}`)
		n.Add(1)
	}))
	b.Cleanup(srv.Close)
	c := realConnector(b, srv.URL)
	ctx := context.Background()
	for range b.N {
		if _, _, err := s.Create(ctx, &gateway.Submission{
			Service: service, ServiceVersion: "1", Department: "streets", Channel: gateway.ChannelDigital,
			Locale: "sv", Subject: subject, Payload: map[string]any{"description": secret},
		}, redisstore.Idempotency{}); err != nil {
			b.Fatal(err)
		}
	}
	d := delivery.New(s, routeTo(c), delivery.Config{
		Workers: 16, Consumer: "bench", PollInterval: 100 * time.Millisecond, ReadBlock: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	b.ResetTimer()
	go func() { _ = d.Run(rctx); close(done) }()
	for n.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-done
}
