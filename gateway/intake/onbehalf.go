package intake

import (
	"context"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/personnummer"
	"github.com/kommun/servicegateway/gateway/servicepoint"
)

// visitor is a visitor whose number, identity check and consent are valid.
type visitor struct {
	number personnummer.Number
	check  servicepoint.IdentityCheck
}

// checkOnBehalf is step 2 for filing on a visitor's behalf: the principal
// is a staff member (a person, not a machine client); the visitor's number,
// identity check and consent are valid (field errors otherwise, reported
// with the validation's); the identity check supports the service's level
// of assurance, capped by the staff member's own sign-in (a refusal is
// audited). v is nil when there are field errors.
func (in *Intake) checkOnBehalf(ctx context.Context, r Request) (v *visitor, errs gateway.FieldErrors, err error) {
	p, ob := r.Principal, r.OnBehalf
	if p == nil || p.Machine || !p.HasRole(gateway.RoleStaff) {
		return nil, nil, gateway.Errorf(gateway.EForbidden, "desk.error.staff_only", nil)
	}
	if ob == nil || in.desk == nil {
		return nil, nil, gateway.Errorf(gateway.ENotFound, "desk.error.off", nil)
	}
	now := in.cfg.Now()
	errs = gateway.FieldErrors{}
	n, perr := personnummer.ParseAt(ob.Personnummer, now.In(in.cfg.Location))
	switch {
	case strings.TrimSpace(ob.Personnummer) == "":
		errs[ob.Names.Personnummer] = gateway.Message{ID: "desk.error.pnr_required"}
	case perr != nil:
		errs[ob.Names.Personnummer] = gateway.Message{ID: "desk.error.pnr_invalid"}
	}
	check := servicepoint.IdentityCheck(ob.IdentityCheck)
	if !check.Valid() {
		errs[ob.Names.IdentityCheck] = gateway.Message{ID: "desk.error.identity_check"}
	}
	if !ob.Consent {
		errs[ob.Names.Consent] = gateway.Message{ID: "desk.error.consent"}
	}
	if !ob.PointOK {
		errs[ob.Names.ServicePoint] = gateway.Message{ID: "desk.error.choose_point"}
	}
	if len(errs) > 0 {
		return nil, errs, nil
	}
	level := min(check.Assurance(), p.Assurance)
	if r.Service.Assurance > level {
		if err := in.Audit(ctx, p, ob.Point.ID, servicepoint.AuditEntry{Subject: n.Masked(), Action: servicepoint.ActionRefused,
			Service: r.Service.ID, IdentityCheck: string(check)}); err != nil {
			return nil, nil, err
		}
		return nil, nil, &gateway.Error{Code: gateway.EForbidden, Message: gateway.Message{ID: "desk.error.assurance", Data: map[string]any{
			"Level": gateway.Message{ID: "assurance." + r.Service.Assurance.String()},
			"Check": gateway.Message{ID: "desk.check." + string(check)},
			"Got":   gateway.Message{ID: "assurance." + level.String()}}}}
	}
	return &visitor{number: n, check: check}, nil, nil
}

// afterFiling counts the visit at the service point (usage counts the
// submission itself, channel assisted). The audit entry is not written
// here: the store writes it with the submission (gateway.Submission.Audit),
// so there is never a filing without its entry. The submission stands
// whatever happens here: failing the request would make staff file it
// twice; what cannot be written is logged with the reference.
func (in *Intake) afterFiling(ctx context.Context, sub *gateway.Submission) {
	day := in.cfg.Now().In(in.cfg.Location).Format(time.DateOnly)
	if err := in.desk.AddDeskContact(ctx, day, sub.ServicePoint, sub.Service, string(servicepoint.ContactVisit), string(servicepoint.OutcomeFiledWithHelp)); err != nil {
		in.log.Warn("desk contact", "reference", sub.Reference, "error", err)
	}
}

// Audit appends an entry about an action of p at a service point. An entry
// that cannot be written is logged as an error with its reference (never
// the subject), enough to write it by hand.
func (in *Intake) Audit(ctx context.Context, p *gateway.Principal, point string, e servicepoint.AuditEntry) error {
	e.At = in.cfg.Now().UTC().Format(time.RFC3339Nano)
	e.Actor, e.ActorName, e.ServicePoint = p.Subject, p.Name, point
	actx, cancel := context.WithTimeout(ctx, in.cfg.StoreTimeout)
	defer cancel()
	if err := in.desk.AppendAudit(actx, e); err != nil {
		in.log.Error("audit entry not written", "action", e.Action, "service_point", e.ServicePoint, "reference", e.Reference, "error", err)
		return err
	}
	return nil
}
