// Package intake is the gateway's application layer: the use cases that
// every channel shares. A submission made through the HTML form, the JSON
// API, the service-point desk's form or the desk's API goes through Submit,
// which applies the same rules in one fixed order:
//
//  1. the channel is allowed by the service's manifest;
//  2. identity and level of assurance (for filing on behalf: the staff
//     member's role and the visitor's identity check);
//  3. validation of the values against the service's fields;
//  4. the idempotency lock (a key still in flight answers 409), when the
//     caller asked for it;
//  5. one atomic write of the submission (with its payload's SHA-256, for
//     the signed receipt: gateway/receipt) and its delivery job (the store
//     adds it to the owner's, department's and desk's lists in the same
//     step);
//  6. usage events, and for filing on behalf the desk's own statistics and
//     the audit entry.
//
// Adapters (HTTP handlers, later Open311) only decode, call and encode. The
// dependencies are small interfaces declared here; the Redis store
// implements all of them, and each is passed explicitly.
package intake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Stockholm on machines without a zoneinfo database

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/personnummer"
	"github.com/kommun/servicegateway/gateway/receipt"
	"github.com/kommun/servicegateway/gateway/servicepoint"
)

// Store writes a submission and its delivery job in one atomic step. With
// an idempotency key it returns the earlier submission (created false) for
// the same key and body, and a conflict for another body.
type Store interface {
	Create(ctx context.Context, sub *gateway.Submission, idem gateway.Idempotency) (*gateway.Submission, bool, error)
}

// Locker marks a request's idempotency key as in flight, so a second request
// with the same key sent before the first is done is answered 409.
type Locker interface {
	LockIdempotency(ctx context.Context, idem gateway.Idempotency, ttl time.Duration) (release func(), err error)
}

// Desk records what a filing on a visitor's behalf leaves besides the
// submission: the service point's own statistics and the audit entry.
type Desk interface {
	AddDeskContact(ctx context.Context, day, point, service, channel, outcome string) error
	AppendAudit(ctx context.Context, e servicepoint.AuditEntry) error
}

// Events receives the intake's usage events: a validation failure (per
// field of the service) and an accepted submission, with the signed stamp
// of when its form was first drawn ("" when there is none). They must not
// block. *usage.Recorder implements it.
type Events interface {
	Invalid(svc *gateway.Service, ch gateway.Channel, locale string, fields gateway.FieldErrors, at time.Time)
	Submitted(svc *gateway.Service, sub *gateway.Submission, started string, at time.Time)
}

// Deps is what the intake needs. Store and Locker are required; Desk is
// needed to file on behalf; Events may be nil (nothing is counted).
type Deps struct {
	Store  Store
	Locker Locker
	Desk   Desk
	Events Events
	// Answers is needed for completion answers (Answer).
	Answers Answers
	// Attachments is needed for services with file fields (Upload);
	// Scanner, when set, checks every upload for malware.
	Attachments Attachments
	Scanner     Scanner
	Logger      *slog.Logger
	Config      Config
}

// Config holds the intake's settings.
type Config struct {
	// StoreTimeout bounds every store call of one use case.
	StoreTimeout time.Duration
	// IdempotencyTTL is how long an idempotency key is remembered.
	IdempotencyTTL time.Duration
	// InFlightTTL bounds how long a request holds its key when the process
	// dies before releasing it.
	InFlightTTL time.Duration
	// Location is the municipality's time zone (desk statistics by day,
	// the date a personnummer is read against); default Europe/Stockholm.
	Location *time.Location
	// Now is the clock; tests may set it.
	Now func() time.Time
	// UploadTTL is how long an upload is kept until a submission claims
	// it (an abandoned form's files are gone after it); AttachmentKeep how
	// long a claimed one is kept at most (delivery deletes it sooner).
	UploadTTL      time.Duration
	AttachmentKeep time.Duration
	// MaxSubmissionAttachments bounds the bytes of all of a submission's
	// attachments (0: only the per-field limits).
	MaxSubmissionAttachments int64
	// ScanTimeout bounds one malware scan; ScanUnavailable says what an
	// upload the scanner could not check gets: ScanRefuse (default),
	// ScanHold or ScanAccept.
	ScanTimeout     time.Duration
	ScanUnavailable string
}

// ConfigDefault is the configuration used for unset fields.
var ConfigDefault = Config{
	StoreTimeout:    3 * time.Second,
	IdempotencyTTL:  24 * time.Hour,
	InFlightTTL:     10 * time.Second,
	Location:        stockholm(),
	Now:             time.Now,
	UploadTTL:       2 * time.Hour,
	AttachmentKeep:  30 * 24 * time.Hour,
	ScanTimeout:     30 * time.Second,
	ScanUnavailable: ScanRefuse,
}

