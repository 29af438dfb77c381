package httpapi

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/language"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/gateway/servicepoint"
	"github.com/kommun/servicegateway/locales"
)

// The service-point desk: staff file on a visitor's behalf (channel
// assisted) and register contacts that did not start digitally. Access:
// role staff (a person, not a machine client); the service point comes from
// the identity provider's claim, or, when the claim gives none, is chosen on
// the desk from the configured points (a signed cookie, desk_point.go). Staff see what
// their service point filed this week; nothing else of residents'. Every
// action on behalf of a resident goes to the audit stream (audit.go).

// DeskStore is what the desk reads and writes besides submissions
// (*redisstore.Store implements it); filing goes through the intake.
type DeskStore interface {
	DeskSubmissions(ctx context.Context, point string, since time.Time, limit int) ([]*gateway.Submission, error)
	AddDeskContact(ctx context.Context, day, point, service, channel, outcome string) error
	DeskContacts(ctx context.Context, days []string) ([]gateway.DeskContactCount, error)
	Audit(ctx context.Context, before string, limit int) ([]servicepoint.AuditEntry, int64, error)
}

func (s *Server) desk() (DeskStore, error) {
	st := s.Desk
	if st == nil || s.ServicePoints == nil {
		return nil, gateway.Errorf(gateway.ENotFound, "desk.error.off", nil)
	}
	return st, nil
}

const deskPointCookie = "gw_desk_point"

// requireStaff: a signed-in person with the staff role (401 anonymous,
// 403 anyone else, machine clients included).
func requireStaff(c *fiber.Ctx) (*gateway.Principal, error) {
	p, err := requireRole(c, gateway.RoleStaff)
	if err != nil {
		return nil, err
	}
	if p.Machine {
		return nil, gateway.Errorf(gateway.EForbidden, "error.forbidden", nil)
	}
	return p, nil
}

// staffPoint returns the staff member's service point: the identity
// provider's claim when it names one (then nothing else is accepted), else
// asked (an API call's service_point), else the desk's choice (cookie).
// ok is false when there is none yet; err when the claim or the request
// names a point that is not configured, or another than the claim.
func (s *Server) staffPoint(c *fiber.Ctx, p *gateway.Principal, asked string) (servicepoint.Point, bool, error) {
	if p.ServicePoint != "" {
		if asked != "" && asked != p.ServicePoint {
			return servicepoint.Point{}, false, gateway.Errorf(gateway.EForbidden, "desk.error.other_point", nil)
		}
		pt, ok := s.ServicePoints.Get(p.ServicePoint)
		if !ok {
			return servicepoint.Point{}, false, gateway.Errorf(gateway.EForbidden, "desk.error.unknown_point", nil)
		}
		return pt, true, nil
	}
	id := asked
	if id == "" {
		id = s.pointFromCookie(c, p)
	}
	if id == "" {
		return servicepoint.Point{}, false, nil
	}
	pt, ok := s.ServicePoints.Get(id)
	if !ok {
		if asked != "" {
			return servicepoint.Point{}, false, gateway.Errorf(gateway.EInvalid, "desk.error.unknown_point", nil)
		}
		return servicepoint.Point{}, false, nil
	}
	return pt, true, nil
}

// weekStart is the start of the current week (Monday 00:00, Stockholm) and
// of today.
func weekStart(now time.Time) (week, today time.Time) {
	t := now.In(stockholm)
	today = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, stockholm)
	wd := (int(today.Weekday()) + 6) % 7 // Monday = 0
	return today.AddDate(0, 0, -wd), today
}

// staffMayRead: staff may read a submission filed on a visitor's behalf at
// their own service point this week, and nothing else of residents'.
func (s *Server) staffMayRead(p *gateway.Principal, point string, sub *gateway.Submission) bool {
	if p == nil || p.Machine || !p.HasRole(gateway.RoleStaff) || sub.Actor == "" || point == "" {
		return false
	}
	week, _ := weekStart(s.Config.Now())
	return sub.ServicePoint == point && !sub.CreatedAt.Before(week)
}

// maskSubject shows a subject as little as possible: a person's
// personnummer masked (date of birth and four stars), anything else "–".
func maskSubject(subject string) string {
	if n, ok := strings.CutPrefix(subject, "se-pnr:"); ok {
		return maskPnr(n)
	}
	return "–"
}

// visitorLocale is a shipped language tag for the receipt, from what staff
// chose; the page's language otherwise.
func visitorLocale(c *fiber.Ctx, chosen string) string {
	for _, t := range locales.Shipped {
		if chosen == t.String() {
			return chosen
		}
	}
	return lang(c).String()
}

