package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/intake"
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

// decodeOnBehalf decodes the on_behalf_of member of an API submission:
// the visitor staff file for, and the service point (from sign-in, or
// named for staff without one). A member that does not decode is a field
// error (the intake still refuses anyone but staff first); a point that
// staff may not use is refused.
func (s *Server) decodeOnBehalf(c *fiber.Ctx, raw json.RawMessage) (*intake.OnBehalf, gateway.FieldErrors, error) {
	ob := &intake.OnBehalf{Names: apiVisitor}
	var obo onBehalfOf
	if err := decodeStrict(raw, &obo); err != nil {
		return ob, gateway.FieldErrors{onBehalfKey: {ID: "desk.error.on_behalf_of"}}, nil
	}
	ob.Personnummer, ob.IdentityCheck, ob.Consent = obo.Personnummer, obo.IdentityCheck, obo.Consent
	if p := principal(c); p != nil && !p.Machine && p.HasRole(gateway.RoleStaff) && s.ServicePoints != nil {
		pt, ok, err := s.staffPoint(c, p, strings.Clone(obo.ServicePoint))
		if err != nil {
			return nil, nil, err
		}
		ob.Point, ob.PointOK = pt, ok
	}
	return ob, nil, nil
}

// apiVisitor names the visitor's members in an API submission's errors.
var apiVisitor = intake.VisitorNames{Personnummer: onBehalfKey + ".personnummer", IdentityCheck: onBehalfKey + ".identity_check",
	Consent: onBehalfKey + ".consent", ServicePoint: onBehalfKey + ".service_point"}

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
