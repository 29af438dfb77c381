package httpapi

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

var codeStatus = map[string]int{
	gateway.ENotFound:        fiber.StatusNotFound,
	gateway.EInvalid:         fiber.StatusUnprocessableEntity,
	gateway.EConflict:        fiber.StatusUnprocessableEntity,
	gateway.EForbidden:       fiber.StatusForbidden,
	gateway.EUnauth:          fiber.StatusUnauthorized,
	gateway.ETooMany:         fiber.StatusTooManyRequests,
	gateway.EUnavailable:     fiber.StatusServiceUnavailable,
	gateway.EInternal:        fiber.StatusInternalServerError,
	"unsupported_media_type": fiber.StatusUnsupportedMediaType,
	"in_flight":              fiber.StatusConflict,
	// A store write whose outcome is unknown (timeout, broken connection):
	// 503 with "send it again with the same Idempotency-Key", where
	// EUnavailable says "nothing was saved".
	"outcome_unknown": fiber.StatusServiceUnavailable,
}

var statusMessage = map[int]string{
	fiber.StatusBadRequest:                  "error.bad_request",
	fiber.StatusNotFound:                    "error.not_found",
	fiber.StatusMethodNotAllowed:            "error.method_not_allowed",
	fiber.StatusRequestEntityTooLarge:       "error.too_large",
	fiber.StatusRequestHeaderFieldsTooLarge: "error.too_large",
}

// handleError is the one error handler: it maps an error to a status and a
// public, localized message; the cause is only logged. Programs under /api/
// get RFC 9457 problem+json, people get a page.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	status, code, msgID := fiber.StatusInternalServerError, gateway.EInternal, "error.internal"
	var ge *gateway.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &ge):
		code, msgID = ge.Code, ge.Message.ID
		if st, ok := codeStatus[ge.Code]; ok {
			status = st
		}
	case errors.As(err, &fe):
		status = fe.Code
		code = strings.ToLower(strings.ReplaceAll(fe.Message, " ", "_"))
		if id, ok := statusMessage[status]; ok {
			msgID = id
		} else if status < 500 {
			msgID = "error.bad_request"
		}
	}
	if status >= 500 {
		s.Logger.Error("request failed", "request_id", c.Locals(localsRequestID), "route", c.Route().Path, "error", err)
	}
	l := s.localizer(c)
	tk := titleKey(status)
	if msgID == "error.csrf" {
		tk = "expired" // not a matter of access: the form is old
	}
	title := l.T("error.title." + tk)
	detail := l.T(msgID)
	if ge != nil && len(ge.Message.Data) > 0 {
		detail = l.Message(ge.Message) // a message with data, e.g. the level asked for
	}
	if strings.HasPrefix(c.Path(), "/api/") {
		problem := fiber.Map{"type": "about:blank", "title": title, "status": status, "detail": detail, "code": code}
		if ge != nil && len(ge.Fields) > 0 {
			fields := fiber.Map{}
			for k, m := range ge.Fields {
				fields[k] = l.Message(m)
			}
			problem["errors"] = fields
		}
		c.Set(fiber.HeaderContentType, "application/problem+json; charset=utf-8")
		b, _ := c.App().Config().JSONEncoder(problem)
		return c.Status(status).Send(b)
	}
	if rerr := s.render(c, status, "error", title, s.errorContent(c, status, msgID, title, detail)); rerr != nil {
		s.Logger.Error("error page failed", "error", rerr)
		return c.Status(status).SendString(title)
	}
	return nil
}

// titleKey groups statuses into the few error titles people read.
func titleKey(status int) string {
	switch status {
	case fiber.StatusNotFound:
		return "not_found"
	case fiber.StatusUnauthorized, fiber.StatusForbidden:
		return "forbidden"
	case fiber.StatusTooManyRequests:
		return "too_many"
	case fiber.StatusUnprocessableEntity, fiber.StatusBadRequest, fiber.StatusUnsupportedMediaType, fiber.StatusRequestEntityTooLarge, fiber.StatusRequestHeaderFieldsTooLarge, fiber.StatusMethodNotAllowed, fiber.StatusConflict:
		return "bad_request"
	case fiber.StatusServiceUnavailable:
		return "unavailable"
	}
	return "internal"
}
