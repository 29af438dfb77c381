package services

import (
	"fmt"
	"slices"

	"github.com/kommun/servicegateway/gateway"
)

// stepManifest is one [[steps]] entry: a page of a multi-step form.
type stepManifest struct {
	ID     string              `toml:"id"`
	Fields []string            `toml:"fields"`
	ShowIf []conditionManifest `toml:"show_if"`
}

// conditionManifest is one show_if condition; exactly one of equals,
// one_of and is_set.
type conditionManifest struct {
	Field  string   `toml:"field"`
	Equals *string  `toml:"equals"`
	OneOf  []string `toml:"one_of"`
	IsSet  bool     `toml:"is_set"`
}

// steps decodes the steps and the fields' conditions. With steps, every
// field is on exactly one step and the form's order is the steps' order;
// a condition refers to a field earlier in that order, with a value the
// field can have.
func (v *validator) steps(svc *gateway.Service, steps []stepManifest, fields []fieldManifest) {
	order := make([]string, 0, len(svc.Fields))
	if len(steps) == 0 {
		for _, f := range svc.Fields {
			order = append(order, f.Name)
		}
	} else {
		onStep := map[string]string{}
		ids := map[string]bool{}
		for i, sm := range steps {
			v.fieldIdx = i
			v.check(namePattern.MatchString(sm.ID), "steps.id", "step id must be lower-case letters, digits and '_', got %q", sm.ID)
			v.check(!ids[sm.ID], "steps.id", "step id %q is used twice", sm.ID)
			ids[sm.ID] = true
			v.check(len(sm.Fields) > 0, "steps.fields", "step %q has no fields", sm.ID)
			for _, name := range sm.Fields {
				switch other, dup := onStep[name]; {
				case svc.Field(name) == nil:
					v.check(false, "steps.fields", "step %q: no field %q", sm.ID, name)
				case dup:
					v.check(false, "steps.fields", "field %q is on step %q and on step %q", name, other, sm.ID)
				default:
					onStep[name] = sm.ID
					order = append(order, name)
				}
			}
		}
		v.fieldIdx = 0
		for _, f := range svc.Fields {
			v.check(onStep[f.Name] != "", "steps", "field %q is on no step", f.Name)
		}
	}
	pos := map[string]int{}
	for i, name := range order {
		pos[name] = i
	}
	// A condition looks back: at fields before before (a position in order).
	conds := func(key, owner string, before int, cms []conditionManifest) []gateway.Condition {
		var out []gateway.Condition
		for _, cm := range cms {
			c := gateway.Condition{Field: cm.Field, OneOf: cm.OneOf, IsSet: cm.IsSet}
			if cm.Equals != nil {
				c.Equals = *cm.Equals
			}
			kinds := 0
			for _, set := range []bool{cm.Equals != nil, len(cm.OneOf) > 0, cm.IsSet} {
				if set {
					kinds++
				}
			}
			v.check(kinds == 1, key, "%s: a show_if condition needs exactly one of equals, one_of and is_set", owner)
			f := svc.Field(cm.Field)
			p, known := pos[cm.Field]
			switch {
			case f == nil:
				v.check(false, key, "%s: show_if refers to no field %q", owner, cm.Field)
			case !known || p >= before:
				v.check(false, key, "%s: show_if refers to %q, which does not come before it", owner, cm.Field)
			default:
				want := append(slices.Clone(cm.OneOf), c.Equals)
				if cm.Equals == nil {
					want = want[:len(want)-1]
				}
				for _, w := range want {
					switch {
					case f.Type.HasOptions():
						v.check(slices.Contains(f.Options, w), key, "%s: %q is not an option of %q", owner, w, f.Name)
					case f.Type == gateway.FieldCheckbox:
						v.check(w == "true" || w == "false", key, "%s: a checkbox is \"true\" or \"false\", not %q", owner, w)
					}
				}
			}
			out = append(out, c)
		}
		return out
	}
	for i, fm := range fields {
		v.fieldIdx = i
		if f := svc.Field(fm.Name); f != nil && len(fm.ShowIf) > 0 {
			f.ShowIf = conds("fields.show_if", fmt.Sprintf("field %q", fm.Name), pos[fm.Name], fm.ShowIf)
		}
	}
	for i, sm := range steps {
		v.fieldIdx = i
		first := len(order)
		for _, name := range sm.Fields {
			if p, ok := pos[name]; ok && p < first {
				first = p
			}
		}
		svc.Steps = append(svc.Steps, gateway.Step{ID: sm.ID, Fields: sm.Fields,
			ShowIf: conds("steps.show_if", fmt.Sprintf("step %q", sm.ID), first, sm.ShowIf)})
	}
	v.fieldIdx = 0
	// The form's order is the steps' order.
	if len(steps) > 0 && len(order) == len(svc.Fields) {
		byName := map[string]gateway.Field{}
		for _, f := range svc.Fields {
			byName[f.Name] = f
		}
		for i, name := range order {
			svc.Fields[i] = byName[name]
		}
	}
}
