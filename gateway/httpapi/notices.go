package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	frontnotice "github.com/kommun/servicegateway/gateway/notice"
	"github.com/kommun/servicegateway/gateway/servicepoint"
	"github.com/kommun/servicegateway/locales"
)

// NoticeStore keeps the front-door notices (*redisstore.Store).
type NoticeStore interface {
	SaveNotice(ctx context.Context, n frontnotice.Notice, now time.Time) error
	DeleteNotice(ctx context.Context, id string) (bool, error)
	Notices(ctx context.Context, now time.Time) ([]frontnotice.Notice, error)
}

// Audit actions of notices (shown on /admin/audit).
const (
	actionNoticePublished = "notice_published"
	actionNoticeWithdrawn = "notice_withdrawn"
)

// noticeCacheTTL: pages read the notices at most this often per process
// (a write in this process refreshes at once; other replicas follow
// within it).
const noticeCacheTTL = 2 * time.Second

// noticeCache holds the stored notices for a short while.
type noticeCache struct {
	mu   sync.Mutex
	at   time.Time
	list []frontnotice.Notice
}

func (s *Server) cachedNotices(ctx context.Context) []frontnotice.Notice {
	s.notices.mu.Lock()
	defer s.notices.mu.Unlock()
	if !s.notices.at.IsZero() && time.Since(s.notices.at) < noticeCacheTTL {
		return s.notices.list
	}
	ctx, cancel := context.WithTimeout(ctx, s.Config.StoreTimeout)
	defer cancel()
	list, err := s.Notices.Notices(ctx, s.Config.Now())
	if err != nil {
		// A page is still shown without notices; the error is logged.
		s.Logger.Warn("notices not read", "error", err)
		return s.notices.list
	}
	s.notices.list, s.notices.at = list, time.Now()
	return list
}

func (s *Server) forgetNotices() {
	s.notices.mu.Lock()
	s.notices.at = time.Time{}
	s.notices.mu.Unlock()
}

// noticeView is a notice as a page shows it, in the page's language.
type noticeView struct {
	ID, Severity, SeverityText string
	Crisis                     bool
	Title, Body                string
	Until, UntilISO            string
}

// pageService is the service a page is about: a form (/services/:id,
// /desk/services/:id) or what a handler set (the status page).
func pageService(c *fiber.Ctx) string {
	if id, ok := c.Locals(localsNoticeService).(string); ok {
		return id
	}
	switch c.Route().Path {
	case "/services/:id", "/desk/services/:id":
		return c.Params("id")
	}
	return ""
}

// localsNoticeService: a handler sets the service its page is about.
const localsNoticeService = "notice.service"

// pageNotices are the notices active now that concern the page.
func (s *Server) pageNotices(c *fiber.Ctx, l *locales.Localizer) []noticeView {
	if s.Notices == nil {
		return nil
	}
	svc, dept := pageService(c), ""
	if svc != "" {
		if sv, ok := s.Catalog.Get(svc); ok {
			svc, dept = sv.ID, sv.Department
		} else {
			svc = ""
		}
	}
	var out []noticeView
	for _, n := range frontnotice.Select(s.cachedNotices(c.UserContext()), s.Config.Now(), svc, dept) {
		out = append(out, s.noticeView(l, n))
	}
	return out
}

func (s *Server) noticeView(l *locales.Localizer, n frontnotice.Notice) noticeView {
	t := n.Text(l.Lang.String(), locales.Default.String())
	return noticeView{ID: n.ID, Severity: string(n.Severity), SeverityText: l.T("notice.severity." + string(n.Severity)),
		Crisis: n.Severity == frontnotice.Crisis, Title: t.Title, Body: t.Body,
		Until: l.DateTime(n.End.In(stockholm)), UntilISO: n.End.UTC().Format(time.RFC3339)}
}

// noticeJSON is a notice in the API: its text in the request's language
// (title, body) and in every language (texts).
type noticeJSON struct {
	frontnotice.Notice
	Title     string `json:"title"`
	Body      string `json:"body"`
	CreatedBy string `json:"created_by,omitempty"`
}

