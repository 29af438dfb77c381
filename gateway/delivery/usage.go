package delivery

import (
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// UsageTracker is told of delivered and dead-lettered submissions, for the
// usage statistics; *usage.Recorder implements it. Its methods must not
// block (the recorder hands the event to a buffer).
type UsageTracker interface {
	Delivered(sub *gateway.Submission, at time.Time)
	DeadLettered(sub *gateway.Submission, at time.Time)
}

func (d *Dispatcher) usageDelivered(sub *gateway.Submission) {
	if d.cfg.Usage != nil && sub != nil {
		d.cfg.Usage.Delivered(sub, d.now())
	}
}

func (d *Dispatcher) usageDeadLettered(sub *gateway.Submission) {
	if d.cfg.Usage != nil && sub != nil {
		d.cfg.Usage.DeadLettered(sub, d.now())
	}
}
