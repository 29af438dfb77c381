package httpapi

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/locales"
)

// signInNotice is the note above a form about signing in: that the service
// needs e-ID, or, when the form comes back filled in after a sign-in at the
// level it needs, that the resident is signed in and only has to press Send.
func signInNotice(c *fiber.Ctx, l *locales.Localizer, svc *gateway.Service, st formState) string {
	if svc.Assurance == gateway.AssuranceNone {
		return ""
	}
	level := l.T("assurance." + svc.Assurance.String())
	if st.action != "" && principal(c).Satisfies(svc.Assurance) {
		return l.T("form.signed_in_send", "Level", level)
	}
	return l.T("form.requires_eid", "Level", level)
}

// keepForLanguageSwitch keeps what was typed in a form shown with errors
// (as a draft, bound to this browser, for the drafts' short time), so that
// the language links of the page open the same form filled in: the links
// are made from the query, which gets the draft's key.
func (s *Server) keepForLanguageSwitch(c *fiber.Ctx, svc *gateway.Service, st formState) {
	if s.Auth == nil || s.Auth.Store == nil || c.Cookies(s.cookieName(CSRFConfigDefault.CookieName)) == "" {
		return
	}
	key, refused, _, err := s.putDraft(c, svc, st, "langdraft")
	if err != nil {
		s.Logger.Warn("keep form for a language switch", "request_id", c.Locals(localsRequestID), "error", err)
		return
	}
	if refused != nil {
		return // over its count or too large: the language links still work, without the values
	}
	c.Context().QueryArgs().Set("draft", key)
}

// A date is three text inputs, day, month and year (the GOV.UK pattern), in
// the order the language writes them, instead of the browser's date picker,
// whose format follows the browser and not the page. The form still posts
// one value, YYYY-MM-DD, to the validator: joinDateParts puts the parts
// together when the form arrives.

// datePart is one of a date's inputs.
type datePart struct {
	Name, ID, Label, Value, Autocomplete string
	Size                                 int // characters: 2 or 4
}

var dateSuffixes = []string{"-year", "-month", "-day"}

// dateParts splits the field's value (YYYY-MM-DD, or what was typed) into
// its inputs in the language's order (form.date.order: "ymd" or "dmy").
// The first input takes the field's id, so the error summary's link and
// the label lead to it.
func dateParts(l *locales.Localizer, ff formField) []datePart {
	vals := strings.SplitN(ff.Value, "-", 3)
	if len(vals) != 3 {
		vals = []string{"", "", ""}
	}
	parts := map[byte]datePart{
		'y': {Name: ff.Name + "-year", Label: l.T("form.date.year"), Value: vals[0], Size: 4},
		'm': {Name: ff.Name + "-month", Label: l.T("form.date.month"), Value: vals[1], Size: 2},
		'd': {Name: ff.Name + "-day", Label: l.T("form.date.day"), Value: vals[2], Size: 2},
	}
	if ff.Autocomplete == "bday" {
		for k, sfx := range map[byte]string{'y': "bday-year", 'm': "bday-month", 'd': "bday-day"} {
			p := parts[k]
			p.Autocomplete = sfx
			parts[k] = p
		}
	}
	order := l.T("form.date.order")
	if order != "dmy" && order != "mdy" {
		order = "ymd"
	}
	out := make([]datePart, 0, 3)
	for i := 0; i < 3; i++ {
		p := parts[order[i]]
		p.ID = ff.ID + strings.TrimPrefix(p.Name, ff.Name)
		if i == 0 {
			p.ID = ff.ID
		}
		out = append(out, p)
	}
	return out
}

// joinDateParts replaces each date's posted parts (name-year, name-month,
// name-day) by one value, YYYY-MM-DD, with one-digit months and days
// padded; a date left empty is left out. Field names have no hyphen, so
// no field is mistaken for a part.
func joinDateParts(values map[string][]string) {
	last := func(k string) string {
		if v := values[k]; len(v) > 0 {
			return strings.TrimSpace(v[len(v)-1])
		}
		return ""
	}
	for key := range values {
		for _, sfx := range dateSuffixes {
			base, ok := strings.CutSuffix(key, sfx)
			if !ok || base == "" || strings.Contains(base, "-") {
				continue
			}
			y, m, d := last(base+"-year"), last(base+"-month"), last(base+"-day")
			for _, s := range dateSuffixes {
				delete(values, base+s)
			}
			if y == "" && m == "" && d == "" {
				continue
			}
			values[base] = []string{y + "-" + pad2(m) + "-" + pad2(d)}
		}
	}
}

func pad2(s string) string {
	if len(s) == 1 && s[0] >= '0' && s[0] <= '9' {
		return "0" + s
	}
	return s
}

// requiredMessages say what to do with an empty required field of a kind,
// instead of the generic "this field is required".
var requiredMessages = map[gateway.FieldType]string{
	gateway.FieldSelect:       gateway.MsgOption,
	gateway.FieldMultiSelect:  "form.required_multi",
	gateway.FieldDate:         "form.date.required",
	gateway.FieldNumber:       gateway.MsgNumber,
	gateway.FieldEmail:        gateway.MsgEmail,
	gateway.FieldPhone:        gateway.MsgPhone,
	gateway.FieldPersonnummer: gateway.MsgPersonnummer,
}

// fieldMessage is a field's error as the form shows it: an empty required
// field says what to do for its kind, and a date that is not a date is
// explained in terms of its three inputs.
func fieldMessage(l *locales.Localizer, ff formField, m gateway.Message) string {
	kind := gateway.FieldType(ff.Kind)
	if id, ok := requiredMessages[kind]; ok && m.ID == gateway.MsgRequired {
		return l.T(id)
	}
	if kind == gateway.FieldDate && m.ID == gateway.MsgDate {
		return l.T("form.date.invalid")
	}
	return l.Message(m)
}
