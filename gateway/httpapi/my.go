package httpapi

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/personnummer"
)

func maskPnr(s string) string { return personnummer.Number(s).Masked() }

// ownerOf is the subject a new submission belongs to: the signed-in
// resident (a person, not a machine), or "" for an anonymous one.
func ownerOf(c *fiber.Ctx) string {
	p := principal(c)
	if p == nil || p.Machine || !p.HasRole(gateway.RoleResident) {
		return ""
	}
	return p.Subject
}

// canRead: an anonymous submission is read by whoever holds its link; a
// submission that belongs to a person only by that person and by the
// department that owns the service. Everyone else gets 404, as if it did
// not exist, so a link says nothing about a submission it cannot show.
func canRead(c *fiber.Ctx, sub *gateway.Submission) bool {
	if sub.Subject == "" {
		return true
	}
	p := principal(c)
	if p == nil {
		return false
	}
	if !p.Machine && p.Subject == sub.Subject {
		return true
	}
	return p.HasRole(gateway.RoleDepartment) && p.Department != "" && p.Department == sub.Department
}

// mySubmissionJSON is one row of a person's or a department's list.
type mySubmissionJSON struct {
	ID            string         `json:"id"`
	Reference     string         `json:"reference"`
	Service       string         `json:"service"`
	Title         string         `json:"title"`
	Department    string         `json:"department"`
	Channel       string         `json:"channel,omitempty"`
	ServicePoint  string         `json:"service_point,omitempty"` // filed with help at this service point
	Status        gateway.Status `json:"status"`
	CaseReference string         `json:"case_reference"`
	CreatedAt     time.Time      `json:"created_at"`
	StatusURL     string         `json:"status_url"`
}

func (s *Server) listJSON(c *fiber.Ctx, subs []*gateway.Submission) []mySubmissionJSON {
	l := s.localizer(c)
	out := make([]mySubmissionJSON, 0, len(subs))
	for _, sub := range subs {
		title := sub.Service
		if svc, ok := s.Catalog.Get(sub.Service); ok {
			title = l.T(svc.MsgTitle())
		}
		out = append(out, mySubmissionJSON{ID: sub.ID, Reference: sub.Reference, Service: sub.Service, Title: title,
			Department: sub.Department, Channel: string(sub.Channel), Status: sub.Status, CaseReference: sub.CaseReference,
			CreatedAt: sub.CreatedAt, StatusURL: s.Config.PublicURL + "/api/v1/submissions/" + sub.ID, ServicePoint: sub.ServicePoint})
	}
	return out
}

// Page sizes of the paged lists (?limit=).
const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// pageSize reads ?limit=: defaultPageSize when absent, at most maxPageSize.
func pageSize(c *fiber.Ctx) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPageSize {
		return 0, gateway.Errorf(gateway.EInvalid, "error.bad_request", fmt.Errorf("limit %q: 1 to %d", v, maxPageSize))
	}
	return n, nil
}

// mySubmissions reads one page (?cursor=, ?limit=) of a person's
// submissions.
func (s *Server) mySubmissions(c *fiber.Ctx, p *gateway.Principal) (gateway.SubmissionPage, error) {
	if s.Auth == nil {
		return gateway.SubmissionPage{}, nil
	}
	limit, err := pageSize(c)
	if err != nil {
		return gateway.SubmissionPage{}, err
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	return s.Auth.Store.SubjectPage(ctx, p.Subject, c.Query("cursor"), limit)
}

// apiMySubmissions: GET /api/v1/me/submissions[?cursor=&limit=], a
// signed-in person's submissions across departments, newest first, a page
// at a time: next_cursor continues with older ones (absent at the end),
// prev_cursor goes back to newer ones.
func (s *Server) apiMySubmissions(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleResident)
	if err != nil {
		return err
	}
	if p.Machine {
		return gateway.Errorf(gateway.EForbidden, "error.forbidden", nil)
	}
	pg, err := s.mySubmissions(c, p)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(pageJSON(fiber.Map{"submissions": s.listJSON(c, pg.Submissions)}, pg))
}

// pageJSON adds a page's cursors to an answer.
func pageJSON(m fiber.Map, pg gateway.SubmissionPage) fiber.Map {
	if pg.Older != "" {
		m["next_cursor"] = pg.Older
	}
	if pg.Newer != "" {
		m["prev_cursor"] = pg.Newer
	}
	return m
}

