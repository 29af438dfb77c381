package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/services/connectors/email"
	"github.com/kommun/servicegateway/services/connectors/email/mailpittest"
)

// E-mail routes under faults, with real processes: the gateway binary,
// redis-server with AOF always, mailpit as the department's mail server
// (STARTTLS with a throw-away certificate, AUTH required), and a TCP proxy
// between them that can hold connections.

// tcpProxy forwards TCP connections to target. While hold is set it
// accepts connections and forwards nothing, so an SMTP client waits for a
// greeting that does not come: its delivery is in flight.
type tcpProxy struct {
	ln       net.Listener
	target   string
	hold     atomic.Bool
	held     atomic.Int32 // connections accepted while holding
	passed   atomic.Int32 // connections forwarded
	mu       sync.Mutex
	conns    []net.Conn
	stopOnce sync.Once
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target}
	t.Cleanup(p.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.track(c)
			if p.hold.Load() {
				p.held.Add(1)
				continue // never answered; closed with the proxy or by the client
			}
			p.passed.Add(1)
			go p.forward(c)
		}
	}()
	return p
}

func (p *tcpProxy) port() string { return fmt.Sprint(p.ln.Addr().(*net.TCPAddr).Port) }

func (p *tcpProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *tcpProxy) forward(c net.Conn) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	p.track(up)
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
}

