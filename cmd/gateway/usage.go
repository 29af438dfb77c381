package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kommun/servicegateway/gateway/delivery"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/usage"
)

// usageParts are the usage statistics as the rest of the gateway sees them;
// all nil when they are switched off.
type usageParts struct {
	tracker  httpapi.Tracker
	events   intake.Events
	reports  httpapi.UsageReader
	delivery delivery.UsageTracker
	stop     func(ctx context.Context)
}

// setupUsage starts the usage recorder (buffer and flusher) and registers
// its figures with the metrics registry (reg may be nil).
func setupUsage(ctx context.Context, cfg config, store *redisstore.Store, reg *prometheus.Registry, log *slog.Logger) usageParts {
	if !cfg.Usage {
		log.Info("usage statistics switched off (GATEWAY_USAGE=off)")
		return usageParts{stop: func(context.Context) {}}
	}
	ucfg := usage.Config{Buffer: cfg.UsageBuffer, FlushInterval: cfg.UsageFlush, AbandonAfter: cfg.UsageAbandon, Logger: log}
	rec := usage.New(store, ucfg)
	rec.Start(ctx)
	if reg != nil {
		registerUsageMetrics(reg, rec)
	}
	return usageParts{
		tracker: rec, events: rec, reports: usage.NewReader(store, ucfg), delivery: rec,
		stop: func(ctx context.Context) {
			if err := rec.Stop(ctx); err != nil {
				log.Warn("usage: not all events were written at shutdown", "error", err)
			}
			st := rec.Stats()
			log.Info("usage statistics flushed", "written", st.Flushed, "dropped", st.Dropped, "lost", st.Lost)
		},
	}
}

// registerUsageMetrics exposes the recorder's figures at /metrics:
//
//	gateway_usage_events_total                      counter: events accepted into the buffer
//	gateway_usage_events_written_total              counter: events written to Redis
//	gateway_usage_events_dropped_total{reason}      counter: buffer_full (the buffer was full) or
//	                                                store (Redis did not take the batch)
//	gateway_usage_buffered_events                   gauge: events waiting for the flusher
func registerUsageMetrics(reg *prometheus.Registry, rec *usage.Recorder) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_usage_events_total",
			Help: "Usage events accepted into the in-process buffer."}, func() float64 { return float64(rec.Stats().Tracked) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_usage_events_written_total",
			Help: "Usage events written to Redis."}, func() float64 { return float64(rec.Stats().Flushed) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_usage_events_dropped_total",
			Help: "Usage events dropped: the buffer was full, or Redis did not take the batch.", ConstLabels: prometheus.Labels{"reason": "buffer_full"}},
			func() float64 { return float64(rec.Stats().Dropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "gateway_usage_events_dropped_total",
			Help: "Usage events dropped: the buffer was full, or Redis did not take the batch.", ConstLabels: prometheus.Labels{"reason": "store"}},
			func() float64 { return float64(rec.Stats().Lost) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "gateway_usage_buffered_events",
			Help: "Usage events waiting for the flusher."}, func() float64 { return float64(rec.Stats().Buffered) }),
	)
}
