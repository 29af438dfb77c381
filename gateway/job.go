package gateway

import "errors"

// Job is one unit of delivery work: a queue entry naming a submission. The
// queue (gateway/redisstore) hands jobs out and records their outcome; the
// dispatcher (gateway/delivery) works on them.
type Job struct {
	StreamID     string
	SubmissionID string
	// Deliveries is how often the entry has been handed to a consumer
	// (1 for a fresh read, more after claims).
	Deliveries int64
	// Reference is the submission's receipt reference when the caller has
	// read it (it never changes once written); the outcome need not read
	// it again. Empty means unknown.
	Reference string
}

// ErrNotPending is returned by the queue's outcome methods (Complete,
// Retry, DeadLetter, Defer) when the job was already acknowledged: another
// consumer finished it first (it had claimed the job from this one), and
// this outcome was not recorded.
var ErrNotPending = errors.New("job no longer pending; outcome not recorded")
