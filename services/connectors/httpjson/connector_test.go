package httpjson

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/services"
)

const testSecret = "test-secret"

// marker is a value in the test payload that must never show up in an error.
const marker = "PAYLOAD-MARKER-19121212-1212"

func testDelivery() *gateway.Delivery {
	return &gateway.Delivery{
		SubmissionID:   "sub-abc123",
		Reference:      "2026-K7QM-4XPB",
		Service:        "street-fault",
		ServiceVersion: "1.0.0",
		Department:     "streets",
		Channel:        gateway.ChannelDigital,
		Locale:         "sv",
		Subject:        "197001011234",
		SubmittedAt:    time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Payload:        map[string]any{"description": marker, "count": 3},
		Attempt:        2,
	}
}

// provision builds a connector for url through Settings, as the gateway does.
func provision(t *testing.T, url string, edit func(*Settings)) *Connector {
	t.Helper()
	s := &Settings{URL: "${TEST_URL}/cases", Secret: "${TEST_SECRET}"}
	if edit != nil {
		edit(s)
	}
	env := map[string]string{"TEST_URL": url, "TEST_SECRET": testSecret}
	c, err := s.Provision(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return c.(*Connector)
}

// recorded is what a test server saw.
type recorded struct {
	method, path string
	header       http.Header
	body         []byte
}

func TestDeliverSuccess(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []recorded
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, recorded{r.Method, r.URL.Path, r.Header.Clone(), body})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"case_reference":"KS-2026-000001"}`)
	}))
	t.Cleanup(srv.Close)

	c := provision(t, srv.URL, nil)
	d := testDelivery()
	ref, err := c.Deliver(context.Background(), d)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if ref != "KS-2026-000001" {
		t.Errorf("case reference = %q", ref)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("server saw %d requests, want 1", len(seen))
	}
	got := seen[0]
	if got.method != http.MethodPost || got.path != "/cases" {
		t.Errorf("request = %s %s, want POST /cases", got.method, got.path)
	}
	for name, want := range map[string]string{
		"Content-Type":       "application/json",
		HeaderIdempotencyKey: d.SubmissionID,
		"User-Agent":         "servicegateway/1",
	} {
		if v := got.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	ts, sig := got.header.Get(HeaderTimestamp), got.header.Get(HeaderSignature)
	if err := Verify([]byte(testSecret), ts, sig, got.body, time.Now(), 5*time.Minute); err != nil {
		t.Errorf("signature does not verify on the server side: %v", err)
	}
	if !strings.HasPrefix(sig, "sha256=") {
		t.Errorf("signature %q lacks the sha256= prefix", sig)
	}

	var env map[string]any
	if err := json.Unmarshal(got.body, &env); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	want := map[string]any{
		"submission_id":   "sub-abc123",
		"reference":       "2026-K7QM-4XPB",
		"service":         "street-fault",
		"service_version": "1.0.0",
		"department":      "streets",
		"channel":         "digital",
		"locale":          "sv",
		"subject":         "197001011234",
		"submitted_at":    "2026-03-01T12:00:00Z",
		"attempt":         float64(2),
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("body %s = %#v, want %#v", k, env[k], v)
		}
	}
	payload, _ := env["payload"].(map[string]any)
	if payload["description"] != marker || payload["count"] != float64(3) {
		t.Errorf("payload = %#v", env["payload"])
	}
}

func TestEnvelopeOmitsEmptySubjectAndNeverNullPayload(t *testing.T) {
	d := testDelivery()
	d.Subject = ""
	d.Payload = nil
	b, err := json.Marshal(NewEnvelope(d))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, `"subject"`) {
		t.Errorf("empty subject is in the body: %s", s)
	}
	if !strings.Contains(s, `"payload":{}`) {
		t.Errorf("nil payload is not {}: %s", s)
	}
}

func TestDeliverAnswers(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		wantRef    string
		wantErr    bool
		permanent  bool
		retryAfter time.Duration
	}{
		{name: "200 with case reference", status: 200, body: `{"case_reference":"KS-1"}`, wantRef: "KS-1"},
		{name: "201 with case reference", status: 201, body: `{"case_reference":" KS-2 "}`, wantRef: "KS-2"},
		{name: "2xx without case reference", status: 200, body: `{"status":"ok"}`, wantErr: true},
		{name: "2xx with empty case reference", status: 202, body: `{"case_reference":""}`, wantErr: true},
		{name: "2xx not JSON", status: 200, body: `thanks`, wantErr: true},
		{name: "2xx empty body", status: 204, wantErr: true},
		{name: "2xx case reference with control characters", status: 200, body: `{"case_reference":"KS\n1"}`, wantErr: true},
		{name: "2xx answer too large", status: 200, body: `{"case_reference":"KS-1","pad":"` + strings.Repeat("x", maxResponseBody) + `"}`, wantErr: true},
		{name: "503 with Retry-After seconds", status: 503, header: map[string]string{"Retry-After": "120"}, wantErr: true, retryAfter: 2 * time.Minute},
		{name: "429 with Retry-After date", status: 429, header: map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, wantErr: true, retryAfter: 90 * time.Second},
		{name: "503 with Retry-After in the past", status: 503, header: map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, wantErr: true},
		{name: "500 without Retry-After", status: 500, wantErr: true},
		{name: "408", status: 408, wantErr: true},
		{name: "400", status: 400, body: `{"error":"bad"}`, wantErr: true, permanent: true},
		{name: "401", status: 401, wantErr: true, permanent: true},
		{name: "404", status: 404, wantErr: true, permanent: true},
		{name: "409", status: 409, wantErr: true, permanent: true},
		{name: "422", status: 422, wantErr: true, permanent: true},
		{name: "redirect is not followed", status: 308, header: map[string]string{"Location": "/elsewhere"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Echo the request: an error must not repeat it.
				reqBody, _ := io.ReadAll(r.Body)
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.Header().Set("X-Echo", string(reqBody))
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			c := provision(t, srv.URL, nil)
			c.now = func() time.Time { return now }

			ref, err := c.Deliver(context.Background(), testDelivery())
			if !tt.wantErr {
				if err != nil || ref != tt.wantRef {
					t.Fatalf("Deliver = %q, %v; want %q, nil", ref, err, tt.wantRef)
				}
				return
			}
			if err == nil {
				t.Fatalf("Deliver = %q, nil; want an error", ref)
			}
			var de *gateway.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *gateway.DeliveryError", err, err)
			}
			// A 2xx is an acceptance, however garbled its answer.
			var acc interface{ Accepted() bool }
			if accepted := errors.As(err, &acc) && acc.Accepted(); accepted != (tt.status >= 200 && tt.status < 300) {
				t.Errorf("Accepted = %v for status %d", accepted, tt.status)
			}
			if de.Permanent != tt.permanent {
				t.Errorf("Permanent = %v, want %v (%v)", de.Permanent, tt.permanent, err)
			}
			if de.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", de.RetryAfter, tt.retryAfter)
			}
			if strings.Contains(err.Error(), marker) {
				t.Errorf("error message contains the payload: %v", err)
			}
		})
	}
}

func TestDeliverTimeoutIsTemporary(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first, unblocking the handler

	c := provision(t, srv.URL, func(s *Settings) { s.Timeout = "50ms" })
	_, err := c.Deliver(context.Background(), testDelivery())
	var de *gateway.DeliveryError
	if !errors.As(err, &de) || de.Permanent {
		t.Fatalf("Deliver error = %v, want a temporary *gateway.DeliveryError", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

func TestDeliverNetworkErrorIsTemporary(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more

	c := provision(t, url, nil)
	_, err := c.Deliver(context.Background(), testDelivery())
	var de *gateway.DeliveryError
	if !errors.As(err, &de) || de.Permanent {
		t.Fatalf("Deliver error = %v, want a temporary *gateway.DeliveryError", err)
	}
	if strings.Contains(err.Error(), marker) {
		t.Errorf("error message contains the payload: %v", err)
	}
}

func TestDeliverConcurrencyLimitRespectsContext(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var (
		mu       sync.Mutex
		requests int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		entered <- struct{}{}
		<-release
		io.WriteString(w, `{"case_reference":"KS-1"}`)
	}))
	t.Cleanup(srv.Close)

	c := provision(t, srv.URL, func(s *Settings) { s.MaxConcurrency = 1 })

	first := make(chan error, 1)
	go func() {
		_, err := c.Deliver(context.Background(), testDelivery())
		first <- err
	}()
	<-entered // the only slot is taken

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Deliver(ctx, testDelivery())
	var de *gateway.DeliveryError
	if !errors.As(err, &de) || de.Permanent || !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver with a cancelled context = %v, want a temporary error wrapping context.Canceled", err)
	}

	close(release)
	if err := <-first; err != nil {
		t.Errorf("first Deliver: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != 1 {
		t.Errorf("server saw %d requests, want 1", requests)
	}
}

func TestDeliverWithoutSubmissionIDIsPermanent(t *testing.T) {
	c := provision(t, "http://127.0.0.1:1", nil)
	d := testDelivery()
	d.SubmissionID = ""
	_, err := c.Deliver(context.Background(), d)
	var de *gateway.DeliveryError
	if !errors.As(err, &de) || !de.Permanent {
		t.Fatalf("Deliver error = %v, want a permanent *gateway.DeliveryError", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		s       Settings
		wantErr string // substring; empty means valid
	}{
		{name: "reference then path", s: Settings{URL: "${CASESIM_URL}/cases", Secret: "${S}"}},
		{name: "absolute https", s: Settings{URL: "https://cases.example.org/api/cases", Secret: "${S}"}},
		{name: "absolute http with reference in host", s: Settings{URL: "http://${CASE_HOST}:8090/cases", Secret: "${S}"}},
		{name: "all settings", s: Settings{URL: "https://x.example/c", Secret: "${S}", Timeout: "2m", MaxConcurrency: 256}},
		{name: "min concurrency", s: Settings{URL: "https://x.example/c", Secret: "${S}", MaxConcurrency: 1}},
		{name: "missing url", s: Settings{Secret: "${S}"}, wantErr: "url: required"},
		{name: "relative url", s: Settings{URL: "/cases", Secret: "${S}"}, wantErr: "url:"},
		{name: "ftp url", s: Settings{URL: "ftp://x.example/c", Secret: "${S}"}, wantErr: "url:"},
		{name: "url without host", s: Settings{URL: "https:///cases", Secret: "${S}"}, wantErr: "url:"},
		{name: "unparsable url", s: Settings{URL: "http://x.example/%zz", Secret: "${S}"}, wantErr: "url:"},
		{name: "malformed reference", s: Settings{URL: "${casesim_url}/cases", Secret: "${S}"}, wantErr: "url: malformed"},
		{name: "unclosed reference", s: Settings{URL: "${CASESIM_URL/cases", Secret: "${S}"}, wantErr: "url: malformed"},
		{name: "missing secret", s: Settings{URL: "https://x.example/c"}, wantErr: "secret: required"},
		{name: "bad timeout", s: Settings{URL: "https://x.example/c", Secret: "${S}", Timeout: "ten seconds"}, wantErr: "timeout:"},
		{name: "zero timeout", s: Settings{URL: "https://x.example/c", Secret: "${S}", Timeout: "0s"}, wantErr: "timeout:"},
		{name: "negative timeout", s: Settings{URL: "https://x.example/c", Secret: "${S}", Timeout: "-1s"}, wantErr: "timeout:"},
		{name: "timeout too long", s: Settings{URL: "https://x.example/c", Secret: "${S}", Timeout: "3m"}, wantErr: "timeout:"},
		{name: "negative concurrency", s: Settings{URL: "https://x.example/c", Secret: "${S}", MaxConcurrency: -1}, wantErr: "max_concurrency:"},
		{name: "concurrency too high", s: Settings{URL: "https://x.example/c", Secret: "${S}", MaxConcurrency: 257}, wantErr: "max_concurrency:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("Validate() = nil, want an error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestProvision(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		env     map[string]string
		wantErr string
	}{
		{name: "ok", url: "${U}/cases", env: map[string]string{"U": "http://127.0.0.1:8090", "S": "s"}},
		{name: "url variable empty", url: "${U}/cases", env: map[string]string{"S": "s"}, wantErr: "U is empty"},
		{name: "secret variable empty", url: "${U}/cases", env: map[string]string{"U": "http://127.0.0.1:8090"}, wantErr: "S is empty"},
		{name: "expanded url not absolute", url: "${U}/cases", env: map[string]string{"U": "localhost:8090", "S": "s"}, wantErr: "after expansion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Settings{URL: tt.url, Secret: "${S}"}
			c, err := s.Provision(func(k string) string { return tt.env[k] })
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Provision: %v", err)
				}
				pc := c.(*Connector)
				if pc.timeout != DefaultTimeout || cap(pc.sem) != DefaultMaxConcurrency {
					t.Errorf("defaults: timeout %v, concurrency %d", pc.timeout, cap(pc.sem))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Provision error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRegisteredAndDecodedFromTOML(t *testing.T) {
	if !slices.Contains(services.ConnectorKinds(), Kind) {
		t.Fatalf("kind %q is not registered: %v", Kind, services.ConnectorKinds())
	}
	var s Settings
	_, err := toml.Decode(`
