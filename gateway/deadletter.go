package gateway

import "time"

// DeadLetter describes a dead-lettered submission for the people who handle
// it: why delivery was given up and how far it got. It never holds the
// payload.
type DeadLetter struct {
	ID         string    `json:"id"`
	Reference  string    `json:"reference"`
	Service    string    `json:"service"`
	Department string    `json:"department"`
	Reason     string    `json:"reason"`     // why it was given up: a short class (permanent, max_attempts, ...)
	LastError  string    `json:"last_error"` // the class of the last failure
	Attempts   int       `json:"attempts"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	DeadAt     time.Time `json:"dead_at"` // zero when not dead-lettered (any more)
}
