package httpapi

import (
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

// prefsContent is the preferences page (My pages).
type prefsContent struct {
	Email, Mobile string
	Events        []prefsEvent
	Saved         bool
	Errors        map[string]string // field -> localized message
}

type prefsEvent struct {
	Value, Label string
	Checked      bool
}

// notifyPrefsPage: GET /my/notifications, the resident's notification
// preferences as a form (no JavaScript).
func (s *Server) notifyPrefsPage(c *fiber.Ctx) error {
	p := principal(c)
	if p == nil || p.Machine {
		return c.Redirect("/auth/login?return_to="+url.QueryEscape("/my/notifications"), fiber.StatusSeeOther)
	}
	if _, err := s.prefsResident(c); err != nil {
		return err
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	prefs, err := s.NotifyPrefs.NotifyPrefs(ctx, p.Subject)
	if err != nil {
		return err
	}
	return s.renderPrefs(c, fiber.StatusOK, prefs, c.Query("saved") == "1", nil)
}

func (s *Server) renderPrefs(c *fiber.Ctx, status int, prefs gateway.NotifyPrefs, saved bool, fields gateway.FieldErrors) error {
	l := s.localizer(c)
	pc := prefsContent{Email: prefs.Email, Mobile: prefs.Mobile, Saved: saved, Errors: map[string]string{}}
	for _, st := range gateway.NotifyStatuses {
		pc.Events = append(pc.Events, prefsEvent{Value: string(st), Label: l.T("status.value." + string(st)), Checked: prefs.Wants(st)})
	}
	for k, m := range fields {
		pc.Errors[k] = l.Message(m)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, status, "my_notifications", l.T("prefs.title"), pc)
}

// notifyPrefsForm: POST /my/notifications saves the form; back to the page
// (303) with a confirmation, or the page again with the field errors.
func (s *Server) notifyPrefsForm(c *fiber.Ctx) error {
	p, err := s.prefsResident(c)
	if err != nil {
		return err
	}
	in := notifyPrefsJSON{Email: strings.Clone(c.FormValue("email")), Mobile: strings.Clone(c.FormValue("mobile"))}
	args := c.Request().PostArgs()
	for _, v := range args.PeekMulti("events") {
		if len(in.Events) < len(gateway.Statuses) && !slices.Contains(in.Events, gateway.Status(v)) {
			in.Events = append(in.Events, gateway.Status(string(v)))
		}
	}
	prefs, err := checkNotifyPrefs(in)
	var gerr *gateway.Error
	if errors.As(err, &gerr) && gerr.Code == gateway.EInvalid {
		return s.renderPrefs(c, fiber.StatusUnprocessableEntity, prefs, false, gerr.Fields)
	}
	if err != nil {
		return err
	}
	prefs.UpdatedAt = s.Config.Now().UTC()
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	if err := s.NotifyPrefs.SetNotifyPrefs(ctx, p.Subject, prefs); err != nil {
		return err
	}
	return c.Redirect("/my/notifications?saved=1", fiber.StatusSeeOther)
}
