// Package proctest runs the project's binaries (the gateway and casesim)
// as real processes for the tests of cmd/gateway and its test packages
// (the accessibility sweep, the failover tests): built once per test
// binary, started with the test's own environment, their output kept, and
// killed when the test ends.
package proctest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds cmd/gateway and cmd/casesim once per test binary and
// returns their paths.
func Binaries(t testing.TB) (gateway, casesim string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gateway-procs-")
		if buildErr != nil {
			return
		}
		for _, name := range []string{"gateway", "casesim"} {
			pkg := "github.com/kommun/servicegateway/cmd/" + name
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, name), pkg).CombinedOutput()
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

// RemoveBinaries removes what Binaries built; TestMain calls it after the
// tests ran.
func RemoveBinaries() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Buffer is a bytes.Buffer safe for a process's writes and a test's reads.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Proc is a running child process whose output the test keeps.
type Proc struct {
	Cmd  *exec.Cmd
	Out  *Buffer
	URL  string        // from its "listening on URL" line
	Done chan struct{} // closed when it has exited
	t    testing.TB
}

// Listening matches the line a server prints once it listens; the first
// group is its URL.
var Listening = regexp.MustCompile(`listening on (http://\S+)`)

// Start runs bin with only env (and PATH and HOME) and waits for its
// "listening on URL" line; the process is killed when the test ends.
func Start(t testing.TB, bin string, env map[string]string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &Proc{t: t, Cmd: cmd, Out: &Buffer{}, Done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p.Out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.Out.Write([]byte(line + "\n"))
			if m := Listening.FindStringSubmatch(line); m != nil && !sent {
				urlCh <- m[1]
				sent = true
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(p.Done) }()
	t.Cleanup(p.Kill)
	select {
	case p.URL = <-urlCh:
	case <-p.Done:
		t.Fatalf("%s exited before listening:\n%s", filepath.Base(bin), p.Out)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start in 30s:\n%s", filepath.Base(bin), p.Out)
	}
	return p
}

// Stop sends SIGTERM and waits for a graceful exit with code 0.
func (p *Proc) Stop() {
	p.t.Helper()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("process did not stop on SIGTERM:\n%s", p.Out)
	}
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.Out)
	}
}

// Kill sends SIGKILL (no chance to clean up) and waits for the process to
// be gone.
func (p *Proc) Kill() {
	select {
	case <-p.Done:
		return
	default:
	}
	_ = p.Cmd.Process.Kill()
	<-p.Done
}
