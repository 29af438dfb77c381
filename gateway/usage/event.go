// Package usage measures how the gateway is used, so that "digital first"
// can be followed honestly and published as open data.
//
// Requests hand events to a Recorder: an in-process bounded buffer that
// never blocks (a full buffer drops the event and counts the drop). A
// flusher goroutine folds the events into per-day counters and writes them
// to the Store in one pipeline at least every FlushInterval and on Stop. No
// request waits for a usage write.
//
// Events never carry personal data: a service, its department, a channel, a
// locale, a time, for validation failures the field's name (from the
// service's manifest, never from the request), and durations. Unique
// visitors are counted with HyperLogLog over a salted hash of IP address and
// User-Agent; the salt is random per day, kept in the store with a TTL of
// about a day, and never written anywhere else, so the hashes cannot be
// linked across days or recomputed once the salt has expired.
//
// Abandoned forms are derived, not tracked: for a day that ended more than
// AbandonAfter ago, abandoned = max(0, started - submitted) of the digital
// channel. No per-form state is kept for it.
//
// The time from start to submit is measured without state either: the form
// page carries a signed stamp of the time it was first drawn (Stamp), and the
// submission reports the time since it (Elapsed) in a histogram.
package usage

import (
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// Kind is what happened.
type Kind uint8

// Kinds of usage events.
const (
	// Visit is a page view that concerns no one service (the catalog).
	Visit Kind = iota + 1
	// Viewed is a view of a service (its form page, or its API description).
	Viewed
	// Started is the first drawing of a service's form (a new form token).
	Started
	// ValidationFailed is one field that failed validation in a
	// submission attempt; Event.Field names it.
	ValidationFailed
	// Submitted is an accepted submission (not an idempotent replay).
	// Event.Duration is the time since the form was started, when known.
	Submitted
	// Delivered is a submission handed to its department's case system: its
	// first status after "received". Event.Duration is the time since the
	// submission.
	Delivered
	// DeadLettered is a submission the gateway gave up delivering.
	DeadLettered
	// StatusChanged is any change of a submission's status (a delivery
	// counts as one as well).
	StatusChanged
	// Contact is a contact about a service that did not come through the
	// gateway (phone, paper, e-mail, help at a service point), registered so
	// that digital take-up has its full denominator.
	Contact
	// Satisfaction is one answer to the satisfaction question after a
	// receipt (one per submission); Event.Score is the answer, 1 to 5.
	// The free-text comment is never an event.
	Satisfaction
)

var kindMetric = map[Kind]string{
	Visit: mVisit, Viewed: mViewed, Started: mStarted, ValidationFailed: mValidation, Submitted: mSubmitted,
	Delivered: mDelivered, DeadLettered: mDead, StatusChanged: mStatus, Contact: mContact, Satisfaction: mSatisfaction,
}

func (k Kind) String() string {
	if m, ok := kindMetric[k]; ok {
		return m
	}
	return "unknown"
}

// Event is one thing that happened. It holds no personal data. Strings must
// be owned by the caller (not borrowed from a request buffer): events are
// read by another goroutine after the request has finished.
type Event struct {
	Kind       Kind
	Service    string // service id; "" for Visit
	Department string
	Channel    gateway.Channel
	Locale     string
	Field      string // ValidationFailed: the field's name from the manifest
	At         time.Time
	// Duration: for Submitted, the time since the form was started (0:
	// unknown); for Delivered, the time since the submission.
	Duration time.Duration
	// Visitor is a salted, daily hash of the visitor (see
	// Recorder.Visitor); 0 when not counted.
	Visitor uint64
	// Score: for Satisfaction, the answer from 1 (very dissatisfied) to 5
	// (very satisfied); other values are not counted.
	Score int
}

// Metric names, as stored (the last part of a counter's field).
const (
	mVisit      = "visit"
	mViewed     = "viewed"
	mStarted    = "started"
	mValidation = "vfail"
	mSubmitted  = "submitted"
	mDelivered  = "delivered"
	mDead       = "dead"
	mStatus     = "status"
	mContact    = "contact"
	// satisfaction answers: "sat" counts them, "sat:<score>" per score
	mSatisfaction = "sat"
	mSatPfx       = "sat:"
	mFieldPfx     = "vf:" // + field name: validation failures of that field
	mStartPfx     = "hs:" // + bucket: histogram of start -> submit
	mFirstPfx     = "hf:" // + bucket: histogram of submit -> first status
)

// Buckets are the upper bounds of the duration histograms (start to submit,
// submission to first status). The last bucket is unbounded.
var Buckets = []time.Duration{
	10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
	15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 24 * time.Hour,
	7 * 24 * time.Hour,
}

// bucket returns the histogram bucket of d: the first bound d does not
// exceed, or len(Buckets) (unbounded).
func bucket(d time.Duration) int {
	for i, b := range Buckets {
		if d <= b {
			return i
		}
	}
	return len(Buckets)
}

// sep separates the parts of a counter's field. Service ids, department
// ids, channels, locales and field names cannot hold it (manifests allow
// lower-case letters, digits, '-' and '_'); parts that do are not counted.
const sep = "|"

// field is the counter field of a cell and metric:
// service|department|channel|locale|metric.
func field(service, department string, ch gateway.Channel, locale, metric string) string {
	return service + sep + department + sep + string(ch) + sep + locale + sep + metric
}

// clean reports whether every part can go into a field.
func clean(parts ...string) bool {
	for _, p := range parts {
		if strings.Contains(p, sep) || len(p) > 100 {
			return false
		}
	}
	return true
}
