package email

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/smtpmail"
)

var _ gateway.FollowUpConnector = (*Connector)(nil)

// FollowUpMessageID is the Message-ID of a follow-up's e-mail: stable per
// answer, so a repeated send is recognisable.
func FollowUpMessageID(f *gateway.FollowUp, domain string) string {
	return MessageID(f.SubmissionID+".answer."+strconv.Itoa(f.Seq), f.Reference, domain)
}

// ComposeFollowUp builds the e-mail of a resident's answer to a completion
// request: a reply to the submission's e-mail (In-Reply-To and References
// name its Message-ID), so the mailbox threads it with the case.
func (c *Connector) ComposeFollowUp(f *gateway.FollowUp) *smtpmail.Message {
	l := c.tr.Localizer(c.lang)
	data := map[string]any{"Reference": f.Reference}
	orig := "<" + MessageID(f.SubmissionID, f.Reference, c.domain) + ">"
	text := l.T("email.followup.intro", data) + "\n\n"
	if f.Question != "" {
		text += l.T("email.followup.question") + "\n  " + f.Question + "\n\n"
	}
	text += l.T("email.followup.answer") + "\n  " + f.Answer + "\n"
	return &smtpmail.Message{
		From: c.from, To: c.to, Subject: l.T("email.followup.subject", data), Date: f.AnsweredAt,
		MessageID: FollowUpMessageID(f, c.domain),
		Headers: [][2]string{
			{"Auto-Submitted", "auto-generated"},
			{"In-Reply-To", orig}, {"References", orig},
			{HeaderReference, f.Reference}, {HeaderService, f.Service},
		},
		Text: text,
	}
}

// DeliverFollowUp sends the answer to the route's mailbox as a reply to the
// submission's e-mail.
func (c *Connector) DeliverFollowUp(ctx context.Context, f *gateway.FollowUp) error {
	if f.SubmissionID == "" {
		return permanent(errors.New("follow-up has no submission id"))
	}
	if f.AnsweredAt.IsZero() {
		f.AnsweredAt = time.Now()
	}
	msg := c.ComposeFollowUp(f)
	if err := c.attach(ctx, msg, f.Attachments, f.Files); err != nil {
		return err
	}
	var body bytes.Buffer
	if _, err := msg.WriteTo(&body); err != nil {
		return permanent(err)
	}
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	case <-ctx.Done():
		return temporary(ctx.Err())
	}
	return c.send(ctx, body.Bytes())
}
