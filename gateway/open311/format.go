package open311

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

// Content types of the two formats (the spec's).
const (
	ContentJSON = "application/json; charset=utf-8"
	ContentXML  = "text/xml; charset=utf-8"
)

// format is the path's suffix: json or xml; "" for another one.
func format(c *fiber.Ctx) string {
	switch f := c.Params("format"); f {
	case "json", "xml":
		return f
	}
	return ""
}

// formatOfPath is the format an error is written in: the path's suffix,
// XML (the spec's required format) when it has none.
func formatOfPath(path string) string {
	if strings.HasSuffix(path, ".json") {
		return "json"
	}
	return "xml"
}

// write encodes v as JSON, or as XML: a list inside the root element (its
// items name their own elements), an object (root "") by its XMLName.
func write(c *fiber.Ctx, status int, f string, root string, v any) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	if f == "json" {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, ContentJSON)
		return c.Status(status).Send(b)
	}
	var x any = v
	if root != "" {
		x = xmlRoot{name: root, v: v}
	}
	b, err := xml.Marshal(x)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, ContentXML)
	return c.Status(status).Send(append([]byte(xml.Header), b...))
}

// xmlRoot wraps a list (or one object's fields) in a named root element.
type xmlRoot struct {
	name string
	v    any
}

func (r xmlRoot) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	start := xml.StartElement{Name: xml.Name{Local: r.name}}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.Encode(r.v); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

// apiError is one of the spec's errors.
type apiError struct {
	XMLName     xml.Name `json:"-" xml:"error"`
	Code        int      `json:"code" xml:"code"`
	Description string   `json:"description" xml:"description"`
}

// problem is an error answered in the spec's shape: the status and one or
// more errors with that code.
type problem struct {
	status       int
	descriptions []string
}

func (p *problem) Error() string { return strings.Join(p.descriptions, "; ") }

func (h *Handler) fail(c *fiber.Ctx, status int, m gateway.Message) error {
	return &problem{status: status, descriptions: []string{h.localize(c).Message(m)}}
}

// Catch is the group's first middleware: any error from a handler or a
// later middleware (rate limits, body limits, no such route) is answered in
// the spec's error shape and format.
func (h *Handler) Catch(c *fiber.Ctx) error {
	err := c.Next()
	if err == nil {
		return nil
	}
	return h.writeError(c, err)
}

// NotFound answers a path under the base path that is no resource.
func (h *Handler) NotFound(c *fiber.Ctx) error {
	return h.fail(c, fiber.StatusNotFound, gateway.Message{ID: "open311.not_found"})
}

func (h *Handler) writeError(c *fiber.Ctx, err error) error {
	f := formatOfPath(c.Path())
	var p *problem
	var ge *gateway.Error
	var fe *fiber.Error
	l := h.localize(c)
	switch {
	case errors.As(err, &p):
	case errors.As(err, &ge):
		p = &problem{status: statusOf(ge.Code)}
		if len(ge.Fields) > 0 {
			names := make([]string, 0, len(ge.Fields))
			for k := range ge.Fields {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				p.descriptions = append(p.descriptions, k+": "+l.Message(ge.Fields[k]))
			}
		} else {
			p.descriptions = []string{l.Message(ge.Message)}
		}
	case errors.As(err, &fe):
		p = &problem{status: fe.Code, descriptions: []string{fe.Message}}
	default:
		p = &problem{status: fiber.StatusInternalServerError, descriptions: []string{l.T("error.internal")}}
	}
	errs := make([]apiError, len(p.descriptions))
	for i, d := range p.descriptions {
		errs[i] = apiError{Code: p.status, Description: d}
	}
	return write(c, p.status, f, "errors", errs)
}

// statusOf maps a domain error code to the spec's statuses: validation is
// 400 (not 422), an unknown thing 404, a refusal 403.
func statusOf(code string) int {
	switch code {
	case gateway.EInvalid, gateway.EConflict:
		return fiber.StatusBadRequest
	case gateway.ENotFound:
		return fiber.StatusNotFound
	case gateway.EForbidden, gateway.EUnauth:
		return fiber.StatusForbidden
	case gateway.ETooMany:
		return fiber.StatusTooManyRequests
	case gateway.EUnavailable:
		return fiber.StatusServiceUnavailable
	}
	return fiber.StatusInternalServerError
}
