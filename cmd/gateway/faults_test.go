package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// Helpers for the delivery tests: a back-end proxy that misbehaves on
// demand, a services folder with two departments, and reading /metrics and
// the store the way an operator would.

// Proxy modes.
const (
	modePass = "pass" // forward to the case system
	mode503  = "503"  // answer 503 Service Unavailable
	modeHang = "hang" // hold the request until the client gives up or the proxy closes
	mode400  = "400"  // a permanent refusal
	modeCut  = "cut"  // forward (the case is committed), then cut the connection before the reply
	// modeCutFirst cuts the first request for each Idempotency-Key like
	// modeCut and passes the others.
	modeCutFirst = "cut-first"
)

// faultProxy stands between the gateway and casesim and misbehaves as
// told. mode decides per request; the default is modePass.
type faultProxy struct {
	t      *testing.T
	srv    *httptest.Server
	target string
	mode   atomic.Value // string
	modeFn atomic.Value // func() string, overrides mode when set
	closed chan struct{}
	fwd    *http.Client

	mu       sync.Mutex
	requests map[string]int // mode -> requests answered in that mode
	byKey    map[string]int // idempotency key -> requests
	hanging  int
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	p := &faultProxy{t: t, target: target, closed: make(chan struct{}),
		fwd: &http.Client{Timeout: 10 * time.Second}, requests: map[string]int{}, byKey: map[string]int{}}
	p.mode.Store(modePass)
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	t.Cleanup(func() { close(p.closed) }) // runs first: frees hanging requests
	return p
}

func (p *faultProxy) URL() string { return p.srv.URL }

func (p *faultProxy) setMode(m string) { p.mode.Store(m) }

func (p *faultProxy) setModeFn(f func() string) { p.modeFn.Store(f) }

func (p *faultProxy) count(mode string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[mode]
}

func (p *faultProxy) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.requests {
		n += v
	}
	return n
}

func (p *faultProxy) keyCount(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byKey[key]
}

