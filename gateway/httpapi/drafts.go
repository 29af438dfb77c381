package httpapi

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/gateway/servicepoint"
	"github.com/kommun/servicegateway/locales"
)

// Save and resume (the use case is intake.Drafts; these handlers decode,
// call and encode). Every form, and every page of a multi-step form, has a
// "Save draft" button (_nav=save). A signed-in resident's draft is listed
// on My pages and opens under /services/{id}?saved={draft id}, in any
// browser after signing in; sending the form, or "Delete" on My pages,
// deletes it. An anonymous resident gets a resume code, shown once, to
// type at /fortsatt (rate-limited per address, browser and person): the
// code opens the draft once, kept for the browser like a step-up draft
// (?draft=), or, for a signed-in resident, as their own draft. Staff hand a
// desk form over to the visitor (_handover on the desk form): the slip
// shows a one-time code that opens the draft only for the person whose
// personnummer the desk recorded, signed in.

const (
	navSave        = "save"
	handoverField  = "_handover"
	resumePath     = "/fortsatt"
	resumeCodeName = "code"
)

// saveDraft answers the Save draft button of a service's form.
func (s *Server) saveDraft(c *fiber.Ctx, svc *gateway.Service, st formState) error {
	if s.Drafts == nil {
		return gateway.Errorf(gateway.ENotFound, "error.not_found", nil)
	}
	step, _ := strconv.Atoi(firstValue(st.values[stepField]))
	started := firstValue(st.values[stampField])
	delete(st.values, navField)
	delete(st.values, stepField)
	st.step = step
	if ownerOf(c) == "" {
		// Codes from one address are bounded per day, besides per browser.
		if err := s.limitMsg(c, "draftcode:ip:"+clientIP(c), s.Config.DraftsPerAddress, 24*time.Hour, "drafts.error.limit_address"); err != nil {
			st.formErr = &gateway.Message{ID: "drafts.error.limit_address"}
			return s.renderForm(c, fiber.StatusTooManyRequests, svc, st)
		}
	}
	saved, err := s.Drafts.Save(c.UserContext(), intake.SaveRequest{Service: svc, Principal: principal(c), Values: st.values,
		Step: step, Started: started, ID: strings.Clone(c.Query("saved")), Browser: s.draftOwner(c)})
	var gerr *gateway.Error
	switch {
	case err == nil:
	case errors.Is(err, intake.ErrDraftTooLarge) && errors.As(err, &gerr):
		st.formErr = &gerr.Message
		return s.renderForm(c, fiber.StatusRequestEntityTooLarge, svc, st)
	case errors.Is(err, intake.ErrDraftLimit) && errors.As(err, &gerr):
		st.formErr = &gerr.Message
		return s.renderForm(c, fiber.StatusTooManyRequests, svc, st)
	default:
		return err
	}
	if saved.Code == "" {
		return c.Redirect("/my?draft=saved#drafts", fiber.StatusSeeOther)
	}
	l := s.localizer(c)
	dc := draftSavedContent{Service: l.T(svc.MsgTitle()), Code: saved.Code, Expires: l.Date(saved.Draft.ExpiresAt.In(stockholm)),
		ExpiresISO: saved.Draft.ExpiresAt.Format(time.RFC3339), ResumeURL: s.absolute(c, resumePath)}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, fiber.StatusOK, "draft_saved", l.T("drafts.saved.title"), dc)
}

type draftSavedContent struct {
	Service, Code, Expires, ExpiresISO, ResumeURL string
}

// absolute is path under the gateway's public address.
func (s *Server) absolute(c *fiber.Ctx, path string) string {
	base := s.Config.PublicURL
	if base == "" {
		base = c.BaseURL()
	}
	return base + path
}

// draftAction is where a form opened from a draft posts: the same draft
// (?saved= or ?draft=), so that sending it deletes the draft and saving it
// again updates it; "" for a form not opened from one.
func draftAction(c *fiber.Ctx, svc *gateway.Service) string {
	if id := c.Query("saved"); intake.DraftIDPattern.MatchString(id) {
		return "/services/" + svc.ID + "?saved=" + id
	}
	if key := c.Query("draft"); draftKeyPattern.MatchString(key) {
		return "/services/" + svc.ID + "?draft=" + key
	}
	return ""
}

// savedState is a signed-in resident's draft id, to draw svc's form with;
// an empty state when it is not theirs or not of svc.
func (s *Server) savedState(c *fiber.Ctx, svc *gateway.Service, id string) formState {
	if s.Drafts == nil {
		return formState{}
	}
	dr, err := s.Drafts.Open(c.UserContext(), principal(c), id)
	if err != nil || dr.Service != svc.ID {
		return formState{}
	}
	values := dr.Values
	if values == nil {
		values = map[string][]string{}
	}
	if dr.Started != "" {
		values[stampField] = []string{dr.Started}
	}
	// A new form token: the draft's form was never sent, and a start is
	// not counted again.
	return formState{values: values, token: randomToken(18), action: "/services/" + svc.ID + "?saved=" + dr.ID, step: dr.Step}
}

