package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// HTTPSMS is the SMS provider adapter for a generic JSON SMS gateway.
//
// Contract: POST {URL} with
//
//	Content-Type: application/json
//	Authorization: Bearer {Token}
//	Idempotency-Key: {key}            (the same on every attempt of one notification)
//	{"to": "+46701234567", "from": "{Sender}", "text": "...", "idempotency_key": "{key}"}
//
// Any 2xx means the provider took the message (and takes a repeat with the
// same key as the same message). 429 and 5xx are retried (Retry-After in
// seconds is honoured); any other status is permanent. Responses are read
// up to 64 KiB and otherwise ignored.
type HTTPSMS struct {
	URL    string
	Token  string
	Sender string
	Client *http.Client // nil: a client with Timeout
	// Timeout bounds one request (default 10 s).
	Timeout time.Duration
}

var _ SMSProvider = (*HTTPSMS)(nil)

// SendSMS posts one message.
func (p *HTTPSMS) SendSMS(ctx context.Context, m SMS) error {
	body, err := json.Marshal(map[string]string{"to": m.To, "from": p.Sender, "text": m.Text, "idempotency_key": m.IdempotencyKey})
	if err != nil {
		return &gateway.DeliveryError{Permanent: true, Err: err}
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return &gateway.DeliveryError{Permanent: true, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", m.IdempotencyKey)
	if p.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.Token)
	}
	cl := p.Client
	if cl == nil {
		cl = &http.Client{Timeout: timeout}
	}
	resp, err := cl.Do(req)
	if err != nil {
		return &gateway.DeliveryError{Err: fmt.Errorf("sms provider: %w", err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		e := &gateway.DeliveryError{Err: fmt.Errorf("sms provider answered %d", resp.StatusCode)}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 && s < 86400 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	default:
		return &gateway.DeliveryError{Permanent: true, Err: fmt.Errorf("sms provider answered %d", resp.StatusCode)}
	}
}