func (p *tcpProxy) close() {
	p.stopOnce.Do(func() {
		p.ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
}

// emailStack runs redis-server and mailpit, and returns the gateway
// environment for sending the example service feedback to mailpit through
// smtpPort (mailpit's own, or a proxy's).
func emailStack(t *testing.T, o mailpittest.Options) (*redistest.Server, *mailpittest.Server, map[string]string) {
	t.Helper()
	rs := redistest.Start(t, redistest.WithAOF("always"))
	dir := t.TempDir()
	cert, key := mailpittest.SelfSigned(t, dir)
	auth := filepath.Join(dir, "auth")
	if err := os.WriteFile(auth, []byte("gateway:smtp-lösen\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.CertFile, o.KeyFile, o.RequireSTARTTLS, o.AuthFile = cert, key, true, auth
	mp := mailpittest.Start(t, o)
	env := deliveryEnv(rs.URL(), "")
	for k, v := range map[string]string{
		"SMTP_HOST": "127.0.0.1", "SMTP_PORT": mp.SMTPPort(), "SMTP_CA_FILE": cert,
		"SMTP_USERNAME": "gateway", "SMTP_PASSWORD": "smtp-lösen",
		"MAIL_FROM": "e-tjanster@kommun.example", "CITY_OFFICE_MAILBOX": "registrator@kommun.example",
	} {
		env[k] = v
	}
	return rs, mp, env
}

func feedbackN(i int) string {
	return fmt.Sprintf(`{"topic":"suggestion","message":"Förslag nummer %d: fler bänkar vid ån","wants_reply":false}`, i)
}

// exactlyOneMailEach fails unless mailpit holds exactly one message per
// submission, identified by the Message-ID derived from its id.
func exactlyOneMailEach(t *testing.T, gw string, mp *mailpittest.Server, ids []string) {
	t.Helper()
	byMsgID := map[string]int{}
	msgs := mp.Messages(t)
	for _, m := range msgs {
		byMsgID[m.MessageID]++
	}
	for _, id := range ids {
		s := submission(t, gw, id)
		want := email.MessageID(id, s.Reference, "kommun.example")
		if n := byMsgID[want]; n != 1 {
			t.Errorf("submission %s: %d messages with Message-ID %s, want 1", s.Reference, n, want)
		}
		if s.CaseReference != s.Reference {
			t.Errorf("case reference %q, want the receipt reference %q", s.CaseReference, s.Reference)
		}
	}
	if len(msgs) != len(ids) {
		t.Errorf("mailpit holds %d messages for %d submissions", len(msgs), len(ids))
	}
}

// A gateway is SIGKILLed while its deliveries are in flight to the mail
// server; a restarted gateway takes them over, and the mail server receives
// exactly one message per submission.
func TestEmailKillWhileDeliveringThenRestart(t *testing.T) {
	_, mp, env := emailStack(t, mailpittest.Options{})
	px := newTCPProxy(t, mp.SMTPAddr())
	px.hold.Store(true)
	env["SMTP_PORT"] = px.port()
	a := gatewayProc(t, env)
	var ids []string
	for i := range 12 {
		ids = append(ids, mustSubmit(t, a.URL, "feedback", feedbackN(i)))
	}
	eventually(t, 30*time.Second, "deliveries in flight", func() bool { return px.held.Load() >= 4 })
	a.Kill()
	if n := len(mp.Messages(t)); n != 0 {
		t.Fatalf("%d messages arrived while the proxy held every connection", n)
	}
	px.hold.Store(false)
	b := gatewayProc(t, env)
	waitDelivered(t, 90*time.Second, "the restarted gateway delivers", b.URL, ids...)
	exactlyOneMailEach(t, b.URL, mp, ids)
	noPayloadInLogs(t, b, "fler bänkar")
}

// The mail server is down (connections refused), then up: the attempts
// meanwhile fail as temporary, and afterwards each submission arrives once.
func TestEmailServerRefusedThenAccepted(t *testing.T) {
	_, mp, env := emailStack(t, mailpittest.Options{})
	mp.Stop()
	gw := gatewayProc(t, env)
	var ids []string
	for i := range 12 {
		ids = append(ids, mustSubmit(t, gw.URL, "feedback", feedbackN(i)))
	}
	eventually(t, 30*time.Second, "refused attempts", func() bool {
		return metric(t, gw.URL, `gateway_delivery_retries_total{reason="temporary"}`) >= 5
	})
	mp.Start()
	waitDelivered(t, 90*time.Second, "delivery after the mail server came up", gw.URL, ids...)
	exactlyOneMailEach(t, gw.URL, mp, ids)
}

// The window SMTP cannot close: the server accepted the message (250) and
// the gateway died before recording it. The restarted gateway sends the
// same message again, with the same Message-ID, and a mailbox that
// deduplicates on Message-ID (here mailpit --ignore-duplicate-ids) keeps
// one.
func TestEmailKillAfterServerAcceptedDuplicateHasSameMessageID(t *testing.T) {
	_, mp, env := emailStack(t, mailpittest.Options{IgnoreDuplicateIDs: true})
	px := newTCPProxy(t, mp.SMTPAddr())
	px.hold.Store(true) // until the receipt is in hand
	env["SMTP_PORT"] = px.port()
	env["GATEWAY_FAULT"] = "exit-after-deliver"
	env["GATEWAY_WORKERS"] = "1"
	a := gatewayProc(t, env)
	id := mustSubmit(t, a.URL, "feedback", feedbackN(1))
	px.hold.Store(false)
	// Connections held so far are closed: the attempt fails and is retried.
	px.mu.Lock()
	for _, c := range px.conns {
		c.Close()
	}
	px.mu.Unlock()
	select {
	case <-a.Done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the faulty gateway did not kill itself:\n%s", a.Out)
	}
	if n := len(mp.Messages(t)); n != 1 {
		t.Fatalf("before the restart: %d messages, want 1", n)
	}
	delete(env, "GATEWAY_FAULT")
	b := gatewayProc(t, env)
	waitDelivered(t, 90*time.Second, "the restarted gateway delivers", b.URL, id)
	if got := px.passed.Load(); got < 2 {
		t.Fatalf("%d SMTP sessions reached the server; want the message sent twice", got)
	}
	exactlyOneMailEach(t, b.URL, mp, []string{id})
}

// The demo without SMTP_HOST: the example e-mail service delivers to the
// in-process mail catcher, which logs the reference and never the text.
func TestEmailDemoMailCatcher(t *testing.T) {
	rs := redistest.Start(t)
	env := gatewayEnv(rs.URL(), "")
	env["GATEWAY_LOG_LEVEL"] = "info"
	gw := gatewayProc(t, env)
	id := mustSubmit(t, gw.URL, "feedback", feedbackN(7))
	waitDelivered(t, 30*time.Second, "delivery to the mail catcher", gw.URL, id)
	s := submission(t, gw.URL, id)
	msgID := email.MessageID(id, s.Reference, "kommun.example")
	eventually(t, 10*time.Second, "the catcher's log line", func() bool {
		return strings.Contains(gw.Out.String(), `"msg":"mail catcher received a message","component":"mail-catcher","reference":"`+s.Reference+`","service":"feedback","message_id":"<`+msgID+`>"`)
	})
	noPayloadInLogs(t, gw, "fler bänkar")
}

// The catcher takes mail only after STARTTLS, and refuses a message over
// its size limit without keeping it.
func TestMailCatcherRequiresSTARTTLSAndBoundsMessages(t *testing.T) {
	m, err := startMailCatcher(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.stop()
	c, err := smtp.Dial(m.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@kommun.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@kommun.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Data(); err == nil || !strings.Contains(err.Error(), "530") {
		t.Fatalf("DATA without STARTTLS: want 530, got %v", err)
	}
	pem, err := os.ReadFile(m.caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1", RootCAs: pool}); err != nil {
		t.Fatal(err)
	}
	send := func(size int) error {
		if err := c.Mail("a@kommun.example"); err != nil {
			return err
		}
		if err := c.Rcpt("b@kommun.example"); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		line := strings.Repeat("x", 998) + "\r\n"
		fmt.Fprint(w, "Subject: test\r\n\r\n.leading dot\r\n")
		for n := 0; n < size; n += len(line) {
			io.WriteString(w, line)
		}
		return w.Close()
	}
	if err := send(1000); err != nil {
		t.Fatalf("a small message: %v", err)
	}
	if err := send(catcherMaxMessage + 1); err == nil || !strings.Contains(err.Error(), "552") {
		t.Fatalf("a message over the limit: want 552, got %v", err)
	}
	if err := send(1000); err != nil {
		t.Fatalf("the session goes on after a refused message: %v", err)
	}
}

// A refused recipient (a 5xx) is permanent: a dead letter after one
// attempt. After the mailbox setting is fixed, an administrator's replay
// delivers it once.
func TestEmailRefusedRecipientDeadLetterThenReplay(t *testing.T) {
	rs, mp, env := emailStack(t, mailpittest.Options{AllowedRecipients: `^registrator@kommun\.example$`})
	env["CITY_OFFICE_MAILBOX"] = "registartor@kommun.example" // a typo in the setting
	a := gatewayProc(t, env)
	id := mustSubmit(t, a.URL, "feedback", feedbackN(3))
	store := storeOf(t, rs)
	eventually(t, 30*time.Second, "dead letter", func() bool {
		_, dead, err := store.DeadLetterInfo(bg(t), id)
		return err == nil && dead
	})
	if dl, _, _ := store.DeadLetterInfo(bg(t), id); dl.Attempts != 1 || dl.Reason != "permanent" {
		t.Fatalf("dead letter %+v, want one attempt, reason permanent", dl)
	}
	if n := len(mp.Messages(t)); n != 0 {
		t.Fatalf("%d messages for a refused recipient", n)
	}
	a.Stop()
	env["CITY_OFFICE_MAILBOX"] = "registrator@kommun.example"
	b := gatewayProc(t, env)
	if code := adminReplay(t, b.URL, "admin", "/admin/dead-letters", id); code != 202 {
		t.Fatalf("the administrator's replay answered %d, want 202", code)
	}
	waitDelivered(t, 30*time.Second, "delivery after the replay", b.URL, id)
	exactlyOneMailEach(t, b.URL, mp, []string{id})
}

// Status flows back from a department that works from its mailbox through
// the department client API: the client finds the submission by the
// reference in the e-mail and posts a status update.
func TestEmailStatusFromDepartmentClient(t *testing.T) {
	_, mp, env := emailStack(t, mailpittest.Options{})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	file := filepath.Join(t.TempDir(), "clients.json")
	b, _ := json.Marshal(map[string]any{"clients": []map[string]string{{"id": "registrator", "department": "city-office",
		"algorithm": "ES256", "public_key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}}})
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	env["GATEWAY_CLIENTS_FILE"] = file
	gw := gatewayProc(t, env)
	id := mustSubmit(t, gw.URL, "feedback", feedbackN(5))
	waitDelivered(t, 30*time.Second, "delivery to the mailbox", gw.URL, id)

	// What staff have: the reference in the e-mail's header.
	msgs := mp.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	raw := mp.Raw(t, msgs[0].ID)
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	ref := msg.Header.Get("X-Gateway-Reference")

	call := func(method, path, body string) (int, []byte) {
		now := time.Now()
		tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "registrator", "sub": "registrator", "aud": gw.URL,
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": fmt.Sprint(now.UnixNano())}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(method, gw.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, out
	}
	code, body := call("GET", "/api/v1/department/submissions?service=feedback", "")
	var list struct {
		Submissions []struct{ ID, Reference string } `json:"submissions"`
	}
	if err := json.Unmarshal(body, &list); code != 200 || err != nil {
		t.Fatalf("department list: %d %s", code, body)
	}
	found := ""
	for _, s := range list.Submissions {
		if s.Reference == ref {
			found = s.ID
		}
	}
	if found != id {
		t.Fatalf("reference %q from the e-mail not found in the department's list %s", ref, body)
	}
	if code, body := call("POST", "/api/v1/submissions/"+found+"/status", `{"status":"in_progress","message":"Vi har tagit emot ditt förslag."}`); code != 200 {
		t.Fatalf("status update: %d %s", code, body)
	}
	if s := submission(t, gw.URL, id); s.Status != "in_progress" || s.CaseReference != ref {
		t.Fatalf("after the update: %+v", s)
	}
}
