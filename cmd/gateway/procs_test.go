package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// Integration tests run the real binaries: the gateway, casesim and
// redis-server, as separate processes that can be stopped and killed.

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds cmd/gateway and cmd/casesim once per test run.
func binaries(t *testing.T) (gatewayBin, casesimBin string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gateway-it-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"gateway", "casesim"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, pkg), "../"+pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "gateway"), filepath.Join(binDir, "casesim")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// proc is a running child process whose output the test keeps.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *syncBuffer
	URL  string
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// start runs bin with env and waits for its "listening on URL" line.
func start(t *testing.T, bin string, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{t: t, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.out.Write([]byte(line + "\n"))
			if m := listening.FindStringSubmatch(line); m != nil && !sent {
				urlCh <- m[1]
				sent = true
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	select {
	case p.URL = <-urlCh:
	case <-p.done:
		t.Fatalf("%s exited before listening:\n%s", filepath.Base(bin), p.out)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start in 30s:\n%s", filepath.Base(bin), p.out)
	}
	return p
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

// stop sends SIGTERM and waits for a graceful exit.
func (p *proc) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("process did not stop on SIGTERM:\n%s", p.out)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.out)
	}
}

// kill sends SIGKILL: no chance to clean up.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
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