// --- pages ---

type deskOption struct {
	Value, Label string
	Selected     bool
}

type deskService struct {
	ID, Title, Department, Href, Assurance string
}

type deskRow struct {
	Time, TimeISO, Service, Reference, Subject, By, Status, ReceiptHref string
	Today                                                               bool
}

// deskWork is a table of the desk's work: what was filed today, or earlier
// this week.
type deskWork struct {
	ID, Heading string
	Rows        []deskRow
}

type deskContent struct {
	Point                            servicepoint.Point
	PointFixed, NeedPoint            bool
	Points                           []deskOption
	Languages                        string
	Query, ResultText, Notice        string
	Services                         []deskService
	Channels, Outcomes, ContactLangs []deskOption
	Work                             [2]deskWork  // today's, then the rest of this week's
	ContactsToday                    []deskOption // Label = outcome, Value = count
}

// deskPage: GET /desk, the staff desk.
func (s *Server) deskPage(c *fiber.Ctx) error {
	p := principal(c)
	if p == nil {
		return c.Redirect("/auth/login?return_to="+url.QueryEscape("/desk"), fiber.StatusSeeOther)
	}
	if _, err := requireStaff(c); err != nil {
		return err
	}
	st, err := s.desk()
	if err != nil {
		return err
	}
	l := s.localizer(c)
	dc := deskContent{PointFixed: p.ServicePoint != ""}
	pt, ok, err := s.staffPoint(c, p, "")
	if err != nil {
		return err
	}
	if !ok {
		dc.NeedPoint = true
		for _, sp := range s.ServicePoints.All() {
			dc.Points = append(dc.Points, deskOption{Value: sp.ID, Label: sp.Name})
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return s.render(c, fiber.StatusOK, "desk", l.T("desk.title"), dc)
	}
	dc.Point = pt
	var langs []string
	for _, tag := range pt.Languages {
		langs = append(langs, langLabel(l, tag))
	}
	dc.Languages = strings.Join(langs, ", ")
	if !dc.PointFixed {
		for _, sp := range s.ServicePoints.All() {
			dc.Points = append(dc.Points, deskOption{Value: sp.ID, Label: sp.Name, Selected: sp.ID == pt.ID})
		}
	}
	q := c.Query("q")
	dc.Query = q
	found := s.Catalog.Search(q)
	for _, svc := range found {
		dc.Services = append(dc.Services, deskService{ID: svc.ID, Title: l.T(svc.MsgTitle()),
			Department: l.T(gateway.MsgDepartment(svc.Department)), Href: "/desk/services/" + svc.ID,
			Assurance: l.T("assurance." + svc.Assurance.String())})
	}
	if q != "" {
		dc.ResultText = l.N("catalog.results", len(found), "Query", q)
	}
	for _, ch := range servicepoint.ContactChannels {
		dc.Channels = append(dc.Channels, deskOption{Value: string(ch), Label: l.T("desk.channel." + string(ch)), Selected: ch == servicepoint.ContactVisit})
	}
	for _, o := range servicepoint.Outcomes {
		dc.Outcomes = append(dc.Outcomes, deskOption{Value: string(o), Label: l.T("desk.outcome." + string(o))})
	}
	dc.ContactLangs = append(dc.ContactLangs, deskOption{Value: "", Label: l.T("desk.contact.language_none"), Selected: true})
	for _, tag := range pt.Languages {
		dc.ContactLangs = append(dc.ContactLangs, deskOption{Value: tag, Label: langLabel(l, tag)})
	}
	switch c.Query("done") {
	case "contact":
		dc.Notice = l.T("desk.contact.registered")
	case "contact_filed":
		dc.Notice = l.T("desk.contact.registered_filed")
	}
	// Today's and this week's work at this service point.
	now := s.Config.Now()
	week, today := weekStart(now)
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	subs, err := st.DeskSubmissions(ctx, pt.ID, week, 200)
	if err != nil {
		return err
	}
	dc.Work = [2]deskWork{{ID: "work-today", Heading: l.T("desk.work.today")}, {ID: "work-week", Heading: l.T("desk.work.week")}}
	for _, sub := range subs {
		r := s.deskRow(l, p, sub)
		if !sub.CreatedAt.Before(today) {
			r.Today = true
			dc.Work[0].Rows = append(dc.Work[0].Rows, r)
		} else {
			dc.Work[1].Rows = append(dc.Work[1].Rows, r)
		}
	}
	counts, err := st.DeskContacts(ctx, []string{today.Format(time.DateOnly)})
	if err != nil {
		return err
	}
	byOutcome := map[string]int64{}
	for _, n := range counts {
		if n.Point == pt.ID {
			byOutcome[n.Outcome] += n.Count
		}
	}
	for _, o := range servicepoint.Outcomes {
		dc.ContactsToday = append(dc.ContactsToday, deskOption{Value: num(byOutcome[string(o)]), Label: l.T("desk.outcome." + string(o))})
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, fiber.StatusOK, "desk", l.T("desk.title"), dc)
}

func (s *Server) deskRow(l *locales.Localizer, p *gateway.Principal, sub *gateway.Submission) deskRow {
	title := sub.Service
	if svc, ok := s.Catalog.Get(sub.Service); ok {
		title = l.T(svc.MsgTitle())
	}
	by := l.T("desk.work.by_colleague")
	if sub.Actor == p.Subject {
		by = l.T("desk.work.by_you")
	}
	return deskRow{Time: l.DateTime(sub.CreatedAt.In(stockholm)), TimeISO: sub.CreatedAt.Format(time.RFC3339),
		Service: title, Reference: sub.Reference, Subject: maskSubject(sub.Subject), By: by,
		Status: l.T("status.value." + string(sub.Status)), ReceiptHref: "/desk/receipt/" + sub.ID}
}

// langLabel names a language tag in the page's language ("arabiska"): the
// translators' word first, else CLDR's.
func langLabel(l *locales.Localizer, tag string) string {
	if t, err := language.Parse(tag); err == nil {
		if s := l.Optional("desk.language." + t.String()); s != "" {
			return s
		}
		if s := l.LanguageName(t); s != "" {
			return s // from CLDR, for languages the desk messages do not name
		}
	}
	return tag
}

// deskChoosePoint: POST /desk/point, staff without a service point in
// their sign-in choose one of the configured points.
func (s *Server) deskChoosePoint(c *fiber.Ctx) error {
	p, err := requireStaff(c)
	if err != nil {
		return err
	}
	if _, err := s.desk(); err != nil {
		return err
	}
	if p.ServicePoint != "" {
		return gateway.Errorf(gateway.EForbidden, "desk.error.other_point", nil)
	}
	pt, ok := s.ServicePoints.Get(c.FormValue("point"))
	if !ok {
		return gateway.Errorf(gateway.EInvalid, "desk.error.unknown_point", nil)
	}
	s.setCookie(c, s.cookieName(deskPointCookie), s.signPoint(p, pt.ID), "/", 12*3600)
	return c.Redirect("/desk", fiber.StatusSeeOther)
}

type deskFormContent struct {
	formContent
	Point                       servicepoint.Point
	VisitorPnr, VisitorPnrError string
	CheckError, ConsentError    string
	Checks, Langs               []deskOption
	Consent                     bool
	LevelNote, PnrAgain         string
}

// deskState is what staff sent, kept to draw the desk form again.
type deskState struct {
	formState
	pnr, check, visitorLang string
	consent, pnrAgain       bool
	visitorErrs             gateway.FieldErrors
}

// Names of the visitor's fields on the desk form; they start with "_" so
// that they cannot collide with a service's fields.
var deskVisitor = intake.VisitorNames{Personnummer: "_visitor", IdentityCheck: "_identity_check", Consent: "_consent", ServicePoint: "_service_point"}

// deskFormPage: GET /desk/services/{id}, a service's form filled in by
// staff for a visitor.
func (s *Server) deskFormPage(c *fiber.Ctx) error {
	_, _, svc, pt, ok, err := s.deskFormTarget(c)
	if err != nil || !ok {
		return err
	}
	var ds deskState
	if kept := s.draftState(c, svc); kept.values != nil {
		// Back from a language switch of the form shown with errors: the
		// service's fields as typed (the visitor's are asked again).
		ds.values, ds.token, ds.pnrAgain = kept.values, kept.token, true
	}
	return s.renderDeskForm(c, fiber.StatusOK, svc, pt, ds)
}

// deskFormTarget starts the desk form's routes: staff only, the desk on,
// the service {id} and the staff member's service point. ok is false (and
// the response a redirect to the desk) when no point is chosen yet.
func (s *Server) deskFormTarget(c *fiber.Ctx) (p *gateway.Principal, st DeskStore, svc *gateway.Service, pt servicepoint.Point, ok bool, err error) {
	if p, err = requireStaff(c); err != nil {
		return
	}
	if st, err = s.desk(); err != nil {
		return
	}
	if svc, ok = s.Catalog.Get(c.Params("id")); !ok {
		err = gateway.Errorf(gateway.ENotFound, "error.service_not_found", nil)
		return
	}
	if pt, ok, err = s.staffPoint(c, p, ""); err != nil || ok {
		return
	}
	err = c.Redirect("/desk", fiber.StatusSeeOther)
	return
}

func (s *Server) renderDeskForm(c *fiber.Ctx, status int, svc *gateway.Service, pt servicepoint.Point, st deskState) error {
	l := s.localizer(c)
	// A field the visitor's personnummer fills is not asked again.
	for i := range svc.Fields {
		if f := &svc.Fields[i]; f.Prefill == gateway.PrefillPersonnummer {
			if st.prefill == nil {
				st.prefill, st.prefillHint = map[string]string{}, "desk.form.prefilled"
			}
			st.prefill[f.Name] = ""
		}
	}
	if hasFileField(svc) && s.Intake != nil {
		ctx, cancel := s.storeCtx(c)
		st.values = s.Intake.AttachmentValues(ctx, svc, st.values, s.formUploadScopes(c))
		cancel()
	}
	fc := deskFormContent{formContent: newFormContent(l, svc, "/desk/services/"+svc.ID, st.formState),
		Point: pt, VisitorPnr: st.pnr, Consent: st.consent}
	fc.Multipart = hasFileField(svc)
	if st.pnrAgain {
		fc.PnrAgain = l.T("desk.form.pnr_again")
	}
	fc.LevelNote = l.T("desk.form.level_note", "Level", l.T("assurance."+svc.Assurance.String()))
	for _, ch := range servicepoint.IdentityChecks {
		fc.Checks = append(fc.Checks, deskOption{Value: string(ch), Label: l.T("desk.check." + string(ch)), Selected: string(ch) == st.check})
	}
	chosen := visitorLocale(c, st.visitorLang)
	for _, t := range locales.Shipped {
		fc.Langs = append(fc.Langs, deskOption{Value: t.String(), Label: langName(t), Selected: t.String() == chosen})
	}
	// The visitor's fields first in the error summary, in form order.
	labels := map[string]string{deskVisitor.Personnummer: l.T("desk.form.pnr"), deskVisitor.IdentityCheck: l.T("desk.form.check"), deskVisitor.Consent: l.T("desk.form.consent")}
	ids := map[string]string{deskVisitor.Personnummer: "visitor-pnr", deskVisitor.IdentityCheck: "visitor-check-0", deskVisitor.Consent: "visitor-consent"}
	for _, name := range []string{deskVisitor.Personnummer, deskVisitor.IdentityCheck, deskVisitor.Consent} {
		if m, bad := st.visitorErrs[name]; bad {
			msg := l.Message(m)
			switch name {
			case deskVisitor.Personnummer:
				fc.VisitorPnrError = msg
			case deskVisitor.IdentityCheck:
				fc.CheckError = msg
			default:
				fc.ConsentError = msg
			}
			fc.Errors = append(fc.Errors, formError{ID: ids[name], Label: labels[name], Error: msg})
		}
	}
	fc.addFields(l, svc, st.formState)
	fc.CanSave = s.Drafts != nil && svc.AllowsChannel(gateway.ChannelDigital) // here: hand over to the visitor, who sends it digitally (drafts.go)
	title := l.T("desk.form.title", "Title", fc.Title)
	if len(fc.Errors) > 0 || fc.FormError != "" {
		title = l.T("form.error_title_prefix", "Title", title)
		s.keepForLanguageSwitch(c, svc, st.formState) // the language links open it filled in
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, status, "desk_form", title, fc)
}

// deskSubmitForm: POST /desk/services/{id}, staff file for a visitor
// through the intake; on a problem the form is drawn again.
func (s *Server) deskSubmitForm(c *fiber.Ctx) error {
	p, _, svc, pt, ok, err := s.deskFormTarget(c)
	if err != nil || !ok {
		return err
	}
	values := postValues(c)
	ds := deskState{pnr: firstValue(values[deskVisitor.Personnummer]), check: firstValue(values[deskVisitor.IdentityCheck]),
		consent: firstValue(values[deskVisitor.Consent]) == "true", visitorLang: firstValue(values["_visitor_lang"])}
	ds.token = firstValue(values["_form"])
	handover := firstValue(values[handoverField]) != ""
	for _, k := range []string{"_form", "_csrf", "_visitor_lang", handoverField, deskVisitor.Personnummer, deskVisitor.IdentityCheck, deskVisitor.Consent} {
		delete(values, k)
	}
	ds.values = values
	if handover {
		return s.deskHandOver(c, p, svc, pt, ds) // the visitor finishes at home (drafts.go)
	}
	req := intake.Request{Service: svc, Channel: gateway.ChannelAssisted, Principal: p, Values: values,
		Locale: visitorLocale(c, ds.visitorLang), Started: firstValue(values[stampField]),
		OnBehalf: &intake.OnBehalf{Personnummer: ds.pnr, IdentityCheck: ds.check, Consent: ds.consent, Point: pt, PointOK: true, Names: deskVisitor},
		Errors:   uploadErrors(c), UploadScopes: s.formUploadScopes(c)}
	if formTokenPattern.MatchString(ds.token) {
		req.IdempotencyKey = ds.token
	}
	res, err := s.Intake.Submit(c.UserContext(), req)
	if err == nil {
		return c.Redirect("/desk/receipt/"+res.Submission.ID, fiber.StatusSeeOther)
	}
	var gerr *gateway.Error
	if !errors.As(err, &gerr) || (gerr.Code != gateway.EInvalid && gerr.Code != gateway.EForbidden) {
		return err
	}
	if _, bad := gerr.Fields[deskVisitor.Personnummer]; !bad {
		// Once valid, the number is never shown in full again: a form
		// drawn again asks for it anew.
		ds.pnr, ds.pnrAgain = "", true
	}
	if gerr.Code == gateway.EForbidden {
		ds.formErr = &gerr.Message
		return s.renderDeskForm(c, fiber.StatusForbidden, svc, pt, ds)
	}
	ds.errs, ds.visitorErrs = gateway.FieldErrors{}, gateway.FieldErrors{}
	for k, m := range gerr.Fields {
		if k == deskVisitor.Personnummer || k == deskVisitor.IdentityCheck || k == deskVisitor.Consent {
			ds.visitorErrs[k] = m
		} else {
			ds.errs[k] = m
		}
	}
	return s.renderDeskForm(c, fiber.StatusUnprocessableEntity, svc, pt, ds)
}

type deskReceiptContent struct {
	ServiceTitle, Reference, Link, LinkText string
	Created, CreatedISO, Subject            string
	Point                                   servicepoint.Point
	SignInHint                              string
	Signed                                  *receiptJSON // receipts.go
}

// deskReceipt: GET /desk/receipt/{id}, the printable receipt for the
// visitor, in the visitor's language (the submission's locale, chosen on
// the desk form; ?lang= overrides it). The staff member's own language
// setting is left alone. Only for staff of the
// service point that filed it, this week. No more personal data than the
// masked personnummer.
func (s *Server) deskReceipt(c *fiber.Ctx) error {
	p, err := requireStaff(c)
	if err != nil {
		return err
	}
	if _, err := s.desk(); err != nil {
		return err
	}
	pt, ok, err := s.staffPoint(c, p, "")
	if err != nil {
		return err
	}
	sub, err := s.getSubmission(c)
	if err != nil {
		return err
	}
	if !ok || !s.staffMayRead(p, pt.ID, sub) {
		return gateway.Errorf(gateway.ENotFound, "error.submission_not_found", nil)
	}
	if err := s.audit(c, p, pt.ID, servicepoint.AuditEntry{Subject: maskSubject(sub.Subject), Action: servicepoint.ActionReceiptPrinted,
		Service: sub.Service, Reference: sub.Reference}); err != nil {
		return err
	}
	if t, ok := locales.Parse(sub.Locale); ok && c.Query("lang") == "" {
		c.Locals(localsLang, t) // this page only; no cookie
	}
	l := s.localizer(c)
	title := sub.Service
	if svc, ok := s.Catalog.Get(sub.Service); ok {
		title = l.T(svc.MsgTitle())
	}
	link := "/s/" + sub.ID
	base := s.Config.PublicURL
	if base == "" {
		base = c.BaseURL()
	}
	rc := deskReceiptContent{ServiceTitle: title, Reference: sub.Reference, Link: link, LinkText: base + link,
		Created: l.DateTime(sub.CreatedAt.In(stockholm)), CreatedISO: sub.CreatedAt.Format(time.RFC3339),
		Subject: maskSubject(sub.Subject), Point: pt, SignInHint: l.T("desk.receipt.sign_in", "URL", base+"/my")}
	if rc.Signed, err = s.receiptOf(sub); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, fiber.StatusOK, "desk_receipt", l.T("desk.receipt.title"), rc)
}

// assistedNote is My pages' remark on a submission filed with help at a
// service point ("" for one the resident filed alone).
func (s *Server) assistedNote(l *locales.Localizer, point string) string {
	if point == "" {
		return ""
	}
	name := point
	if pt, ok := s.ServicePoints.Get(point); ok {
		name = pt.Name
	}
	return l.T("desk.my.filed_with_help", "Point", name)
}
