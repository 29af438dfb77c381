package gateway

import (
	"slices"
	"strings"
	"time"
)

// Condition tests one earlier answer. Exactly one of Equals, OneOf and
// IsSet is used: the answer is that value (for a checkbox "true" or
// "false"; for a multi-select, one of the chosen values), one of those
// values, or not empty. A condition on a field that is itself hidden is
// false.
type Condition struct {
	Field  string
	Equals string
	OneOf  []string
	IsSet  bool
}

// Step is one page of a multi-step form: its fields, in order, shown only
// when all of ShowIf hold.
type Step struct {
	ID     string
	Fields []string
	ShowIf []Condition
}

// MsgStepTitle is the ID of a step's heading.
func (s *Service) MsgStepTitle(st *Step) string { return s.ID + ".step." + st.ID + ".title" }

// holds reports whether c holds for the values, given which fields are
// shown so far.
func (c Condition) holds(f *Field, values map[string][]string, shown map[string]bool) bool {
	if !shown[c.Field] || f == nil {
		return false
	}
	var answers []string
	for _, v := range values[c.Field] {
		if v = strings.TrimSpace(v); v != "" {
			answers = append(answers, v)
		}
	}
	if f.Type == FieldCheckbox {
		checked := len(answers) > 0 && isTrue(answers[len(answers)-1])
		answers = []string{"false"}
		if checked {
			answers[0] = "true"
		}
	}
	switch {
	case c.IsSet:
		return len(answers) > 0 && (f.Type != FieldCheckbox || answers[0] == "true")
	case len(c.OneOf) > 0:
		return slices.ContainsFunc(answers, func(a string) bool { return slices.Contains(c.OneOf, a) })
	default:
		return slices.Contains(answers, c.Equals)
	}
}

func (s *Service) allHold(conds []Condition, values map[string][]string, shown map[string]bool) bool {
	for _, c := range conds {
		if !c.holds(s.Field(c.Field), values, shown) {
			return false
		}
	}
	return true
}

// Shown returns the fields shown for these values, in form order: a field
// is shown when its step's conditions and its own hold. Conditions refer
// only to fields earlier in the form (the manifest check makes sure), so
// one pass in order decides them all.
func (s *Service) Shown(values map[string][]string) map[string]bool {
	shown := make(map[string]bool, len(s.Fields))
	if len(s.Steps) == 0 {
		for i := range s.Fields {
			f := &s.Fields[i]
			shown[f.Name] = s.allHold(f.ShowIf, values, shown)
		}
		return shown
	}
	for i := range s.Steps {
		st := &s.Steps[i]
		stepShown := s.allHold(st.ShowIf, values, shown)
		for _, name := range st.Fields {
			f := s.Field(name)
			shown[name] = stepShown && f != nil && s.allHold(f.ShowIf, values, shown)
		}
	}
	return shown
}

// StepShown reports whether step i is shown for the values (its
// conditions hold and at least one of its fields is shown).
func (s *Service) StepShown(i int, values map[string][]string, shown map[string]bool) bool {
	if i < 0 || i >= len(s.Steps) {
		return false
	}
	for _, name := range s.Steps[i].Fields {
		if shown[name] {
			return true
		}
	}
	return false
}

// ValidateFields validates only the named fields that are shown (one step
// of a multi-step form); the others are not looked at.
func (s *Service) ValidateFields(values map[string][]string, names []string, shown map[string]bool, now time.Time) FieldErrors {
	errs := FieldErrors{}
	for _, name := range names {
		f := s.Field(name)
		if f == nil || !shown[name] {
			continue
		}
		if _, m := f.validate(s, values[name], now); m != nil {
			errs[name] = *m
		}
	}
	return errs
}