func stockholm() *time.Location {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		return time.UTC
	}
	return loc
}

// MaxIdempotencyKey is the longest Idempotency-Key accepted.
const MaxIdempotencyKey = 255

// Intake runs the use cases.
type Intake struct {
	store   Store
	locker  Locker
	desk    Desk
	events  Events
	answers Answers
	// attachments and scanner: uploads (attachments.go).
	attachments Attachments
	scanner     Scanner
	log         *slog.Logger
	cfg         Config
}

// New returns the intake; it fails when a required dependency is missing.
func New(d Deps) (*Intake, error) {
	if d.Store == nil || d.Locker == nil {
		return nil, errors.New("intake: Store and Locker are required")
	}
	c := d.Config
	def := ConfigDefault
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = def.StoreTimeout
	}
	if c.IdempotencyTTL <= 0 {
		c.IdempotencyTTL = def.IdempotencyTTL
	}
	if c.InFlightTTL <= 0 {
		c.InFlightTTL = def.InFlightTTL
	}
	if c.Location == nil {
		c.Location = def.Location
	}
	if c.Now == nil {
		c.Now = def.Now
	}
	if c.UploadTTL <= 0 {
		c.UploadTTL = def.UploadTTL
	}
	if c.AttachmentKeep <= 0 {
		c.AttachmentKeep = def.AttachmentKeep
	}
	if c.ScanTimeout <= 0 {
		c.ScanTimeout = def.ScanTimeout
	}
	switch c.ScanUnavailable {
	case "":
		c.ScanUnavailable = def.ScanUnavailable
	case ScanRefuse, ScanHold, ScanAccept:
	default:
		return nil, errors.New("intake: ScanUnavailable must be refuse, hold or accept")
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Intake{store: d.Store, locker: d.Locker, desk: d.Desk, events: d.Events, answers: d.Answers,
		attachments: d.Attachments, scanner: d.Scanner, log: log, cfg: c}, nil
}

// ErrStepUp is the cause of the error Submit returns when the submitter's
// sign-in is below the service's level of assurance (or they are not
// signed in): a browser can be sent to sign in at that level and come back.
var ErrStepUp = errors.New("intake: a higher level of assurance is needed")

// Request is one submission to a service, as an adapter decoded it.
type Request struct {
	Service *gateway.Service
	// Channel is how it was made: digital (a resident's form), api, or
	// assisted (filed on behalf; OnBehalf is then required).
	Channel gateway.Channel
	// Principal is who is making the request; nil for anonymous.
	Principal *gateway.Principal
	// Values are the field values, name -> values in the order sent.
	Values map[string][]string
	// Errors are problems the adapter found while decoding the values
	// (e.g. a JSON object where a value belongs); they are reported with
	// the validation errors.
	Errors gateway.FieldErrors
	// Strict reports names that are not fields of the service as errors
	// (the JSON API); forms ignore them.
	Strict bool
	// Locale is the language of the receipt and of messages to the
	// submitter (a shipped tag).
	Locale string
	// IdempotencyKey makes the request repeatable: the same key and values
	// give the same receipt. Keys are scoped to the signed-in principal
	// ("user:<subject>", or "desk:<staff>" for a filing on behalf);
	// IdempotencyScope is the scope for anyone else (e.g. "ip:<address>",
	// or "form" for a form's own token).
	IdempotencyKey, IdempotencyScope string
	// LockInFlight answers a second request with the same key, sent
	// while the first is still being handled, with 409 (the API's
	// contract); forms let the second wait for the same receipt.
	LockInFlight bool
	// Started is the signed stamp of when the form was first drawn (usage
	// statistics); "" when there is none.
	Started string
	// OnBehalf is the visitor a staff member files for (channel assisted).
	OnBehalf *OnBehalf
	// UploadScopes are the scopes (UploadScope) whose uploads the request
	// may attach: the signed-in person's and the form's or client's own.
	UploadScopes []string
}

// OnBehalf is what staff enter about the visitor they file for.
type OnBehalf struct {
	Personnummer  string
	IdentityCheck string
	Consent       bool
	// Point is the staff member's service point; PointOK is false when
	// none is chosen yet.
	Point   servicepoint.Point
	PointOK bool
	// Names are the field names under which problems with the
	// personnummer, the identity check, the consent and the service point
	// are reported.
	Names VisitorNames
}

// VisitorNames names the visitor's inputs in field errors.
type VisitorNames struct{ Personnummer, IdentityCheck, Consent, ServicePoint string }

// Result is an accepted submission; Created is false when an earlier
// request with the same idempotency key made it.
type Result struct {
	Submission *gateway.Submission
	Created    bool
}

