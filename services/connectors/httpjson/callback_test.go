package httpjson

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestTargetAndVerifyCallback(t *testing.T) {
	s := &Settings{URL: "https://diarium.example.se:8443/api/cases?token=${TOKEN}", Secret: "${S}"}
	conn, err := s.Provision(func(k string) string {
		return map[string]string{"TOKEN": "t0ps3cret", "S": "route-secret"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	c := conn.(*Connector)
	if got := c.Target(); got != "https://diarium.example.se:8443" {
		t.Errorf("Target() = %q: want scheme, host and port only (no path or token)", got)
	}
	body := []byte(`{"status":"in_progress"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	if err := c.VerifyCallback(ts, Sign([]byte("route-secret"), ts, body), body); err != nil {
		t.Errorf("a good signature: %v", err)
	}
	if err := c.VerifyCallback(ts, Sign([]byte("other-secret"), ts, body), body); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another secret: %v", err)
	}
	if err := c.VerifyCallback(ts, Sign([]byte("route-secret"), ts, body), []byte(`{"status":"closed"}`)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a changed body: %v", err)
	}
	old := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	if err := c.VerifyCallback(old, Sign([]byte("route-secret"), old, body), body); !errors.Is(err, ErrStaleTimestamp) {
		t.Errorf("an hour old: %v", err)
	}
}
