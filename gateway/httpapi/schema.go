package httpapi

import (
	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/locales"
)

// schema returns a JSON Schema (draft 2020-12) of a service's payload, as
// POST .../submissions accepts it. Patterns are Go (RE2) expressions, which
// for the usual cases read the same in ECMA-262.
func (s *Server) schema(l *locales.Localizer, svc *gateway.Service) map[string]any {
	props := map[string]any{}
	required := []string{}
	for i := range svc.Fields {
		f := &svc.Fields[i]
		p := map[string]any{"title": l.T(svc.MsgLabel(f))}
		if h := l.Optional(svc.MsgHint(f)); h != "" {
			p["description"] = h
		}
		switch f.Type {
		case gateway.FieldNumber:
			p["type"] = "number"
			if f.Min != nil {
				p["minimum"] = *f.Min
			}
			if f.Max != nil {
				p["maximum"] = *f.Max
			}
		case gateway.FieldCheckbox:
			p["type"] = "boolean"
			if f.Required {
				p["const"] = true
			}
		case gateway.FieldMultiSelect:
			p["type"] = "array"
			p["items"] = map[string]any{"type": "string", "enum": f.Options}
			p["uniqueItems"] = true
			if f.Required {
				p["minItems"] = 1
			}
		default:
			p["type"] = "string"
			switch f.Type {
			case gateway.FieldSelect:
				p["enum"] = f.Options
			case gateway.FieldDate:
				p["format"] = "date"
			case gateway.FieldEmail:
				p["format"] = "email"
			case gateway.FieldPersonnummer:
				p["pattern"] = `^(\d{2})?\d{6}[-+]?\d{4}$`
			}
			if f.MinLength > 0 {
				p["minLength"] = f.MinLength
			} else if f.Required {
				p["minLength"] = 1
			}
			if f.Type == gateway.FieldText || f.Type == gateway.FieldTextarea {
				max := f.MaxLength
				if max == 0 {
					max = gateway.DefaultMaxText
					if f.Type == gateway.FieldTextarea {
						max = gateway.DefaultMaxTextarea
					}
				}
				p["maxLength"] = max
			} else if f.MaxLength > 0 {
				p["maxLength"] = f.MaxLength
			}
			if f.Pattern != "" {
				p["pattern"] = "^(?:" + f.Pattern + ")$"
			}
		}
		if f.Required {
			required = append(required, f.Name)
		}
		props[f.Name] = p
	}
	return map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  s.Config.PublicURL + "/api/v1/services/" + svc.ID + "#schema",
		"title":                l.T(svc.MsgTitle()),
		"type":                 "object",
		"properties":           props,
		"required":             required,
		"additionalProperties": false,
	}
}
