package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/httpapi"
)

// TestStoreFailureSays503Honestly: a store write that timed out may have
// been saved, so the 503 must say "unknown, send it again with the same
// Idempotency-Key" (code outcome_unknown); only a definite refusal by Redis
// (here: out of memory) may say "nothing has been saved". Before the fix
// both said "nothing has been saved".
func TestStoreFailureSays503Honestly(t *testing.T) {
	deps, store, srv := baseDeps(t)
	deps.Config = httpapi.Config{StoreTimeout: 300 * time.Millisecond}
	app := build(t, deps)
	e := &env{app: app, store: store}
	admin := srv.Client(t)
	ctx := context.Background()
	const path = "/api/v1/services/street-fault/submissions"
	body := `{"kind":"streetlight","description":"Lampan lyser inte på natten","location":"Parkvägen 3"}`

	// Writes paused: the script is sent and not answered in time.
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "2000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	r := e.postJSON(t, path, body, "Accept-Language", "en")
	if err := admin.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	if r.status != 503 || !strings.Contains(r.body, `"code":"outcome_unknown"`) ||
		!strings.Contains(r.body, "same Idempotency-Key") || strings.Contains(r.body, "nothing has been saved") {
		t.Errorf("timeout: %d %s; want 503 outcome_unknown asking to retry with the same key", r.status, r.body)
	}

	// Out of memory: Redis refuses the write, nothing ran.
	if err := admin.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	r = e.postJSON(t, path, body, "Accept-Language", "en")
	_ = admin.ConfigSet(ctx, "maxmemory", "0").Err()
	if r.status != 503 || !strings.Contains(r.body, `"code":"unavailable"`) || !strings.Contains(r.body, "nothing has been saved") {
		t.Errorf("refused: %d %s; want 503 unavailable saying nothing was saved", r.status, r.body)
	}

	// And the request goes through again afterwards.
	if r = e.postJSON(t, path, body); r.status != 202 {
		t.Errorf("after the faults: %d %s", r.status, r.body)
	}
}
