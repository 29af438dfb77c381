package smtpmail

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// checkWireFormat fails on bare LF or CR, and on lines longer than RFC
// 5322's 998 characters; header lines must stay within 78.
func checkWireFormat(t *testing.T, raw []byte) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) ||
		bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\r")) {
		t.Fatalf("bare CR or LF in message:\n%q", raw)
	}
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line of %d characters", len(line))
		}
	}
	for _, line := range strings.Split(string(head), "\r\n") {
		if len(line) > 78 {
			t.Errorf("header line of %d characters: %q", len(line), line)
		}
	}
}

func TestMessageUTF8SubjectAndBody(t *testing.T) {
	subject := "Nytt ärende: Begär ut allmänna handlingar från kommunstyrelsens förvaltning och övriga nämnder (ÅÄÖ-123)"
	text := "Rad ett med åäö.\nEn mycket lång rad " + strings.Repeat("ölandsbro ", 30) + "\nSista = raden.\n"
	m := &Message{
		From: &mail.Address{Name: "Kommunens e-tjänster", Address: "e-tjanster@kommun.example"},
		To:   []*mail.Address{{Address: "registrator@kommun.example"}},
		// A CR LF in a value must not start a new header.
		Subject: subject + "\r\nBcc: evil@example.com",
		Date:    time.Date(2026, 12, 2, 4, 5, 6, 0, time.UTC), MessageID: "ABC-123.deadbeef@kommun.example",
		Headers: [][2]string{{"X-Gateway-Reference", "ABC-123"}},
		Text:    text,
	}
	raw := []byte(m.String())
	checkWireFormat(t, raw)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Bcc") != "" || bytes.Contains(raw, []byte("\r\nBcc:")) {
		t.Fatalf("header injection through the subject:\n%s", raw)
	}
	dec := new(mime.WordDecoder)
	got, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if want := subject + "  Bcc: evil@example.com"; got != want {
		t.Errorf("subject = %q, want %q", got, want)
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || from[0].Name != "Kommunens e-tjänster" {
		t.Errorf("From = %v, %v", from, err)
	}
	if got := msg.Header.Get("Message-ID"); got != "<ABC-123.deadbeef@kommun.example>" {
		t.Errorf("Message-ID = %q", got)
	}
	if d, err := msg.Header.Date(); err != nil || !d.Equal(m.Date) {
		t.Errorf("Date = %v, %v", d, err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "text/plain" || params["charset"] != "utf-8" || msg.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
		t.Fatalf("content type %q %v, encoding %q", mt, params, msg.Header.Get("Content-Transfer-Encoding"))
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ReplaceAll(string(body), "\r\n", "\n"); got != text+"\n" {
		t.Errorf("body = %q, want %q", got, text)
	}
}

func TestMessageAttachmentsMultipartMixed(t *testing.T) {
	pdf := bytes.Repeat([]byte{0, 1, 2, 0xff, '\n', '\r', '.'}, 5000)
	m := &Message{
		From: &mail.Address{Address: "a@kommun.example"}, To: []*mail.Address{{Address: "b@kommun.example"}},
		Subject: "Med bilaga", Date: time.Now(), MessageID: "x@kommun.example",
		Text:        "Se bilagan.",
		Attachments: []Attachment{{Filename: "ritning över gården.pdf", ContentType: "application/pdf", Data: pdf}, {Data: []byte("hej")}},
	}
	raw := []byte(m.String())
	checkWireFormat(t, raw)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q: %v", mt, err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var parts []*multipart.Part
	var datas [][]byte
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, p)
		datas = append(datas, b)
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts, want text and two attachments", len(parts))
	}
	if !strings.HasPrefix(parts[0].Header.Get("Content-Type"), "text/plain") {
		t.Errorf("first part %q", parts[0].Header.Get("Content-Type"))
	}
	if mt, params, _ := mime.ParseMediaType(parts[1].Header.Get("Content-Type")); parts[1].FileName() != "ritning över gården.pdf" || mt != "application/pdf" {
		t.Errorf("attachment name %q type %q", parts[1].FileName(), parts[1].Header.Get("Content-Type"))
	} else if legacy, err := new(mime.WordDecoder).DecodeHeader(params["name"]); err != nil || legacy != "ritning över gården.pdf" {
		// Mail programs that read only Content-Type's name (RFC 2047).
		t.Errorf("legacy name parameter %q decodes to %q (%v)", params["name"], legacy, err)
	}
	if mt, _, _ := mime.ParseMediaType(parts[2].Header.Get("Content-Type")); mt != "application/octet-stream" || parts[2].FileName() != "attachment" {
		t.Errorf("second attachment %q %q", parts[2].Header.Get("Content-Type"), parts[2].FileName())
	}
	decoded, err := io.ReadAll(base64Reader(datas[1]))
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(decoded) != sha256.Sum256(pdf) {
		t.Error("attachment changed on the way")
	}
}

