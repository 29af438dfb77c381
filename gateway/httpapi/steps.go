package httpapi

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/locales"
)

// Multi-step forms, without JavaScript: each page posts every answer so
// far (the other steps' as hidden inputs) with _step (the page it shows)
// and _nav, the button pressed: "next" validates the page's shown fields
// and moves on (after the last shown step, to the check-your-answers
// page), "back" moves back without validating, "goto:N" (a "change" button
// on the check page) opens step N, and "send" (or no _nav at all) hands
// everything to the intake, which validates the whole form again.

const (
	navField  = "_nav"
	stepField = "_step"
)

// hiddenInput is a value carried through a page that does not show it.
type hiddenInput struct{ Name, Value string }

// stepView is where a page is in a multi-step form.
type stepView struct {
	Index, Number, Count int
	Title                string
	Back                 bool
}

// checkRow is one answer on the check-your-answers page.
type checkRow struct{ Label, Answer string }

// checkStep is one step's answers, with the button that opens it again.
type checkStep struct {
	Index       int
	Title, Nav  string
	ChangeLabel string
	Rows        []checkRow
}

// formNav is what a post of a multi-step form asks for.
type formNav struct {
	action string // next, back, goto, send
	step   int    // the page posted, or for goto the page asked for
}

// takeNav removes _nav and _step from the posted values and says what was
// asked. A form without steps, or a post without _nav, sends.
func takeNav(svc *gateway.Service, values map[string][]string) formNav {
	nav := firstValue(values[navField])
	step, _ := strconv.Atoi(firstValue(values[stepField]))
	delete(values, navField)
	delete(values, stepField)
	if len(svc.Steps) == 0 {
		return formNav{action: "send"}
	}
	if n, ok := strings.CutPrefix(nav, "goto:"); ok {
		step, _ = strconv.Atoi(n)
		return formNav{action: "goto", step: step}
	}
	switch nav {
	case "next", "back":
		return formNav{action: nav, step: step}
	}
	return formNav{action: "send"}
}

// navigate answers next, back and goto: the page asked for, or the same
// page with its errors.
func (s *Server) navigate(c *fiber.Ctx, svc *gateway.Service, st formState, nav formNav) error {
	for name, v := range principal(c).Prefilled(svc) { // from the sign-in, as the intake takes them
		st.values[name] = []string{v}
	}
	shown := svc.Shown(st.values)
	count := len(svc.Steps)
	at := min(max(nav.step, 0), count-1)
	switch nav.action {
	case "next":
		values := st.values
		if hasFileField(svc) && s.Intake != nil { // the file kind validates the stored descriptions
			ctx, cancel := s.storeCtx(c)
			values = s.Intake.AttachmentValues(ctx, svc, st.values, s.formUploadScopes(c))
			cancel()
		}
		errs := svc.ValidateFields(values, svc.Steps[at].Fields, shown, s.Config.Now())
		for k, m := range uploadErrors(c) {
			errs[k] = m
		}
		if len(errs) > 0 {
			st.errs, st.step = errs, at
			return s.renderForm(c, fiber.StatusUnprocessableEntity, svc, st)
		}
		for i := at + 1; i < count; i++ {
			if svc.StepShown(i, st.values, shown) {
				st.step = i
				return s.renderForm(c, fiber.StatusOK, svc, st)
			}
		}
		st.check = true
	case "back":
		st.step = 0
		for i := at - 1; i >= 0; i-- {
			if svc.StepShown(i, st.values, shown) {
				st.step = i
				break
			}
		}
	case "goto":
		if svc.StepShown(nav.step, st.values, shown) {
			st.step = nav.step
		} else {
			st.check = true
		}
	}
	return s.renderForm(c, fiber.StatusOK, svc, st)
}

// stepOfFirstError is the first step with one of errs' fields, to show a
// multi-step form again after the intake found errors.
func stepOfFirstError(svc *gateway.Service, errs gateway.FieldErrors) int {
	for i := range svc.Steps {
		for _, name := range svc.Steps[i].Fields {
			if _, bad := errs[name]; bad {
				return i
			}
		}
	}
	return 0
}

// addStep limits a multi-step form's page to step st.step: its fields,
// where it is, and every other answer as a hidden input.
func (fc *formContent) addStep(l *locales.Localizer, svc *gateway.Service, st formState) {
	shown := svc.Shown(st.values)
	step := &svc.Steps[st.step]
	on := map[string]bool{}
	for _, name := range step.Fields {
		on[name] = shown[name]
	}
	fc.Hidden = hiddenValues(svc, st.values, on)
	number, count := 0, 0
	for i := range svc.Steps {
		if svc.StepShown(i, st.values, shown) || i == st.step {
			count++
			if i <= st.step {
				number++
			}
		}
	}
	fc.Step = &stepView{Index: st.step, Number: number, Count: count, Title: l.T(svc.MsgStepTitle(step)), Back: number > 1}
	sub := st
	sub.errs = gateway.FieldErrors{}
	for name, m := range st.errs {
		if on[name] {
			sub.errs[name] = m
		}
	}
	fc.addFieldsWhere(l, svc, sub, func(f *gateway.Field) bool { return on[f.Name] })
}

// hiddenValues are the service's answers not on the page (except those in
// skip), in form order, as hidden inputs.
func hiddenValues(svc *gateway.Service, values map[string][]string, skip map[string]bool) []hiddenInput {
	var out []hiddenInput
	for i := range svc.Fields {
		f := &svc.Fields[i]
		if skip[f.Name] {
			continue
		}
		for _, v := range values[f.Name] {
			out = append(out, hiddenInput{Name: f.Name, Value: v})
		}
	}
	return out
}

// checkAnswers is the content of the check-your-answers page: every shown
// step's answers, with a button to change them.
func (s *Server) checkAnswers(l *locales.Localizer, svc *gateway.Service, values map[string][]string) []checkStep {
	shown := svc.Shown(values)
	var out []checkStep
	for i := range svc.Steps {
		if !svc.StepShown(i, values, shown) {
			continue
		}
		step := &svc.Steps[i]
		cs := checkStep{Index: i, Title: l.T(svc.MsgStepTitle(step)), Nav: "goto:" + strconv.Itoa(i)}
		cs.ChangeLabel = l.T("form.check.change", "Step", cs.Title)
		for _, name := range step.Fields {
			f := svc.Field(name)
			if f == nil || !shown[name] {
				continue
			}
			cs.Rows = append(cs.Rows, checkRow{Label: l.T(svc.MsgLabel(f)), Answer: answerText(l, svc, f, values[name])})
		}
		out = append(out, cs)
	}
	return out
}

// answerText is an answer as a person reads it: option labels, yes/no for
// a checkbox, "not answered" for nothing.
func answerText(l *locales.Localizer, svc *gateway.Service, f *gateway.Field, vals []string) string {
	var parts []string
	for _, v := range vals {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		switch {
		case f.Type.HasOptions():
			parts = append(parts, l.T(svc.MsgOption(f, v)))
		case f.Type == gateway.FieldCheckbox:
			parts = []string{l.T("form.check.no")}
			if v == "true" || v == "on" {
				parts = []string{l.T("form.check.yes")}
			}
		case f.Type == gateway.FieldFile:
			if a, ok := gateway.ParseAttachmentValue(v); ok {
				parts = append(parts, a.Name+" ("+gateway.FormatSize(a.Size)+")")
			}
		default:
			parts = append(parts, v)
		}
	}
	if len(parts) == 0 {
		return l.T("form.check.not_answered")
	}
	return strings.Join(parts, ", ")
}
