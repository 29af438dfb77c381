package httpapi

import (
	"maps"
	"slices"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/locales"
)

// schema returns a JSON Schema (draft 2020-12) of a service's payload, as
// POST .../submissions accepts it. Patterns are Go (RE2) expressions, which
// for the usual cases read the same in ECMA-262.
func (s *Server) schema(l *locales.Localizer, svc *gateway.Service) map[string]any {
	props := map[string]any{}
	required := []string{}
	var allOf []any
	for i := range svc.Fields {
		f := &svc.Fields[i]
		p := map[string]any{"title": l.T(svc.MsgLabel(f))} // the kind adds the value's schema
		if h := l.Optional(svc.MsgHint(f)); h != "" {
			p["description"] = h
		}
		if k, ok := f.Kind(); ok {
			maps.Copy(p, k.Schema(f))
		}
		conds := conditionsOf(svc, f)
		if f.Prefill != "" {
			// Taken from a signed-in person's identity, whatever is sent;
			// required only of callers the sign-in cannot fill it for.
			note := "prefilled from the sign-in (" + f.Prefill + ")"
			if d, ok := p["description"].(string); ok {
				note = d + " – " + note
			}
			p["description"] = note
		} else if f.Required && len(conds) == 0 {
			required = append(required, f.Name)
		} else if f.Required {
			// Required only when shown: if every condition holds, then
			// the field is required.
			allOf = append(allOf, map[string]any{"if": conditionSchema(svc, conds), "then": map[string]any{"required": []string{f.Name}}})
		}
		props[f.Name] = p
	}
	out := map[string]any{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  s.Config.PublicURL + "/api/v1/services/" + svc.ID + "#schema",
		"title":                l.T(svc.MsgTitle()),
		"type":                 "object",
		"properties":           props,
		"required":             required,
		"additionalProperties": false,
	}
	if len(allOf) > 0 {
		out["allOf"] = allOf
	}
	return out
}

// conditionsOf is every condition for f to be shown: its step's and its
// own. A value sent for a field that is not shown is ignored.
func conditionsOf(svc *gateway.Service, f *gateway.Field) []gateway.Condition {
	var out []gateway.Condition
	for i := range svc.Steps {
		if slices.Contains(svc.Steps[i].Fields, f.Name) {
			out = append(out, svc.Steps[i].ShowIf...)
		}
	}
	return append(out, f.ShowIf...)
}

// conditionSchema is a JSON Schema that holds when every condition does
// (a condition on a field that is itself conditional is taken as written).
func conditionSchema(svc *gateway.Service, conds []gateway.Condition) map[string]any {
	props := map[string]any{}
	var required []string
	for _, c := range conds {
		required = append(required, c.Field)
		isArray := false
		if f := svc.Field(c.Field); f != nil {
			isArray = f.Type == gateway.FieldMultiSelect
		}
		var test map[string]any
		switch {
		case c.IsSet:
			test = map[string]any{"minLength": 1}
			if isArray {
				test = map[string]any{"minItems": 1}
			}
		case len(c.OneOf) > 0:
			test = map[string]any{"enum": c.OneOf}
		case c.Equals == "true" || c.Equals == "false":
			test = map[string]any{"const": c.Equals == "true"}
		default:
			test = map[string]any{"const": c.Equals}
		}
		if isArray && !c.IsSet {
			test = map[string]any{"contains": test}
		}
		props[c.Field] = test
	}
	return map[string]any{"properties": props, "required": required}
}
