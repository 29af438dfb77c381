package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/webhook"
	"github.com/kommun/servicegateway/services"
)

// The departments' webhook subscriptions, GATEWAY_WEBHOOKS_FILE:
//
//	{"departments": {
//	  "streets": {"url": "https://case.streets.example/hooks/gateway",
//	              "secret": "${STREETS_WEBHOOK_SECRET}",
//	              "events": ["submission.received", "submission.delivered", "status.changed"]}}}
//
// The secret must be a ${ENV} reference (never a literal) and is at least
// 16 bytes; in production the URL must be https.

// Bounds of the webhooks file.
const (
	maxWebhooksFile = 1 << 20
	maxWebhooks     = 1000
)

type webhookEntry struct {
	URL    string          `json:"url"`
	Secret services.Secret `json:"secret"`
	Events []string        `json:"events"`
	secret []byte
}

type webhookConfig map[string]webhookEntry

var departmentID = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// loadWebhooks reads and checks GATEWAY_WEBHOOKS_FILE (none when unset).
func loadWebhooks(cfg config, lookup func(string) string) (webhookConfig, error) {
	if cfg.WebhooksFile == "" {
		return nil, nil
	}
	f, err := os.Open(cfg.WebhooksFile)
	if err != nil {
		return nil, fmt.Errorf("GATEWAY_WEBHOOKS_FILE: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxWebhooksFile+1))
	if err != nil {
		return nil, fmt.Errorf("GATEWAY_WEBHOOKS_FILE: %w", err)
	}
	if len(b) > maxWebhooksFile {
		return nil, errors.New("GATEWAY_WEBHOOKS_FILE: larger than 1 MiB")
	}
	var doc struct {
		Departments map[string]webhookEntry `json:"departments"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("GATEWAY_WEBHOOKS_FILE: %w", err)
	}
	if len(doc.Departments) > maxWebhooks {
		return nil, fmt.Errorf("GATEWAY_WEBHOOKS_FILE: more than %d departments", maxWebhooks)
	}
	out := webhookConfig{}
	for dept, e := range doc.Departments {
		where := "GATEWAY_WEBHOOKS_FILE: department " + dept
		if !departmentID.MatchString(dept) {
			return nil, fmt.Errorf("%s: not a department id", where)
		}
		u, err := url.Parse(e.URL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("%s: url must be an absolute http(s) URL", where)
		}
		if cfg.production() && u.Scheme != "https" {
			return nil, fmt.Errorf("%s: url must be https in production", where)
		}
		if e.Secret == "" {
			return nil, fmt.Errorf("%s: secret missing (a ${ENV} reference)", where)
		}
		secret, err := e.Secret.Resolve(lookup)
		if err != nil {
			return nil, fmt.Errorf("%s: secret: %w", where, err)
		}
		if len(secret) < 16 {
			return nil, fmt.Errorf("%s: secret shorter than 16 bytes", where)
		}
		if len(e.Events) == 0 {
			return nil, fmt.Errorf("%s: no events", where)
		}
		for _, ev := range e.Events {
			if !slices.Contains(gateway.WebhookEvents, ev) {
				return nil, fmt.Errorf("%s: unknown event %q (want one of %v)", where, ev, gateway.WebhookEvents)
			}
		}
		e.secret = []byte(secret)
		e.Events = slices.Compact(slices.Sorted(slices.Values(e.Events)))
		out[dept] = e
	}
	return out, nil
}

// events is what the store's scripts read: department -> event types.
func (w webhookConfig) events() map[string][]string {
	out := make(map[string][]string, len(w))
	for dept, e := range w {
		out[dept] = e.Events
	}
	return out
}

// subscriptions is what the sender needs.
func (w webhookConfig) subscriptions() map[string]webhook.Subscription {
	out := make(map[string]webhook.Subscription, len(w))
	for dept, e := range w {
		out[dept] = webhook.Subscription{URL: e.URL, Secret: e.secret, Events: e.Events}
	}
	return out
}

// departments lists the subscribed departments, sorted (for the log).
func (w webhookConfig) departments() []string {
	out := make([]string, 0, len(w))
	for d := range w {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}
