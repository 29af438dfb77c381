package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"slices"
	"sort"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/collate"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/locales"
)

type catalogGroup struct {
	ID, Name string
	Services []catalogEntry
}

type catalogEntry struct {
	ID, Href, Title, Summary, Department, SignIn string
	// HTML, when set, is the entry already rendered (template catalog-card).
	HTML template.HTML
}

type catalogContent struct {
	Query      string
	ResultText string
	Groups     []catalogGroup
	// List, when set, is Groups already rendered (the whole catalog).
	List template.HTML
}

// catalogPage lists services by category, or those matching ?q=.
//
// The unfiltered page is rendered once per catalog language and header
// variant (no sign-in, signed out, signed in) and then served as bytes with
// a strong ETag: the only parts of the page that vary per request are the
// language links (the same for "/" and "/?lang=xx") and the account link.
// Any other query argument ends up in the language links, so such requests
// are rendered, with the cached list of services.
func (s *Server) catalogPage(c *fiber.Ctx) error {
	l := s.localizer(c)
	q := c.Query("q")
	v := s.catalogView(l)
	if q == "" && onlyLangArg(c) && len(s.pageNotices(c, l)) == 0 { // notices: rendered each time (notices.go)
		s.trackVisit(c) // usage statistics
		key := pageKey{lang: l.Lang, account: accountVariant(s.accountLink(c))}
		if b := s.cache.page(key); b != nil {
			c.Set(fiber.HeaderContentLanguage, l.Lang.String())
			return serveCached(c, b, fiber.MIMETextHTMLCharsetUTF8, "private, no-cache")
		}
		// Rendered through the same path as every page, then kept.
		if err := s.render(c, fiber.StatusOK, "catalog", l.T("catalog.title"), catalogContent{Groups: v.groups, List: v.list}); err != nil {
			return err
		}
		if c.Method() != fiber.MethodGet || noticeShown(c.Response().Body()) { // HEAD: no body to keep
			return nil
		}
		b := newCachedBody(c.Response().Body())
		s.cache.setPage(key, b)
		c.Response().ResetBody()
		return serveCached(c, b, fiber.MIMETextHTMLCharsetUTF8, "private, no-cache")
	}
	content := catalogContent{Query: q}
	if q == "" {
		content.Groups, content.List = v.groups, v.list
	} else {
		found := s.Catalog.Search(q)
		content.Groups = v.filter(found)
		content.ResultText = l.N("catalog.results", len(found), "Query", q)
	}
	s.trackVisit(c) // usage statistics
	title := l.T("catalog.title")
	if q != "" {
		title = l.T("catalog.search_title", "Query", q) // search results have a title of their own
	}
	return s.render(c, fiber.StatusOK, "catalog", title, content)
}

// onlyLangArg reports whether the request has no query arguments but lang.
func onlyLangArg(c *fiber.Ctx) bool {
	only := true
	c.Context().QueryArgs().VisitAll(func(k, _ []byte) {
		if string(k) != "lang" {
			only = false
		}
	})
	return only
}

func accountVariant(a *accountLink) int8 {
	switch {
	case a == nil:
		return 0
	case a.SignedIn:
		return 2
	}
	return 1
}

// catalogView is the catalog as one language shows it, made once: the
// services by category in the language's collation, the rendered list,
// each service's JSON and the whole GET /api/v1/services answer.
type catalogView struct {
	groups []catalogGroup
	list   template.HTML
	pos    map[string][2]int // service id -> group, entry in groups
	items  map[string][]byte // service id -> its JSON in the list
	json   *cachedBody       // {"services":[...]} of every service
}

// filter returns the groups with only the services found, in the view's
// order.
func (v *catalogView) filter(found []*gateway.Service) []catalogGroup {
	at := make([][2]int, 0, len(found))
	for _, svc := range found {
		if p, ok := v.pos[svc.ID]; ok {
			at = append(at, p)
		}
	}
	slices.SortFunc(at, func(a, b [2]int) int {
		if a[0] != b[0] {
			return a[0] - b[0]
		}
		return a[1] - b[1]
	})
	var out []catalogGroup
	for _, p := range at {
		g := &v.groups[p[0]]
		if len(out) == 0 || out[len(out)-1].ID != g.ID {
			out = append(out, catalogGroup{ID: g.ID, Name: g.Name})
		}
		last := &out[len(out)-1]
		last.Services = append(last.Services, g.Services[p[1]])
	}
	return out
}

