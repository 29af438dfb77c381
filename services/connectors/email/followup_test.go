package email_test

import (
	"bytes"
	"context"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/services/connectors/email"
	"github.com/kommun/servicegateway/services/connectors/email/mailpittest"
)

// An answer to a completion request reaches the mailbox as a reply to the
// submission's e-mail, threaded by In-Reply-To and References.
func TestFollowUpIsAReplyToTheSubmissionsEmail(t *testing.T) {
	mp, vars := secureMailpit(t, mailpittest.Options{})
	conn := provision(t, vars)
	ctx := context.Background()
	if _, err := conn.Deliver(ctx, delivery("sub-0123456789abcdef", "ABC-234")); err != nil {
		t.Fatal(err)
	}
	fc, ok := conn.(gateway.FollowUpConnector)
	if !ok {
		t.Fatal("the e-mail connector cannot deliver follow-ups")
	}
	f := &gateway.FollowUp{SubmissionID: "sub-0123456789abcdef", Reference: "ABC-234", Service: "feedback", Seq: 1,
		Question: "Vilken park?", Answer: "Stadsparken, vid dammen.", AnsweredAt: time.Now()}
	if err := fc.DeliverFollowUp(ctx, f); err != nil {
		t.Fatal(err)
	}
	msgs := mp.Messages(t)
	if len(msgs) != 2 {
		t.Fatalf("mailpit holds %d messages, want 2", len(msgs))
	}
	orig := "<" + email.MessageID("sub-0123456789abcdef", "ABC-234", "kommun.example") + ">"
	var reply *mail.Message
	for _, m := range msgs {
		msg, err := mail.ReadMessage(bytes.NewReader(mp.Raw(t, m.ID)))
		if err != nil {
			t.Fatal(err)
		}
		if msg.Header.Get("In-Reply-To") != "" {
			reply = msg
		}
	}
	if reply == nil || reply.Header.Get("In-Reply-To") != orig || reply.Header.Get("References") != orig {
		t.Fatalf("no reply to %s among the messages", orig)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(reply.Body)
	if !strings.Contains(body.String(), "Stadsparken") { // quoted-printable keeps ASCII words intact
		t.Errorf("the reply lacks the answer: %s", body.String())
	}
}
