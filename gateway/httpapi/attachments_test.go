package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/casesim"
	"github.com/kommun/servicegateway/gateway/clamav"
	"github.com/kommun/servicegateway/gateway/clamav/clamdtest"
	"github.com/kommun/servicegateway/gateway/delivery"
	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

// attachmentEnv is the gateway's download route on a real listener over a
// real Redis store, and the reference case system behind the http
// connector.
type attachmentEnv struct {
	store *redisstore.Store
	links *gateway.AttachmentLinks
	base  string
	cases *casesim.Server
	conn  gateway.Connector
}

func newAttachmentEnv(t *testing.T) *attachmentEnv {
	t.Helper()
	deps, store, _ := baseDeps(t)
	ln, links := listenWithLinks(t)
	base := links.BaseURL
	deps.Attachments, deps.AttachmentLinks = store, links
	app := build(t, deps)
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })

	cs, err := casesim.New(casesim.Config{Secret: []byte("casesim-secret"), FetchTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(cs)
	t.Cleanup(hs.Close)
	mod := &httpjson.Settings{URL: "${U}/cases", Secret: "${S}", FollowUpURL: "${U}/cases/{case_reference}/followups"}
	conn, err := mod.Provision(func(k string) string { return map[string]string{"U": hs.URL, "S": "casesim-secret"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	return &attachmentEnv{store: store, links: links, base: base, cases: cs, conn: conn}
}

// listenWithLinks opens a listener for the gateway and the link signer for its
// address.
func listenWithLinks(t testing.TB) (net.Listener, *gateway.AttachmentLinks) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, &gateway.AttachmentLinks{BaseURL: "http://" + ln.Addr().String(), Secret: []byte("attachment-link-test-secret-0123456789"), TTL: time.Hour}
}

// upload stores the bytes of a file on disk as an attachment.
func (e *attachmentEnv) upload(t *testing.T, name string, b []byte) gateway.Attachment {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := e.store.PutAttachment(context.Background(), gateway.Attachment{Field: "certificate", Name: name, Type: "application/pdf"}, f, 10<<20, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func gone(t *testing.T, s *redisstore.Store, id string) bool {
	t.Helper()
	_, _, err := s.Attachment(context.Background(), id)
	if err != nil && !errors.Is(err, gateway.ErrAttachmentNotFound) {
		t.Fatal(err)
	}
	return err != nil
}

func pdfBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*131 + i>>9)
	}
	return append([]byte("%PDF-1.7\n"), b...)
}

// A submission with an attachment is delivered through the http
// connector: the case system fetches the file through its signed link,
// the bytes arrive intact, and the gateway deletes them after delivery.
func TestAttachmentHandOffThroughSignedLink(t *testing.T) {
	e := newAttachmentEnv(t)
	ctx := context.Background()
	pdf := pdfBytes(700_000) // several store chunks
	a := e.upload(t, "läkarintyg.pdf", pdf)
	sum := sha256.Sum256(pdf)
	if a.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("stored digest %s", a.SHA256)
	}
	id := gateway.NewID()
	if err := e.store.ClaimAttachments(ctx, id, []string{a.ID}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	sub, _, err := e.store.Create(ctx, &gateway.Submission{ID: id, Service: "parking-permit", ServiceVersion: "1", Department: "streets",
		Channel: gateway.ChannelDigital, Locale: "sv", Payload: map[string]any{"x": "y"}, Attachments: []gateway.Attachment{a}}, redisstore.Idempotency{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	d := delivery.New(e.store, func(string) (delivery.Route, bool) { return delivery.Route{Connector: e.conn}, true }, delivery.Config{
		Workers: 1, PollInterval: 20 * time.Millisecond, ReadBlock: 100 * time.Millisecond, Logger: quiet,
		Attachments: e.store, Links: e.links,
	})
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() { stop(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := e.store.Get(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == gateway.StatusDelivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %+v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cases := e.cases.Cases()
	if len(cases) != 1 || len(cases[0].Attachments) != 1 {
		t.Fatalf("cases %+v", cases)
	}
	if got := cases[0].Attachments[0]; got.SHA256 != a.SHA256 || got.Size != int64(len(pdf)) || got.Name != "läkarintyg.pdf" {
		t.Fatalf("case system has %+v, want sha256 %s size %d", got, a.SHA256, len(pdf))
	}
	// Fetched before the delivery was recorded: deleted with it.
	if !gone(t, e.store, a.ID) {
		t.Fatal("the attachment's bytes are still stored after delivery and fetch")
	}
}

// After delivery an attachment the back-end has not fetched yet stays
// fetchable through its link, at most the link lifetime, and goes at the
// first complete fetch. Bad and expired links are refused.
func TestAttachmentLinkAfterDeliveryAndRefusals(t *testing.T) {
	e := newAttachmentEnv(t)
	ctx := context.Background()
	pdf := pdfBytes(300_000)
	a := e.upload(t, "intyg.pdf", pdf)
	if err := e.store.ClaimAttachments(ctx, gateway.NewID(), []string{a.ID}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	link, _ := e.links.Link(a)

	// Refusals: another file's signature, a changed expiry, an expired link.
	status := func(u string) (int, string) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type") + " " + string(b)
	}
	other, _ := e.links.Link(gateway.Attachment{ID: gateway.NewID()})
	forged := e.base + gateway.AttachmentPathPrefix + a.ID + "?" + strings.SplitN(other, "?", 2)[1]
	if st, body := status(forged); st != http.StatusForbidden || !strings.Contains(body, "application/problem+json") {
		t.Errorf("another file's signature: %d %s", st, body)
	}
	stretched := strings.Replace(link, "exp=", "exp=9", 1)
	if st, _ := status(stretched); st != http.StatusForbidden {
		t.Errorf("changed expiry: %d", st)
	}
	old := &gateway.AttachmentLinks{BaseURL: e.base, Secret: e.links.Secret, TTL: time.Hour, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}
	expired, _ := old.Link(a)
	if st, body := status(expired); st != http.StatusForbidden || !strings.Contains(body, "link_expired") {
		t.Errorf("expired link: %d %s", st, body)
	}

	// A fetch before delivery does not delete: the back-end may fail and
	// the retry fetches again.
	if st, _ := status(link); st != http.StatusOK {
		t.Fatalf("fetch before delivery: %d", st)
	}
	if gone(t, e.store, a.ID) {
		t.Fatal("bytes deleted by a fetch before delivery")
	}

	// Delivered without a fetch mark of its own (a second file): kept for
	// at most the link lifetime, deleted at the first complete fetch.
	b := e.upload(t, "bilaga.pdf", pdf)
	if err := e.store.AttachmentsDelivered(ctx, []string{b.ID}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if gone(t, e.store, b.ID) {
		t.Fatal("an unfetched attachment was deleted at delivery: the back-end could not fetch it")
	}
	blink, _ := e.links.Link(b)
	resp, err := http.Get(blink)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(got)
	if resp.StatusCode != 200 || hex.EncodeToString(sum[:]) != b.SHA256 || resp.Header.Get("X-Content-SHA256") != b.SHA256 {
		t.Fatalf("fetch after delivery: %d, %d bytes", resp.StatusCode, len(got))
	}
	deadline := time.Now().Add(10 * time.Second)
	for !gone(t, e.store, b.ID) {
		if time.Now().After(deadline) {
			t.Fatal("bytes still stored after delivery and a complete fetch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, body := status(blink); st != http.StatusNotFound || !strings.Contains(body, "problem+json") {
		t.Errorf("fetch of a deleted file: %d %s", st, body)
	}
	// The first file was fetched before; its release deletes it at once.
	if err := e.store.AttachmentsDelivered(ctx, []string{a.ID}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if !gone(t, e.store, a.ID) {
		t.Fatal("a fetched attachment survived its delivery")
	}
}

// waitUntil polls cond with a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Completion with a file: the resident's answer carries an attachment, the
// follow-up reaches the case once with the file's bytes intact (fetched
// through its signed link), and the bytes go after delivery.
func TestAnswerWithAttachmentReachesTheCaseOnce(t *testing.T) {
	e := newAttachmentEnv(t)
	ctx, stop := context.WithCancel(context.Background())
	routes := func(string) (delivery.Route, bool) { return delivery.Route{Connector: e.conn}, true }
	disp := delivery.New(e.store, routes, delivery.Config{Workers: 1, PollInterval: 20 * time.Millisecond,
		ReadBlock: 100 * time.Millisecond, Logger: quiet, Attachments: e.store, Links: e.links})
	fups := &delivery.FollowUps{Queue: e.store, Routes: routes, Consumer: "t", ClaimIdle: time.Second, Timeout: 10 * time.Second,
		Logger: quiet, Attachments: e.store, Links: e.links}
	done := make(chan struct{}, 2)
	go func() { _ = disp.Run(ctx); done <- struct{}{} }()
	go func() { _ = fups.Run(ctx); done <- struct{}{} }()
	defer func() { stop(); <-done; <-done }()

	sub, _, err := e.store.Create(ctx, &gateway.Submission{Service: "parking-permit", ServiceVersion: "1", Department: "streets",
		Channel: gateway.ChannelDigital, Locale: "sv", Payload: map[string]any{"x": "y"}}, redisstore.Idempotency{})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "delivery", func() bool { got, _ := e.store.Get(ctx, sub.ID); return got.Status == gateway.StatusDelivered })
	if _, err := e.store.UpdateStatus(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusNeedsInfo, At: time.Now(),
		Message: "Skicka in läkarintyget."}, ""); err != nil {
		t.Fatal(err)
	}
	in, err := intake.New(intake.Deps{Store: e.store, Locker: e.store, Desk: e.store, Answers: e.store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	pdf := pdfBytes(400_000)
	a := e.upload(t, "läkarintyg.pdf", pdf)
	// A file of a type the answer does not take is refused by the intake.
	bad := a
	bad.Type = "application/zip"
	if _, err := in.Answer(ctx, intake.AnswerRequest{SubmissionID: sub.ID, Text: "Här är intyget.", Attachments: []gateway.Attachment{bad}}); err == nil {
		t.Fatal("an answer with a zip file was accepted")
	}
	req := intake.AnswerRequest{SubmissionID: sub.ID, Text: "Här är intyget.", Token: "form-token-1", Attachments: []gateway.Attachment{a}}
	if _, err := in.Answer(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Answer(ctx, req); err != nil { // the form sent twice
		t.Fatal(err)
	}
	var c casesim.Case
	waitUntil(t, "the follow-up in the case system", func() bool {
		cs := e.cases.Cases()
		if len(cs) == 1 && len(cs[0].FollowUps) > 0 {
			c = cs[0]
			return true
		}
		return false
	})
	if len(c.FollowUps) != 1 || c.FollowUps[0].Deliveries != 1 || len(c.FollowUps[0].Attachments) != 1 {
		t.Fatalf("follow-ups %+v, want one, delivered once, with one file", c.FollowUps)
	}
	if got := c.FollowUps[0].Attachments[0]; got.SHA256 != a.SHA256 || got.Size != int64(len(pdf)) {
		t.Fatalf("case system has %+v, want sha256 %s", got, a.SHA256)
	}
	waitUntil(t, "the answer's file deleted after delivery", func() bool { return gone(t, e.store, a.ID) })
}

// The API's answer takes files as multipart/form-data (answer_files): the
// files go through the answer's upload rules, are claimed and recorded with
// the answer; a file of another type is refused and nothing is recorded.
// Every exchange is checked against the OpenAPI document.
func TestAPIAnswerWithFiles(t *testing.T) {
	deps, store, rs := baseDeps(t)
	clamd := clamdtest.Start(t)
	in, err := intake.New(intake.Deps{Store: store, Locker: store, Desk: store, Answers: store, Attachments: store, Logger: quiet,
		Scanner: clamav.New(clamd.Addr()), Config: intake.Config{ScanUnavailable: intake.ScanHold}})
	if err != nil {
		t.Fatal(err)
	}
	deps.Intake = in
	e := &env{app: build(t, deps), store: store}
	ctx := context.Background()
	sub, _, err := store.Create(ctx, &gateway.Submission{Service: "street-fault", ServiceVersion: "1", Department: "streets",
		Channel: gateway.ChannelDigital, Locale: "sv", Payload: map[string]any{"x": "y"}}, redisstore.Idempotency{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateStatus(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusNeedsInfo, At: time.Now(), Message: "Bild?"}, ""); err != nil {
		t.Fatal(err)
	}
	post := func(name string, file []byte) resp {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("answer", "Här är en bild.")
		fw, _ := mw.CreateFormFile(intake.AnswerFileField, name)
		_, _ = fw.Write(file)
		_ = mw.Close()
		req := httptest.NewRequest("POST", "/api/v1/submissions/"+sub.ID+"/answer", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		return e.do(t, req)
	}
	zip := []byte("PK\x03\x04 not a picture")
	if r := post("bild.png", zip); r.status != 422 || !strings.Contains(r.body, intake.AnswerFileField) {
		t.Fatalf("a zip as an answer file: %d %s", r.status, r.body)
	}
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7}, 5000)...)
	// The scanner is down and forms would hold the file: an answer has no
	// later submit to check it at, so it is refused and nothing is kept.
	clamd.Down.Store(true)
	if r := post("bild.png", png); r.status != 422 || !strings.Contains(r.body, intake.AnswerFileField) {
		t.Fatalf("an unscanned answer file: %d %s", r.status, r.body)
	}
	if keys, _ := rs.Client(t).Keys(ctx, "*{f:*").Result(); len(keys) != 0 {
		t.Fatalf("an unscanned answer file left %d keys", len(keys))
	}
	clamd.Down.Store(false)
	if r := post("bild.png", png); r.status != 202 {
		t.Fatalf("answer with a PNG: %d %s", r.status, r.body)
	}
	conv, err := store.Conversation(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(png)
	if len(conv) != 1 || len(conv[0].Attachments) != 1 || conv[0].Attachments[0].SHA256 != hex.EncodeToString(sum[:]) ||
		conv[0].Attachments[0].Type != "image/png" {
		t.Fatalf("conversation %+v", conv)
	}
	if _, owner, err := store.Attachment(ctx, conv[0].Attachments[0].ID); err != nil || owner != sub.ID {
		t.Fatalf("the answer's file is not claimed for the submission: %q %v", owner, err)
	}
}
