// Package redistest starts a real redis-server for tests: on a free loopback
// port, in a temporary directory, killed when the test ends.
//
//	srv := redistest.Start(t, redistest.WithAOF("always"))
//	rdb := srv.Client(t)
//	...
//	srv.Kill()    // SIGKILL: what a power cut or OOM kill looks like
//	srv.Restart() // same port and directory, so the append-only file is replayed
//
// When redis-server is not on PATH the test is skipped, or fails when the
// environment variable CI is "true": in CI a missing server is a broken
// build, not a reason to skip.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Binary is the name of the server executable looked up on PATH.
const Binary = "redis-server"

// startTimeout bounds how long Start and Restart wait for PING to answer.
const startTimeout = 15 * time.Second

// Option configures Start.
type Option func(*config)

type config struct {
	aof   bool
	fsync string
	args  []string
}

// WithAOF turns on the append-only file with the given appendfsync policy:
// "always", "everysec" or "no".
func WithAOF(fsync string) Option {
	return func(c *config) { c.aof, c.fsync = true, fsync }
}

// WithArgs passes extra command-line arguments to redis-server, e.g.
// WithArgs("--maxmemory", "10mb").
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Server is a redis-server process owned by a test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string

	mu   sync.Mutex
	proc *process // nil when not running
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when Wait returned
	err  error         // Wait's result, valid after done
	out  *lockedBuffer // stdout and stderr, for failure messages
}

// Start starts redis-server on a free port on 127.0.0.1 in t.TempDir(),
// waits until it answers PING, and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, err := exec.LookPath(Binary)
	if err != nil {
		msg := fmt.Sprintf("redistest: %s not found on PATH (install Redis, e.g. apt-get install redis-server): %v", Binary, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cfg := config{fsync: "everysec"}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	appendonly := "no"
	if cfg.aof {
		appendonly = "yes"
	}
	s.args = []string{
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", appendonly,
		"--appendfsync", cfg.fsync,
		"--daemonize", "no",
		"--logfile", "",
	}
	s.args = append(s.args, cfg.args...)
	t.Cleanup(s.Kill)

	// A free port found by listening on :0 can be taken again before the
	// server binds it; try a few ports before giving up.
	var lastErr error
	for range 5 {
		s.port, err = freePort()
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the server's address as a redis:// URL for database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir is the server's working directory (where the append-only file lives).
func (s *Server) Dir() string { return s.dir }

// Client returns a client connected to the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr:         s.Addr(),
		DialTimeout:  2 * time.Second,
		ReadTimeout:  3 * time.Second,
		WriteTimeout: 3 * time.Second,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// take returns the running server process, if any, and forgets it: the
// caller ends it.
func (s *Server) take() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	s.proc = nil
	return p
}

// Kill sends SIGKILL to the server and waits for it to exit. Data not yet
// written to the append-only file is lost, as in a crash. Killing a server
// that is not running does nothing.
func (s *Server) Kill() {
	p := s.take()
	if p == nil {
		return
	}
	p.signalGroup(killSignal)
	<-p.done
}

// Pause freezes the server (SIGSTOP) without ending it: its connections
// stay open and it answers nothing, as a replica that has fallen behind or
// a node that hangs. Resume (SIGCONT) lets it go on. Unix only.
func (s *Server) Pause() {
	if p := s.running(); p != nil {
		p.signalGroup(pauseSignal)
	}
}

// Resume continues a paused server.
func (s *Server) Resume() {
	if p := s.running(); p != nil {
		p.signalGroup(resumeSignal)
	}
}

// running is the server's process, nil when it is not running.
func (s *Server) running() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// Stop asks the server to shut down (SIGTERM, which flushes the append-only
// file) and waits; after 10 seconds it kills it.
func (s *Server) Stop() {
	p := s.take()
	if p == nil {
		return
	}
	p.signalGroup(termSignal)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.signalGroup(killSignal)
		<-p.done
	}
}

// Restart starts the server again on the same port and directory, so an
// append-only file is replayed, and waits until it answers PING. A running
// server is stopped first.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	var err error
	// The old socket may linger for a moment; retry briefly.
	for range 5 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart: %v", err)
}

// start runs redis-server once and waits for PING.
func (s *Server) start() error {
	args := append([]string{"--port", strconv.Itoa(s.port)}, s.args...)
	cmd := exec.Command(s.bin, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = s.dir
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := waitReady(s.Addr(), p); err != nil {
		p.signalGroup(killSignal)
		<-p.done
		return fmt.Errorf("%s on port %d: %w\n%s", s.bin, s.port, err, out.String())
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// waitReady polls PING until it answers, the process exits, or startTimeout.
// It speaks the protocol over a plain socket: quieter and quicker than a
// client with its own dial retries.
func waitReady(addr string, p *process) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if ping(addr) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before answering PING: %v", p.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("no answer to PING within " + startTimeout.String())
		}
	}
}

// ping sends one inline PING and reports whether +PONG came back.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// freePort asks the kernel for a free TCP port on the loopback interface.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects the server's output; the exec package writes to it
// from its own goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
