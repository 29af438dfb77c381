package casesim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

var testSecret = []byte("casesim-test-secret")

// marker is a payload value that must never reach a log line.
const marker = "PAYLOAD-MARKER-19121212-1212"

var client = &http.Client{Timeout: 30 * time.Second}

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// lockedBuffer collects log output written from handler goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type fixture struct {
	srv   *Server
	http  *httptest.Server
	clock *clock
	logs  *lockedBuffer
}

func newFixture(t *testing.T, dataFile string) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, logs: new(lockedBuffer)}
	srv, err := New(Config{
		Secret:   testSecret,
		DataFile: dataFile,
		Now:      f.clock.Now,
		Logger:   slog.New(slog.NewJSONHandler(f.logs, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.srv = srv
	f.http = httptest.NewServer(srv)
	t.Cleanup(func() {
		f.http.Close()
		srv.Close()
		if strings.Contains(f.logs.String(), marker) {
			t.Errorf("logs contain the payload:\n%s", f.logs.String())
		}
	})
	return f
}

func body(submissionID, service string) []byte {
	b, _ := json.Marshal(map[string]any{
		"submission_id": submissionID,
		"reference":     "2026-K7QM-4XPB",
		"service":       service,
		"channel":       "digital",
		"locale":        "sv",
		"submitted_at":  "2026-03-01T11:59:00Z",
		"attempt":       1,
		"payload":       map[string]any{"description": marker},
	})
	return b
}

// request is one POST /cases; zero fields get valid defaults.
type request struct {
	key      string
	noKey    bool
	body     []byte
	secret   []byte
	at       time.Time
	noSig    bool
	ctype    string
	tamperTS bool
}

// post sends a signed delivery and returns the status and decoded answer.
func (f *fixture) post(t *testing.T, r request) (int, map[string]string) {
	t.Helper()
	status, answer, err := f.tryPost(r)
	if err != nil {
		t.Fatal(err)
	}
	return status, answer
}

// tryPost is post for goroutines other than the test's own.
func (f *fixture) tryPost(r request) (int, map[string]string, error) {
	if r.body == nil {
		r.body = body("sub-1", "street-fault")
	}
	if r.key == "" && !r.noKey {
		r.key = "sub-1"
	}
	if r.secret == nil {
		r.secret = testSecret
	}
	if r.at.IsZero() {
		r.at = f.clock.Now()
	}
	if r.ctype == "" {
		r.ctype = "application/json"
	}
	req, err := http.NewRequest(http.MethodPost, f.http.URL+"/cases", bytes.NewReader(r.body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", r.ctype)
	if r.key != "" {
		req.Header.Set(httpjson.HeaderIdempotencyKey, r.key)
	}
	ts := strconv.FormatInt(r.at.Unix(), 10)
	if !r.noSig {
		req.Header.Set(httpjson.HeaderTimestamp, ts)
		req.Header.Set(httpjson.HeaderSignature, httpjson.Sign(r.secret, ts, r.body))
	}
	if r.tamperTS {
		req.Header.Set(httpjson.HeaderTimestamp, strconv.FormatInt(r.at.Unix()+1, 10))
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		return 0, nil, fmt.Errorf("answer Content-Type = %q", ct)
	}
	var out map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, nil, fmt.Errorf("answer is not a JSON object: %w", err)
	}
	return resp.StatusCode, out, nil
}

// get fetches path and decodes the JSON answer into v.
func (f *fixture) get(t *testing.T, path string, v any) int {
	t.Helper()
	resp, err := client.Get(f.http.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

func TestNewRequiresSecret(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a secret succeeded")
	}
}

func TestCreateRefusesBadRequests(t *testing.T) {
	f := newFixture(t, "")
	now := f.clock.Now()
	tests := []struct {
		name string
		req  request
		want int
	}{
		{name: "no signature", req: request{noSig: true}, want: http.StatusUnauthorized},
		{name: "wrong secret", req: request{secret: []byte("guess")}, want: http.StatusUnauthorized},
		{name: "timestamp not the signed one", req: request{tamperTS: true}, want: http.StatusUnauthorized},
		{name: "stale timestamp", req: request{at: now.Add(-6 * time.Minute)}, want: http.StatusUnauthorized},
		{name: "timestamp from the future", req: request{at: now.Add(6 * time.Minute)}, want: http.StatusUnauthorized},
		{name: "no Idempotency-Key", req: request{noKey: true}, want: http.StatusBadRequest},
		{name: "Idempotency-Key too long", req: request{key: strings.Repeat("k", maxKey+1)}, want: http.StatusBadRequest},
		{name: "not JSON", req: request{body: []byte("submission_id=1")}, want: http.StatusBadRequest},
		{name: "JSON array", req: request{body: []byte("[]")}, want: http.StatusBadRequest},
		{name: "no submission_id", req: request{body: body("", "street-fault")}, want: http.StatusBadRequest},
		{name: "no service", req: request{body: body("sub-1", "")}, want: http.StatusBadRequest},
		{name: "not application/json", req: request{ctype: "text/plain"}, want: http.StatusUnsupportedMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, answer := f.post(t, tt.req)
			if status != tt.want {
				t.Errorf("status = %d, want %d (%v)", status, tt.want, answer)
			}
			if answer["error"] == "" {
				t.Errorf("answer has no error message: %v", answer)
			}
		})
	}
	if n := f.srv.Count(); n != 0 {
		t.Errorf("Count = %d after refused requests, want 0", n)
	}
	if status := f.get(t, "/cases/KS-2026-000001", nil); status != http.StatusNotFound {
		t.Errorf("GET unknown case = %d, want 404", status)
	}
	if status := f.get(t, "/healthz", nil); status != http.StatusOK {
		t.Errorf("GET /healthz = %d, want 200", status)
	}
}

func TestCreateDedupesAndLists(t *testing.T) {
	f := newFixture(t, "")

	status, first := f.post(t, request{})
	if status != http.StatusCreated || first["case_reference"] != "KS-2026-000001" {
		t.Fatalf("first POST = %d %v, want 201 KS-2026-000001", status, first)
	}
	status, again := f.post(t, request{})
	if status != http.StatusOK || again["case_reference"] != first["case_reference"] {
		t.Fatalf("repeated POST = %d %v, want 200 %s", status, again, first["case_reference"])
	}
	status, other := f.post(t, request{key: "sub-2", body: body("sub-2", "parking-permit")})
	if status != http.StatusCreated || other["case_reference"] != "KS-2026-000002" {
		t.Fatalf("second case = %d %v, want 201 KS-2026-000002", status, other)
	}
	status, conflict := f.post(t, request{key: "sub-2", body: body("sub-3", "parking-permit")})
	if status != http.StatusConflict {
		t.Errorf("key reused for another submission = %d %v, want 409", status, conflict)
	}
	if n := f.srv.Count(); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}

	// The contract of GET /cases, read as a script would.
	var list []map[string]any
	if status := f.get(t, "/cases", &list); status != http.StatusOK || len(list) != 2 {
		t.Fatalf("GET /cases = %d with %d cases, want 200 with 2", status, len(list))
	}
	want := map[string]any{
		"case_reference":  "KS-2026-000001",
		"submission_id":   "sub-1",
		"service":         "street-fault",
		"idempotency_key": "sub-1",
		"reference":       "2026-K7QM-4XPB",
		"channel":         "digital",
		"received_at":     "2026-03-01T12:00:00Z",
		"deliveries":      float64(2),
	}
	for k, v := range want {
		if list[0][k] != v {
			t.Errorf("GET /cases [0].%s = %#v, want %#v", k, list[0][k], v)
		}
	}
	if p, _ := list[0]["payload"].(map[string]any); p["description"] != marker {
		t.Errorf("payload = %#v", list[0]["payload"])
	}

	var filtered []Case
	f.get(t, "/cases?service=parking-permit", &filtered)
	if len(filtered) != 1 || filtered[0].CaseReference != "KS-2026-000002" || filtered[0].Deliveries != 1 {
		t.Errorf("GET /cases?service=parking-permit = %+v", filtered)
	}
	var none []Case
	f.get(t, "/cases?service=nothing", &none)
	if none == nil || len(none) != 0 {
		t.Errorf("filter matching nothing = %#v, want an empty array", none)
	}

	var one Case
	if status := f.get(t, "/cases/KS-2026-000002", &one); status != http.StatusOK || one.SubmissionID != "sub-2" {
		t.Errorf("GET /cases/KS-2026-000002 = %d %+v", status, one)
	}

	// Cases returns copies.
	cs := f.srv.Cases()
	cs[0].Payload[0] = 'X'
	cs[0].Deliveries = 99
	if again := f.srv.Cases(); again[0].Deliveries != 2 || again[0].Payload[0] != '{' {
		t.Error("Cases shares memory with the server")
	}
}

func TestCounterPerYear(t *testing.T) {
	f := newFixture(t, "")
	f.post(t, request{key: "a", body: body("a", "s")})
	f.clock.Set(time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC))
	_, answer := f.post(t, request{key: "b", body: body("b", "s")})
	if answer["case_reference"] != "KS-2027-000001" {
		t.Errorf("first case of 2027 = %v, want KS-2027-000001", answer)
	}
}

func TestConcurrentDuplicates(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "cases.jsonl"))
	const n = 50
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		refs     = map[string]int{}
	)
	for range n {
		wg.Go(func() {
			status, answer, err := f.tryPost(request{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			statuses[status]++
			refs[answer["case_reference"]]++
		})
	}
	wg.Wait()
	if statuses[http.StatusCreated] != 1 || statuses[http.StatusOK] != n-1 {
		t.Errorf("statuses = %v, want one 201 and %d 200", statuses, n-1)
	}
	if len(refs) != 1 {
		t.Errorf("case references = %v, want one", refs)
	}
	cs := f.srv.Cases()
	if len(cs) != 1 || cs[0].Deliveries != n {
		t.Fatalf("cases = %+v, want 1 case with %d deliveries", cs, n)
	}
}

func TestRestartKeepsCases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cases.jsonl")

	f := newFixture(t, path)
	f.post(t, request{key: "a", body: body("a", "s")})
	f.post(t, request{key: "a", body: body("a", "s")})
	f.post(t, request{key: "b", body: body("b", "s")})
	before := f.srv.Cases()
	f.http.Close()
	if err := f.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("data file mode = %v, want 0600", perm)
	}

	g := newFixture(t, path)
	after := g.srv.Cases()
	if len(after) != 2 {
		t.Fatalf("after restart %d cases, want 2", len(after))
	}
	for i := range before {
		b, _ := json.Marshal(before[i])
		a, _ := json.Marshal(after[i])
		if !bytes.Equal(a, b) {
			t.Errorf("case %d before restart %s\nafter %s", i, b, a)
		}
	}
	if after[0].Deliveries != 2 {
		t.Errorf("deliveries after restart = %d, want 2", after[0].Deliveries)
	}

	// A repeat is still recognised, and the counter continues.
	if status, answer := g.post(t, request{key: "a", body: body("a", "s")}); status != http.StatusOK || answer["case_reference"] != "KS-2026-000001" {
		t.Errorf("repeat after restart = %d %v, want 200 KS-2026-000001", status, answer)
	}
	if status, answer := g.post(t, request{key: "c", body: body("c", "s")}); status != http.StatusCreated || answer["case_reference"] != "KS-2026-000003" {
		t.Errorf("new case after restart = %d %v, want 201 KS-2026-000003", status, answer)
	}
}