// apiDepartmentSubmissions: GET /api/v1/department/submissions[?service=
// &cursor=&limit=], the submissions of the calling department's services
// (metadata only, no payload), newest first, a page at a time (see
// apiMySubmissions); ?service= filters within the page, so a page may hold
// fewer than limit. Department principals only; each sees its own.
func (s *Server) apiDepartmentSubmissions(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleDepartment)
	if err != nil {
		return err
	}
	if p.Department == "" || s.Auth == nil {
		return gateway.Errorf(gateway.EForbidden, "error.forbidden", nil)
	}
	limit, err := pageSize(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	pg, err := s.Auth.Store.DepartmentPage(ctx, p.Department, c.Query("cursor"), limit)
	if err != nil {
		return err
	}
	subs := pg.Submissions
	if svc := c.Query("service"); svc != "" {
		kept := subs[:0]
		for _, sub := range subs {
			if sub.Service == svc {
				kept = append(kept, sub)
			}
		}
		subs = kept
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(pageJSON(fiber.Map{"department": p.Department, "submissions": s.listJSON(c, subs)}, pg))
}

type myRow struct {
	Href, Title, Reference, Created, CreatedISO, Status, StatusCode, CaseReference string
	Assisted                                                                       string // "filed with help at service point X" (desk.go)
}

type myContent struct {
	Name, Personnummer, Assurance string
	Rows                          []myRow
	Newer, Older                  string // cursors of the neighbouring pages
	Drafts                        []myDraft
	DraftNotice                   string // what was just done with a draft (drafts.go)
}

// myPage: GET /my, My pages: who is signed in and their submissions.
func (s *Server) myPage(c *fiber.Ctx) error {
	p := principal(c)
	if p == nil || p.Machine {
		return c.Redirect("/auth/login?return_to="+url.QueryEscape("/my"), fiber.StatusSeeOther)
	}
	if home := homeOf(p); home != "" {
		// Staff and administrators have no submissions of their own: they
		// land on their work, not on an empty My pages.
		return c.Redirect(home, fiber.StatusSeeOther)
	}
	pg, err := s.mySubmissions(c, p)
	if err != nil {
		return err
	}
	subs := pg.Submissions
	l := s.localizer(c)
	mc := myContent{Name: p.Name, Assurance: l.T("assurance." + p.Assurance.String()), Newer: pg.Newer, Older: pg.Older}
	if mc.Drafts, mc.DraftNotice, err = s.myDrafts(c, l, p); err != nil {
		return err
	}
	if p.Personnummer != "" {
		mc.Personnummer = maskPnr(p.Personnummer)
	}
	for _, r := range s.listJSON(c, subs) {
		mc.Rows = append(mc.Rows, myRow{Href: "/s/" + r.ID, Title: r.Title, Reference: r.Reference,
			Created: l.DateTime(r.CreatedAt.In(stockholm)), CreatedISO: r.CreatedAt.Format(time.RFC3339),
			Status: l.T("status.value." + string(r.Status)), StatusCode: string(r.Status), CaseReference: r.CaseReference,
			Assisted: s.assistedNote(l, r.ServicePoint)})
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, fiber.StatusOK, "my", l.T("my.title"), mc)
}

// accountLink is the header's account navigation: sign in, or the pages of
// the signed-in person's roles and sign-out.
type accountLink struct {
	SignedIn bool
	Links    []navLink
}

// navLink is one link of the header; Label is a message ID.
type navLink struct {
	Href, Label, ID string
	Current         bool
}

// roleLinks are the header's links by role, in the order shown.
var roleLinks = []struct {
	role gateway.Role
	link navLink
}{
	{gateway.RoleResident, navLink{Href: "/my", Label: "nav.my_pages", ID: "account-link"}},
	{gateway.RoleStaff, navLink{Href: "/desk", Label: "nav.desk", ID: "nav-desk"}},
	{gateway.RoleAdmin, navLink{Href: "/admin/dead-letters", Label: "nav.dead_letters", ID: "nav-dead-letters"}},
	{gateway.RoleAdmin, navLink{Href: "/admin/audit", Label: "nav.audit", ID: "nav-audit"}},
	{gateway.RoleStaff, navLink{Href: "/dashboard", Label: "nav.dashboard", ID: "nav-dashboard"}},
	{gateway.RoleAdmin, navLink{Href: "/dashboard", Label: "nav.dashboard", ID: "nav-dashboard"}},
}

// accountLink is the header's navigation: sign in (back to this page) for
// a visitor; for a signed-in person a link to each page their roles open
// (My pages, the desk, dead letters, the audit, the dashboard) and
// sign-out; nil when the gateway has no sign-in.
func (s *Server) accountLink(c *fiber.Ctx) *accountLink {
	if s.Auth == nil || len(s.Auth.Providers) == 0 {
		return nil
	}
	p := principal(c)
	if p == nil || p.Machine {
		return &accountLink{Links: []navLink{{Href: signInHref(c), Label: "nav.sign_in", ID: "account-link"}}}
	}
	a := &accountLink{SignedIn: true}
	seen := map[string]bool{}
	for _, rl := range roleLinks {
		if p.HasRole(rl.role) && !seen[rl.link.Href] {
			seen[rl.link.Href] = true
			l := rl.link
			l.Current = c.Path() == l.Href
			a.Links = append(a.Links, l)
		}
	}
	return a
}

// signInHref starts a sign-in that comes back to the page asked for (a
// GET page; a form post comes back to My pages).
func signInHref(c *fiber.Ctx) string {
	back, p := "/my", localPath(c)
	if c.Method() == fiber.MethodGet && p != "/" && p != "/my" && !strings.HasPrefix(p, "/auth/") && !strings.HasPrefix(p, "/dev-idp/") {
		back = p
	}
	return "/auth/login?return_to=" + url.QueryEscape(back)
}

// homeOf is where a signed-in person without a resident role starts: staff
// at the desk, administrators at the dead letters. "" for residents.
func homeOf(p *gateway.Principal) string {
	switch {
	case p == nil || p.HasRole(gateway.RoleResident):
		return ""
	case p.HasRole(gateway.RoleStaff):
		return "/desk"
	case p.HasRole(gateway.RoleAdmin):
		return "/admin/dead-letters"
	}
	return ""
}
