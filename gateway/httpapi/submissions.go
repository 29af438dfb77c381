package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"slices"
	"sort"
	"strconv"
	"time"
	_ "time/tzdata" // Europe/Stockholm on machines without a zoneinfo database

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/intake"
)

var stockholm = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		return time.UTC
	}
	return loc
}()

type historyRow struct{ ISO, When, Status, Message string }

type statusContent struct {
	Receipt                                 bool
	ServiceTitle, Reference, Link, LinkText string
	Created, CreatedISO, Status, StatusText string
	StatusExplanation, CaseReference        string
	Delayed                                 bool
	History                                 []historyRow
	Signed                                  *receiptJSON // receipts.go
	Survey                                  *surveyView  // satisfaction.go
	// A completion request is open: its question, and the answer form
	// (AnswerToken makes a form sent twice one answer).
	NeedsAnswer           bool
	Question, AnswerToken string
	Answered              bool
}

// statusPage shows a submission's status; with ?receipt=1, as the receipt.
func (s *Server) statusPage(c *fiber.Ctx) error {
	sub, err := s.readSubmission(c)
	if err != nil {
		return err
	}
	return s.renderStatus(c, sub, fiber.StatusOK, "", "", "")
}

// renderStatus draws the status page; on the receipt, the satisfaction
// question with what was answered and a problem with it (satisfaction.go).
func (s *Server) renderStatus(c *fiber.Ctx, sub *gateway.Submission, status int, score, comment, surveyErr string) error {
	var err error
	l := s.localizer(c)
	title := sub.Service
	if svc, ok := s.Catalog.Get(sub.Service); ok {
		title = l.T(svc.MsgTitle())
	}
	c.Locals(localsNoticeService, sub.Service) // the service's notices (notices.go)
	link := "/s/" + sub.ID
	sc := statusContent{
		Receipt: c.Query("receipt") == "1", ServiceTitle: title, Reference: sub.Reference,
		Link: link, LinkText: s.Config.PublicURL + link,
		Created: l.DateTime(sub.CreatedAt.In(stockholm)), CreatedISO: sub.CreatedAt.Format(time.RFC3339),
		Status: string(sub.Status), StatusText: l.T("status.value." + string(sub.Status)),
		StatusExplanation: l.T("status.explain." + string(sub.Status)),
		CaseReference:     sub.CaseReference, Delayed: sub.Delayed,
	}
	if sc.Signed, err = s.receiptOf(sub); err != nil {
		return err
	}
	if sc.Receipt {
		if sc.Survey, err = s.survey(c, sub, score, comment, surveyErr); err != nil {
			return err
		}
	}
	if sc.LinkText == link {
		sc.LinkText = c.BaseURL() + link
	}
	for _, h := range sub.History {
		msg := h.Message
		if h.Note == "answered" {
			msg = l.T("answer.history")
		}
		sc.History = append(sc.History, historyRow{ISO: h.At.Format(time.RFC3339), When: l.DateTime(h.At.In(stockholm)),
			Status: l.T("status.value." + string(h.Status)), Message: msg})
	}
	if sub.Status == gateway.StatusNeedsInfo {
		sc.NeedsAnswer, sc.Question, sc.AnswerToken = true, intake.Question(sub), randomToken(16)
		sc.Answered = c.Query("answered") == "1"
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	heading := l.T("status.heading")
	if sc.Receipt {
		heading = l.T("receipt.heading")
	}
	return s.render(c, status, "status", heading, sc)
}

func (s *Server) getSubmission(c *fiber.Ctx) (*gateway.Submission, error) {
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	return s.Store.Get(ctx, c.Params("id"))
}

// readSubmission is getSubmission for the status page and API: a
// submission owned by a signed-in person is shown only to them (and to its
// department); to anyone else, link or not, it does not exist (404).
func (s *Server) readSubmission(c *fiber.Ctx) (*gateway.Submission, error) {
	sub, err := s.getSubmission(c)
	if err == nil && !canRead(c, sub) {
		return nil, gateway.Errorf(gateway.ENotFound, "error.submission_not_found", nil)
	}
	return sub, err
}

// submissionJSON is a submission as the API shows it: no payload.
type submissionJSON struct {
	ID            string                 `json:"id"`
	Reference     string                 `json:"reference"`
	Service       string                 `json:"service"`
	Status        gateway.Status         `json:"status"`
	CaseReference string                 `json:"case_reference"`
	Delayed       bool                   `json:"delayed"`
	CreatedAt     time.Time              `json:"created_at"`
	History       []gateway.StatusChange `json:"history"`
	StatusURL     string                 `json:"status_url"`
	ReceiptURL    string                 `json:"receipt_url"`
	Receipt       *receiptJSON           `json:"receipt,omitempty"` // the signed receipt (receipts.go)
	// The resident's answer to the satisfaction question, for the owning
	// department only (satisfaction.go).
	Satisfaction *satisfactionJSON `json:"satisfaction,omitempty"`
}

// apiGetSubmission: GET /api/v1/submissions/{id} (contract).
func (s *Server) apiGetSubmission(c *fiber.Ctx) error {
	sub, err := s.readSubmission(c)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	hist := sub.History
	if hist == nil {
		hist = []gateway.StatusChange{}
	}
	signed, err := s.receiptOf(sub)
	if err != nil {
		return err
	}
	answer, err := s.satisfactionFor(c, sub)
	if err != nil {
		return err
	}
	return c.JSON(submissionJSON{
		Receipt: signed, Satisfaction: answer,
		ID: sub.ID, Reference: sub.Reference, Service: sub.Service, Status: sub.Status,
		CaseReference: sub.CaseReference, Delayed: sub.Delayed, CreatedAt: sub.CreatedAt, History: hist,
		StatusURL: s.Config.PublicURL + "/api/v1/submissions/" + sub.ID, ReceiptURL: s.Config.PublicURL + "/s/" + sub.ID,
	})
}

// apiSubmit: POST /api/v1/services/{id}/submissions (contract). It decodes
// the JSON body (with on_behalf_of: staff filing for a visitor,
// desk_api.go) and hands it to the intake; 202 with the receipt once
// stored durably.
func (s *Server) apiSubmit(c *fiber.Ctx) error {
	svc, ok := s.Catalog.Get(c.Params("id"))
	if !ok {
		return gateway.Errorf(gateway.ENotFound, "error.service_not_found", nil)
	}
	if mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType)); err != nil || mt != fiber.MIMEApplicationJSON {
		return &gateway.Error{Code: "unsupported_media_type", Message: gateway.Message{ID: "error.json_required"}}
	}
	req := intake.Request{
		Service: svc, Channel: gateway.ChannelAPI, Principal: principal(c), Strict: true, Locale: lang(c).String(),
		IdempotencyKey: c.Get("Idempotency-Key"), IdempotencyScope: anonymousScope(c), LockInFlight: true,
		UploadScopes: []string{apiUploadScope(c)},
	}
	body := c.Body()
	if obo, rest, found := splitOnBehalf(body); found {
		var err error
		req.Channel, req.Locale, body = gateway.ChannelAssisted, visitorLocale(c, ""), rest
		if req.OnBehalf, req.Errors, err = s.decodeOnBehalf(c, obo); err != nil {
			return err
		}
	}
	values, errs, err := jsonValues(svc, body)
	if err != nil {
		return gateway.Errorf(gateway.EInvalid, "error.bad_json", err)
	}
	for k, m := range req.Errors {
		errs[k] = m
	}
	for k, m := range uploadErrors(c) { // files refused in a multipart submission
		errs[k] = m
	}
	req.Values, req.Errors = values, errs
	res, err := s.Intake.Submit(c.UserContext(), req)
	if err != nil {
		return err
	}
	if !res.Created {
		c.Set("Idempotent-Replayed", "true")
	}
	out := s.acceptedJSON(c, res.Submission)
	if signed, err := s.receiptOf(res.Submission); err != nil {
		return err
	} else if signed != nil {
		// The receipt and the payload as stored (normalized by the
		// validation): its hash is the one signed, so this answer saved
		// as a file is what `gateway verify-receipt` checks.
		out.Receipt, out.Payload = signed, res.Submission.Payload
	}
	if req.OnBehalf != nil {
		sub := res.Submission
		out.Channel = sub.Channel
		out.ServicePoint = sub.ServicePoint
		out.Subject = maskSubject(sub.Subject)
		out.PrintURL = s.Config.PublicURL + "/desk/receipt/" + sub.ID
	}
	return c.Status(fiber.StatusAccepted).JSON(out)
}

