package main

import (
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// GATEWAY_WORKERS=0: a process that takes submissions and delivers none
// (intake replicas beside delivery replicas, or intake alone on its core);
// the submissions wait in the stream, and a process with workers on the
// same Redis delivers each once.
func TestIntakeOnlyProcess(t *testing.T) {
	rs := redistest.Start(t, redistest.WithAOF("always"))
	cs := casesimProc(t)
	env := deliveryEnv(rs.URL(), cs.URL)
	env["GATEWAY_WORKERS"] = "0"
	front := gatewayProc(t, env)
	var ids []string
	for i := range 10 {
		ids = append(ids, mustSubmit(t, front.URL, "street-fault", streetFaultN(i)))
	}
	// A process with workers delivers within milliseconds; this one has
	// none, so after a while nothing has reached the back-end.
	time.Sleep(1500 * time.Millisecond)
	if got := caseRecords(t, cs.URL); len(got) != 0 {
		t.Fatalf("the intake-only process delivered %d submissions", len(got))
	}
	for _, id := range ids {
		if s := submission(t, front.URL, id); s.Status != "received" {
			t.Fatalf("%s is %s before any process with workers ran", id, s.Status)
		}
	}
	if !strings.Contains(front.Out.String(), "GATEWAY_WORKERS=0") {
		t.Errorf("the intake-only process does not say that it delivers nothing:\n%s", front.Out)
	}
	gatewayProc(t, deliveryEnv(rs.URL(), cs.URL)) // default workers
	waitDelivered(t, 60*time.Second, "delivery by the process with workers", front.URL, ids...)
	got := caseRecords(t, cs.URL)
	if len(got) != len(ids) {
		t.Fatalf("want %d cases, got %d", len(ids), len(got))
	}
	exactlyOnce(t, got, ids)
}
