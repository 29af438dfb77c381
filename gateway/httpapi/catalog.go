package httpapi

import (
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
}

type catalogContent struct {
	Query      string
	ResultText string
	Groups     []catalogGroup
}

// catalogPage lists services by category, or those matching ?q=.
func (s *Server) catalogPage(c *fiber.Ctx) error {
	l := s.localizer(c)
	q := c.Query("q")
	found := s.Catalog.Search(q)
	byCat := map[string]*catalogGroup{}
	var groups []*catalogGroup
	for _, svc := range found {
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
	}
	col := collate.New(l.Lang)
	sort.Slice(groups, func(i, j int) bool { return col.CompareString(groups[i].Name, groups[j].Name) < 0 })
	content := catalogContent{Query: q}
	for _, g := range groups {
		sort.Slice(g.Services, func(i, j int) bool { return col.CompareString(g.Services[i].Title, g.Services[j].Title) < 0 })
		content.Groups = append(content.Groups, *g)
	}
	if q != "" {
		content.ResultText = l.N("catalog.results", len(found), "Query", q)
	}
	s.trackVisit(c) // usage statistics
	return s.render(c, fiber.StatusOK, "catalog", l.T("catalog.title"), content)
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
	SubmitURL   string      `json:"submit_url"`
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
		URL:      s.Config.PublicURL + "/api/v1/services/" + svc.ID, SubmitURL: s.Config.PublicURL + "/api/v1/services/" + svc.ID + "/submissions",
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

// apiListServices: GET /api/v1/services[?q=] (contract).
func (s *Server) apiListServices(c *fiber.Ctx) error {
	l := s.localizer(c)
	found := s.Catalog.Search(c.Query("q"))
	list := make([]serviceJSON, 0, len(found))
	for _, svc := range found {
		list = append(list, s.serviceJSON(l, svc, false))
	}
	return c.JSON(fiber.Map{"services": list})
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
