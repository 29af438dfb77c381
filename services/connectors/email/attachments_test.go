package email_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/services/connectors/email"
	"github.com/kommun/servicegateway/services/connectors/email/mailpittest"
)

// dirFiles serves attachments' bytes from files in a folder (by id).
type dirFiles string

func (d dirFiles) Open(_ context.Context, a gateway.Attachment) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(string(d), a.ID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, gateway.ErrAttachmentNotFound
	}
	return f, err
}
func (dirFiles) Link(gateway.Attachment) (string, time.Time) { return "", time.Time{} }

func writeAttachment(t *testing.T, dir, id, name, typ string, b []byte) gateway.Attachment {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, id), b, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return gateway.Attachment{ID: id, Field: "drawings", Name: name, Type: typ, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
}

func TestDeliverAttachmentsAsMIMEPartsThroughMailpit(t *testing.T) {
	mp, vars := secureMailpit(t, mailpittest.Options{})
	conn := provision(t, vars)
	dir := t.TempDir()
	pdf := make([]byte, 700_001) // not a multiple of 3: base64 padding
	for i := range pdf {
		pdf[i] = byte(i*31 + i/7)
	}
	copy(pdf, "%PDF-1.7\n")
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0, 255, 13, 10}, 1000)...)
	atts := []gateway.Attachment{
		writeAttachment(t, dir, "a1", "Ritning över gården – fasad.pdf", "application/pdf", pdf),
		writeAttachment(t, dir, "a2", "karta.png", "image/png", png),
	}
	d := delivery("sub-attach-0123456789", "ATT-234")
	d.Attachments, d.Files = atts, dirFiles(dir)
	if _, err := conn.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	msgs := mp.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("mailpit received %d messages, want exactly 1", len(msgs))
	}
	got := attachedParts(t, mp.Raw(t, msgs[0].ID))
	if len(got) != len(atts) {
		t.Fatalf("%d attachment parts, want %d", len(got), len(atts))
	}
	for i, a := range atts {
		if got[i].Name != a.Name || got[i].Type != a.Type || got[i].Size != a.Size || got[i].SHA256 != a.SHA256 {
			t.Errorf("attachment %d arrived as %+v, want %+v", i, got[i], a)
		}
	}
}

// attachedParts decodes the attachment parts of a raw message (every part
// of its multipart/mixed body after the text).
func attachedParts(t *testing.T, raw []byte) []gateway.Attachment {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q, want multipart/mixed", mt)
	}
	r := multipart.NewReader(msg.Body, params["boundary"])
	var got []gateway.Attachment
	for i := 0; ; i++ {
		p, err := r.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue // the text
		}
		if p.Header.Get("Content-Transfer-Encoding") != "base64" {
			t.Errorf("part %d encoding %q", i, p.Header.Get("Content-Transfer-Encoding"))
		}
		if cd := p.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") {
			t.Errorf("part %d disposition %q", i, cd)
		}
		b, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, strings.NewReader(strings.NewReplacer("\r", "", "\n", "").Replace(readAll(t, p)))))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		got = append(got, gateway.Attachment{Name: p.FileName(), Type: pt, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
	}
	return got
}

// An answer to a completion request with a file: one reply, the file as a
// part, bytes intact.
func TestFollowUpWithAttachmentThroughMailpit(t *testing.T) {
	mp, vars := secureMailpit(t, mailpittest.Options{})
	fc := provision(t, vars).(gateway.FollowUpConnector)
	dir := t.TempDir()
	plan := writeAttachment(t, dir, "p1", "situationsplan.pdf", "application/pdf", append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("plan "), 40_000)...))
	f := &gateway.FollowUp{SubmissionID: "sub-fu-0123456789", Reference: "FU-234", Service: "feedback", Seq: 1,
		Question: "Var?", Answer: "Se planen.", AnsweredAt: time.Now(), Attachments: []gateway.Attachment{plan}, Files: dirFiles(dir)}
	if err := fc.DeliverFollowUp(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	msgs := mp.Messages(t)
	if len(msgs) != 1 {
		t.Fatalf("mailpit received %d messages, want 1", len(msgs))
	}
	got := attachedParts(t, mp.Raw(t, msgs[0].ID))
	if len(got) != 1 || got[0].SHA256 != plan.SHA256 || got[0].Name != plan.Name || got[0].Size != plan.Size {
		t.Fatalf("attachments %+v, want %+v", got, plan)
	}
}

func readAll(t *testing.T, r io.Reader) string {
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAttachmentsOverTheMessageLimitArePermanentAndSendNothing(t *testing.T) {
	mp, vars := secureMailpit(t, mailpittest.Options{})
	mod := feedbackModule(t)
	mod.(*email.Settings).MaxMessageBytes = 64 << 10
	conn, err := mod.Provision(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	big := writeAttachment(t, dir, "big", "scan.pdf", "application/pdf", append([]byte("%PDF-1.7\n"), make([]byte, 60<<10)...))
	d := delivery("sub-big-0123456789", "BIG-234")
	d.Attachments, d.Files = []gateway.Attachment{big}, dirFiles(dir)
	_, err = conn.Deliver(context.Background(), d)
	if !permanent(err) || !errors.Is(err, email.ErrMessageTooLarge) {
		t.Fatalf("err = %v, want a permanent ErrMessageTooLarge (60 KiB grows over 64 KiB in base64)", err)
	}
	// A file whose bytes changed in the store is not sent either.
	small := writeAttachment(t, dir, "small", "a.pdf", "application/pdf", []byte("%PDF-1.7 small"))
	small.SHA256 = big.SHA256
	d.Attachments = []gateway.Attachment{small}
	if _, err = conn.Deliver(context.Background(), d); !permanent(err) {
		t.Fatalf("changed file: err = %v, want permanent", err)
	}
	if n := len(mp.Messages(t)); n != 0 {
		t.Fatalf("mailpit received %d messages, want none", n)
	}
}