func base64Reader(b []byte) io.Reader {
	return newBase64Decoder(bytes.NewReader(bytes.ReplaceAll(b, []byte("\r\n"), nil)))
}

func newBase64Decoder(r io.Reader) io.Reader { return base64.NewDecoder(base64.StdEncoding, r) }

// parts reads a multipart body into its parts' headers and decoded bodies.
func parts(t *testing.T, contentType string, body io.Reader) (mt string, hdrs []textproto.MIMEHeader, bodies [][]byte) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return mt, nil, nil
	}
	mr := multipart.NewReader(body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return mt, hdrs, bodies
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
			if b, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(b))); err != nil {
				t.Fatal(err)
			}
		}
		hdrs = append(hdrs, p.Header)
		bodies = append(bodies, b)
	}
}

func TestMessageHTMLAlternativeAndAttachments(t *testing.T) {
	m := &Message{
		From: &mail.Address{Address: "a@kommun.example"}, To: []*mail.Address{{Address: "b@kommun.example"}},
		Subject: "Hej", Date: time.Now(), MessageID: "x@kommun.example",
		Text: "Hej på dig.", HTML: "<p>Hej på dig.</p>",
	}
	if m.String() != m.String() {
		t.Fatal("two renderings of one message differ")
	}
	msg, err := mail.ReadMessage(strings.NewReader(m.String()))
	if err != nil {
		t.Fatal(err)
	}
	mt, hdrs, bodies := parts(t, msg.Header.Get("Content-Type"), msg.Body)
	if mt != "multipart/alternative" || len(hdrs) != 2 ||
		hdrs[0].Get("Content-Type") != "text/plain; charset=utf-8" || hdrs[1].Get("Content-Type") != "text/html; charset=utf-8" ||
		strings.TrimSpace(string(bodies[0])) != m.Text || strings.TrimSpace(string(bodies[1])) != m.HTML {
		t.Fatalf("%s %v %q", mt, hdrs, bodies)
	}

	m.Attachments = []Attachment{{Filename: "karta.png", ContentType: "image/png", Data: []byte("\x89PNG...")}}
	raw := m.String()
	checkWireFormat(t, []byte(raw))
	if raw != m.String() {
		t.Fatal("two renderings of one message with an attachment differ")
	}
	msg, err = mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, hdrs, bodies = parts(t, msg.Header.Get("Content-Type"), msg.Body)
	if pt, _, _ := mime.ParseMediaType(hdrs[1].Get("Content-Type")); mt != "multipart/mixed" || len(hdrs) != 2 || pt != "image/png" {
		t.Fatalf("%s %v", mt, hdrs)
	}
	inner, ih, _ := parts(t, hdrs[0].Get("Content-Type"), bytes.NewReader(bodies[0]))
	if inner != "multipart/alternative" || len(ih) != 2 {
		t.Fatalf("first part of the mixed message: %s with %d parts", inner, len(ih))
	}
}
