package httpapi_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/servicepoint"
	"github.com/kommun/servicegateway/gateway/usage"
)

// BenchmarkDeskAPI is a filing on a visitor's behalf through the API, the
// whole request in process (routing, the staff principal, the visitor's
// checks, validation, the durable write, the desk's statistics and the
// audit entry) on a real redis-server. With BenchmarkSubmitAPI it shows
// what filing on behalf adds to a submission (cmd/benchgw -channels).
func BenchmarkDeskAPI(b *testing.B) {
	deps, store, _ := baseDeps(b)
	rec := usage.New(store, usage.Config{FlushInterval: time.Hour, Logger: quiet})
	rec.Start(context.Background())
	b.Cleanup(func() { _ = rec.Stop(context.Background()) })
	deps.Authenticate = httpapi.AuthenticateForTests(deskPersonas)
	deps.Usage = rec
	deps.ServicePoints = servicepoint.Default()
	app := build(b, deps)
	body := `{"kind":"pothole","description":"Ett djupt hål i cykelbanan vid bron","location":"Storgatan 1","on_behalf_of":{"personnummer":"19900101-3011","identity_check":"id_document","consent":true}}`
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/api/v1/services/street-fault/submissions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Test-Principal", "sara")
		res, err := app.Test(req, -1)
		if err != nil || res.StatusCode != 202 {
			b.Fatal(err, res.StatusCode)
		}
		res.Body.Close()
	}
}
