// Package gateway holds the domain of the citizen service gateway: services
// and their forms, submissions, receipts, statuses and the errors that cross
// package boundaries. It imports no web framework and no database client;
// the adapters in the sub-packages do.
package gateway

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Assurance is a level of assurance of an electronic identity (eIDAS).
type Assurance int

// Levels of assurance, ordered: a higher level satisfies a lower one.
const (
	AssuranceNone Assurance = iota
	AssuranceLow
	AssuranceSubstantial
	AssuranceHigh
)

var assuranceNames = [...]string{"none", "low", "substantial", "high"}

func (a Assurance) String() string {
	if a < 0 || int(a) >= len(assuranceNames) {
		return fmt.Sprintf("Assurance(%d)", int(a))
	}
	return assuranceNames[a]
}

// ParseAssurance turns "none", "low", "substantial" or "high" into an Assurance.
func ParseAssurance(s string) (Assurance, error) {
	for i, n := range assuranceNames {
		if s == n {
			return Assurance(i), nil
		}
	}
	return 0, fmt.Errorf("unknown level of assurance %q (want none, low, substantial or high)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (a Assurance) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Assurance) UnmarshalText(b []byte) error {
	v, err := ParseAssurance(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Channel is how a contact with the municipality was made.
type Channel string

// Channels. Digital is a resident on their own; assisted is filed with help
// at a service point; api is a machine client.
const (
	ChannelDigital  Channel = "digital"
	ChannelAssisted Channel = "assisted"
	ChannelPhone    Channel = "phone"
	ChannelPaper    Channel = "paper"
	ChannelEmail    Channel = "email"
	ChannelAPI      Channel = "api"
)

// Channels lists every channel, in a stable order.
var Channels = []Channel{ChannelDigital, ChannelAssisted, ChannelPhone, ChannelPaper, ChannelEmail, ChannelAPI}

// Valid reports whether c is one of Channels.
func (c Channel) Valid() bool { return slices.Contains(Channels, c) }

// Status is where a submission is in its life. The vocabulary is a contract
// shared with the departments' case systems.
type Status string

// Statuses, in the order a case normally moves through them.
const (
	StatusReceived   Status = "received"
	StatusDelivered  Status = "delivered"
	StatusInProgress Status = "in_progress"
	StatusNeedsInfo  Status = "needs_info"
	StatusDecided    Status = "decided"
	StatusClosed     Status = "closed"
	StatusFailed     Status = "failed"
)

// Statuses lists every status, in order.
var Statuses = []Status{StatusReceived, StatusDelivered, StatusInProgress, StatusNeedsInfo, StatusDecided, StatusClosed, StatusFailed}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Rank orders statuses so that an update never moves a submission backwards.
// needs_info and in_progress share a rank: a case may go back and forth
// between them.
func (s Status) Rank() int {
	switch s {
	case StatusReceived:
		return 0
	case StatusDelivered:
		return 1
	case StatusInProgress, StatusNeedsInfo:
		return 2
	case StatusDecided:
		return 3
	case StatusClosed, StatusFailed:
		return 4
	}
	return -1
}

// StatusChange is one entry in a submission's history.
type StatusChange struct {
	Status Status    `json:"status"`
	At     time.Time `json:"at"`
	// Note is a short machine-readable remark (e.g. "retry", "dead_letter").
	Note string `json:"note,omitempty"`
	// Message is an optional message to the resident from the department.
	Message string `json:"message,omitempty"`
}

// Submission is a filled-in form accepted by the gateway.
type Submission struct {
	ID             string  `json:"id"`        // unguessable, used in the status link
	Reference      string  `json:"reference"` // short and human-friendly, shown on the receipt
	Service        string  `json:"service"`
	ServiceVersion string  `json:"service_version"`
	Department     string  `json:"department"`
	Channel        Channel `json:"channel"`
	Locale         string  `json:"locale"`
	Subject        string  `json:"subject,omitempty"` // who it concerns, when signed in
	// ReplyEmail is where an anonymous resident asked to be told about
	// progress (the service's notify_email_field); kept with the record,
	// not the payload, because the payload goes after delivery.
	ReplyEmail string `json:"-"`
	// Filed on the subject's behalf at a service point (channel assisted):
	// the staff member's subject, the service point's id and how the
	// visitor's identity was checked (id_document, eid, known).
	Actor         string `json:"actor,omitempty"`
	ServicePoint  string `json:"service_point,omitempty"`
	IdentityCheck string `json:"identity_check,omitempty"`
	// Audit is set by the intake for a submission filed on a visitor's
	// behalf: what the service point's audit entry says besides the record.
	// The store writes that entry in the same atomic step as the
	// submission (never one without the other); it is not kept with the
	// record (a submission read back has none).
	Audit   *FilingAudit   `json:"-"`
	Payload map[string]any `json:"payload,omitempty"`
	// PayloadHash is the hex SHA-256 of the canonical payload
	// (receipt.CanonicalPayload), computed by the intake before the write
	// and kept with the record, so a signed receipt can be made from the
	// record alone, also after the payload is gone.
	PayloadHash string `json:"payload_sha256,omitempty"`
	// Attachments describe the files attached to the form's file fields
	// (bytes held by the attachment store until delivered); kept with the
	// record so the receipt can name each file's digest.
	Attachments   []Attachment   `json:"attachments,omitempty"`
	Status        Status         `json:"status"`
	CaseReference string         `json:"case_reference,omitempty"`
	Attempts      int            `json:"attempts"`
	Delayed       bool           `json:"delayed,omitempty"` // delivery is late; a person is on it
	CreatedAt     time.Time      `json:"created_at"`
	History       []StatusChange `json:"history"`
}

// FilingAudit is what the audit entry of a filing on a visitor's behalf
// adds to the submission's own fields (Actor, ServicePoint, IdentityCheck,
// Service, Reference): the staff member's name and the visitor's masked
// personnummer (never the full number).
type FilingAudit struct {
	ActorName     string
	MaskedSubject string
}

// Delivery is what a connector hands to a department's case system.
type Delivery struct {
	SubmissionID   string
	Reference      string
	Service        string
	ServiceVersion string
	Department     string
	Channel        Channel
	Locale         string
	Subject        string
	SubmittedAt    time.Time
	Payload        map[string]any
	Attempt        int // 1 for the first try
	// Attachments are the files of the form's file fields (the record's
	// descriptions); Files reaches their bytes and links. Files is nil
	// when there are none.
	Attachments []Attachment
	Files       AttachmentFiles
}

// IdempotencyKey is the key the back-end deduplicates on: the submission id.
func (d *Delivery) IdempotencyKey() string { return d.SubmissionID }

// Connector hands a submission to a back-end and returns the back-end's case
// reference. Errors are temporary unless wrapped in a *DeliveryError with
// Permanent set.
type Connector interface {
	Deliver(ctx context.Context, d *Delivery) (caseReference string, err error)
}

// DeliveryError classifies a failed delivery.
type DeliveryError struct {
	Permanent  bool          // retrying cannot help (e.g. a 4xx from the back-end)
	RetryAfter time.Duration // the back-end asked to wait at least this long
	Err        error
}

func (e *DeliveryError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	return kind + " delivery error: " + e.Err.Error()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// Error codes for errors that reach people and programs.
const (
	ENotFound    = "not_found"
	EInvalid     = "invalid"  // validation failed; see Error.Fields
	EConflict    = "conflict" // e.g. idempotency key reused with another body
	EForbidden   = "forbidden"
	EUnauth      = "unauthorized"
	ETooMany     = "too_many_requests"
	EInternal    = "internal"
	EUnavailable = "unavailable"
)

// Message is a localizable message: a go-i18n message ID and its template data.
type Message struct {
	ID   string         `json:"id"`
	Data map[string]any `json:"data,omitempty"`
}

// FieldErrors maps a field name to what is wrong with its value.
type FieldErrors map[string]Message

// Error is an error with a code and a public, localizable message. The cause
// is for logs only.
type Error struct {
	Code    string
	Message Message     // public; localized at the edge
	Fields  FieldErrors // for EInvalid
	Cause   error       // internal; never shown
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	if e.Message.ID != "" {
		b.WriteString(": " + e.Message.ID)
	}
	if e.Cause != nil {
		b.WriteString(": " + e.Cause.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Cause }

// Errorf returns an *Error with the code and message ID.
func Errorf(code, messageID string, cause error) *Error {
	return &Error{Code: code, Message: Message{ID: messageID}, Cause: cause}
}

// Idempotency makes a create request repeatable: the same key and the same
// body give the same submission; the same key with another body is a
// conflict. Keys are scoped to the caller.
type Idempotency struct {
	Scope    string // who is asking, e.g. "ip:203.0.113.7" or "user:<subject>"
	Key      string // empty: no idempotency
	BodyHash string // hash of the validated payload
	TTL      time.Duration
}