// Submit applies the submit rules, in the order in the package comment, and
// stores the submission durably. Errors are *gateway.Error: EForbidden
// (channel not allowed, not staff, visitor's identity check too weak),
// EUnauth or EForbidden with cause ErrStepUp (level of assurance), EInvalid
// with Fields, EConflict (key in flight or reused with other values), and
// the store's errors.
func (in *Intake) Submit(ctx context.Context, r Request) (Result, error) {
	svc := r.Service
	// 0. An existing e-service behind the front door takes no submissions.
	if svc.Prefix != "" {
		return Result{}, gateway.Errorf(gateway.ENotFound, "error.service_not_found", nil)
	}
	// 1. Channel.
	if !svc.AllowsChannel(r.Channel) {
		return Result{}, &gateway.Error{Code: gateway.EForbidden, Message: gateway.Message{ID: "error.channel_not_allowed",
			Data: map[string]any{"Channel": gateway.Message{ID: "usage.channel." + string(r.Channel)}}}}
	}
	// 2. Identity and level of assurance.
	var visitor *visitor
	errs := gateway.FieldErrors{}
	if r.Channel == gateway.ChannelAssisted {
		v, verrs, err := in.checkOnBehalf(ctx, r)
		if err != nil {
			return Result{}, err
		}
		visitor = v
		for k, m := range verrs {
			errs[k] = m
		}
	} else if err := CheckAssurance(r.Principal, svc); err != nil {
		return Result{}, err
	}
	// What the sign-in (or the visitor's checked identity) already says is
	// taken from there, never from the form.
	values := prefill(r, visitor)
	// 3. Validation. Attachment ids are looked up first: the file kind
	// validates the stored descriptions, never what a client says.
	values, aerrs, claimed, err := in.resolveAttachments(ctx, r, values, true)
	if err != nil {
		return Result{}, err
	}
	for k, m := range aerrs {
		errs[k] = m
	}
	for k, m := range r.Errors {
		errs[k] = m
	}
	if r.Strict {
		names := make([]string, 0, len(r.Values))
		for k := range r.Values {
			names = append(names, k)
		}
		for k, m := range svc.UnknownFields(names) {
			if _, seen := errs[k]; !seen {
				errs[k] = m
			}
		}
	}
	payload, verrs := svc.Validate(values, in.cfg.Now())
	if len(verrs) > 0 && in.events != nil {
		in.events.Invalid(svc, r.Channel, r.Locale, verrs, in.cfg.Now()) // drop-off by field
	}
	for k, m := range verrs {
		if _, seen := errs[k]; !seen {
			errs[k] = m
		}
	}
	attachments, terrs := in.attachmentsOf(svc, payload)
	for k, m := range terrs {
		errs[k] = m
	}
	if len(errs) > 0 {
		return Result{}, &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"}, Fields: errs}
	}
	// 4. Idempotency.
	sub := &gateway.Submission{
		Service: svc.ID, ServiceVersion: svc.Version, Department: svc.Department,
		Channel: r.Channel, Locale: r.Locale, Payload: payload, Subject: subjectOf(r.Principal),
		Attachments: attachments,
	}
	// The payload's hash is kept with the record, for the signed receipt
	// (gateway/receipt): nothing needs writing after the atomic write.
	hash, err := receipt.PayloadHash(payload)
	if err != nil {
		return Result{}, gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	sub.PayloadHash = hash
	if svc.NotifyEmailField != "" {
		if v, ok := payload[svc.NotifyEmailField].(string); ok {
			sub.ReplyEmail = v // the resident asked to be told about progress there
		}
	}
	if visitor != nil {
		sub.Subject = personSubject(visitor.number)
		sub.Actor, sub.ServicePoint, sub.IdentityCheck = r.Principal.Subject, r.OnBehalf.Point.ID, string(visitor.check)
		// The audit entry is written with the submission, in one atomic step.
		sub.Audit = &gateway.FilingAudit{ActorName: r.Principal.Name, MaskedSubject: visitor.number.Masked()}
	}
	idem, err := in.idempotency(r, sub)
	if err != nil {
		return Result{}, err
	}
	if r.LockInFlight && idem.Key != "" {
		release, err := in.lock(ctx, idem)
		if err != nil {
			return Result{}, err
		}
		defer release()
	}
	// 5. One atomic write. Attachments are claimed first, for the id
	// the submission will have: a claimed file is never handed to another
	// submission, and one left by a failed write expires with the claim.
	if len(sub.Attachments) > 0 {
		if err := in.checkReplay(ctx, sub, idem, claimed); err != nil {
			return Result{}, err
		}
		sub.ID = gateway.NewID()
		if err := in.claim(ctx, sub, claimed); err != nil {
			return Result{}, err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, in.cfg.StoreTimeout)
	defer cancel()
	sub, created, err := in.store.Create(sctx, sub, idem)
	if err != nil {
		return Result{}, err
	}
	// 6. What follows an accepted submission (not a replay).
	if created {
		if in.events != nil {
			in.events.Submitted(svc, sub, r.Started, in.cfg.Now())
		}
		if visitor != nil {
			in.afterFiling(sctx, sub)
		}
	}
	return Result{Submission: sub, Created: created}, nil
}

// prefill returns the values with the service's prefilled fields set from
// the identity: the signed-in person's, or for a filing on behalf the
// visitor's personnummer (staff type the rest). The caller's map is not
// changed.
func prefill(r Request, v *visitor) map[string][]string {
	pre := map[string]string{}
	if r.Channel == gateway.ChannelAssisted {
		if v != nil {
			for i := range r.Service.Fields {
				if f := &r.Service.Fields[i]; f.Prefill == gateway.PrefillPersonnummer {
					pre[f.Name] = v.number.String()
				}
			}
		}
	} else {
		pre = r.Principal.Prefilled(r.Service)
	}
	if len(pre) == 0 {
		return r.Values
	}
	values := maps.Clone(r.Values)
	if values == nil {
		values = map[string][]string{}
	}
	for k, v := range pre {
		values[k] = []string{v}
	}
	return values
}

// CheckAssurance: submitting needs the service's level of assurance. Not
// signed in: EUnauth; signed in too low (or a machine client): EForbidden;
// both with cause ErrStepUp.
func CheckAssurance(p *gateway.Principal, svc *gateway.Service) *gateway.Error {
	if p.Satisfies(svc.Assurance) {
		return nil
	}
	if p == nil {
		return &gateway.Error{Code: gateway.EUnauth, Message: gateway.Message{ID: "auth.signin_required"}, Cause: ErrStepUp}
	}
	return &gateway.Error{Code: gateway.EForbidden, Message: gateway.Message{ID: "auth.assurance_too_low",
		Data: map[string]any{"Level": gateway.Message{ID: "assurance." + svc.Assurance.String()}}}, Cause: ErrStepUp}
}

// subjectOf is whose submission it is: a signed-in resident's subject; a
// machine client's or an anonymous submission belongs to no one (the
// department reads it; an anonymous one, whoever holds its link).
func subjectOf(p *gateway.Principal) string {
	if p == nil || p.Machine || !p.HasRole(gateway.RoleResident) {
		return ""
	}
	return p.Subject
}

// personSubject is a person's subject as every identity provider gives it
// (auth.PersonSubject; kept in step by a test).
func personSubject(n personnummer.Number) string { return "se-pnr:" + n.String() }

// idempotency is the write's idempotency: the key scoped to the caller, and
// a hash of what was submitted (for filing on behalf also of whom for and
// where), so a key reused with other values is refused.
func (in *Intake) idempotency(r Request, sub *gateway.Submission) (gateway.Idempotency, error) {
	if r.IdempotencyKey == "" {
		return gateway.Idempotency{}, nil
	}
	if len(r.IdempotencyKey) > MaxIdempotencyKey {
		return gateway.Idempotency{}, &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.idempotency_key"}}
	}
	scope := r.IdempotencyScope
	if p := r.Principal; p != nil && p.Subject != "" {
		scope = "user:" + p.Subject
	}
	hash := BodyHash(r.Service, sub.Payload)
	if r.Channel == gateway.ChannelAssisted {
		scope = "desk:" + r.Principal.Subject
		h := sha256.Sum256([]byte(hash + "\x00" + sub.Subject + "\x00" + sub.ServicePoint))
		hash = hex.EncodeToString(h[:])
	}
	return gateway.Idempotency{Scope: scope, Key: strings.Clone(r.IdempotencyKey), BodyHash: hash, TTL: in.cfg.IdempotencyTTL}, nil
}

func (in *Intake) lock(ctx context.Context, idem gateway.Idempotency) (func(), error) {
	lctx, cancel := context.WithTimeout(ctx, in.cfg.StoreTimeout)
	defer cancel()
	return in.locker.LockIdempotency(lctx, gateway.Idempotency{Scope: idem.Scope, Key: idem.Key}, in.cfg.InFlightTTL)
}

// BodyHash identifies a payload for idempotency: the same values give the
// same hash whatever their order.
func BodyHash(svc *gateway.Service, payload map[string]any) string {
	b, _ := json.Marshal(payload) // map keys are sorted
	h := sha256.New()
	h.Write([]byte(svc.ID + "\x00" + svc.Version + "\x00"))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}
