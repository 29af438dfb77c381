package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// signIn signs in through the development identity provider the gateway
// serves itself (login_hint approves at once) and returns a client with
// the session cookie.
func signIn(t *testing.T, gw, persona, returnTo string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	res, err := c.Get(gw + "/auth/login?login_hint=" + persona + "&return_to=" + url.QueryEscape(returnTo))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path != returnTo {
		t.Fatalf("sign-in as %s ended at %s with %d", persona, res.Request.URL, res.StatusCode)
	}
	return c
}

type openRow struct {
	Date, Service, Channel     string
	Viewed, Started, Submitted *int64
	Delivered                  *int64
	ValidationFailed           *int64 `json:"validation_failed"`
}

func openUsage(t *testing.T, gw string) map[string]openRow {
	t.Helper()
	var ds struct {
		Rows []openRow `json:"rows"`
	}
	if code := getJSON(t, gw+"/open-data/usage.json", &ds); code != 200 {
		t.Fatalf("usage.json: %d", code)
	}
	out := map[string]openRow{}
	for _, r := range ds.Rows {
		out[r.Service+"|"+r.Channel] = r
	}
	return out
}

func val(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

// Usage counters are kept in memory until the flusher writes them; a
// gateway stopped with SIGTERM writes them before it exits. The flush
// interval is an hour here, so only the shutdown can have written them.
// Then, through the development identity provider: the dashboard and the
// usage API answer staff and refuse a resident.
func TestUsageSurvivesRestart(t *testing.T) {
	rs := redistest.Start(t)
	cs := casesimProc(t)
	env := gatewayEnv(rs.URL(), cs.URL)
	env["GATEWAY_USAGE_FLUSH"] = "1h"
	env["GATEWAY_OPENDATA_MIN_COUNT"] = "1"
	gw := gatewayProc(t, env)

	if code := getJSON(t, gw.URL+"/healthz", nil); code != 200 {
		t.Fatal(code)
	}
	formID := submitForm(t, gw.URL, url.Values{"kind": {"streetlight"}, "description": {"Gatlyktan är trasig sedan i måndags"}, "location": {"Kungsgatan 12"}})
	code, rec := postJSON(t, gw.URL+"/api/v1/services/street-fault/submissions", `{"kind":"pothole","description":"kort"}`)
	if code != 422 {
		t.Fatalf("bad api submit: %d %v", code, rec)
	}
	apiID := mustSubmit(t, gw.URL, "street-fault", `{"kind":"pothole","description":"Djupt hål mitt i körbanan","location":"Vaksalagatan 3"}`)
	for _, id := range []string{formID, apiID} {
		waitDelivered(t, 30*time.Second, "delivery of "+id, gw.URL, id)
	}
	if rows := openUsage(t, gw.URL); len(rows) != 0 {
		t.Fatalf("counters written before the shutdown (flush interval 1h): %+v", rows)
	}
	gw.Stop()

	gw = gatewayProc(t, env)
	rows := openUsage(t, gw.URL)
	digital, api := rows["street-fault|digital"], rows["street-fault|api"]
	checks := []struct {
		name      string
		got, want int64
	}{
		{"digital viewed", val(digital.Viewed), 1}, {"digital started", val(digital.Started), 1},
		{"digital submitted", val(digital.Submitted), 1}, {"digital delivered", val(digital.Delivered), 1},
		{"api submitted", val(api.Submitted), 1}, {"api delivered", val(api.Delivered), 1},
		{"api validation failures", val(api.ValidationFailed), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("after restart: %s = %d, want %d", c.name, c.got, c.want)
		}
	}

	// Staff see the dashboard and the exact figures; a resident does not.
	staff := signIn(t, gw.URL, "sara", "/dashboard")
	res, err := staff.Get(gw.URL + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(page), `role="img"`) || !strings.Contains(string(page), "Digital andel") {
		t.Fatalf("dashboard for staff: %d", res.StatusCode)
	}
	res, err = staff.Get(gw.URL + "/api/v1/usage?service=street-fault")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Totals struct {
			Submitted   int64    `json:"submitted"`
			AllContacts int64    `json:"all_contacts"`
			TakeUp      *float64 `json:"digital_take_up"`
		} `json:"totals"`
	}
	err = json.NewDecoder(res.Body).Decode(&rep)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || rep.Totals.Submitted != 2 || rep.Totals.TakeUp == nil || *rep.Totals.TakeUp != 0.5 {
		t.Fatalf("usage API for staff: %d %v %+v", res.StatusCode, err, rep.Totals)
	}
	resident := signIn(t, gw.URL, "anna", "/")
	for _, path := range []string{"/dashboard", "/api/v1/usage"} {
		res, err := resident.Get(gw.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s for a resident: %d, want 403", path, res.StatusCode)
		}
	}
	gw.Stop()
}

// usageMetric reads one sample from the gateway's /metrics text.
func usageMetric(t *testing.T, gw, series string) float64 {
	t.Helper()
	for _, line := range metricLines(t, gw) {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %q", series, v)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", series)
	return 0
}

// With redis-server killed, the catalog still answers and the usage
// events are dropped and counted in a metric; nothing waits for Redis.
func TestUsageRedisOutage(t *testing.T) {
	rs := redistest.Start(t)
	cs := casesimProc(t)
	env := gatewayEnv(rs.URL(), cs.URL)
	env["GATEWAY_USAGE_FLUSH"] = "100ms"
	gw := gatewayProc(t, env)
	const dropped = `gateway_usage_events_dropped_total{reason="store"}`
	if n := usageMetric(t, gw.URL, dropped); n != 0 {
		t.Fatalf("dropped before the outage: %v", n)
	}
	rs.Kill()
	for range 10 {
		res, err := client.Get(gw.URL + "/?lang=en")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), "Find an e-service") {
			t.Fatalf("catalog during the Redis outage: %d", res.StatusCode)
		}
	}
	eventually(t, 30*time.Second, "dropped usage events counted", func() bool { return usageMetric(t, gw.URL, dropped) >= 10 })
	// Redis back: counting resumes.
	rs.Restart()
	written := usageMetric(t, gw.URL, "gateway_usage_events_written_total")
	if code := getJSON(t, gw.URL+"/healthz", nil); code != 200 {
		t.Fatal(code)
	}
	// A visit each try: the first batch after the restart may still meet a
	// pooled connection to the dead server and be dropped (and counted).
	eventually(t, 30*time.Second, "usage written after Redis is back", func() bool {
		if res, err := client.Get(gw.URL + "/"); err == nil {
			res.Body.Close()
		}
		return usageMetric(t, gw.URL, "gateway_usage_events_written_total") > written
	})
	gw.Stop()
}