func (s *Server) noticeOut(c *fiber.Ctx, n frontnotice.Notice, admin bool) noticeJSON {
	t := n.Text(lang(c).String(), locales.Default.String())
	out := noticeJSON{Notice: n, Title: t.Title, Body: t.Body}
	if admin {
		out.CreatedBy = n.CreatedBy
	}
	return out
}

// apiNotices: GET /api/v1/notices[?service=] the notices shown now, on
// every page (no service) or on a service's pages.
func (s *Server) apiNotices(c *fiber.Ctx) error {
	if s.Notices == nil {
		return fiber.ErrNotFound
	}
	svc, dept := "", ""
	if id := c.Query("service"); id != "" {
		sv, ok := s.Catalog.Get(id)
		if !ok {
			return gateway.Errorf(gateway.ENotFound, "error.service_not_found", nil)
		}
		svc, dept = sv.ID, sv.Department
	}
	out := []noticeJSON{}
	for _, n := range frontnotice.Select(s.cachedNotices(c.UserContext()), s.Config.Now(), svc, dept) {
		out = append(out, s.noticeOut(c, n, false))
	}
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.JSON(fiber.Map{"notices": out})
}

// adminNoticeStore: administrators only.
func (s *Server) adminNoticeStore(c *fiber.Ctx) (*gateway.Principal, NoticeStore, error) {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return nil, nil, err
	}
	if s.Notices == nil {
		return nil, nil, fiber.ErrNotFound
	}
	return p, s.Notices, nil
}

func (s *Server) shippedTags() []string {
	out := make([]string, 0, len(locales.Shipped))
	for _, t := range locales.Shipped {
		out = append(out, t.String())
	}
	return out
}

// publishNotice validates, stores and audits a notice.
func (s *Server) publishNotice(c *fiber.Ctx, p *gateway.Principal, st NoticeStore, n *frontnotice.Notice) error {
	now := s.Config.Now()
	depts := map[string]bool{}
	for _, sv := range s.Catalog.All() {
		depts[sv.Department] = true
	}
	known := func(id string) bool { _, ok := s.Catalog.Get(id); return ok }
	if errs := n.Validate(s.shippedTags(), known, func(d string) bool { return depts[d] }, now); len(errs) > 0 {
		return &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"}, Fields: errs}
	}
	n.ID, n.CreatedAt, n.CreatedBy = frontnotice.NewID(), now.UTC(), p.Subject
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	if err := st.SaveNotice(ctx, *n, now); err != nil {
		return err
	}
	s.forgetNotices()
	return s.audit(c, p, "", servicepoint.AuditEntry{Action: actionNoticePublished, Reference: n.ID,
		Service: strings.Join(append(append([]string{}, n.Services...), n.Departments...), ",")})
}

