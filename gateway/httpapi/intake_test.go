package httpapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// channelDriver submits values to a service through one channel and
// reduces the answer to an outcome that is the same for every channel.
type channelDriver struct {
	name string
	// submit sends values with an idempotency key (the form token for the
	// forms; a fresh form is fetched when key is "").
	submit func(t *testing.T, e *deskEnv, service string, values map[string]string, key string) outcome
}

// outcome is what a channel answered: accepted (with the submission id,
// and whether it was a replay), invalid (with the fields), refused (401 or
// 403, with the message shown), or conflict (409).
type outcome struct {
	kind   string // accepted, invalid, refused, conflict, other
	id     string
	fields []string
	text   string
	status int
}

func formOutcome(r resp, receiptPrefix string) outcome {
	o := outcome{status: r.status, text: r.body}
	switch r.status {
	case 303:
		loc := r.header.Get("Location")
		if id, ok := strings.CutPrefix(loc, receiptPrefix); ok {
			o.kind, o.id = "accepted", strings.TrimSuffix(id, "?receipt=1")
		}
	case 422:
		o.kind = "invalid"
		for _, m := range regexpAll(`href="#f-([a-z_]+)"`, r.body) {
			o.fields = append(o.fields, m)
		}
	case 401, 403:
		o.kind = "refused"
	case 409:
		o.kind = "conflict"
	}
	if o.kind == "" {
		o.kind = "other"
	}
	return o
}

func apiOutcome(r resp) outcome {
	o := outcome{status: r.status, text: r.body}
	var body struct {
		ID     string            `json:"id"`
		Detail string            `json:"detail"`
		Errors map[string]string `json:"errors"`
	}
	_ = json.Unmarshal([]byte(r.body), &body)
	switch r.status {
	case 202:
		o.kind, o.id = "accepted", body.ID
	case 422:
		o.kind = "invalid"
		for k := range body.Errors {
			o.fields = append(o.fields, k)
		}
	case 401, 403:
		o.kind = "refused"
	case 409:
		o.kind = "conflict"
	default:
		o.kind = "other"
	}
	return o
}

var channelDrivers = []channelDriver{
	{"form", func(t *testing.T, e *deskEnv, service string, values map[string]string, key string) outcome {
		cookie, csrf, token := e.form(t, "/services/"+service)
		if key != "" {
			token = key
		}
		v := url.Values{"_csrf": {csrf}, "_form": {token}}
		for k, x := range values {
			if k != "_check" {
				v.Set(k, x)
			}
		}
		return formOutcome(e.postForm(t, "/services/"+service, cookie, v), "/s/")
	}},
	{"api", func(t *testing.T, e *deskEnv, service string, values map[string]string, key string) outcome {
		m := map[string]string{}
		for k, x := range values {
			if k != "_check" {
				m[k] = x
			}
		}
		b, _ := json.Marshal(m)
		hdr := []string{}
		if key != "" {
			hdr = append(hdr, "Idempotency-Key", key)
		}
		return apiOutcome(e.postJSON(t, "/api/v1/services/"+service+"/submissions", string(b), hdr...))
	}},
	{"desk form", func(t *testing.T, e *deskEnv, service string, values map[string]string, key string) outcome {
		cookie, csrf, token := formAs(t, e, "/desk/services/"+service, "sara")
		if key != "" {
			token = key
		}
		v := url.Values{"_csrf": {csrf}, "_form": {token}, "_visitor": {visitorPnr}, "_identity_check": {values["_check"]}, "_consent": {"true"}}
		for k, x := range values {
			if k != "_check" {
				v.Set(k, x)
			}
		}
		return formOutcome(e.postForm(t, "/desk/services/"+service, cookie, v, "X-Test-Principal", "sara"), "/desk/receipt/")
	}},
	{"desk api", func(t *testing.T, e *deskEnv, service string, values map[string]string, key string) outcome {
		m := map[string]any{"on_behalf_of": map[string]any{"personnummer": visitorPnr, "identity_check": values["_check"], "consent": true}}
		for k, x := range values {
			if k != "_check" {
				m[k] = x
			}
		}
		b, _ := json.Marshal(m)
		hdr := []string{"X-Test-Principal", "sara"}
		if key != "" {
			hdr = append(hdr, "Idempotency-Key", key)
		}
		return apiOutcome(e.postJSON(t, "/api/v1/services/"+service+"/submissions", string(b), hdr...))
	}},
}

const visitorPnr = "19900101-3011"

