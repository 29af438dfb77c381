// Package mailpittest runs a real SMTP server, mailpit
// (github.com/axllent/mailpit), as a separate process for tests, and reads
// what it received through mailpit's HTTP API.
//
// The binary is $MAILPIT, or mailpit on the PATH, or in $(go env
// GOPATH)/bin (install it with `go install github.com/axllent/mailpit@v1.33.1`).
// Without it tests are skipped, and fail when CI=true.
package mailpittest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the mailpit release the project installs (.ci/run) and tests
// with.
const Version = "v1.33.1"

// Binary finds the mailpit executable, skipping the test when there is
// none (failing under CI=true).
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MAILPIT"); p != "" {
		return p
	}
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "mailpit")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	msg := "mailpittest: mailpit not found (go install github.com/axllent/mailpit@" + Version + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Options of a server.
type Options struct {
	// CertFile and KeyFile switch STARTTLS on (see SelfSigned).
	CertFile, KeyFile string
	// RequireSTARTTLS refuses mail sent without STARTTLS.
	RequireSTARTTLS bool
	// AuthFile is an htpasswd-style file ("user:password" lines); with
	// it, AUTH is required.
	AuthFile string
	// AllowedRecipients is a regular expression; other recipients get a
	// permanent 550 at RCPT TO.
	AllowedRecipients string
	// IgnoreDuplicateIDs keeps one message per Message-ID, as a mailbox
	// that deduplicates does.
	IgnoreDuplicateIDs bool
}

// Server is one mailpit, stopped when the test ends. Its ports and
// database stay the same across Stop and Start, so what it received
// survives a restart.
type Server struct {
	t          testing.TB
	bin, dir   string
	smtp, http int
	args       []string
	mu         sync.Mutex
	cmd        *exec.Cmd
	done       chan struct{}
	out        *bytes.Buffer
	outMu      sync.Mutex
}

// Start runs mailpit on free loopback ports and waits until it is ready.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir()}
	s.args = []string{"--database", filepath.Join(s.dir, "mailpit.db"), "--disable-version-check",
		"--smtp-disable-rdns", "--quiet"}
	if o.CertFile != "" {
		s.args = append(s.args, "--smtp-tls-cert", o.CertFile, "--smtp-tls-key", o.KeyFile)
	}
	if o.RequireSTARTTLS {
		s.args = append(s.args, "--smtp-require-starttls")
	}
	if o.AuthFile != "" {
		s.args = append(s.args, "--smtp-auth-file", o.AuthFile)
	}
	if o.AllowedRecipients != "" {
		s.args = append(s.args, "--smtp-allowed-recipients", o.AllowedRecipients)
	}
	if o.IgnoreDuplicateIDs {
		s.args = append(s.args, "--ignore-duplicate-ids")
	}
	t.Cleanup(s.Stop)
	var err error
	for range 5 {
		s.smtp, s.http = freePort(t), freePort(t)
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("mailpittest: %v", err)
	return nil
}

// SMTPAddr is host:port of the SMTP server.
func (s *Server) SMTPAddr() string { return "127.0.0.1:" + strconv.Itoa(s.smtp) }

// SMTPPort is the SMTP port.
func (s *Server) SMTPPort() string { return strconv.Itoa(s.smtp) }

// URL is the base URL of the web UI and API.
func (s *Server) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.http) }

// Start starts a stopped server again on the same ports and database.
func (s *Server) Start() {
	s.t.Helper()
	var err error
	for range 10 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("mailpittest: restart: %v", err)
}

func (s *Server) start() error {
	args := append([]string{"--smtp", s.SMTPAddr(), "--listen", "127.0.0.1:" + strconv.Itoa(s.http)}, s.args...)
	cmd := exec.Command(s.bin, args...)
	out := &bytes.Buffer{}
	w := &lockedWriter{mu: &s.outMu, b: out}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if s.ready() {
			break
		}
		select {
		case <-done:
			s.outMu.Lock()
			defer s.outMu.Unlock()
			return fmt.Errorf("mailpit exited: %s", out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return fmt.Errorf("mailpit not ready within 20s: %s", out)
		}
	}
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()
	return nil
}

// ready reports whether both the API and the SMTP port answer.
func (s *Server) ready() bool {
	c := http.Client{Timeout: time.Second}
	res, err := c.Get(s.URL() + "/readyz")
	if err != nil {
		return false
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		return false
	}
	conn, err := net.DialTimeout("tcp", s.SMTPAddr(), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// Stop kills the server (SMTP connections break as in a crash) and waits.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Summary is one received message as mailpit lists it.
type Summary struct {
	ID        string `json:"ID"`
	MessageID string `json:"MessageID"`
	Subject   string `json:"Subject"`
}

// Messages lists every message received, newest first.
func (s *Server) Messages(t testing.TB) []Summary {
	t.Helper()
	var out struct {
		Total    int       `json:"total"`
		Messages []Summary `json:"messages"`
	}
	s.get(t, "/api/v1/messages?limit=10000", &out)
	if out.Total != len(out.Messages) {
		t.Fatalf("mailpit lists %d of %d messages", len(out.Messages), out.Total)
	}
	return out.Messages
}

// Raw is the message exactly as received.
func (s *Server) Raw(t testing.TB, id string) []byte {
	t.Helper()
	var b []byte
	s.get(t, "/api/v1/message/"+id+"/raw", &b)
	return b
}

func (s *Server) get(t testing.TB, path string, v any) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(s.URL() + path)
	if err != nil {
		t.Fatalf("mailpit %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("mailpit %s: %d %v %s", path, res.StatusCode, err, body)
	}
	if b, ok := v.(*[]byte); ok {
		*b = body
		return
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("mailpit %s: %v", path, err)
	}
}

// SelfSigned writes a throw-away certificate for 127.0.0.1 and localhost,
// and its key, to dir; the certificate is its own CA (trust certFile).
func SelfSigned(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "mailpittest"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:        true, BasicConstraintsValid: true,
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "smtp-cert.pem"), filepath.Join(dir, "smtp-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
