package gateway

import (
	"slices"
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
}
