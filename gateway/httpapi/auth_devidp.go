package httpapi

import (
	"errors"
	"net/url"
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/auth"
)

// The development identity provider, served under /dev-idp in the demo
// (contract): discovery, JWKS, token endpoint, the personas as JSON, and an
// authorize endpoint that approves a login_hint at once or shows a persona
// picker (a server-rendered form, no JavaScript).

// devIdPParams are the authorization request parameters the picker form
// carries along.
var devIdPParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "acr_values", "login_hint"}

func (s *Server) devIdP() *auth.DevIdP {
	if s.Auth == nil {
		return nil
	}
	return s.Auth.DevIdP
}

func (s *Server) devDiscovery(c *fiber.Ctx) error {
	return c.JSON(s.devIdP().Discovery())
}

func (s *Server) devJWKS(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "max-age=60")
	return c.JSON(s.devIdP().JWKS())
}

type personaJSON struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Roles        []gateway.Role `json:"roles"`
	Assurance    string         `json:"assurance"`
	Personnummer string         `json:"personnummer,omitempty"`
	ServicePoint string         `json:"service_point,omitempty"`
	Department   string         `json:"department,omitempty"`
}

func (s *Server) devPersonas(c *fiber.Ctx) error {
	out := make([]personaJSON, 0, len(auth.DevPersonas))
	for _, p := range auth.DevPersonas {
		out = append(out, personaJSON{ID: p.ID, Name: p.Name, Roles: p.Roles, Assurance: p.Assurance.String(),
			Personnummer: p.Personnummer, ServicePoint: p.ServicePoint, Department: p.Department})
	}
	return c.JSON(fiber.Map{"personas": out})
}

func (s *Server) devToken(c *fiber.Ctx) error {
	form := url.Values{}
	c.Request().PostArgs().VisitAll(func(k, v []byte) { form.Add(string(k), string(v)) })
	c.Set(fiber.HeaderCacheControl, "no-store")
	res, err := s.devIdP().Token(form)
	var te *auth.TokenError
	if errors.As(err, &te) {
		return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": te.Code})
	}
	if err != nil {
		return err
	}
	return c.JSON(res)
}

type pickerPersona struct {
	ID, Name, Detail string
	Checked          bool
}

type pickerContent struct {
	Params   []struct{ Name, Value string }
	Personas []pickerPersona
	Wanted   string
}

// devAuthorize: GET /dev-idp/authorize. With login_hint naming a persona
// it approves at once; otherwise it shows the picker.
func (s *Server) devAuthorize(c *fiber.Ctx) error {
	q := url.Values{}
	c.Context().QueryArgs().VisitAll(func(k, v []byte) { q.Add(string(k), string(v)) })
	d := s.devIdP()
	if err := d.CheckAuthorize(q); err != nil {
		return fiber.ErrBadRequest
	}
	if hint := q.Get("login_hint"); hint != "" {
		if _, ok := d.Persona(hint); ok {
			to, err := d.Approve(q, hint)
			if err != nil {
				return fiber.ErrBadRequest
			}
			return c.Redirect(to, fiber.StatusSeeOther)
		}
	}
	l := s.localizer(c)
	pc := pickerContent{}
	for _, name := range devIdPParams {
		if v := q.Get(name); v != "" {
			pc.Params = append(pc.Params, struct{ Name, Value string }{name, v})
		}
	}
	if acr := q.Get("acr_values"); acr != "" {
		if lvl, ok := auth.DefaultACR[acr]; ok {
			pc.Wanted = l.T("assurance." + lvl.String())
		}
	}
	for i, p := range auth.DevPersonas {
		detail := l.T("devidp.persona_detail", "Level", l.T("assurance."+p.Assurance.String()))
		switch {
		case p.Personnummer != "":
			detail = l.T("devidp.persona_resident", "Level", l.T("assurance."+p.Assurance.String()), "Personnummer", maskPnr(p.Personnummer))
		case p.ServicePoint != "":
			detail = l.T("devidp.persona_staff", "Level", l.T("assurance."+p.Assurance.String()), "ServicePoint", p.ServicePoint)
		case p.Department != "":
			detail = l.T("devidp.persona_admin", "Level", l.T("assurance."+p.Assurance.String()), "Department", l.T(gateway.MsgDepartment(p.Department)))
		case slices.Contains(p.Roles, gateway.RoleAdmin):
			detail = l.T("devidp.persona_admin_all", "Level", l.T("assurance."+p.Assurance.String()))
		}
		pc.Personas = append(pc.Personas, pickerPersona{ID: p.ID, Name: p.Name, Detail: detail, Checked: i == 0})
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, fiber.StatusOK, "devidp", l.T("devidp.title"), pc)
}

// devApprove: POST /dev-idp/authorize, the picker's answer.
func (s *Server) devApprove(c *fiber.Ctx) error {
	q := url.Values{}
	for _, name := range devIdPParams {
		if v := c.FormValue(name); v != "" {
			q.Set(name, v)
		}
	}
	to, err := s.devIdP().Approve(q, c.FormValue("persona"))
	if err != nil {
		return fiber.ErrBadRequest
	}
	return c.Redirect(to, fiber.StatusSeeOther)
}
