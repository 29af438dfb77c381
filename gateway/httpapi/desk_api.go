package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/servicepoint"
)

// decodeStrict decodes one JSON object into v; unknown keys are errors.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// onBehalfKey is the member of a submission's JSON body that makes it a
// filing on a visitor's behalf.
const onBehalfKey = "on_behalf_of"

type onBehalfOf struct {
	Personnummer  string `json:"personnummer"`
	IdentityCheck string `json:"identity_check"`
	Consent       bool   `json:"consent"`
	ServicePoint  string `json:"service_point"` // only for staff without one from sign-in
}

// splitOnBehalf reports whether body is a JSON object with on_behalf_of,
// and returns that member and the rest of the object (the field values).
func splitOnBehalf(body []byte) (obo json.RawMessage, rest []byte, found bool) {
	if !bytes.Contains(body, []byte(onBehalfKey)) {
		return nil, nil, false
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, nil, false
	}
	obo, found = raw[onBehalfKey]
	if !found {
		return nil, nil, false
	}
	delete(raw, onBehalfKey)
	rest, err := json.Marshal(raw)
	if err != nil {
		return nil, nil, false
	}
	return obo, rest, true
}

// apiSubmitOnBehalf: POST /api/v1/services/{id}/submissions with an
// on_behalf_of object: staff file for a visitor. Anyone but staff (a
// signed-in person with the staff role) gets 403, anonymous callers too.
func (s *Server) apiSubmitOnBehalf(c *fiber.Ctx, svc *gateway.Service, oboRaw json.RawMessage, rest []byte) error {
	p := principal(c)
	if p == nil || p.Machine || !p.HasRole(gateway.RoleStaff) {
		return gateway.Errorf(gateway.EForbidden, "desk.error.staff_only", nil)
	}
	st, err := s.desk()
	if err != nil {
		return err
	}
	var obo onBehalfOf
	if err := decodeStrict(oboRaw, &obo); err != nil {
		return &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"},
			Fields: gateway.FieldErrors{onBehalfKey: {ID: "desk.error.on_behalf_of"}}, Cause: err}
	}
	pt, ok, err := s.staffPoint(c, p, strings.Clone(obo.ServicePoint))
	if err != nil {
		return err
	}
	if !svcAllows(svc, gateway.ChannelAssisted) {
		return gateway.Errorf(gateway.EForbidden, "desk.error.channel", nil)
	}
	release, err := s.lockIdempotencyKey(c)
	if err != nil {
		return err
	}
	defer release()
	now := s.Config.Now()
	names := [3]string{onBehalfKey + ".personnummer", onBehalfKey + ".identity_check", onBehalfKey + ".consent"}
	v, errs := parseVisitor(obo.Personnummer, obo.IdentityCheck, obo.Consent, now, names)
	if !ok {
		errs[onBehalfKey+".service_point"] = gateway.Message{ID: "desk.error.choose_point"}
	}
	if len(errs) == 0 {
		if aerr := s.checkVisitorAssurance(c, p, svc, v.IdentityCheck); aerr != nil {
			if err := s.audit(c, st, p, pt.ID, servicepoint.AuditEntry{Subject: v.Personnummer.Masked(), Action: servicepoint.ActionRefused,
				Service: svc.ID, IdentityCheck: string(v.IdentityCheck)}); err != nil {
				return err
			}
			return aerr
		}
	}
	payload, ferrs, err := validateJSON(svc, rest, now)
	if err != nil {
		return gateway.Errorf(gateway.EInvalid, "error.bad_json", err)
	}
	if len(ferrs) > 0 {
		s.trackInvalid(c, svc, gateway.ChannelAssisted, ferrs)
	}
	for k, m := range ferrs {
		errs[k] = m
	}
	if len(errs) > 0 {
		return &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"}, Fields: errs}
	}
	key := c.Get("Idempotency-Key")
	if len(key) > 255 {
		return &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.idempotency_key"}}
	}
	sub, created, err := s.fileOnBehalf(c, st, filing{p: p, point: pt, svc: svc, visitor: v, payload: payload,
		locale: visitorLocale(c, ""), token: strings.Clone(key)})
	if err != nil {
		return err
	}
	if !created {
		c.Set("Idempotent-Replayed", "true")
	}
	out := s.acceptedJSON(c, sub)
	out["channel"] = sub.Channel
	out["service_point"] = sub.ServicePoint
	out["subject"] = maskSubject(sub.Subject)
	out["print_url"] = s.Config.PublicURL + "/desk/receipt/" + sub.ID
	return c.Status(fiber.StatusAccepted).JSON(out)
}

type deskSubmissionJSON struct {
	Reference string         `json:"reference"`
	Service   string         `json:"service"`
	Subject   string         `json:"subject"` // masked
	FiledByMe bool           `json:"filed_by_me"`
	Status    gateway.Status `json:"status"`
	CreatedAt time.Time      `json:"created_at"`
	Today     bool           `json:"today"`
	PrintURL  string         `json:"print_url"`
}

// apiDeskSubmissions: GET /api/v1/desk/submissions (role staff): what the
// staff member's service point filed this week (today's marked), with the
// subject masked.
func (s *Server) apiDeskSubmissions(c *fiber.Ctx) error {
	p, err := requireStaff(c)
	if err != nil {
		return err
	}
	st, err := s.desk()
	if err != nil {
		return err
	}
	pt, ok, err := s.staffPoint(c, p, clone(c.Query("service_point")))
	if err != nil {
		return err
	}
	if !ok {
		return &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"},
			Fields: gateway.FieldErrors{"service_point": {ID: "desk.error.choose_point"}}}
	}
	week, today := weekStart(s.Config.Now())
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	subs, err := st.DeskSubmissions(ctx, pt.ID, week, 500)
	if err != nil {
		return err
	}
	out := make([]deskSubmissionJSON, 0, len(subs))
	for _, sub := range subs {
		out = append(out, deskSubmissionJSON{Reference: sub.Reference, Service: sub.Service, Subject: maskSubject(sub.Subject),
			FiledByMe: sub.Actor == p.Subject, Status: sub.Status, CreatedAt: sub.CreatedAt, Today: !sub.CreatedAt.Before(today),
			PrintURL: s.Config.PublicURL + "/desk/receipt/" + sub.ID})
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"service_point": pt.ID, "week_from": week.Format(time.DateOnly), "submissions": out})
}