func (s *Server) withdrawNotice(c *fiber.Ctx, p *gateway.Principal, st NoticeStore, id string) error {
	if !frontnotice.ValidID(id) {
		return gateway.Errorf(gateway.ENotFound, "notice.error.not_found", nil)
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	ok, err := st.DeleteNotice(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return gateway.Errorf(gateway.ENotFound, "notice.error.not_found", nil)
	}
	s.forgetNotices()
	return s.audit(c, p, "", servicepoint.AuditEntry{Action: actionNoticeWithdrawn, Reference: id})
}

// noticeInput is the admin API's body.
type noticeInput struct {
	Severity    frontnotice.Severity        `json:"severity"`
	Start       time.Time                   `json:"start"`
	End         time.Time                   `json:"end"`
	Texts       map[string]frontnotice.Text `json:"texts"`
	Services    []string                    `json:"services"`
	Departments []string                    `json:"departments"`
}

// apiPublishNotice: POST /api/v1/admin/notices (role admin) -> 201 with
// the notice.
func (s *Server) apiPublishNotice(c *fiber.Ctx) error {
	p, st, err := s.adminNoticeStore(c)
	if err != nil {
		return err
	}
	if len(c.Body()) > frontnotice.MaxJSON {
		return gateway.Errorf(gateway.EInvalid, "notice.error.too_large", nil)
	}
	var in noticeInput
	dec := json.NewDecoder(strings.NewReader(string(c.Body())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return gateway.Errorf(gateway.EInvalid, "error.bad_json", err)
	}
	if in.Texts == nil {
		in.Texts = map[string]frontnotice.Text{}
	}
	n := frontnotice.Notice{Severity: in.Severity, Start: in.Start, End: in.End, Texts: in.Texts, Services: in.Services, Departments: in.Departments}
	if err := s.publishNotice(c, p, st, &n); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(s.noticeOut(c, n, true))
}

// apiAdminNotices: GET /api/v1/admin/notices, every stored notice that has
// not ended (upcoming ones too).
func (s *Server) apiAdminNotices(c *fiber.Ctx) error {
	_, st, err := s.adminNoticeStore(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	list, err := st.Notices(ctx, s.Config.Now())
	if err != nil {
		return err
	}
	out := []noticeJSON{}
	for _, n := range list {
		out = append(out, s.noticeOut(c, n, true))
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"notices": out})
}

// apiWithdrawNotice: DELETE /api/v1/admin/notices/{id} -> 204.
func (s *Server) apiWithdrawNotice(c *fiber.Ctx) error {
	p, st, err := s.adminNoticeStore(c)
	if err != nil {
		return err
	}
	if err := s.withdrawNotice(c, p, st, clone(c.Params("id"))); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

type adminNoticeRow struct {
	noticeView
	Start, StartISO, Targets string
	Upcoming                 bool
}

type adminNoticesContent struct {
	Rows       []adminNoticeRow
	Langs      []langField
	Severities []severityOption
	Values     map[string]string
	Errors     gateway.FieldErrors
	ErrorText  map[string]string
	Done       string
}

type langField struct{ Tag, Name, Dir string }
type severityOption struct {
	Value, Text string
	Selected    bool
}

// adminNoticesPage: GET /admin/notices, the notices and a form to publish
// one (role admin); no JavaScript.
func (s *Server) adminNoticesPage(c *fiber.Ctx) error {
	return s.renderAdminNotices(c, fiber.StatusOK, nil, nil, c.Query("done"))
}

func (s *Server) renderAdminNotices(c *fiber.Ctx, status int, values map[string]string, errs gateway.FieldErrors, done string) error {
	_, st, err := s.adminNoticeStore(c)
	if err != nil {
		return err
	}
	l := s.localizer(c)
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	list, err := st.Notices(ctx, s.Config.Now())
	if err != nil {
		return err
	}
	now := s.Config.Now()
	ac := adminNoticesContent{Values: values, Errors: errs, ErrorText: map[string]string{}}
	if ac.Values == nil {
		ac.Values = map[string]string{"severity": string(frontnotice.Disruption)}
	}
	for k, m := range errs {
		ac.ErrorText[k] = l.Message(m)
	}
	switch done {
	case "published":
		ac.Done = l.T("notice.admin.published")
	case "withdrawn":
		ac.Done = l.T("notice.admin.withdrawn")
	}
	for _, n := range frontnotice.Select(list, now, "", "") { // everywhere, active now
		ac.Rows = append(ac.Rows, s.adminRow(l, n, now))
	}
	for _, n := range list { // limited, or not started yet
		if !(n.ActiveAt(now) && n.Concerns("", "")) {
			ac.Rows = append(ac.Rows, s.adminRow(l, n, now))
		}
	}
	for _, t := range locales.Shipped {
		ac.Langs = append(ac.Langs, langField{Tag: t.String(), Name: locales.Name(t), Dir: locales.Dir(t)})
	}
	for _, sv := range frontnotice.Severities {
		ac.Severities = append(ac.Severities, severityOption{Value: string(sv), Text: l.T("notice.severity." + string(sv)),
			Selected: ac.Values["severity"] == string(sv)})
	}
	return s.render(c, status, "admin_notices", l.T("notice.admin.title"), ac)
}

func (s *Server) adminRow(l *locales.Localizer, n frontnotice.Notice, now time.Time) adminNoticeRow {
	targets := strings.Join(append(append([]string{}, n.Services...), n.Departments...), ", ")
	if targets == "" {
		targets = l.T("notice.admin.everywhere")
	}
	return adminNoticeRow{noticeView: s.noticeView(l, n), Start: l.DateTime(n.Start.In(stockholm)),
		StartISO: n.Start.UTC().Format(time.RFC3339), Targets: targets, Upcoming: now.Before(n.Start)}
}

// adminPublishNoticeForm: POST /admin/notices, the form (CSRF checked by
// the pages' middleware). Times are local (Europe/Stockholm).
func (s *Server) adminPublishNoticeForm(c *fiber.Ctx) error {
	p, st, err := s.adminNoticeStore(c)
	if err != nil {
		return err
	}
	values := map[string]string{}
	for _, k := range []string{"severity", "start", "end", "services", "departments"} {
		values[k] = strings.Clone(c.FormValue(k))
	}
	n := frontnotice.Notice{Severity: frontnotice.Severity(values["severity"]), Texts: map[string]frontnotice.Text{},
		Services: splitList(values["services"]), Departments: splitList(values["departments"])}
	for _, t := range s.shippedTags() {
		values["title_"+t], values["body_"+t] = strings.Clone(c.FormValue("title_"+t)), strings.Clone(c.FormValue("body_"+t))
		n.Texts[t] = frontnotice.Text{Title: values["title_"+t], Body: values["body_"+t]}
	}
	n.Start, _ = time.ParseInLocation("2006-01-02T15:04", values["start"], stockholm)
	n.End, _ = time.ParseInLocation("2006-01-02T15:04", values["end"], stockholm)
	if err := s.publishNotice(c, p, st, &n); err != nil {
		var e *gateway.Error
		if errors.As(err, &e) && e.Code == gateway.EInvalid && len(e.Fields) > 0 {
			return s.renderAdminNotices(c, fiber.StatusUnprocessableEntity, values, e.Fields, "")
		}
		return err
	}
	return c.Redirect("/admin/notices?done=published", fiber.StatusSeeOther)
}

// adminWithdrawNoticeForm: POST /admin/notices/{id}/withdraw.
func (s *Server) adminWithdrawNoticeForm(c *fiber.Ctx) error {
	p, st, err := s.adminNoticeStore(c)
	if err != nil {
		return err
	}
	if err := s.withdrawNotice(c, p, st, clone(c.Params("id"))); err != nil {
		return err
	}
	return c.Redirect("/admin/notices?done=withdrawn", fiber.StatusSeeOther)
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' }) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// The notices' JSON routes in the OpenAPI document (openapi.go).
func init() {
	apiDocs["GET /api/v1/notices"] = apiDoc{Tag: "notices", Summary: "The front-door notices shown now, most serious first",
		Query: map[string]string{"service": "a service id: also the notices limited to it or its department"}, Status: 200}
	apiDocs["GET /api/v1/admin/notices"] = apiDoc{Tag: "admin", Summary: "Every notice that has not ended, upcoming ones too (role admin)",
		Access: signedIn, Status: 200}
	apiDocs["POST /api/v1/admin/notices"] = apiDoc{Tag: "admin", Summary: "Publish a notice: severity, start, end, texts in every language, services, departments (role admin)",
		Access: signedIn, Status: 201, Changes: true}
	apiDocs["DELETE /api/v1/admin/notices/:id"] = apiDoc{Tag: "admin", Summary: "Withdraw a notice (role admin)", Access: signedIn, Status: 204, Changes: true}
}

// noticeShown reports whether a rendered page holds a notice: such a page
// must not be kept by a page cache (the notice ends).
func noticeShown(page []byte) bool { return bytes.Contains(page, []byte(`class="site-notice`)) }
