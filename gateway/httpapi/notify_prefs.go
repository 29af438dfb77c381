package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/mail"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

// NotifyPrefsStore keeps a signed-in resident's notification preferences.
type NotifyPrefsStore interface {
	NotifyPrefs(ctx context.Context, subject string) (gateway.NotifyPrefs, error)
	SetNotifyPrefs(ctx context.Context, subject string, p gateway.NotifyPrefs) error
}

// mobilePattern is an E.164 number (Swedish numbers may be written 07...).
var mobilePattern = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)

// notifyPrefsJSON is the body of GET and PUT /api/v1/me/notifications.
type notifyPrefsJSON struct {
	Email  string           `json:"email"`
	Mobile string           `json:"mobile"`
	Events []gateway.Status `json:"events"`
}

// checkNotifyPrefs validates and normalises preferences.
func checkNotifyPrefs(in notifyPrefsJSON) (gateway.NotifyPrefs, error) {
	errs := gateway.FieldErrors{}
	p := gateway.NotifyPrefs{Email: strings.TrimSpace(in.Email), Mobile: strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(in.Mobile))}
	if p.Email != "" {
		if a, err := mail.ParseAddress(p.Email); err != nil || a.Address != p.Email || len(p.Email) > 254 {
			errs["email"] = gateway.Message{ID: "validation.email"}
		}
	}
	if strings.HasPrefix(p.Mobile, "07") {
		p.Mobile = "+46" + p.Mobile[1:]
	}
	if p.Mobile != "" && !mobilePattern.MatchString(p.Mobile) {
		errs["mobile"] = gateway.Message{ID: "validation.phone"}
	}
	for _, e := range in.Events {
		if !e.Valid() || e.Rank() < gateway.StatusDelivered.Rank() {
			errs["events"] = gateway.Message{ID: "validation.option"}
			break
		}
		if !p.Wants(e) {
			p.Events = append(p.Events, e)
		}
	}
	if len(errs) > 0 {
		return p, &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"}, Fields: errs}
	}
	return p, nil
}

func (s *Server) prefsResident(c *fiber.Ctx) (*gateway.Principal, error) {
	if s.NotifyPrefs == nil {
		return nil, gateway.Errorf(gateway.EUnavailable, "error.store_unavailable", errors.New("no preferences store"))
	}
	p, err := requireRole(c, gateway.RoleResident)
	if err != nil {
		return nil, err
	}
	if p.Machine || p.Subject == "" {
		return nil, gateway.Errorf(gateway.EForbidden, "error.forbidden", nil)
	}
	return p, nil
}

// apiGetNotifyPrefs: GET /api/v1/me/notifications.
func (s *Server) apiGetNotifyPrefs(c *fiber.Ctx) error {
	p, err := s.prefsResident(c)
	if err != nil {
		return err
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	prefs, err := s.NotifyPrefs.NotifyPrefs(ctx, p.Subject)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	events := prefs.Events
	if events == nil {
		events = []gateway.Status{}
	}
	return c.JSON(notifyPrefsJSON{Email: prefs.Email, Mobile: prefs.Mobile, Events: events})
}

// apiPutNotifyPrefs: PUT /api/v1/me/notifications with {"email", "mobile",
// "events": [statuses]}. An empty events list opts out of every message.
func (s *Server) apiPutNotifyPrefs(c *fiber.Ctx) error {
	p, err := s.prefsResident(c)
	if err != nil {
		return err
	}
	if mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType)); err != nil || mt != fiber.MIMEApplicationJSON {
		return &gateway.Error{Code: "unsupported_media_type", Message: gateway.Message{ID: "error.json_required"}}
	}
	var in notifyPrefsJSON
	dec := json.NewDecoder(bytes.NewReader(c.Body())) // bounded by the server's BodyLimit
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() || len(in.Events) > len(gateway.Statuses) {
		return gateway.Errorf(gateway.EInvalid, "error.bad_json", errors.New("notification preferences: bad JSON"))
	}
	prefs, err := checkNotifyPrefs(in)
	if err != nil {
		return err
	}
	prefs.UpdatedAt = s.Config.Now().UTC()
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	if err := s.NotifyPrefs.SetNotifyPrefs(ctx, p.Subject, prefs); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(notifyPrefsJSON{Email: prefs.Email, Mobile: prefs.Mobile, Events: append([]gateway.Status{}, prefs.Events...)})
}
