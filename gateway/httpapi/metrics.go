package httpapi

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// QueueStats is the delivery queue as the metrics show it.
type QueueStats struct {
	Stream, Pending, Retrying, Dead int64
	OldestAge                       time.Duration
}

// Metrics is the gateway's Prometheus registry, served at GET /metrics:
//
//	gateway_http_requests_total{method,route,status}      counter
//	gateway_http_request_duration_seconds{method,route}   histogram
//	gateway_deliveries_total{outcome}                     counter (delivered, retry, dead_letter, deferred, ...)
//	gateway_delivery_duration_seconds                     histogram of delivery attempts
//	gateway_delivery_retries_total{reason}                counter
//	gateway_dead_letters_total{reason}                    counter
//	gateway_breaker_state{backend}                        gauge: 0 closed, 1 half-open, 2 open
//	gateway_queue_entries{state}                          gauge: stream, pending, retrying, dead
//	gateway_queue_oldest_age_seconds                      gauge
//	gateway_messages_total{kind,channel,outcome}          counter: messages to residents (kind
//	                                                      notification, channel email or sms),
//	                                                      department webhooks (webhook, http) and
//	                                                      follow-ups (followup, case_system), by
//	                                                      outcome sent, retry or dead_letter
//
// Routes are labelled by their pattern ("/api/v1/submissions/:id"), never
// by the path, which may hold a status link's secret id. Queue figures are
// read from Redis at scrape time and are shared by every replica; the
// others are per process. It implements the dispatcher's Observer.
type Metrics struct {
	reg *prometheus.Registry

	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	deliveries *prometheus.CounterVec
	delivTime  prometheus.Histogram
	retries    *prometheus.CounterVec
	dead       *prometheus.CounterVec
	breaker    *prometheus.GaugeVec
	// messages holds the children of gateway_messages_total, resolved
	// once: the label sets are fixed, and counting is a map read.
	messages map[messageLabels]prometheus.Counter

	mu       sync.RWMutex
	resolved map[routeKey]routeChildren
}

type messageLabels struct{ kind, channel, outcome string }

// messageChannels are the (kind, channel) pairs of gateway_messages_total.
var messageChannels = [][2]string{{"notification", "email"}, {"notification", "sms"}, {"webhook", "http"}, {"followup", "case_system"}}

// messageOutcomes are its outcomes.
var messageOutcomes = []string{"sent", "retry", "dead_letter"}

// NewMetrics builds the registry. stats, when not nil, is asked for the
// queue figures at each scrape (with a short timeout).
func NewMetrics(stats func(ctx context.Context) (QueueStats, error)) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), resolved: map[routeKey]routeChildren{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_http_requests_total", Help: "HTTP requests by method, route pattern and status.",
	}, []string{"method", "route", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gateway_http_request_duration_seconds", Help: "HTTP request latency by method and route pattern.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "route"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_deliveries_total", Help: "Delivery jobs handled, by outcome.",
	}, []string{"outcome"})
	m.delivTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gateway_delivery_duration_seconds", Help: "Duration of delivery attempts to back-ends.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_delivery_retries_total", Help: "Retries scheduled, by error class.",
	}, []string{"reason"})
	m.dead = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_dead_letters_total", Help: "Submissions dead-lettered, by reason.",
	}, []string{"reason"})
	m.breaker = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "gateway_breaker_state", Help: "Circuit breaker state per back-end: 0 closed, 1 half-open, 2 open.",
	}, []string{"backend"})
	messages := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gateway_messages_total", Help: "Messages to residents, department webhooks and follow-ups to case systems, by kind, channel and outcome.",
	}, []string{"kind", "channel", "outcome"})
	m.messages = map[messageLabels]prometheus.Counter{}
	for _, kc := range messageChannels {
		for _, o := range messageOutcomes {
			m.messages[messageLabels{kc[0], kc[1], o}] = messages.WithLabelValues(kc[0], kc[1], o)
		}
	}
	m.reg.MustRegister(messages)
	m.reg.MustRegister(m.requests, m.latency, m.deliveries, m.delivTime, m.retries, m.dead, m.breaker,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if stats != nil {
		m.reg.MustRegister(&queueCollector{stats: stats})
	}
	return m
}

