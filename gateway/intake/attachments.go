package intake

import (
	"bufio"
	"context"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/sniff"
)

// Attachments keeps uploaded files (the Redis store implements it): the
// bytes streamed in chunks, a description, and a claim by the submission
// they were attached to.
type Attachments interface {
	PutAttachment(ctx context.Context, meta gateway.Attachment, r io.Reader, max int64, ttl time.Duration) (gateway.Attachment, error)
	// Attachment returns the description and the claiming submission ("").
	Attachment(ctx context.Context, id string) (gateway.Attachment, string, error)
	AttachmentReaderAt(ctx context.Context, id string) (io.ReaderAt, int64, error)
	SetAttachmentType(ctx context.Context, id, mediaType string) error
	MarkAttachmentScanned(ctx context.Context, id string) error
	OpenAttachment(ctx context.Context, id string) (io.ReadCloser, gateway.Attachment, error)
	ClaimAttachments(ctx context.Context, submissionID string, ids []string, ttl time.Duration) error
	DeleteAttachments(ctx context.Context, ids ...string) error
	// IdempotentSubmission is the id of the submission an idempotency key
	// made ("" for none): a repeated request may name files that its
	// first run claimed, and only those.
	IdempotentSubmission(ctx context.Context, idem gateway.Idempotency) (string, error)
}

// Scanner checks a file for malware: nil when clean, an error wrapping
// gateway.ErrAttachmentInfected when infected, any other error when the
// scanner could not give an answer (down, timed out). gateway/clamav
// (clamd) and gateway/httpscan implement it.
type Scanner interface {
	Scan(ctx context.Context, r io.Reader) error
}

// What the intake does with an upload the scanner could not check.
const (
	// ScanRefuse refuses the upload ("try again later"); nothing is kept.
	ScanRefuse = "refuse"
	// ScanHold keeps the file but holds it: the form lists it, and the
	// submission is refused ("try again later", the file kept) until the
	// scanner has found it clean.
	ScanHold = "hold"
	// ScanAccept keeps the file unchecked (the scanner is an extra, not a
	// gate); logged as a warning.
	ScanAccept = "accept"
)

// Upload is one file sent for a file field.
type Upload struct {
	Service *gateway.Service
	Field   string
	// Name is the client's file name (sanitised by the store).
	Name string
	// Body is the file's bytes; read once, in chunks.
	Body io.Reader
	// Scope binds the upload to its uploader (UploadScope): only a
	// submission with that scope may attach it.
	Scope string
}

// UploadScope is the scope an upload is bound to: a signed-in person's
// subject, else what the adapter says (a form's token, an API client).
func UploadScope(p *gateway.Principal, fallback string) string {
	if p != nil && p.Subject != "" {
		return "user:" + p.Subject
	}
	return fallback
}

func fieldError(field string, m *gateway.Message) error {
	return &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"},
		Fields: gateway.FieldErrors{field: *m}}
}

// ErrNoAttachments: the intake was built without an attachment store.
var ErrNoAttachments = errors.New("intake: no attachment store")

