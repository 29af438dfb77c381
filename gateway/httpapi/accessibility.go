package httpapi

import (
	"github.com/gofiber/fiber/v2"
)

// accessibilityContent is the accessibility statement (required for public
// sector websites by the Swedish DOS law, lagen om tillgänglighet till
// digital offentlig service) and the feedback form.
type accessibilityContent struct {
	// Form is the configured feedback service's form; it posts to that
	// service's own form route (/services/{id}), so feedback goes through
	// the intake like any submission: no submit path of its own.
	Form *formContent
}

// accessibilityPage: GET /tillganglighet, the accessibility statement in
// the page's language with the feedback form (Config.AccessibilityService).
func (s *Server) accessibilityPage(c *fiber.Ctx) error {
	l := s.localizer(c)
	ac := accessibilityContent{}
	if svc, ok := s.Catalog.Get(s.Config.AccessibilityService); ok {
		fc := newFormContent(l, svc, "/services/"+svc.ID, formState{})
		fc.Started = s.formStamp(svc, nil)
		fc.addFields(l, svc, formState{})
		ac.Form = &fc
	}
	return s.render(c, fiber.StatusOK, "accessibility", l.T("a11y.title"), ac)
}
