package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The webhooks file is checked at start: secrets only as ${ENV} of at
// least 16 bytes, known events, absolute URLs (https in production), no
// unknown keys.
func TestWebhooksFile(t *testing.T) {
	env := map[string]string{"HOOK_SECRET": "sixteen-bytes-or-more", "SHORT": "short"}
	lookup := func(k string) string { return env[k] }
	load := func(body string, production bool) (webhookConfig, error) {
		file := filepath.Join(t.TempDir(), "hooks.json")
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := config{WebhooksFile: file}
		if production {
			cfg.Env = "production"
		}
		return loadWebhooks(cfg, lookup)
	}
	good := `{"departments": {"streets-parks": {"url": "https://h.example/x", "secret": "${HOOK_SECRET}", "events": ["status.changed", "submission.received", "status.changed"]}}}`
	w, err := load(good, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.events()["streets-parks"]; strings.Join(got, ",") != "status.changed,submission.received" {
		t.Errorf("events %v", got)
	}
	if s := w.subscriptions()["streets-parks"]; string(s.Secret) != "sixteen-bytes-or-more" || s.URL != "https://h.example/x" {
		t.Errorf("subscription %+v", s)
	}
	for name, body := range map[string]string{
		"literal secret": `{"departments": {"d": {"url": "https://h.example", "secret": "hunter2hunter2hunter2", "events": ["status.changed"]}}}`,
		"short secret":   `{"departments": {"d": {"url": "https://h.example", "secret": "${SHORT}", "events": ["status.changed"]}}}`,
		"empty secret":   `{"departments": {"d": {"url": "https://h.example", "secret": "${NOPE}", "events": ["status.changed"]}}}`,
		"unknown event":  `{"departments": {"d": {"url": "https://h.example", "secret": "${HOOK_SECRET}", "events": ["case.opened"]}}}`,
		"no events":      `{"departments": {"d": {"url": "https://h.example", "secret": "${HOOK_SECRET}"}}}`,
		"relative url":   `{"departments": {"d": {"url": "/hooks", "secret": "${HOOK_SECRET}", "events": ["status.changed"]}}}`,
		"http in prod":   `{"departments": {"d": {"url": "http://h.example", "secret": "${HOOK_SECRET}", "events": ["status.changed"]}}}`,
		"unknown key":    `{"departments": {"d": {"url": "https://h.example", "secret": "${HOOK_SECRET}", "events": ["status.changed"], "token": "x"}}}`,
		"bad department": `{"departments": {"D D": {"url": "https://h.example", "secret": "${HOOK_SECRET}", "events": ["status.changed"]}}}`,
	} {
		if _, err := load(body, true); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := load(`{"departments": {"d": {"url": "http://127.0.0.1:9/x", "secret": "${HOOK_SECRET}", "events": ["status.changed"]}}}`, false); err != nil {
		t.Errorf("http in development: %v", err)
	}
}
