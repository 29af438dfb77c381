package gateway

import (
	"context"
	"slices"
	"strconv"
	"time"
)

// NotifyStatuses are the status changes a resident can be told about.
var NotifyStatuses = []Status{StatusDelivered, StatusInProgress, StatusNeedsInfo, StatusDecided, StatusClosed, StatusFailed}

// NotifyPrefs is how a signed-in resident wants to hear about their
// submissions (managed on My pages). The zero value sends nothing.
type NotifyPrefs struct {
	Email  string   `json:"email,omitempty"`
	Mobile string   `json:"mobile,omitempty"` // E.164, e.g. +46701234567
	Events []Status `json:"events,omitempty"` // which status changes; empty: none
	// UpdatedAt is when the resident last saved them.
	UpdatedAt time.Time `json:"updated_at"`
}

// Wants reports whether the resident asked to hear about status.
func (p NotifyPrefs) Wants(status Status) bool { return slices.Contains(p.Events, status) }

// NotifyEvent is one status change to tell a resident about, as the outbox
// holds it. Event is stable per change ("<submission id>.<n>"): the
// e-mail's Message-ID and the SMS provider's idempotency key derive from
// it, so a retry is recognisable as the same message.
type NotifyEvent struct {
	StreamID     string `json:"-"`
	Event        string `json:"event"`
	SubmissionID string `json:"id"`
	Status       Status `json:"status"`
	Attempt      int    `json:"attempt"` // 1 for the first try
	Reason       string `json:"reason,omitempty"`
	// Department is the submission's department (administrators of a
	// department see and replay its dead letters only).
	Department string `json:"department,omitempty"`
	// Kind is "" for a message to the resident and KindWebhook for a
	// department's webhook; Type is then the webhook event type.
	Kind string `json:"kind,omitempty"`
	Type string `json:"type,omitempty"`
	// AtMs is when the event happened (Unix ms); 0 when unknown.
	AtMs int64 `json:"at_ms,omitempty"`
}

// KindWebhook marks an outbox event for a department's webhook.
const KindWebhook = "webhook"

// Webhook event types a department can subscribe to.
const (
	EventSubmissionReceived  = "submission.received"
	EventSubmissionDelivered = "submission.delivered"
	EventStatusChanged       = "status.changed"
)

// WebhookEvents are the event types a department can subscribe to.
var WebhookEvents = []string{EventSubmissionReceived, EventSubmissionDelivered, EventStatusChanged}

// FollowUpDead is a follow-up (an answer for the case system) that was
// given up on, as administrators see it.
type FollowUpDead struct {
	SubmissionID string `json:"id"`
	Seq          int    `json:"seq"`
	Department   string `json:"department,omitempty"`
	Reason       string `json:"reason,omitempty"`
	AtMs         int64  `json:"at_ms,omitempty"`
}

// Limits of completion answers.
const (
	MaxAnswerLength = 4000 // characters of one answer
	MaxAnswers      = 10   // answers kept per submission
)

// FollowUp is a resident's answer to a completion request (status
// needs_info with a question), handed to the case system as a follow-up of
// the case.
type FollowUp struct {
	SubmissionID  string
	Reference     string
	Service       string
	Department    string
	CaseReference string
	Seq           int    // 1 for the first answer of the submission
	Question      string // the department's question it answers
	Answer        string
	AnsweredAt    time.Time
	Attempt       int
	// Attachments are the files sent with the answer; connectors hand
	// them on like a submission's, through Files (nil when none).
	Attachments []Attachment
	Files       AttachmentFiles
}

// IdempotencyKey is the key the back-end deduplicates a follow-up on.
func (f *FollowUp) IdempotencyKey() string { return f.SubmissionID + ".answer." + strconv.Itoa(f.Seq) }

// FollowUpConnector is the optional ability of a connector to deliver a
// follow-up (an answer to a completion request) to an existing case.
// Errors are classified like Deliver's (*DeliveryError).
type FollowUpConnector interface {
	DeliverFollowUp(ctx context.Context, f *FollowUp) error
}

// ConversationEntry is one answer of the resident in a submission's
// conversation (the questions are the needs_info entries of the history).
type ConversationEntry struct {
	Seq       int       `json:"seq"`
	Question  string    `json:"question,omitempty"`
	Answer    string    `json:"answer"`
	At        time.Time `json:"at"`
	Token     string    `json:"token"`
	Delivered bool      `json:"delivered,omitempty"`
	// Attachments are the files sent with the answer (descriptions; the
	// bytes are in the attachment store until the follow-up is delivered).
	Attachments []Attachment `json:"attachments,omitempty"`
}
