package usage

import (
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// Invalid records one validation failure per field of the service that
// failed. Names not in the manifest (e.g. unknown JSON keys) are not
// recorded: they come from the client. It implements intake.Events.
func (r *Recorder) Invalid(svc *gateway.Service, ch gateway.Channel, locale string, fields gateway.FieldErrors, at time.Time) {
	if r == nil {
		return
	}
	for name := range fields {
		if f := svc.Field(name); f != nil {
			r.Track(Event{Kind: ValidationFailed, Service: svc.ID, Department: svc.Department, Channel: ch, Locale: locale, Field: f.Name, At: at})
		}
	}
}

// Submitted records an accepted submission, with the time since its form's
// signed stamp (started) when that is valid. It implements intake.Events.
func (r *Recorder) Submitted(svc *gateway.Service, sub *gateway.Submission, started string, at time.Time) {
	if r == nil || sub == nil {
		return
	}
	e := Event{Kind: Submitted, Service: svc.ID, Department: svc.Department, Channel: sub.Channel, Locale: sub.Locale, At: at}
	if d, ok := r.Elapsed(svc.ID, started, at); ok {
		e.Duration = d
	}
	r.Track(e)
}