// catalogView returns the view of the catalog in l's language, making it
// on first use. The views are keyed by language tag; the tags come from the
// language middleware, which knows only the shipped languages, so there are
// at most as many views as languages.
func (s *Server) catalogView(l *locales.Localizer) *catalogView {
	if v := s.cache.view(l.Lang); v != nil {
		return v
	}
	v, err := s.makeCatalogView(l)
	if err != nil {
		// Only a broken template gets here; the pages test catches it.
		s.Logger.Error("catalog view", "error", err)
		return &catalogView{pos: map[string][2]int{}, items: map[string][]byte{}, json: newCachedBody([]byte(`{"services":[]}`))}
	}
	return s.cache.setView(l.Lang, v)
}

func (s *Server) makeCatalogView(l *locales.Localizer) (*catalogView, error) {
	v := &catalogView{pos: map[string][2]int{}, items: map[string][]byte{}}
	byCat := map[string]*catalogGroup{}
	var groups []*catalogGroup
	all := s.Catalog.All()
	list := make([]serviceJSON, 0, len(all))
	for _, svc := range all {
		g := byCat[svc.Category]
		if g == nil {
			g = &catalogGroup{ID: svc.Category, Name: l.T(gateway.MsgCategory(svc.Category))}
			byCat[svc.Category] = g
			groups = append(groups, g)
		}
		e := catalogEntry{ID: svc.ID, Href: serviceHref(svc), Title: l.T(svc.MsgTitle()),
			Summary: l.T(svc.MsgSummary()), Department: l.T(gateway.MsgDepartment(svc.Department))}
		if svc.Assurance > gateway.AssuranceNone {
			e.SignIn = l.T("catalog.requires_eid")
		}
		g.Services = append(g.Services, e)
		sj := s.serviceJSON(l, svc, false)
		list = append(list, sj)
		item, err := json.Marshal(sj)
		if err != nil {
			return nil, err
		}
		v.items[svc.ID] = item
	}
	col := collate.New(l.Lang)
	sort.Slice(groups, func(i, j int) bool { return col.CompareString(groups[i].Name, groups[j].Name) < 0 })
	t, ok := s.pages["catalog"]
	if !ok {
		return nil, errors.New("httpapi: no page template catalog")
	}
	var buf bytes.Buffer
	for gi, g := range groups {
		sort.Slice(g.Services, func(i, j int) bool { return col.CompareString(g.Services[i].Title, g.Services[j].Title) < 0 })
		for ei := range g.Services {
			e := &g.Services[ei]
			v.pos[e.ID] = [2]int{gi, ei}
			buf.Reset()
			if err := t.ExecuteTemplate(&buf, "catalog-card", e); err != nil {
				return nil, err
			}
			e.HTML = template.HTML(buf.String()) // rendered by html/template: escaped
		}
		v.groups = append(v.groups, *g)
	}
	buf.Reset()
	if err := t.ExecuteTemplate(&buf, "catalog-list", v.groups); err != nil {
		return nil, err
	}
	v.list = template.HTML(buf.String()) // rendered by html/template: escaped
	body, err := json.Marshal(fiber.Map{"services": list})
	if err != nil {
		return nil, err
	}
	v.json = newCachedBody(body)
	return v, nil
}

// serviceJSON is a service as the API shows it.
type serviceJSON struct {
	ID          string      `json:"id"`
	Version     string      `json:"version"`
	Title       string      `json:"title"`
	Summary     string      `json:"summary"`
	Description string      `json:"description,omitempty"`
	Department  string      `json:"department"`
	DeptName    string      `json:"department_name"`
	Category    string      `json:"category"`
	CatName     string      `json:"category_name"`
	Keywords    []string    `json:"keywords"`
	Assurance   string      `json:"assurance"`
	Channels    []string    `json:"channels"`
	Language    string      `json:"language"`
	URL         string      `json:"url"`
	SubmitURL   string      `json:"submit_url,omitempty"` // none for an existing e-service behind the front door
	Fields      []fieldJSON `json:"fields,omitempty"`
	Schema      any         `json:"schema,omitempty"`
}