url = "${CASESIM_URL}/cases"
followup_url = "${CASESIM_URL}/cases/{case_reference}/followups"
secret = "${CASESIM_SECRET}"
timeout = "30s"
max_concurrency = 4
`, &s)
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{URL: "${CASESIM_URL}/cases", Secret: "${CASESIM_SECRET}", Timeout: "30s", MaxConcurrency: 4,
		FollowUpURL: "${CASESIM_URL}/cases/{case_reference}/followups"}
	if s != want {
		t.Errorf("decoded %+v, want %+v", s, want)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if _, err := toml.Decode(`secret = "literal"`, new(Settings)); err == nil {
		t.Error("a literal secret was accepted")
	}
}

func TestSignVerify(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1_770_000_000, 0)
	ts := "1770000000"
	body := []byte(`{"submission_id":"a"}`)
	sig := Sign(secret, ts, body)

	tests := []struct {
		name    string
		secret  []byte
		ts, sig string
		body    []byte
		now     time.Time
		want    error
	}{
		{name: "round trip", secret: secret, ts: ts, sig: sig, body: body, now: now},
		{name: "within skew, clock behind", secret: secret, ts: ts, sig: sig, body: body, now: now.Add(-5 * time.Minute)},
		{name: "within skew, clock ahead", secret: secret, ts: ts, sig: sig, body: body, now: now.Add(5 * time.Minute)},
		{name: "tampered body", secret: secret, ts: ts, sig: sig, body: []byte(`{"submission_id":"b"}`), now: now, want: ErrBadSignature},
		{name: "tampered timestamp", secret: secret, ts: "1770000001", sig: sig, body: body, now: now, want: ErrBadSignature},
		{name: "wrong secret", secret: []byte("other"), ts: ts, sig: sig, body: body, now: now, want: ErrBadSignature},
		{name: "stale timestamp", secret: secret, ts: ts, sig: sig, body: body, now: now.Add(5*time.Minute + time.Second), want: ErrStaleTimestamp},
		{name: "timestamp from the future", secret: secret, ts: ts, sig: sig, body: body, now: now.Add(-6 * time.Minute), want: ErrStaleTimestamp},
		{name: "missing prefix", secret: secret, ts: ts, sig: strings.TrimPrefix(sig, "sha256="), body: body, now: now, want: ErrBadSignature},
		{name: "not hex", secret: secret, ts: ts, sig: "sha256=zz", body: body, now: now, want: ErrBadSignature},
		{name: "empty signature", secret: secret, ts: ts, body: body, now: now, want: ErrBadSignature},
		{name: "missing timestamp", secret: secret, sig: sig, body: body, now: now, want: ErrBadTimestamp},
		{name: "malformed timestamp", secret: secret, ts: "yesterday", sig: sig, body: body, now: now, want: ErrBadTimestamp},
		{name: "huge timestamp", secret: secret, ts: "9223372036854775807", sig: Sign(secret, "9223372036854775807", body), body: body, now: now, want: ErrStaleTimestamp},
		{name: "no secret", ts: ts, sig: Sign(nil, ts, body), body: body, now: now, want: ErrNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.ts, tt.sig, tt.body, tt.now, 5*time.Minute)
			if tt.want == nil && err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignKnownAnswer(t *testing.T) {
	// HMAC-SHA256("key", "1.{}") computed independently with
	// printf '1.{}' | openssl dgst -sha256 -hmac key
	got := Sign([]byte("key"), "1", []byte("{}"))
	const want = "sha256=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
	if got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"30", 30 * time.Second},
		{" 30 ", 30 * time.Second},
		{"99999999999999", maxRetryAfter},
		{now.Add(time.Minute).Format(http.TimeFormat), time.Minute},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
