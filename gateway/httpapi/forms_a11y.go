package httpapi

import (
	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/locales"
)

// signInNotice is the note above a form about signing in: that the service
// needs e-ID, or, when the form comes back filled in after a sign-in at the
// level it needs, that the resident is signed in and only has to press Send.
func signInNotice(c *fiber.Ctx, l *locales.Localizer, svc *gateway.Service, st formState) string {
	if svc.Assurance == gateway.AssuranceNone {
		return ""
	}
	level := l.T("assurance." + svc.Assurance.String())
	if st.action != "" && principal(c).Satisfies(svc.Assurance) {
		return l.T("form.signed_in_send", "Level", level)
	}
	return l.T("form.requires_eid", "Level", level)
}

// keepForLanguageSwitch keeps what was typed in a form shown with errors
// (as a draft, bound to this browser, for the drafts' short time), so that
// the language links of the page open the same form filled in: the links
// are made from the query, which gets the draft's key.
func (s *Server) keepForLanguageSwitch(c *fiber.Ctx, svc *gateway.Service, st formState) {
	if s.Auth == nil || s.Auth.Store == nil || c.Cookies(CSRFConfigDefault.CookieName) == "" {
		return
	}
	key, err := s.putDraft(c, svc, st)
	if err != nil {
		s.Logger.Warn("keep form for a language switch", "request_id", c.Locals(localsRequestID), "error", err)
		return
	}
	c.Context().QueryArgs().Set("draft", key)
}
