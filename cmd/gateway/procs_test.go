package main

import (
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/cmd/gateway/internal/proctest"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// Integration tests run the real binaries: the gateway, casesim and
// redis-server, as separate processes that can be stopped and killed; the
// gateway and casesim binaries are built once per test binary
// (cmd/gateway/internal/proctest).

type proc = proctest.Proc

var listening = proctest.Listening

func binaries(t *testing.T) (gatewayBin, casesimBin string) { return proctest.Binaries(t) }

func start(t *testing.T, bin string, env map[string]string, args ...string) *proc {
	t.Helper()
	return proctest.Start(t, bin, env, args...)
}

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.RemoveBinaries()
	os.Exit(code)
}

// casesimProc runs casesim on a free port with the demo secret.
func casesimProc(t *testing.T) *proc {
	t.Helper()
	_, csBin := binaries(t)
	return start(t, csBin, map[string]string{"CASESIM_ADDR": "127.0.0.1:0", "CASESIM_SECRET": demoSecret})
}

// gatewayProc runs the gateway binary with env.
func gatewayProc(t *testing.T, env map[string]string) *proc {
	t.Helper()
	gwBin, _ := binaries(t)
	return start(t, gwBin, env)
}

// startStack runs redis-server (AOF always), casesim and the gateway with
// gatewayEnv and extraEnv on top of it.
func startStack(t *testing.T, extraEnv map[string]string) (rs *redistest.Server, cs, gw *proc) {
	t.Helper()
	rs = redistest.Start(t, redistest.WithAOF("always"))
	cs = casesimProc(t)
	env := gatewayEnv(rs.URL(), cs.URL)
	maps.Copy(env, extraEnv)
	return rs, cs, gatewayProc(t, env)
}

var client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if v != nil {
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return res.StatusCode
}

// eventually polls cond until it holds or the deadline passes. It waits
// for a result; it does not time anything.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitDelivered waits, for each id in turn, until the gateway shows the
// submission delivered.
func waitDelivered(t *testing.T, within time.Duration, what, gw string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		eventually(t, within, what, func() bool { return submission(t, gw, id).Status == "delivered" })
	}
}

type caseJSON struct {
	CaseReference  string     `json:"case_reference"`
	SubmissionID   string     `json:"submission_id"`
	Service        string     `json:"service"`
	IdempotencyKey string     `json:"idempotency_key"`
	Deliveries     int        `json:"deliveries"`
	Attachments    []fileJSON `json:"attachments"`
	FollowUps      []struct {
		Answer      string     `json:"answer"`
		Deliveries  int        `json:"deliveries"`
		Attachments []fileJSON `json:"attachments"`
	} `json:"followups"`
}

// fileJSON is a file as casesim lists it: fetched and checked.
type fileJSON struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func cases(t *testing.T, casesimURL string) []caseJSON {
	var out []caseJSON
	if code := getJSON(t, casesimURL+"/cases", &out); code != 200 {
		t.Fatalf("casesim /cases: %d", code)
	}
	return out
}

type submissionJSON struct {
	ID            string `json:"id"`
	Reference     string `json:"reference"`
	Status        string `json:"status"`
	CaseReference string `json:"case_reference"`
	History       []struct {
		Status string `json:"status"`
	} `json:"history"`
}

func submission(t *testing.T, gw, id string) submissionJSON {
	var s submissionJSON
	if code := getJSON(t, gw+"/api/v1/submissions/"+id, &s); code != 200 {
		t.Fatalf("submission %s: %d", id, code)
	}
	return s
}

func postJSON(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	res, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func execCommand(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	return cmd
}