// Registry is the underlying registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Outcome implements delivery.Observer.
func (m *Metrics) Outcome(outcome string, took time.Duration) {
	m.deliveries.WithLabelValues(outcome).Inc()
	if took > 0 {
		m.delivTime.Observe(took.Seconds())
	}
}

// Retry implements delivery.Observer.
func (m *Metrics) Retry(reason string) { m.retries.WithLabelValues(reason).Inc() }

// DeadLetter implements delivery.Observer.
func (m *Metrics) DeadLetter(reason string) { m.dead.WithLabelValues(reason).Inc() }

// Message counts one message outcome (notify.Observer,
// delivery.MessageObserver); labels outside the fixed sets are ignored.
func (m *Metrics) Message(kind, channel, outcome string) {
	if c, ok := m.messages[messageLabels{kind, channel, outcome}]; ok {
		c.Inc()
	}
}

// BreakerState implements delivery.Observer.
func (m *Metrics) BreakerState(backend, state string) {
	v := 0.0
	switch state {
	case "half_open":
		v = 1
	case "open":
		v = 2
	}
	m.breaker.WithLabelValues(backend).Set(v)
}

// observe counts every request by route pattern and final status. It runs
// outside the request log, which hands errors to the error handler, so the
// status it reads is the one sent.
func (m *Metrics) observe() fiber.Handler {
	return func(c *fiber.Ctx) error {
		start := time.Now()
		err := c.Next()
		if err != nil {
			if herr := c.App().ErrorHandler(c, err); herr != nil {
				_ = c.SendStatus(fiber.StatusInternalServerError)
			}
		}
		r := m.children(c.Route(), c.Method(), c.Response().StatusCode())
		r.count.Inc()
		r.latency.Observe(time.Since(start).Seconds())
		return nil
	}
}

// routeChildren are the metrics of one route and status, resolved once.
type routeChildren struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

type routeKey struct {
	route  *fiber.Route // registered once; the same pointer for every request
	status int
}

// maxRouteChildren bounds the resolved children (routes x statuses).
const maxRouteChildren = 4096

// children returns the counter and histogram of a route, method and
// status, resolved by label values only the first time.
func (m *Metrics) children(route *fiber.Route, method string, status int) routeChildren {
	k := routeKey{route, status}
	if route.Method == method {
		m.mu.RLock()
		r, ok := m.resolved[k]
		m.mu.RUnlock()
		if ok {
			return r
		}
	}
	// Labels outlive the request: copy what fasthttp lends.
	p, meth := strings.Clone(route.Path), strings.Clone(method)
	r := routeChildren{m.requests.WithLabelValues(meth, p, strconv.Itoa(status)), m.latency.WithLabelValues(meth, p)}
	if route.Method == method { // a route of Use or All is not one method's
		m.mu.Lock()
		if len(m.resolved) < maxRouteChildren {
			m.resolved[k] = r
		}
		m.mu.Unlock()
	}
	return r
}

// handler serves the registry in the Prometheus text format.
func (m *Metrics) handler() fiber.Handler {
	h := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Timeout: 5 * time.Second}))
	return func(c *fiber.Ctx) error {
		h(c.Context())
		return nil
	}
}

// queueCollector reads the queue figures from Redis at scrape time.
type queueCollector struct {
	stats func(ctx context.Context) (QueueStats, error)
}

var (
	queueDesc  = prometheus.NewDesc("gateway_queue_entries", "Delivery queue entries by state (shared by every replica).", []string{"state"}, nil)
	oldestDesc = prometheus.NewDesc("gateway_queue_oldest_age_seconds", "Age of the oldest entry in the deliveries stream.", nil, nil)
	upDesc     = prometheus.NewDesc("gateway_queue_stats_up", "1 when the queue figures could be read from Redis.", nil, nil)
)

func (q *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDesc
	ch <- oldestDesc
	ch <- upDesc
}

func (q *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := q.stats(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1)
	for state, v := range map[string]int64{"stream": st.Stream, "pending": st.Pending, "retrying": st.Retrying, "dead": st.Dead} {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(v), state)
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, st.OldestAge.Seconds())
}