type fieldJSON struct {
	Name      string       `json:"name"`
	Type      string       `json:"type"`
	Label     string       `json:"label"`
	Hint      string       `json:"hint,omitempty"`
	Required  bool         `json:"required"`
	MinLength int          `json:"min_length,omitempty"`
	MaxLength int          `json:"max_length,omitempty"`
	Pattern   string       `json:"pattern,omitempty"`
	Min       *float64     `json:"min,omitempty"`
	Max       *float64     `json:"max,omitempty"`
	MinDate   string       `json:"min_date,omitempty"`
	MaxDate   string       `json:"max_date,omitempty"`
	Options   []optionJSON `json:"options,omitempty"`
}

type optionJSON struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

func (s *Server) serviceJSON(l *locales.Localizer, svc *gateway.Service, full bool) serviceJSON {
	out := serviceJSON{
		ID: svc.ID, Version: svc.Version, Title: l.T(svc.MsgTitle()), Summary: l.T(svc.MsgSummary()),
		Department: svc.Department, DeptName: l.T(gateway.MsgDepartment(svc.Department)),
		Category: svc.Category, CatName: l.T(gateway.MsgCategory(svc.Category)),
		Keywords: append([]string{}, svc.Keywords...), Assurance: svc.Assurance.String(),
		Language: l.Lang.String(),
		URL:      s.Config.PublicURL + "/api/v1/services/" + svc.ID,
	}
	if svc.Prefix == "" {
		out.SubmitURL = s.Config.PublicURL + "/api/v1/services/" + svc.ID + "/submissions"
	}
	for _, ch := range svc.Channels {
		out.Channels = append(out.Channels, string(ch))
	}
	if !full {
		return out
	}
	out.Description = l.Optional(svc.MsgDescription())
	for i := range svc.Fields {
		f := &svc.Fields[i]
		fj := fieldJSON{Name: f.Name, Type: string(f.Type), Label: l.T(svc.MsgLabel(f)), Hint: l.Optional(svc.MsgHint(f)),
			Required: f.Required, MinLength: f.MinLength, MaxLength: f.MaxLength, Pattern: f.Pattern,
			Min: f.Min, Max: f.Max, MinDate: f.MinDate, MaxDate: f.MaxDate}
		for _, o := range f.Options {
			fj.Options = append(fj.Options, optionJSON{Value: o, Label: l.T(svc.MsgOption(f, o))})
		}
		out.Fields = append(out.Fields, fj)
	}
	out.Schema = s.schema(l, svc)
	return out
}

// apiListServices: GET /api/v1/services[?q=] (contract). Every service's
// JSON is made once per language; the unfiltered list is served as bytes
// with a strong ETag.
func (s *Server) apiListServices(c *fiber.Ctx) error {
	v := s.catalogView(s.localizer(c))
	q := c.Query("q")
	if q == "" {
		return serveCached(c, v.json, fiber.MIMEApplicationJSON, "no-cache")
	}
	found := s.Catalog.Search(q)
	buf := make([]byte, 0, 64+len(found)*512)
	buf = append(buf, `{"services":[`...)
	for i, svc := range found {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, v.items[svc.ID]...)
	}
	buf = append(buf, "]}"...)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(buf)
}

// apiGetService: GET /api/v1/services/{id} with fields and JSON Schema (contract).
func (s *Server) apiGetService(c *fiber.Ctx) error {
	svc, ok := s.Catalog.Get(c.Params("id"))
	if !ok {
		return gateway.Errorf(gateway.ENotFound, "error.service_not_found", nil)
	}
	s.trackViewed(c, svc, gateway.ChannelAPI) // usage statistics
	return c.JSON(s.serviceJSON(s.localizer(c), svc, true))
}

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	if s.Ready != nil {
		if err := s.Ready(ctx); err != nil {
			s.Logger.Warn("not ready", "error", err)
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "unavailable"})
		}
	}
	return c.JSON(fiber.Map{"status": "ready", "services": len(s.Catalog.All())})
}

// serviceHref is where the catalog links a service: its form, or the
// prefix of an existing e-service the gateway serves.
func serviceHref(svc *gateway.Service) string {
	if svc.Prefix != "" {
		return svc.Prefix
	}
	return "/services/" + svc.ID
}
