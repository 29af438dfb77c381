package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/casesim"
	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

var client = &http.Client{Timeout: 30 * time.Second}

// lockedBuffer is an io.Writer that run's goroutines may share.
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

// running is a casesim started by start.
type running struct {
	url    string // http://127.0.0.1:PORT
	cancel context.CancelFunc
	done   chan error
	stderr *lockedBuffer
}

// start runs casesim in a goroutine with env and waits for the line that
// says where it listens.
func start(t *testing.T, env map[string]string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	r := &running{cancel: cancel, done: make(chan error, 1), stderr: new(lockedBuffer)}
	go func() {
		err := run(ctx, nil, func(k string) string { return env[k] }, pw, r.stderr)
		pw.Close()
		r.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done // returns once cancel has been seen
	})

	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		err := r.stop()
		t.Fatalf("casesim printed nothing; run returned %v; stderr:\n%s", err, r.stderr.String())
	}
	go io.Copy(io.Discard, pr) // keep draining, should anything follow
	url, ok := strings.CutPrefix(lines.Text(), "casesim listening on ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("first line %q, want \"casesim listening on http://127.0.0.1:PORT\"", lines.Text())
	}
	r.url = url
	return r
}

// stop cancels the context and returns what run returned.
func (r *running) stop() error {
	r.cancel()
	err := <-r.done
	r.done <- err // for the cleanup
	return err
}

func listCases(t *testing.T, url string) []map[string]any {
	t.Helper()
	resp, err := client.Get(url + "/cases")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cases []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func deliver(t *testing.T, baseURL, secret string, d *gateway.Delivery) (string, error) {
	t.Helper()
	env := map[string]string{"CASESIM_URL": baseURL, "CASESIM_SECRET": secret}
	s := &httpjson.Settings{URL: "${CASESIM_URL}/cases", Secret: "${CASESIM_SECRET}"}
	c, err := s.Provision(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Deliver(ctx, d)
}

func TestRunServesAndShutsDown(t *testing.T) {
	env := map[string]string{
		"CASESIM_ADDR":   "127.0.0.1:0",
		"CASESIM_SECRET": "cmd-test-secret",
		"CASESIM_DATA":   filepath.Join(t.TempDir(), "cases.jsonl"),
	}
	d := &gateway.Delivery{
		SubmissionID: gateway.NewID(),
		Reference:    "2026-K7QM-4XPB",
		Service:      "street-fault",
		Channel:      gateway.ChannelDigital,
		Locale:       "sv",
		SubmittedAt:  time.Now(),
		Payload:      map[string]any{"description": "a lamp is out"},
		Attempt:      1,
	}

	r := start(t, env)
	ref, err := deliver(t, r.url, env["CASESIM_SECRET"], d)
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	cases := listCases(t, r.url)
	if len(cases) != 1 || cases[0]["case_reference"] != ref || cases[0]["submission_id"] != d.SubmissionID ||
		cases[0]["service"] != "street-fault" || cases[0]["idempotency_key"] != d.SubmissionID {
		t.Fatalf("GET /cases = %v, want the one delivered case %s", cases, ref)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("run returned %v after cancel, want nil", err)
	}
	if strings.Contains(r.stderr.String(), "a lamp is out") {
		t.Errorf("the payload reached the log:\n%s", r.stderr.String())
	}

	// Started again on the same data file, it still knows the case.
	r2 := start(t, env)
	if again, err := deliver(t, r2.url, env["CASESIM_SECRET"], d); err != nil || again != ref {
		t.Errorf("delivery after restart = %q, %v; want %q", again, err, ref)
	}
	if cases := listCases(t, r2.url); len(cases) != 1 {
		t.Errorf("after restart %d cases, want 1", len(cases))
	}
	if err := r2.stop(); err != nil {
		t.Fatalf("run returned %v after cancel, want nil", err)
	}
}

func TestRunDefaultSecret(t *testing.T) {
	r := start(t, map[string]string{"CASESIM_ADDR": "127.0.0.1:0"})
	d := &gateway.Delivery{SubmissionID: "s1", Service: "street-fault", SubmittedAt: time.Now(), Attempt: 1}
	if _, err := deliver(t, r.url, casesim.DemoSecret, d); err != nil {
		t.Errorf("delivery signed with the demo secret: %v", err)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stderr.String(), "CASESIM_SECRET is not set") {
		t.Errorf("no warning about the demo secret in:\n%s", r.stderr.String())
	}
}

func TestRunHelpAndBadArguments(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr bool
		wantOut []string
	}{
		{name: "--help", args: []string{"--help"}, wantOut: []string{"CASESIM_ADDR", "CASESIM_SECRET", "CASESIM_DATA", casesim.DemoSecret}},
		{name: "-h", args: []string{"-h"}, wantOut: []string{"CASESIM_ADDR"}},
		{name: "unknown flag", args: []string{"--port=1"}, wantErr: true},
		{name: "extra argument", args: []string{"serve"}, wantErr: true},
		{name: "bad address", env: map[string]string{"CASESIM_ADDR": "127.0.0.1:notaport"}, wantErr: true},
		{name: "data file is a directory", env: map[string]string{"CASESIM_ADDR": "127.0.0.1:0", "CASESIM_DATA": t.TempDir()}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr lockedBuffer
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, &stdout, &stderr)
			if (err != nil) != tt.wantErr {
				t.Fatalf("run = %v, want error %v", err, tt.wantErr)
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
		})
	}
}