// key24 is an idempotency key shaped like a form token (24 characters of
// the URL-safe alphabet), so every channel takes it.
func key24(name string) string {
	k := strings.NewReplacer(" ", "-").Replace(name) + "-xxxxxxxxxxxxxxxxxxxxxxxx"
	return k[:24]
}

func streetFaultValues(extra ...string) map[string]string {
	v := map[string]string{"kind": "pothole", "description": "Djupt hål i körbanan vid busshållplatsen", "location": "Storgatan 1", "_check": "id_document"}
	for i := 0; i+1 < len(extra); i += 2 {
		v[extra[i]] = extra[i+1]
	}
	return v
}

// TestIntakeSameRulesForEveryChannel drives the resident form, the JSON
// API, the desk form and the desk API through the same cases, and expects
// the same outcome from each: the submit rules live in one place.
func TestIntakeSameRulesForEveryChannel(t *testing.T) {
	for _, ch := range channelDrivers {
		t.Run(ch.name, func(t *testing.T) {
			e := newDeskEnv(t)
			// A service that takes nothing but paper, for this test only.
			if svc, ok := e.catalog.Get("public-documents"); ok {
				svc.Channels = []gateway.Channel{gateway.ChannelPaper}
			}
			// Accepted, then the same key again: the same submission.
			first := ch.submit(t, e, "street-fault", streetFaultValues(), key24("dup-"+ch.name))
			if first.kind != "accepted" || first.id == "" {
				t.Fatalf("accepted: %+v", first)
			}
			again := ch.submit(t, e, "street-fault", streetFaultValues(), key24("dup-"+ch.name))
			if again.kind != "accepted" || again.id != first.id {
				t.Fatalf("duplicate: %+v, want the same submission %s", again, first.id)
			}
			// The same key with other values: a conflict, nothing new stored.
			other := ch.submit(t, e, "street-fault", streetFaultValues("location", "Kungsgatan 2"), key24("dup-"+ch.name))
			if other.kind != "conflict" && other.kind != "invalid" {
				t.Fatalf("same key, other values: %+v", other)
			}
			// Invalid: the same field named by every channel.
			bad := ch.submit(t, e, "street-fault", streetFaultValues("description", "kort"), "")
			if bad.kind != "invalid" || !contains(bad.fields, "description") {
				t.Fatalf("invalid: %+v", bad)
			}
			// A channel the manifest does not list.
			paper := ch.submit(t, e, "public-documents", map[string]string{"documents": "Protokoll från nämnden i maj", "delivery": "inspect", "_check": "id_document"}, "")
			if paper.kind != "refused" || paper.status != 403 || !strings.Contains(paper.text, "kan inte användas på det här sättet") {
				t.Fatalf("channel not allowed: %d %s", paper.status, paper.text)
			}
			// Too low a level: anonymous on a substantial service, or a
			// visitor known only by sight (low).
			low := ch.submit(t, e, "home-care", map[string]string{"applying_for": "self", "needs": "Hjälp med inköp varje vecka", "_check": "known"}, "")
			if low.kind != "refused" {
				t.Fatalf("level too low: %+v", low)
			}
			// Nothing but the first submission was stored.
			if n := e.submissionCount(t); n != 1 {
				t.Fatalf("%d submissions stored, want 1", n)
			}
		})
	}
}

// An Idempotency-Key still in flight answers 409 on the API channels (their
// contract); a form's token is no lock: the second post waits for the same
// receipt, which the atomic write guarantees.
func TestIntakeInFlight(t *testing.T) {
	for _, ch := range channelDrivers {
		t.Run(ch.name, func(t *testing.T) {
			e := newDeskEnv(t)
			key := key24("inflight-" + ch.name)
			scope := map[string]string{"api": "ip:0.0.0.0", "desk api": "desk:dev:sara"}[ch.name]
			if scope != "" {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				release, err := e.store.LockIdempotency(ctx, gateway.Idempotency{Scope: scope, Key: key}, 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				got := ch.submit(t, e, "street-fault", streetFaultValues(), key)
				if got.kind != "conflict" {
					t.Fatalf("in flight: %+v", got)
				}
				release()
			}
			got := ch.submit(t, e, "street-fault", streetFaultValues(), key)
			if got.kind != "accepted" {
				t.Fatalf("after release: %+v", got)
			}
		})
	}
}

// submissionCount is how many submissions were stored: each adds one
// entry to the delivery stream, and nothing delivers in these tests.
func (e *deskEnv) submissionCount(t *testing.T) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.store.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st.Stream
}

func regexpAll(pattern, s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