// dropSaved deletes the signed-in resident's draft a sent form came from.
func (s *Server) dropSaved(c *fiber.Ctx) {
	id := c.Query("saved")
	if s.Drafts == nil || !intake.DraftIDPattern.MatchString(id) {
		return
	}
	err := s.Drafts.Delete(c.UserContext(), principal(c), id)
	var gerr *gateway.Error
	if err != nil && !(errors.As(err, &gerr) && gerr.Code == gateway.ENotFound) {
		s.Logger.Warn("delete saved draft", "request_id", c.Locals(localsRequestID), "error", err)
	}
}

// --- My pages ---

type myDraft struct {
	ID, Title, Href, Saved, SavedISO, Expires, ExpiresISO, Assisted string
}

// myDrafts is My pages' list of the resident's drafts and the notice of
// what was just done with one.
func (s *Server) myDrafts(c *fiber.Ctx, l *locales.Localizer, p *gateway.Principal) ([]myDraft, string, error) {
	if s.Drafts == nil {
		return nil, "", nil
	}
	drafts, err := s.Drafts.List(c.UserContext(), p)
	if err != nil {
		return nil, "", err
	}
	var out []myDraft
	for _, dr := range drafts {
		title := dr.Service
		if svc, ok := s.Catalog.Get(dr.Service); ok {
			title = l.T(svc.MsgTitle())
		}
		out = append(out, myDraft{ID: dr.ID, Title: title, Href: "/services/" + dr.Service + "?saved=" + dr.ID,
			Saved: l.DateTime(dr.SavedAt.In(stockholm)), SavedISO: dr.SavedAt.Format(time.RFC3339),
			Expires: l.Date(dr.ExpiresAt.In(stockholm)), ExpiresISO: dr.ExpiresAt.Format(time.RFC3339),
			Assisted: s.startedAtNote(l, dr.Point)})
	}
	notice := ""
	switch c.Query("draft") {
	case "saved":
		notice = l.T("drafts.my.saved")
	case "deleted":
		notice = l.T("drafts.my.deleted")
	}
	return out, notice, nil
}

// startedAtNote: "started at service point X" for a handed-over draft.
func (s *Server) startedAtNote(l *locales.Localizer, point string) string {
	if point == "" {
		return ""
	}
	name := point
	if s.ServicePoints != nil {
		if pt, ok := s.ServicePoints.Get(point); ok {
			name = pt.Name
		}
	}
	return l.T("drafts.my.started_at", "Point", name)
}

// deleteDraftForm: POST /my/drafts/{id}/delete, a resident deletes one of
// their drafts (404 for anyone else's).
func (s *Server) deleteDraftForm(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleResident)
	if err != nil {
		return err
	}
	if s.Drafts == nil {
		return gateway.Errorf(gateway.ENotFound, "drafts.error.not_found", nil)
	}
	if err := s.Drafts.Delete(c.UserContext(), p, c.Params("id")); err != nil {
		return err
	}
	return c.Redirect("/my?draft=deleted#drafts", fiber.StatusSeeOther)
}

// --- Resume by code ---

type resumeContent struct {
	Code, Error, SignInHref string
	SignedIn                bool
}

// resumePage: GET /fortsatt, the form to type a resume or handover code.
func (s *Server) resumePage(c *fiber.Ctx) error {
	if s.Drafts == nil {
		return gateway.Errorf(gateway.ENotFound, "error.not_found", nil)
	}
	return s.renderResume(c, fiber.StatusOK, resumeContent{})
}

func (s *Server) renderResume(c *fiber.Ctx, status int, rc resumeContent) error {
	l := s.localizer(c)
	p := principal(c)
	rc.SignedIn = p != nil && !p.Machine
	if s.Auth != nil && len(s.Auth.Providers) > 0 && !rc.SignedIn {
		rc.SignInHref = "/auth/login?return_to=" + url.QueryEscape(resumePath)
	}
	title := l.T("drafts.resume.title")
	if rc.Error != "" {
		title = l.T("form.error_title_prefix", "Title", title)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, status, "resume", title, rc)
}