// Upload stores one file for a file field after checking it: its type by
// its first bytes (and for a zip container by its directory, refused when
// it looks like a zip bomb), against the field's accept list and the
// name's extension; its size against max_size while it streams; then the
// malware scanner, when one is configured. What is refused is not kept
// (EInvalid with the field's message); the stored attachment expires
// after UploadTTL unless a submission claims it.
func (in *Intake) Upload(ctx context.Context, u Upload) (gateway.Attachment, error) {
	if in.attachments == nil {
		return gateway.Attachment{}, ErrNoAttachments
	}
	f := u.Service.Field(u.Field)
	if f == nil || f.Type != gateway.FieldFile {
		return gateway.Attachment{}, fieldError(u.Field, gateway.NewMessage(gateway.MsgUnknownField))
	}
	name := gateway.SanitizeFilename(u.Name)
	typeErr := func() error {
		return fieldError(f.Name, gateway.NewMessage(gateway.MsgAttachmentType, "Name", name, "Allowed", f.AcceptedTypes()))
	}
	br := bufio.NewReaderSize(u.Body, 512)
	head, err := br.Peek(sniff.HeadSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return gateway.Attachment{}, err // the body broke off
	}
	if len(head) == 0 {
		return gateway.Attachment{}, fieldError(f.Name, gateway.NewMessage(gateway.MsgAttachmentEmpty, "Name", name))
	}
	typ := sniff.Head(head)
	zipped := typ == sniff.Zip
	if zipped {
		if !f.AcceptsAttachment(sniff.DOCX, name) && !f.AcceptsAttachment(sniff.ODT, name) {
			return gateway.Attachment{}, typeErr()
		}
	} else if !f.AcceptsAttachment(typ, name) {
		return gateway.Attachment{}, typeErr() // refused before a byte is stored
	}
	a, err := in.attachments.PutAttachment(ctx, gateway.Attachment{Field: f.Name, Name: name, Type: typ, Scope: u.Scope},
		br, f.AttachmentMaxSize(), in.cfg.UploadTTL)
	switch {
	case errors.Is(err, gateway.ErrAttachmentTooLarge):
		return gateway.Attachment{}, fieldError(f.Name, gateway.NewMessage(gateway.MsgAttachmentTooLarge, "Name", name, "Max", gateway.FormatSize(f.AttachmentMaxSize())))
	case errors.Is(err, gateway.ErrAttachmentTooMany): // the uploader's pending uploads (store's bound)
		return gateway.Attachment{}, fieldError(f.Name, gateway.NewMessage(gateway.MsgAttachmentTooMany, "Max", f.AttachmentMaxFiles()))
	case errors.Is(err, gateway.ErrAttachmentEmptyFile):
		return gateway.Attachment{}, fieldError(f.Name, gateway.NewMessage(gateway.MsgAttachmentEmpty, "Name", name))
	case err != nil:
		return gateway.Attachment{}, err
	}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.StoreTimeout)
		defer cancel()
		if err := in.attachments.DeleteAttachments(dctx, a.ID); err != nil {
			in.log.Warn("refused upload not deleted; it expires", "attachment", a.ID, "err", err)
		}
	}
	if zipped {
		ra, size, err := in.attachments.AttachmentReaderAt(ctx, a.ID)
		if err != nil {
			drop()
			return gateway.Attachment{}, err
		}
		inner, err := sniff.Container(ra, size)
		if err != nil || inner == "" || !f.AcceptsAttachment(inner, name) {
			drop()
			if err != nil && !errors.Is(err, sniff.ErrNotZip) && !errors.Is(err, sniff.ErrZipBomb) {
				return gateway.Attachment{}, err // the store, not the file
			}
			return gateway.Attachment{}, typeErr()
		}
		if err := in.attachments.SetAttachmentType(ctx, a.ID, inner); err != nil {
			drop()
			return gateway.Attachment{}, err
		}
		a.Type = inner
	}
	held, err := in.scan(ctx, a, in.cfg.ScanUnavailable)
	if err != nil {
		drop()
		return gateway.Attachment{}, err
	}
	if !held && in.scanner != nil {
		if err := in.attachments.MarkAttachmentScanned(ctx, a.ID); err != nil {
			drop()
			return gateway.Attachment{}, err
		}
		a.Scanned = true
	}
	return a, nil
}

// scan hands a stored attachment's bytes to the scanner. held: the
// scanner could not answer and policy (ScanHold, ScanAccept) keeps the
// file unchecked.
func (in *Intake) scan(ctx context.Context, a gateway.Attachment, policy string) (held bool, err error) {
	if in.scanner == nil {
		return false, nil
	}
	rc, _, err := in.attachments.OpenAttachment(ctx, a.ID)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	sctx, cancel := context.WithTimeout(ctx, in.cfg.ScanTimeout)
	defer cancel()
	err = in.scanner.Scan(sctx, rc)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, gateway.ErrAttachmentInfected):
		in.log.Warn("upload refused by the malware scanner", "attachment", a.ID, "field", a.Field, "err", err)
		return false, fieldError(a.Field, gateway.NewMessage(gateway.MsgAttachmentInfected, "Name", a.Name))
	case policy == ScanAccept || policy == ScanHold:
		in.log.Warn("malware scanner unavailable; upload kept unchecked", "attachment", a.ID, "policy", policy, "err", err)
		return true, nil
	default:
		in.log.Error("malware scanner unavailable; upload refused", "attachment", a.ID, "err", err)
		return false, fieldError(a.Field, gateway.NewMessage(gateway.MsgAttachmentUnscanned, "Name", a.Name))
	}
}

