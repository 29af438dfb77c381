// Package webhook delivers department events (issue 11 §5) as signed HTTP
// POSTs: a department subscribes a URL to submission.received,
// submission.delivered and status.changed instead of polling its list.
//
// The events come from the notification outbox (gateway/notify reads it;
// the store's scripts write an event in the same step as what it reports),
// so delivery is at least once, with retries, backoff and dead letters like
// the residents' messages. A receiver deduplicates on the event id.
//
// Contract: POST {url} with
//
//	Content-Type: application/json
//	X-Gateway-Event: status.changed
//	X-Gateway-Event-Id: 3f2a…            (stable per event, also in the body as "id")
//	X-Gateway-Timestamp: 1767225600      (Unix seconds of this attempt)
//	X-Gateway-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
//	{"id": "3f2a…", "type": "status.changed", "occurred_at": "2026-12-02T08:00:00.123Z",
//	 "submission": {"id": "…", "reference": "ABC-123", "service": "street-fault",
//	  "department": "streets", "status": "in_progress", "case_reference": "CASE-9"}}
//
// No form content and no personal data beyond the ids. The signature is the
// one deliveries carry (the same verification code works); a receiver
// should refuse timestamps more than 5 minutes off. Any 2xx is success;
// 408, 429 and 5xx (and network errors) are retried, honouring
// Retry-After in seconds; any other status is permanent (a dead letter that
// an administrator can replay).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// Headers of a webhook request.
const (
	HeaderEvent     = "X-Gateway-Event"
	HeaderEventID   = "X-Gateway-Event-Id"
	HeaderTimestamp = "X-Gateway-Timestamp"
	HeaderSignature = "X-Gateway-Signature"
)

// Subscription is one department's webhook.
type Subscription struct {
	URL    string
	Secret []byte
	Events []string
}

// Sender posts webhook events. It implements notify.WebhookSender.
type Sender struct {
	// Subscriptions by department.
	Subscriptions map[string]Subscription
	Client        *http.Client // nil: a client with Timeout
	Timeout       time.Duration
	Now           func() time.Time
}

// Payload is the body of a webhook request.
type Payload struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	OccurredAt time.Time      `json:"occurred_at"`
	Submission PayloadSubject `json:"submission"`
}

// PayloadSubject is the submission an event is about: ids and status only.
type PayloadSubject struct {
	ID            string `json:"id"`
	Reference     string `json:"reference"`
	Service       string `json:"service"`
	Department    string `json:"department"`
	Status        string `json:"status"`
	CaseReference string `json:"case_reference,omitempty"`
}

// EventID is the id a receiver deduplicates on: stable for one outbox
// event through retries, restarts and replays.
func EventID(event string) string {
	sum := sha256.Sum256([]byte("servicegateway/webhook\x00" + event))
	return hex.EncodeToString(sum[:16])
}

// Sign is the X-Gateway-Signature value of body sent at timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature made by Sign, in constant time, and that the
// timestamp is within maxSkew of now.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return errors.New("signature does not match")
	}
	if d := now.Unix() - ts; d > int64(maxSkew/time.Second) || -d > int64(maxSkew/time.Second) {
		return errors.New("timestamp outside the allowed skew")
	}
	return nil
}

// SendWebhook posts one event about sub. An event for a department (or a
// type) without a subscription is a permanent error: the subscription was
// removed after the event was written.
func (s *Sender) SendWebhook(ctx context.Context, ev gateway.NotifyEvent, sub *gateway.Submission) error {
	hook, ok := s.Subscriptions[ev.Department]
	if !ok || !slices.Contains(hook.Events, ev.Type) {
		return &gateway.DeliveryError{Permanent: true, Err: fmt.Errorf("department %q has no webhook for %s", ev.Department, ev.Type)}
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	at := time.UnixMilli(ev.AtMs).UTC()
	if ev.AtMs <= 0 {
		at = now().UTC()
	}
	p := Payload{ID: EventID(ev.Event), Type: ev.Type, OccurredAt: at, Submission: PayloadSubject{
		ID: sub.ID, Reference: sub.Reference, Service: sub.Service, Department: sub.Department,
		Status: string(ev.Status), CaseReference: sub.CaseReference}}
	body, err := json.Marshal(p)
	if err != nil {
		return &gateway.DeliveryError{Permanent: true, Err: err}
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return &gateway.DeliveryError{Permanent: true, Err: err}
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "servicegateway-webhook/1")
	req.Header.Set(HeaderEvent, ev.Type)
	req.Header.Set(HeaderEventID, p.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(hook.Secret, ts, body))
	cl := s.Client
	if cl == nil {
		cl = &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := cl.Do(req)
	if err != nil {
		return &gateway.DeliveryError{Err: fmt.Errorf("webhook: %w", err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusTooManyRequests || c >= 500 || c == http.StatusRequestTimeout:
		e := &gateway.DeliveryError{Err: fmt.Errorf("webhook receiver answered %d", c)}
		if sec, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && sec > 0 && sec < 86400 {
			e.RetryAfter = time.Duration(sec) * time.Second
		}
		return e
	default:
		return &gateway.DeliveryError{Permanent: true, Err: fmt.Errorf("webhook receiver answered %d", c)}
	}
}