// resumeForm: POST /fortsatt, a code typed: the form opens filled in, or
// the page again with what is wrong. Every try counts against the limits
// per client address, browser and signed-in person.
func (s *Server) resumeForm(c *fiber.Ctx) error {
	if s.Drafts == nil {
		return gateway.Errorf(gateway.ENotFound, "error.not_found", nil)
	}
	l := s.localizer(c)
	code := strings.TrimSpace(c.FormValue(resumeCodeName))
	if len(code) > 64 {
		code = code[:64]
	}
	rc := resumeContent{Code: strings.Clone(code)}
	keys := []string{"resume:ip:" + clientIP(c), "resume:browser:" + s.draftOwner(c)}
	p := principal(c)
	if p != nil {
		keys = append(keys, "resume:person:"+p.Subject)
	}
	for _, k := range keys {
		if err := s.limitMsg(c, k, s.Config.DraftResumeLimit, s.Config.DraftResumeWindow, "drafts.error.rate_limited"); err != nil {
			rc.Error = l.T("drafts.error.rate_limited")
			return s.renderResume(c, fiber.StatusTooManyRequests, rc)
		}
	}
	dr, err := s.Drafts.Resume(c.UserContext(), p, code)
	var gerr *gateway.Error
	if err != nil {
		if !errors.As(err, &gerr) {
			return err
		}
		status := map[string]int{gateway.ENotFound: fiber.StatusUnprocessableEntity, gateway.EUnauth: fiber.StatusUnauthorized,
			gateway.EForbidden: fiber.StatusForbidden}[gerr.Code]
		if status == 0 {
			return err
		}
		rc.Error = l.Message(gerr.Message)
		return s.renderResume(c, status, rc)
	}
	svc, ok := s.Catalog.Get(dr.Service)
	if !ok {
		return gateway.Errorf(gateway.ENotFound, "error.service_not_found", nil)
	}
	if dr.ID != "" {
		return c.Redirect("/services/"+svc.ID+"?saved="+dr.ID, fiber.StatusSeeOther)
	}
	// Kept for this browser, as across a step-up sign-in.
	st := formState{values: dr.Values}
	if s.Auth != nil && s.Auth.Store != nil {
		key, refused, _, err := s.putDraft(c, svc, st, "resume")
		if err == nil && refused == nil {
			return c.Redirect("/services/"+svc.ID+"?draft="+key, fiber.StatusSeeOther)
		}
	}
	st.step = dr.Step
	return s.renderForm(c, fiber.StatusOK, svc, st) // the form itself, filled in
}

// --- Desk -> home ---

type deskHandoverContent struct {
	ServiceTitle, Code, Expires, ExpiresISO string
	Subject, ResumeURL                      string
	Point                                   servicepoint.Point
}

// deskHandOver answers the desk form's "Hand over" button: the form so far
// is kept for the visitor, and the printable slip shows the code, in the
// visitor's language.
func (s *Server) deskHandOver(c *fiber.Ctx, p *gateway.Principal, svc *gateway.Service, pt servicepoint.Point, ds deskState) error {
	if s.Drafts == nil {
		return gateway.Errorf(gateway.ENotFound, "error.not_found", nil)
	}
	saved, err := s.Drafts.HandOver(c.UserContext(), intake.HandOverRequest{Service: svc, Principal: p, Point: pt,
		Personnummer: ds.pnr, PersonnummerName: deskVisitor.Personnummer, Values: ds.values, Started: firstValue(ds.values[stampField])})
	var gerr *gateway.Error
	switch {
	case err == nil:
	case errors.As(err, &gerr) && gerr.Code == gateway.EInvalid:
		ds.errs, ds.visitorErrs = gateway.FieldErrors{}, gerr.Fields
		return s.renderDeskForm(c, fiber.StatusUnprocessableEntity, svc, pt, ds)
	case errors.As(err, &gerr) && (gerr.Code == gateway.EForbidden || gerr.Code == gateway.ETooMany || errors.Is(err, intake.ErrDraftTooLarge)):
		ds.formErr, ds.pnr, ds.pnrAgain = &gerr.Message, "", true
		status := map[string]int{gateway.EForbidden: fiber.StatusForbidden, gateway.ETooMany: fiber.StatusTooManyRequests}[gerr.Code]
		if status == 0 {
			status = fiber.StatusRequestEntityTooLarge
		}
		return s.renderDeskForm(c, status, svc, pt, ds)
	default:
		return err
	}
	if t, ok := locales.Parse(ds.visitorLang); ok {
		c.Locals(localsLang, t) // the slip in the visitor's language; this page only
	}
	l := s.localizer(c)
	hc := deskHandoverContent{ServiceTitle: l.T(svc.MsgTitle()), Code: saved.Code,
		Expires: l.Date(saved.Draft.ExpiresAt.In(stockholm)), ExpiresISO: saved.Draft.ExpiresAt.Format(time.RFC3339),
		Subject: maskSubject(saved.Draft.For), ResumeURL: s.absolute(c, resumePath), Point: pt}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, fiber.StatusOK, "desk_handover", l.T("drafts.handover.title"), hc)
}