// rescan checks, at submit, a file held while the scanner was down
// (ScanHold): clean, it is marked so; infected, deleted; the scanner still
// down, the submission waits (the file stays attached).
func (in *Intake) rescan(ctx context.Context, a gateway.Attachment) *gateway.Message {
	held, err := in.scan(ctx, a, ScanRefuse)
	var gerr *gateway.Error
	switch {
	case held:
	case errors.As(err, &gerr) && gerr.Fields[a.Field].ID == gateway.MsgAttachmentInfected:
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.StoreTimeout)
		in.attachments.DeleteAttachments(dctx, a.ID)
		cancel()
		m := gerr.Fields[a.Field]
		return &m
	case err != nil:
		return gateway.NewMessage(gateway.MsgAttachmentUnscanned, "Name", a.Name)
	default:
		if err := in.attachments.MarkAttachmentScanned(ctx, a.ID); err != nil {
			return gateway.NewMessage(gateway.MsgAttachmentUnscanned, "Name", a.Name)
		}
	}
	return nil
}

// resolveAttachments replaces the values of the service's file fields,
// attachment ids as sent (or descriptions a form carried, of which only
// the id is used), with the stored descriptions (gateway.AttachmentValue)
// for the file kind to validate. An id that is unknown, expired, uploaded
// for another field or by another scope, or claimed by another submission
// is a field error. claimed are the ids already claimed by a submission
// (id -> that submission): allowed only with an idempotency key, and
// checked against the submission the key made (checkReplay).
//
// With scan (at submit), a file held unchecked (ScanHold) is scanned now.
func (in *Intake) resolveAttachments(ctx context.Context, r Request, values map[string][]string, scan bool) (map[string][]string, gateway.FieldErrors, map[string]string, error) {
	errs := gateway.FieldErrors{}
	claimed := map[string]string{}
	var out map[string][]string
	for i := range r.Service.Fields {
		f := &r.Service.Fields[i]
		if f.Type != gateway.FieldFile || len(values[f.Name]) == 0 {
			continue
		}
		if out == nil {
			out = make(map[string][]string, len(values))
			for k, v := range values {
				out[k] = v
			}
		}
		if len(values[f.Name]) > f.AttachmentMaxFiles()+gateway.LimitAttachmentMaxFiles {
			errs[f.Name] = *gateway.NewMessage(gateway.MsgAttachmentTooMany, "Max", f.AttachmentMaxFiles())
			continue
		}
		var resolved []string
		for _, v := range values[f.Name] {
			id := v
			if a, ok := gateway.ParseAttachmentValue(v); ok {
				id = a.ID
			}
			if id == "" {
				continue
			}
			if in.attachments == nil {
				errs[f.Name] = *gateway.NewMessage(gateway.MsgAttachmentNotFound)
				break
			}
			actx, cancel := context.WithTimeout(ctx, in.cfg.StoreTimeout)
			a, owner, err := in.attachments.Attachment(actx, id)
			cancel()
			if errors.Is(err, gateway.ErrAttachmentNotFound) {
				errs[f.Name] = *gateway.NewMessage(gateway.MsgAttachmentNotFound)
				break
			}
			if err != nil {
				return nil, nil, nil, err
			}
			if a.Field != f.Name || (a.Scope != "" && !slices.Contains(r.UploadScopes, a.Scope)) ||
				(owner != "" && r.IdempotencyKey == "") {
				errs[f.Name] = *gateway.NewMessage(gateway.MsgAttachmentNotFound)
				break
			}
			if scan && !a.Scanned && owner == "" && in.scanner != nil && in.cfg.ScanUnavailable == ScanHold {
				if m := in.rescan(ctx, a); m != nil {
					errs[f.Name] = *m
					break
				}
			}
			if owner != "" {
				claimed[a.ID] = owner
			}
			resolved = append(resolved, gateway.AttachmentValue(a))
		}
		out[f.Name] = resolved
	}
	if out == nil {
		return values, errs, nil, nil
	}
	return out, errs, claimed, nil
}

