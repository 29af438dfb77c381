package email_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"
	"github.com/kommun/servicegateway/services/connectors/email"
	"github.com/kommun/servicegateway/services/connectors/email/mailpittest"
)

// feedbackModule is the connector module of the example service
// city-office/feedback, loaded with the built-in catalog, so that the
// e-mail has the service's labels.
func feedbackModule(t *testing.T) services.ConnectorModule {
	t.Helper()
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	// Only the example's folder: the other built-in services use other
	// connector kinds, which this package does not import.
	sub, err := fs.Sub(services.Builtin, "city-office/feedback")
	if err != nil {
		t.Fatal(err)
	}
	loaded, _, err := services.LoadCatalog(sub, tr)
	if err != nil {
		t.Fatal(err)
	}
	mod := loaded.Modules["feedback"]
	if mod == nil {
		t.Fatal("the example service feedback is not in the built-in catalog")
	}
	return mod
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// secureMailpit runs mailpit with STARTTLS required (a throw-away
// certificate) and AUTH required, and returns it with the environment the
// example service needs to send there.
func secureMailpit(t *testing.T, extra mailpittest.Options) (*mailpittest.Server, map[string]string) {
	t.Helper()
	dir := t.TempDir()
	cert, key := mailpittest.SelfSigned(t, dir)
	auth := filepath.Join(dir, "auth")
	if err := os.WriteFile(auth, []byte("gateway:hemligt-lösen\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra.CertFile, extra.KeyFile, extra.RequireSTARTTLS, extra.AuthFile = cert, key, true, auth
	mp := mailpittest.Start(t, extra)
	return mp, map[string]string{
		"SMTP_HOST": "127.0.0.1", "SMTP_PORT": mp.SMTPPort(), "SMTP_CA_FILE": cert,
		"SMTP_USERNAME": "gateway", "SMTP_PASSWORD": "hemligt-lösen",
		"MAIL_FROM":           "Kommunens e-tjänster <e-tjanster@kommun.example>",
		"CITY_OFFICE_MAILBOX": "registrator@kommun.example",
	}
}

func provision(t *testing.T, vars map[string]string) gateway.Connector {
	t.Helper()
	c, err := feedbackModule(t).Provision(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func delivery(id, ref string) *gateway.Delivery {
	return &gateway.Delivery{
		SubmissionID: id, Reference: ref, Service: "feedback", ServiceVersion: "1.0.0",
		Department: "city-office", Channel: gateway.ChannelDigital, Locale: "sv",
		SubmittedAt: time.Date(2026, 12, 2, 8, 30, 0, 0, time.UTC), Attempt: 1,
		Payload: map[string]any{
			"topic":       "complaint",
			"message":     "Gångvägen vid Åby skola är inte plogad.\nBarnen halkar varje morgon – snälla åtgärda!",
			"wants_reply": true,
			"email":       "anna@example.se",
			"name":        "Anna <script>alert(1)</script>",
		},
	}
}

// permanent reports whether err is a permanent delivery error.
func permanent(err error) bool {
	var de *gateway.DeliveryError
	return errors.As(err, &de) && de.Permanent
}

func TestDeliverThroughMailpitWithSTARTTLSAndAuth(t *testing.T) {
	mp, vars := secureMailpit(t, mailpittest.Options{})
	conn := provision(t, vars)
	d := delivery("sub-0123456789abcdef", "ABC-234")
	ref, err := conn.Deliver(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if ref != "ABC-234" {
		t.Errorf("case reference %q, want the receipt reference", ref)
	}
	msgs := mp.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("mailpit received %d messages, want 1", len(msgs))
	}
	raw := mp.Raw(t, msgs[0].ID)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not an RFC 5322 message: %v\n%s", err, raw)
	}
	h := msg.Header
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != "Nytt ärende: Lämna synpunkter eller klagomål (ABC-234)" {
		t.Errorf("Subject = %q (%v), raw %q", subject, err, h.Get("Subject"))
	}
	if !strings.Contains(h.Get("Subject"), "=?utf-8?q?") {
		t.Errorf("Subject is not RFC 2047 encoded: %q", h.Get("Subject"))
	}
	from, _ := h.AddressList("From")
	to, _ := h.AddressList("To")
	if len(from) != 1 || from[0].Address != "e-tjanster@kommun.example" || from[0].Name != "Kommunens e-tjänster" ||
		len(to) != 1 || to[0].Address != "registrator@kommun.example" {
		t.Errorf("From %v, To %v", from, to)
	}
	wantID := email.MessageID(d.SubmissionID, d.Reference, "kommun.example")
	if h.Get("Message-ID") != "<"+wantID+">" || msgs[0].MessageID != wantID {
		t.Errorf("Message-ID %q (mailpit: %q), want <%s>", h.Get("Message-ID"), msgs[0].MessageID, wantID)
	}
	if strings.Contains(string(raw), d.SubmissionID) {
		t.Error("the submission id (the status link's secret) is in the e-mail")
	}
	if date, err := h.Date(); err != nil || !date.Equal(d.SubmittedAt) {
		t.Errorf("Date %v (%v), want the received time", date, err)
	}
	for k, want := range map[string]string{"Auto-Submitted": "auto-generated", "X-Gateway-Reference": "ABC-234",
		"X-Gateway-Service": "feedback", "X-Gateway-Channel": "digital", "MIME-Version": "1.0",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q, want multipart/alternative", h.Get("Content-Type"))
	}
	parts := map[string]string{} // content type -> decoded body
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Errorf("part %q is not quoted-printable", p.Header.Get("Content-Type"))
		}
		b, err := io.ReadAll(quotedprintable.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		parts[p.Header.Get("Content-Type")] = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	text, html := parts["text/plain; charset=utf-8"], parts["text/html; charset=utf-8"]
	if len(parts) != 2 || text == "" || html == "" {
		t.Fatalf("want a plain text and an HTML part, got %v", parts)
	}
	for _, want := range []string{`<html lang="sv">`, "<th scope=\"row\"", "Vad gäller det?</dt>", ">Klagomål</dd>",
		"Anna &lt;script&gt;alert(1)&lt;/script&gt;</dd>", "Gångvägen vid Åby skola är inte plogad.\nBarnen halkar"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q:\n%s", want, html)
		}
	}
	if strings.Contains(html, "<script>") {
		t.Error("the resident's text is not escaped in the HTML")
	}
	for _, want := range []string{
		"Referens: ABC-234\n",
		"E-tjänst: Lämna synpunkter eller klagomål (feedback 1.0.0)\n",
		"Mottaget: 2026-12-02 09:30 CET\n",
		"Kanal: Digitalt på egen hand\n",
		"Vad gäller det?\n  Klagomål\n",
		"Dina synpunkter\n  Gångvägen vid Åby skola är inte plogad.\n  Barnen halkar varje morgon – snälla åtgärda!\n",
		"Jag vill ha svar\n  Ja\n",
		"E-postadress (frivilligt)\n  anna@example.se\n",
		"Namn (frivilligt)\n  Anna <script>alert(1)</script>\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}
	if strings.Index(text, "Vad gäller det?") > strings.Index(text, "Dina synpunkter") {
		t.Error("fields are not in the order of the form")
	}

	// A second attempt (the first one's answer was lost) sends the same
	// message: same Message-ID and body, so the mailbox can tell.
	d.Attempt = 2
	if _, err := conn.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	msgs = mp.Messages(t)
	if len(msgs) != 2 || msgs[0].MessageID != wantID {
		t.Fatalf("after a repeat: %+v", msgs)
	}
	if again := mp.Raw(t, msgs[0].ID); !bytes.Equal(bodyOf(again), bodyOf(raw)) {
		t.Errorf("a repeated send differs:\n%s\n---\n%s", raw, again)
	}
}

// bodyOf is the message after its header (the server adds Received lines).
func bodyOf(raw []byte) []byte {
	_, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	return body
}

func TestDeliverPermanentAndTemporaryErrorsFromMailpit(t *testing.T) {
	mp, vars := secureMailpit(t, mailpittest.Options{AllowedRecipients: `@kommun\.example$`})

	t.Run("wrong password is a 5xx: permanent", func(t *testing.T) {
		v := copyVars(vars)
		v["SMTP_PASSWORD"] = "fel"
		_, err := provision(t, v).Deliver(context.Background(), delivery("sub-a", "AAA-111"))
		if err == nil || !permanent(err) || !strings.Contains(err.Error(), "AUTH") {
			t.Fatalf("want a permanent AUTH error, got %v", err)
		}
	})
	t.Run("refused recipient is a 5xx: permanent", func(t *testing.T) {
		v := copyVars(vars)
		v["CITY_OFFICE_MAILBOX"] = "someone@elsewhere.example"
		_, err := provision(t, v).Deliver(context.Background(), delivery("sub-b", "BBB-111"))
		if err == nil || !permanent(err) || !strings.Contains(err.Error(), "RCPT TO") {
			t.Fatalf("want a permanent RCPT TO error, got %v", err)
		}
	})
	t.Run("untrusted certificate: temporary", func(t *testing.T) {
		v := copyVars(vars)
		v["SMTP_CA_FILE"] = ""
		_, err := provision(t, v).Deliver(context.Background(), delivery("sub-c", "CCC-111"))
		if err == nil || permanent(err) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("want a temporary certificate error, got %v", err)
		}
	})
	t.Run("no STARTTLS with tls=none: the server refuses, nothing sent in clear", func(t *testing.T) {
		dir := t.TempDir()
		manifest := strings.Replace(feedbackManifest(t), `tls = "starttls"`, `tls = "none"`, 1)
		manifest = strings.Replace(manifest, `ca_file = "${SMTP_CA_FILE}"`, "", 1)
		mod := moduleFrom(t, dir, manifest)
		v := copyVars(vars)
		v["SMTP_USERNAME"] = "" // no AUTH without TLS
		c, err := mod.Provision(env(v))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Deliver(context.Background(), delivery("sub-d", "DDD-111"))
		if err == nil || !permanent(err) {
			t.Fatalf("mailpit requires STARTTLS: want its 5xx as a permanent error, got %v", err)
		}
	})
	if n := len(mp.Messages(t)); n != 0 {
		t.Fatalf("mailpit received %d messages from failed deliveries", n)
	}
}

// A server that is down, then up: the attempts while it is down are
// temporary errors, and once it is up exactly one message arrives.
func TestDeliverServerDownThenUp(t *testing.T) {
	mp, vars := secureMailpit(t, mailpittest.Options{})
	conn := provision(t, vars)
	mp.Stop()
	d := delivery("sub-down-up", "EEE-111")
	for range 3 {
		_, err := conn.Deliver(context.Background(), d)
		if err == nil || permanent(err) || !strings.Contains(err.Error(), "connect") {
			t.Fatalf("server down: want a temporary connect error, got %v", err)
		}
	}
	mp.Start()
	if _, err := conn.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if msgs := mp.Messages(t); len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
}

func TestProvisionRefusesInsecureModesInProduction(t *testing.T) {
	base := feedbackManifest(t)
	vars := map[string]string{"SMTP_HOST": "mail.kommun.example", "SMTP_PORT": "587", "MAIL_FROM": "a@kommun.example",
		"CITY_OFFICE_MAILBOX": "b@kommun.example", "GATEWAY_ENV": "production"}
	for name, m := range map[string]string{
		"tls none":    strings.Replace(strings.Replace(base, `tls = "starttls"`, `tls = "none"`, 1), `ca_file = "${SMTP_CA_FILE}"`, "", 1),
		"skip verify": strings.Replace(base, `tls = "starttls"`, `tls = "starttls"`+"\ntls_insecure_skip_verify = true", 1),
	} {
		t.Run(name, func(t *testing.T) {
			mod := moduleFrom(t, t.TempDir(), m)
			if _, err := mod.Provision(env(vars)); err == nil || !strings.Contains(err.Error(), "production") {
				t.Fatalf("production: want a refusal, got %v", err)
			}
			dev := copyVars(vars)
			delete(dev, "GATEWAY_ENV")
			if _, err := mod.Provision(env(dev)); err != nil {
				t.Fatalf("development: %v", err)
			}
		})
	}
	if _, err := moduleFrom(t, t.TempDir(), base).Provision(env(vars)); err != nil {
		t.Fatalf("the example manifest in production: %v", err)
	}
}

func TestSettingsValidate(t *testing.T) {
	base := feedbackManifest(t)
	for name, tc := range map[string]struct{ old, new, want string }{
		"literal password":    {`password = "${SMTP_PASSWORD}"`, `password = "hunter2"`, "reference to an environment variable"},
		"user without pass":   {`password = "${SMTP_PASSWORD}"`, ``, "username: given without password"},
		"bad tls":             {`tls = "starttls"`, `tls = "ssl"`, `tls: want "starttls" or "none"`},
		"bad timeout":         {`timeout = "30s"`, `timeout = "1h"`, "timeout:"},
		"bad language":        {`language = "sv"`, `language = "de"`, "language:"},
		"bad from":            {`from = "${MAIL_FROM}"`, `from = "not an address"`, "from:"},
		"too many to":         {`to = "${CITY_OFFICE_MAILBOX}"`, `to = "` + strings.Repeat("a@b.se,", 10) + `c@d.se"`, "at most 10"},
		"unknown setting":     {`timeout = "30s"`, `timeout = "30s"` + "\nretries = 3", `unknown key "route.settings.retries"`},
		"malformed ref":       {`host = "${SMTP_HOST}"`, `host = "${smtp_host}"`, "malformed"},
		"none with ca_file":   {`tls = "starttls"`, `tls = "none"`, "makes no sense"},
		"concurrency ceiling": {`language = "sv"`, `language = "sv"` + "\nmax_concurrency = 65", "max_concurrency"},
	} {
		t.Run(name, func(t *testing.T) {
			m := strings.Replace(base, tc.old, tc.new, 1)
			_, err := loadDir(t, t.TempDir(), m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
}

func copyVars(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// feedbackManifest is the example service's manifest.
func feedbackManifest(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../city-office/feedback/service.toml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loadDir loads a copy of the example service with another manifest.
func loadDir(t *testing.T, dir, manifest string) (*services.Loaded, error) {
	t.Helper()
	svcDir := filepath.Join(dir, "city-office", "feedback")
	if err := os.MkdirAll(svcDir, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../../city-office/feedback/messages.*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("the feedback service's translations: %v", err)
	}
	for _, src := range files {
		f := filepath.Base(src)
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(svcDir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(svcDir, "service.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	loaded, _, err := services.LoadCatalog(os.DirFS(dir), tr)
	return loaded, err
}

func moduleFrom(t *testing.T, dir, manifest string) services.ConnectorModule {
	t.Helper()
	loaded, err := loadDir(t, dir, manifest)
	if err != nil {
		t.Fatal(err)
	}
	return loaded.Modules["feedback"]
}
