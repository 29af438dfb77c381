package delivery_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/delivery"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/gateway/usage"
)

// The dispatcher tells the usage statistics what it delivered and what it
// gave up, and the KPIs come out of the real recorder and Redis.
func TestUsageOfDeliveries(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	// The back-end refuses the first submission for good and takes the others.
	var refuse string
	cs := newCaseSystem(t, func(key string, n int) int {
		if key == refuse {
			return http.StatusUnprocessableEntity
		}
		return 0
	})
	rec := usage.New(s, usage.Config{FlushInterval: time.Hour})
	rec.Start(ctxFor(t))
	cfg := fastConfig(t, "a")
	var tracker delivery.UsageTracker = rec
	cfg.Usage = tracker
	refused := submit(t, s, service)
	refuse = refused.ID
	ok1, ok2 := submit(t, s, service), submit(t, s, service)
	stop := start(t, s, routeTo(httpConnector{cs.srv.URL}), cfg)
	waitFor(t, "deliveries", func() bool {
		st := stats(t, s)
		return st.Dead == 1 && isDelivered(t, s, ok1.ID)() && isDelivered(t, s, ok2.ID)()
	})
	stop()
	if err := rec.Stop(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	rd := usage.NewReader(s, usage.Config{})
	rep, err := rd.Report(ctxFor(t), usage.Query{From: rd.Today(), To: rd.Today(), Service: service})
	if err != nil {
		t.Fatal(err)
	}
	k := rep.Totals
	if k.Delivered != 2 || k.DeadLettered != 1 || k.StatusChanged != 2 || k.FirstStatusMeasured != 2 {
		t.Fatalf("counts %+v", k.Counts)
	}
	if k.DeliverySuccess == nil || *k.DeliverySuccess != 2.0/3 || *k.DeadLetterRate != 1.0/3 {
		t.Fatalf("rates %v %v", k.DeliverySuccess, k.DeadLetterRate)
	}
	if k.MedianToFirstStatus == nil || *k.MedianToFirstStatus > 30 {
		t.Fatalf("median to first status %v", k.MedianToFirstStatus)
	}
}