// objectMembers are the members of field name's JSON object value, nil
// when the field's value is not an object.
func objectMembers(svc *gateway.Service, name string) []string {
	if f := svc.Field(name); f != nil {
		if k, ok := f.Kind(); ok {
			return k.Members()
		}
	}
	return nil
}

// acceptedAnswer is the 202 answer to an accepted submission (contract).
// A struct rather than a map: encoding/json then neither sorts keys nor
// goes through interfaces per member. The members are in the order of
// their names, so the bytes are those the map used to give; the
// interface-typed ones are present whenever set (also when empty), left
// out when nil, as the map's were.
type acceptedAnswer struct {
	Channel      any            `json:"channel,omitempty"` // filing on behalf (desk_api.go)
	ID           string         `json:"id"`
	Payload      any            `json:"payload,omitempty"` // with the receipt
	PrintURL     string         `json:"print_url,omitempty"`
	Receipt      *receiptJSON   `json:"receipt,omitempty"`
	ReceiptURL   string         `json:"receipt_url"`
	Reference    string         `json:"reference"`
	ServicePoint any            `json:"service_point,omitempty"`
	Status       gateway.Status `json:"status"`
	StatusURL    string         `json:"status_url"`
	Subject      any            `json:"subject,omitempty"`
}

// acceptedJSON is the answer to an accepted submission (contract): it sets
// Location to the status URL and returns the receipt's members.
func (s *Server) acceptedJSON(c *fiber.Ctx, sub *gateway.Submission) *acceptedAnswer {
	status := s.Config.PublicURL + "/api/v1/submissions/" + sub.ID
	c.Set(fiber.HeaderLocation, status)
	return &acceptedAnswer{ID: sub.ID, Reference: sub.Reference, Status: sub.Status,
		StatusURL: status, ReceiptURL: s.Config.PublicURL + "/s/" + sub.ID}
}