func TestDataFileTornAndCorruptLines(t *testing.T) {
	dir := t.TempDir()
	line := `{"case_reference":"KS-2026-000007","submission_id":"a","service":"s","idempotency_key":"a","reference":"r","channel":"digital","received_at":"2026-03-01T12:00:00Z","deliveries":1,"payload":{}}` + "\n"

	t.Run("incomplete last line is cut off", func(t *testing.T) {
		path := filepath.Join(dir, "torn.jsonl")
		if err := os.WriteFile(path, []byte(line+`{"case_reference":"KS-20`), 0o600); err != nil {
			t.Fatal(err)
		}
		f := newFixture(t, path)
		if n := f.srv.Count(); n != 1 {
			t.Fatalf("Count = %d, want 1", n)
		}
		if _, answer := f.post(t, request{key: "b", body: body("b", "s")}); answer["case_reference"] != "KS-2026-000008" {
			t.Errorf("next case = %v, want KS-2026-000008", answer)
		}
		data, _ := os.ReadFile(path)
		if lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"); len(lines) != 2 {
			t.Errorf("data file has %d lines, want 2:\n%s", len(lines), data)
		}
	})

	for name, content := range map[string]string{
		"corrupt line":             "not json\n" + line,
		"malformed case reference": strings.Replace(line, "KS-2026-000007", "XX-1", 1),
		"reference used twice":     line + strings.Replace(line, `"idempotency_key":"a"`, `"idempotency_key":"b"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".jsonl")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := New(Config{Secret: testSecret, DataFile: path}); err == nil {
				t.Error("New accepted a damaged data file")
			}
		})
	}
}

func TestDeliveryAfterCloseFailsWithDataFile(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "cases.jsonl"))
	f.srv.Close()
	if status, _ := f.post(t, request{}); status != http.StatusInternalServerError {
		t.Errorf("POST after Close = %d, want 500", status)
	}
	if n := f.srv.Count(); n != 0 {
		t.Errorf("Count = %d, want 0", n)
	}
}

// TestEndToEndWithHTTPConnector delivers through the gateway's own "http"
// connector, configured as a manifest would configure it.
func TestEndToEndWithHTTPConnector(t *testing.T) {
	srv, err := New(Config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)

	connector := func(secret string) gateway.Connector {
		t.Helper()
		env := map[string]string{"CASESIM_URL": hs.URL, "CASESIM_SECRET": secret}
		s := &httpjson.Settings{URL: "${CASESIM_URL}/cases", Secret: "${CASESIM_SECRET}"}
		c, err := s.Provision(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	d := &gateway.Delivery{
		SubmissionID:   gateway.NewID(),
		Reference:      "2026-K7QM-4XPB",
		Service:        "street-fault",
		ServiceVersion: "1",
		Department:     "streets",
		Channel:        gateway.ChannelDigital,
		Locale:         "sv",
		SubmittedAt:    time.Now(),
		Payload:        map[string]any{"description": marker},
		Attempt:        1,
	}
	ctx := context.Background()
	c := connector(string(testSecret))
	first, err := c.Deliver(ctx, d)
	if err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	d.Attempt = 2 // at-least-once: the same submission again
	second, err := c.Deliver(ctx, d)
	if err != nil {
		t.Fatalf("second delivery: %v", err)
	}
	if first != second || first == "" {
		t.Errorf("case references %q and %q, want the same", first, second)
	}
	cs := srv.Cases()
	if len(cs) != 1 || cs[0].SubmissionID != d.SubmissionID || cs[0].IdempotencyKey != d.SubmissionID || cs[0].Deliveries != 2 {
		t.Fatalf("cases = %+v, want one with 2 deliveries", cs)
	}

	_, err = connector("wrong-secret").Deliver(ctx, d)
	var de *gateway.DeliveryError
	if !errors.As(err, &de) || !de.Permanent {
		t.Errorf("delivery with the wrong secret = %v, want a permanent delivery error", err)
	}
}

// ExampleServer shows the receiving side of the contract: a signed POST
// with an Idempotency-Key, answered with a case reference.
func ExampleServer() {
	srv, _ := New(Config{Secret: []byte(DemoSecret)})
	hs := httptest.NewServer(srv)
	defer hs.Close()

	body := []byte(`{"submission_id":"abc","service":"street-fault","payload":{}}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest(http.MethodPost, hs.URL+"/cases", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(httpjson.HeaderIdempotencyKey, "abc")
	req.Header.Set(httpjson.HeaderTimestamp, ts)
	req.Header.Set(httpjson.HeaderSignature, httpjson.Sign([]byte(DemoSecret), ts, body))
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var answer httpjson.Answer
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	fmt.Println(resp.Status, strings.HasPrefix(answer.CaseReference, "KS-"))
	// Output: 201 Created true
}
