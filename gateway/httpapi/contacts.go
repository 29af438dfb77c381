package httpapi

import (
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/language"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/servicepoint"
)

// Contacts that did not start digitally, registered at the service-point
// desk: service, channel (visit, phone, paper, email), outcome and the
// language used. They feed the usage model's non-digital channels
// (usage.Recorder.RecordContact; a visit is channel "assisted") so that
// digital take-up has its full denominator, and the desk's statistics per
// service point (channel and outcome).
//
// Double counting: a contact whose outcome is filed_with_help became a
// submission through the gateway, which usage counts by its own
// "submitted" event (channel assisted when filed at the desk); it is
// therefore NOT registered with usage, only in the service point's
// statistics. Filing on behalf through the desk registers that desk
// contact itself: staff need not (and should not) register it again.

// contactRecorder is usage.Recorder's RecordContact.
type contactRecorder interface {
	RecordContact(service, department string, ch gateway.Channel, locale string, at time.Time) error
}

type contactRequest struct {
	Service      string `json:"service"`
	Channel      string `json:"channel"`
	Outcome      string `json:"outcome"`
	Language     string `json:"language"`
	ServicePoint string `json:"service_point"` // only for staff without one from sign-in
}

type contactResult struct {
	Service        string          `json:"service"`
	Channel        string          `json:"channel"`
	UsageChannel   gateway.Channel `json:"usage_channel"`
	Outcome        string          `json:"outcome"`
	Language       string          `json:"language,omitempty"`
	ServicePoint   string          `json:"service_point"`
	CountedInUsage bool            `json:"counted_in_usage"`
}

// registerContact validates and records one contact.
func (s *Server) registerContact(c *fiber.Ctx, p *gateway.Principal, req contactRequest) (contactResult, error) {
	st, err := s.desk()
	if err != nil {
		return contactResult{}, err
	}
	pt, ok, err := s.staffPoint(c, p, req.ServicePoint)
	if err != nil {
		return contactResult{}, err
	}
	errs := gateway.FieldErrors{}
	if !ok {
		errs["service_point"] = gateway.Message{ID: "desk.error.choose_point"}
	}
	svc, found := s.Catalog.Get(req.Service)
	if !found {
		errs["service"] = gateway.Message{ID: "desk.error.service"}
	}
	ch := servicepoint.ContactChannel(req.Channel)
	if !ch.Valid() {
		errs["channel"] = gateway.Message{ID: "desk.error.contact_channel"}
	}
	out := servicepoint.Outcome(req.Outcome)
	if !out.Valid() {
		errs["outcome"] = gateway.Message{ID: "desk.error.outcome"}
	}
	locale := ""
	if req.Language != "" {
		t, err := language.Parse(req.Language)
		if err != nil || len(req.Language) > 35 {
			errs["language"] = gateway.Message{ID: "desk.error.language"}
		} else {
			locale = t.String()
		}
	}
	if len(errs) > 0 {
		return contactResult{}, &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"}, Fields: errs}
	}
	now := s.Config.Now()
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	if err := st.AddDeskContact(ctx, now.In(stockholm).Format(time.DateOnly), pt.ID, svc.ID, string(ch), string(out)); err != nil {
		return contactResult{}, err
	}
	res := contactResult{Service: svc.ID, Channel: string(ch), UsageChannel: ch.UsageChannel(), Outcome: string(out),
		Language: locale, ServicePoint: pt.ID}
	if out.CountsInUsage() {
		if rc, ok := s.Usage.(contactRecorder); ok && s.Usage != nil {
			if err := rc.RecordContact(svc.ID, svc.Department, ch.UsageChannel(), locale, now); err != nil {
				return contactResult{}, err
			}
			res.CountedInUsage = true
		}
	}
	return res, nil
}

// apiContact: POST /api/v1/contacts {"service","channel","outcome","language"}
// (role staff) -> 201 with what was recorded.
func (s *Server) apiContact(c *fiber.Ctx) error {
	p, err := requireStaff(c)
	if err != nil {
		return err
	}
	var req contactRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return gateway.Errorf(gateway.EInvalid, "error.bad_json", err)
	}
	res, err := s.registerContact(c, p, req)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(res)
}

// deskContactForm: POST /desk/contacts, the desk's three-click form
// (service, channel, outcome button; language optional).
func (s *Server) deskContactForm(c *fiber.Ctx) error {
	p, err := requireStaff(c)
	if err != nil {
		return err
	}
	req := contactRequest{Service: c.FormValue("service"), Channel: c.FormValue("channel"),
		Outcome: c.FormValue("outcome"), Language: c.FormValue("language")}
	req = contactRequest{Service: clone(req.Service), Channel: clone(req.Channel), Outcome: clone(req.Outcome), Language: clone(req.Language)}
	res, err := s.registerContact(c, p, req)
	if err != nil {
		return err
	}
	done := "contact"
	if !res.CountedInUsage && res.Outcome == string(servicepoint.OutcomeFiledWithHelp) {
		done = "contact_filed"
	}
	return c.Redirect("/desk?done="+done, fiber.StatusSeeOther)
}