// jsonValues turns a JSON object of field values into the same
// name -> []string shape an HTML form gives, so both go through one
// validation. Strings, numbers, booleans, null and arrays of those are
// accepted; an object only for a field whose kind takes one (its
// Members, sent in that order as the form would), otherwise it is a field
// error.
func jsonValues(svc *gateway.Service, body []byte) (map[string][]string, gateway.FieldErrors, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, err
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("trailing data after the JSON object")
	}
	values := map[string][]string{}
	errs := gateway.FieldErrors{}
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		var vs []string
		ok := true
		add := func(v any) {
			switch x := v.(type) {
			case string:
				vs = append(vs, x)
			case json.Number:
				vs = append(vs, x.String())
			case bool:
				vs = append(vs, strconv.FormatBool(x))
			case nil:
			default:
				ok = false
			}
		}
		if arr, isArr := raw[k].([]any); isArr {
			for _, v := range arr {
				add(v)
			}
		} else if obj, isObj := raw[k].(map[string]any); isObj {
			members := objectMembers(svc, k)
			ok = members != nil
			for name := range obj {
				ok = ok && slices.Contains(members, name)
			}
			for _, m := range members {
				if ok {
					n := len(vs)
					add(obj[m])
					if len(vs) == n {
						vs = append(vs, "") // a member left out or null
					}
				}
			}
		} else {
			add(raw[k])
		}
		if !ok {
			errs[k] = gateway.Message{ID: gateway.MsgType}
			continue
		}
		values[k] = vs
	}
	return values, errs, nil
}
