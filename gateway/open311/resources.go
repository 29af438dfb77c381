package open311

import (
	"encoding/xml"
	"errors"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

type discovery struct {
	XMLName    xml.Name   `json:"-" xml:"discovery"`
	Changeset  string     `json:"changeset" xml:"changeset"`
	Contact    string     `json:"contact" xml:"contact"`
	KeyService string     `json:"key_service" xml:"key_service"`
	Endpoints  []endpoint `json:"endpoints" xml:"endpoints>endpoint"`
}

type endpoint struct {
	Specification string   `json:"specification" xml:"specification"`
	URL           string   `json:"url" xml:"url"`
	Changeset     string   `json:"changeset" xml:"changeset"`
	Type          string   `json:"type" xml:"type"`
	Formats       []string `json:"formats" xml:"formats>format"`
}

// Discovery: GET discovery.{format}, the service discovery document.
func (h *Handler) Discovery(c *fiber.Ctx) error {
	f := format(c)
	if f == "" {
		return h.NotFound(c)
	}
	l := h.localize(c)
	typ := "production"
	if h.cfg.Test {
		typ = "test"
	}
	base := h.cfg.BaseURL
	if base == "" {
		base = c.BaseURL() + strings.TrimSuffix(c.Path(), "/discovery."+f)
	}
	contact, keyService := h.cfg.Contact, h.cfg.KeyService
	if contact == "" {
		contact = l.T("open311.contact")
	}
	if keyService == "" {
		keyService = l.T("open311.key_service")
	}
	d := discovery{Changeset: h.datetime(h.changeset), Contact: contact, KeyService: keyService,
		Endpoints: []endpoint{{Specification: Specification, URL: base, Changeset: h.datetime(h.changeset), Type: typ,
			Formats: []string{"text/xml", "application/json"}}}}
	return write(c, fiber.StatusOK, f, "", d)
}

type serviceJSON struct {
	XMLName     xml.Name `json:"-" xml:"service"`
	ServiceCode string   `json:"service_code" xml:"service_code"`
	ServiceName string   `json:"service_name" xml:"service_name"`
	Description string   `json:"description" xml:"description"`
	Metadata    bool     `json:"metadata" xml:"metadata"`
	Type        string   `json:"type" xml:"type"`
	Keywords    string   `json:"keywords" xml:"keywords"`
	Group       string   `json:"group" xml:"group"`
}

// Services: GET services.{format}, the published services.
func (h *Handler) Services(c *fiber.Ctx) error {
	f := format(c)
	if f == "" {
		return h.NotFound(c)
	}
	if err := h.jurisdiction(c, c.Query("jurisdiction_id")); err != nil {
		return err
	}
	l := h.localize(c)
	out := make([]serviceJSON, 0, len(h.services))
	for _, svc := range h.services {
		out = append(out, serviceJSON{
			ServiceCode: svc.Open311.ServiceCode, ServiceName: l.T(svc.MsgTitle()), Description: l.T(svc.MsgSummary()),
			Metadata: len(attributeFields(svc)) > 0, Type: "realtime", Keywords: strings.Join(svc.Open311.Keywords, ","),
			Group: l.T(gateway.MsgCategory(svc.Category)),
		})
	}
	return write(c, fiber.StatusOK, f, "services", out)
}

type definition struct {
	XMLName     xml.Name    `json:"-" xml:"service_definition"`
	ServiceCode string      `json:"service_code" xml:"service_code"`
	Attributes  []attribute `json:"attributes" xml:"attributes>attribute"`
}

type attribute struct {
	Variable            bool    `json:"variable" xml:"variable"`
	Code                string  `json:"code" xml:"code"`
	Datatype            string  `json:"datatype" xml:"datatype"`
	Required            bool    `json:"required" xml:"required"`
	DatatypeDescription string  `json:"datatype_description" xml:"datatype_description"`
	Order               int     `json:"order" xml:"order"`
	Description         string  `json:"description" xml:"description"`
	Values              []value `json:"values,omitempty" xml:"values>value,omitempty"`
}

type value struct {
	Key  string `json:"key" xml:"key"`
	Name string `json:"name" xml:"name"`
}

// Service: GET services/{service_code}.{format}, a service's definition:
// its attributes are the manifest's fields that no standard argument
// (description, email, address) takes.
func (h *Handler) Service(c *fiber.Ctx) error {
	f := format(c)
	if f == "" {
		return h.NotFound(c)
	}
	if err := h.jurisdiction(c, c.Query("jurisdiction_id")); err != nil {
		return err
	}
	svc, ok := h.byCode[c.Params("code")]
	if !ok {
		return h.fail(c, fiber.StatusNotFound, gateway.Message{ID: "open311.service_code_unknown"})
	}
	l := h.localize(c)
	d := definition{ServiceCode: svc.Open311.ServiceCode, Attributes: []attribute{}}
	for i, fld := range attributeFields(svc) {
		a := attribute{Variable: true, Code: fld.Name, Datatype: datatype(fld.Type), Required: fld.Required,
			DatatypeDescription: l.Optional(svc.MsgHint(fld)), Order: i + 1, Description: l.T(svc.MsgLabel(fld))}
		for _, o := range fld.Options {
			a.Values = append(a.Values, value{Key: o, Name: l.T(svc.MsgOption(fld, o))})
		}
		if fld.Type == gateway.FieldCheckbox {
			a.Values = []value{{Key: "true", Name: l.T("open311.yes")}}
		}
		d.Attributes = append(d.Attributes, a)
	}
	return write(c, fiber.StatusOK, f, "", d)
}

// attributeFields are a service's fields that Open311 sends as
// attribute[CODE]: all but those the standard arguments fill.
func attributeFields(svc *gateway.Service) []*gateway.Field {
	o := svc.Open311
	var out []*gateway.Field
	for i := range svc.Fields {
		f := &svc.Fields[i]
		switch f.Name {
		case o.LocationField, o.DescriptionField, o.EmailField:
			continue
		}
		out = append(out, f)
	}
	return out
}

// datatype is the Open311 datatype of a field type.
func datatype(t gateway.FieldType) string {
	switch t {
	case gateway.FieldTextarea:
		return "text"
	case gateway.FieldNumber:
		return "number"
	case gateway.FieldDate:
		return "datetime"
	case gateway.FieldSelect, gateway.FieldCheckbox:
		return "singlevaluelist"
	case gateway.FieldMultiSelect:
		return "multivaluelist"
	}
	return "string"
}

// jurisdiction checks a jurisdiction_id argument: empty, or this
// endpoint's (when one is configured).
func (h *Handler) jurisdiction(c *fiber.Ctx, id string) error {
	if id == "" || h.cfg.Jurisdiction == "" || id == h.cfg.Jurisdiction {
		return nil
	}
	return h.fail(c, fiber.StatusNotFound, gateway.Message{ID: "open311.jurisdiction_unknown"})
}

type tokenJSON struct {
	XMLName          xml.Name `json:"-" xml:"request"`
	ServiceRequestID string   `json:"service_request_id" xml:"service_request_id"`
	Token            string   `json:"token" xml:"token"`
}

// Token: GET tokens/{token}.{format}, the service_request_id of a token.
func (h *Handler) Token(c *fiber.Ctx) error {
	f := format(c)
	if f == "" {
		return h.NotFound(c)
	}
	if err := h.jurisdiction(c, c.Query("jurisdiction_id")); err != nil {
		return err
	}
	ctx, cancel := h.ctx(c)
	defer cancel()
	sub, err := h.store.Get(ctx, c.Params("token"))
	if err != nil || h.published(sub) == nil {
		if err != nil && !isNotFound(err) {
			return err
		}
		return h.fail(c, fiber.StatusNotFound, gateway.Message{ID: "open311.token_unknown"})
	}
	return write(c, fiber.StatusOK, f, "service_requests", []tokenJSON{{ServiceRequestID: sub.Reference, Token: sub.ID}})
}

func isNotFound(err error) bool {
	var ge *gateway.Error
	return errors.As(err, &ge) && ge.Code == gateway.ENotFound
}

// formatFloat writes a coordinate with six decimals (about 0.1 m).
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', 6, 64) }