// attachmentsOf are the attachments in a validated payload, in field
// order; a total over MaxSubmissionAttachments is an error on the last
// file field.
func (in *Intake) attachmentsOf(svc *gateway.Service, payload map[string]any) ([]gateway.Attachment, gateway.FieldErrors) {
	var out []gateway.Attachment
	var total int64
	last := ""
	for i := range svc.Fields {
		f := &svc.Fields[i]
		list, ok := payload[f.Name].([]gateway.Attachment)
		if !ok {
			continue
		}
		for _, a := range list {
			total += a.Size
			out = append(out, a)
		}
		last = f.Name
	}
	if in.cfg.MaxSubmissionAttachments > 0 && total > in.cfg.MaxSubmissionAttachments {
		return nil, gateway.FieldErrors{last: *gateway.NewMessage(gateway.MsgAttachmentTotal, "Max", gateway.FormatSize(in.cfg.MaxSubmissionAttachments))}
	}
	return out, nil
}

// claim marks the submission's attachments as its own before the write;
// those already claimed by an earlier submission (a repeated request with
// the same idempotency key) are left to the store's answer.
func (in *Intake) claim(ctx context.Context, sub *gateway.Submission, claimed map[string]string) error {
	var ids []string
	for _, a := range sub.Attachments {
		if _, ok := claimed[a.ID]; !ok {
			ids = append(ids, a.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, in.cfg.StoreTimeout)
	defer cancel()
	err := in.attachments.ClaimAttachments(cctx, sub.ID, ids, in.cfg.AttachmentKeep)
	if errors.Is(err, gateway.ErrAttachmentNotFound) {
		field := sub.Attachments[0].Field
		for _, a := range sub.Attachments {
			if slices.Contains(ids, a.ID) {
				field = a.Field
				break
			}
		}
		return fieldError(field, gateway.NewMessage(gateway.MsgAttachmentNotFound))
	}
	return err
}

// AttachmentValues returns values with the file fields' attachment ids
// replaced by the stored descriptions (gateway.AttachmentValue), for a
// form drawn again or a step validated: only attachments the scopes may
// use, and not yet claimed; others are left out (the submit reports them).
func (in *Intake) AttachmentValues(ctx context.Context, svc *gateway.Service, values map[string][]string, scopes []string) map[string][]string {
	out, errs, _, err := in.resolveAttachments(ctx, Request{Service: svc, UploadScopes: scopes}, values, false)
	if err != nil {
		return values
	}
	if len(errs) == 0 {
		return out
	}
	// Resolve field by field, keeping what resolves.
	for name := range errs {
		var kept []string
		for _, v := range values[name] {
			one, e, _, err := in.resolveAttachments(ctx, Request{Service: svc, UploadScopes: scopes}, map[string][]string{name: {v}}, false)
			if err == nil && len(e) == 0 {
				kept = append(kept, one[name]...)
			}
		}
		out[name] = kept
	}
	return out
}

// checkReplay: files already claimed may be named only by a repetition of
// the request that claimed them, the one its idempotency key made (the
// store then answers with that submission); anything else is as if the
// files were gone.
func (in *Intake) checkReplay(ctx context.Context, sub *gateway.Submission, idem gateway.Idempotency, claimed map[string]string) error {
	if len(claimed) == 0 {
		return nil
	}
	prev := ""
	if idem.Key != "" {
		cctx, cancel := context.WithTimeout(ctx, in.cfg.StoreTimeout)
		var err error
		prev, err = in.attachments.IdempotentSubmission(cctx, idem)
		cancel()
		if err != nil {
			return err
		}
	}
	for _, a := range sub.Attachments {
		if owner, ok := claimed[a.ID]; ok && (prev == "" || owner != prev) {
			return fieldError(a.Field, gateway.NewMessage(gateway.MsgAttachmentNotFound))
		}
	}
	return nil
}
