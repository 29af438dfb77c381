package httpapi_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/receipt"
)

// BenchmarkSubmitPath measures what a submission costs before the receipt:
// validation plus the durable write (one Lua script: record, payload,
// history, idempotency key, stream entry) on a real redis-server.
func BenchmarkSubmitPath(b *testing.B) {
	deps, store, _ := baseDeps(b)
	cat := deps.Catalog
	svc, _ := cat.Get("street-fault")
	values := map[string][]string{"kind": {"pothole"}, "description": {"Ett djupt hål i cykelbanan vid bron"}, "location": {"Storgatan 1"}, "email": {"anna@example.se"}}
	ctx := b.Context()
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		payload, errs := svc.Validate(values, now)
		if len(errs) > 0 {
			b.Fatal(errs)
		}
		sub := &gateway.Submission{Service: svc.ID, ServiceVersion: svc.Version, Department: svc.Department, Channel: gateway.ChannelAPI, Locale: "sv", Payload: payload}
		if _, _, err := store.Create(ctx, sub, gateway.Idempotency{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmitAPI is the whole request in process: fiber routing, JSON
// decoding, validation, the durable write and the 202 answer with its
// signed receipt (as the gateway answers: it always has a receipt key).
func BenchmarkSubmitAPI(b *testing.B) {
	deps, _, _ := baseDeps(b)
	k, err := receipt.Generate()
	if err != nil {
		b.Fatal(err)
	}
	if deps.Receipts, err = receipt.NewKeyring([]receipt.Key{k}); err != nil {
		b.Fatal(err)
	}
	app := build(b, deps)
	body := `{"kind":"pothole","description":"Ett djupt hål i cykelbanan vid bron","location":"Storgatan 1"}`
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/api/v1/services/street-fault/submissions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := app.Test(req, -1)
		if err != nil || res.StatusCode != 202 {
			b.Fatal(err, res.StatusCode)
		}
		res.Body.Close()
	}
}