func (p *faultProxy) hangingNow() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hanging
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	mode, _ := p.mode.Load().(string)
	if f, ok := p.modeFn.Load().(func() string); ok && f != nil {
		mode = f()
	}
	p.mu.Lock()
	p.requests[mode]++
	key := r.Header.Get("Idempotency-Key")
	p.byKey[key]++
	if mode == modeCutFirst {
		mode = modePass
		if p.byKey[key] == 1 {
			mode = modeCut
		}
	}
	p.mu.Unlock()
	switch mode {
	case mode503:
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	case mode400:
		http.Error(w, `{"error":"field kind has an unknown value"}`, http.StatusBadRequest)
		return
	case modeHang:
		p.mu.Lock()
		p.hanging++
		p.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-p.closed:
		case <-time.After(60 * time.Second):
		}
		p.mu.Lock()
		p.hanging--
		p.mu.Unlock()
		http.Error(w, "gave up", http.StatusServiceUnavailable)
		return
	}
	// Forward to the case system.
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.Path, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for _, h := range []string{"Content-Type", "Idempotency-Key", "X-Gateway-Timestamp", "X-Gateway-Signature"} {
		req.Header.Set(h, r.Header.Get(h))
	}
	res, err := p.fwd.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	answer, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if mode == modeCut {
		// The case system committed the case; the gateway never hears so.
		hj, ok := w.(http.Hijacker)
		if !ok {
			p.t.Error("proxy: cannot hijack")
			return
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
	w.WriteHeader(res.StatusCode)
	w.Write(answer)
}

// twoDepartments writes a services folder with two services of different
// departments: "fault-a" (streets-parks) delivers to ${BACKEND_A_URL},
// "fault-b" (city-office) to ${CASESIM_URL}. Connector timeouts are short.
func twoDepartments(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, svc := range []struct{ id, dept, url string }{
		{"fault-a", "streets-parks", "${BACKEND_A_URL}/cases"},
		{"fault-b", "city-office", "${CASESIM_URL}/cases"},
	} {
		d := filepath.Join(dir, svc.dept, svc.id)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		manifest := fmt.Sprintf(`id = %q
version = "1.0.0"
department = %q
category = "streets-traffic"
assurance = "none"
channels = ["digital", "api"]
retention_days = 30
fallback_language = "sv" # translated into Swedish and English only

[[fields]]
name = "where"
type = "text"
required = true

[route]
kind = "http"
[route.settings]
url = %q
secret = "${CASESIM_SECRET}"
timeout = "2s"
`, svc.id, svc.dept, svc.url)
		msgs := fmt.Sprintf("%q = \"Fel\"\n%q = \"Anmäl fel\"\n%q = \"Var\"\n", svc.id+".title", svc.id+".summary", svc.id+".field.where.label")
		for name, body := range map[string]string{"service.toml": manifest, "messages.sv.toml": msgs, "messages.en.toml": msgs} {
			if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// metricLines fetches the gateway's /metrics text, line by line.
func metricLines(t *testing.T, gw string) []string {
	t.Helper()
	res, err := client.Get(gw + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return strings.Split(string(b), "\n")
}

// metric returns the value of the first /metrics sample whose line starts
// with prefix (name and labels, e.g. `gateway_breaker_state{backend="x"}`),
// or -1.
func metric(t *testing.T, gw, prefix string) float64 {
	t.Helper()
	for _, line := range metricLines(t, gw) {
		if strings.HasPrefix(line, prefix+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, prefix)), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// storeOf opens the gateway's store (prefix gw) in the test, to look at the
// queue and to do what the admin API does.
func storeOf(t *testing.T, rs *redistest.Server) *redisstore.Store {
	return redisstore.New(rs.Client(t), "")
}

func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// submitTo posts a submission with an optional Idempotency-Key and returns
// the status and the receipt id ("" when none).
func submitTo(hc *http.Client, gw, service, body, key string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, gw+"/api/v1/services/"+service+"/submissions", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	var rec struct {
		ID string `json:"id"`
	}
	_ = json.NewDecoder(res.Body).Decode(&rec)
	return res.StatusCode, rec.ID, nil
}

// caseRecord is a case as casesim lists it, with when it arrived.
type caseRecord struct {
	CaseReference string    `json:"case_reference"`
	SubmissionID  string    `json:"submission_id"`
	Service       string    `json:"service"`
	Deliveries    int       `json:"deliveries"`
	ReceivedAt    time.Time `json:"received_at"`
}

func caseRecords(t *testing.T, casesimURL string) []caseRecord {
	t.Helper()
	var out []caseRecord
	if code := getJSON(t, casesimURL+"/cases", &out); code != 200 {
		t.Fatalf("casesim /cases: %d", code)
	}
	return out
}

// exactlyOnce checks that every id has exactly one case and no case is
// for a submission twice; it returns the cases by submission id.
func exactlyOnce(t *testing.T, got []caseRecord, ids []string) map[string]caseRecord {
	t.Helper()
	by := map[string]caseRecord{}
	for _, c := range got {
		if _, dup := by[c.SubmissionID]; dup {
			t.Errorf("submission became two cases: %s", c.CaseReference)
		}
		by[c.SubmissionID] = c
	}
	missing := 0
	for _, id := range ids {
		if _, ok := by[id]; !ok {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d submissions with a receipt have no case", missing, len(ids))
	}
	return by
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// freeAddr reserves a loopback port and closes it, for a process started
// later on that address.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// noPayloadInLogs fails when a process's output holds any of the texts.
func noPayloadInLogs(t *testing.T, p *proc, texts ...string) {
	t.Helper()
	out := p.Out.String()
	for _, s := range texts {
		if strings.Contains(out, s) {
			t.Errorf("the log contains payload text %q", s)
		}
	}
}

var idInLog = regexp.MustCompile(`"submission":"[a-z2-7]{32}"`)
