package httpapi

import (
	"errors"
	"regexp"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/locales"
)

// formPart is one input of a field of several, all posted under the
// field's name in order.
type formPart struct{ ID, Label, Value, InputMode, Autocomplete string }

type formOption struct {
	Value, Label string
	Selected     bool
}

// formField is one field as the form template draws it.
type formField struct {
	Name, ID, Kind, InputType, Label, Hint, Error, Value string
	Required, Checked                                    bool
	Options                                              []formOption
	MaxLength                                            int
	Min, Max, Step, InputMode, Autocomplete              string
	Describedby, RequiredText, ChooseText                string
	DateParts                                            []datePart // a date: day, month and year inputs (forms_a11y.go)
	ReadOnly                                             bool       // prefilled from the sign-in: shown, not asked
	Group                                                bool       // a group of options: errors point at the first
	Parts                                                []formPart // a field of several inputs (the location kind)
	Note                                                 string
	Accept                                               string                 // a file input's accept attribute
	Files                                                []gateway.AttachedFile // files already attached (the file kind)
	FilesText                                            string                 // their heading
}

// formState is what a resident sent, kept to draw the form again.
type formState struct {
	values  map[string][]string
	errs    gateway.FieldErrors
	token   string
	formErr *gateway.Message // a problem with the whole form
	action  string           // where the form posts; default /services/{id}
	// prefill are the values the identity gives (field -> value; "" for
	// the desk, where the visitor's number above is the value), drawn
	// read-only with prefillHint.
	prefill     map[string]string
	prefillHint string
	step        int  // a multi-step form's page (steps.go)
	check       bool // a multi-step form's check-your-answers page
}

type formError struct{ ID, Label, Error string }

type formContent struct {
	Title, Department, Description, SignInNotice string
	Action, FormToken, ErrorTitle, FormError     string
	Fields                                       []formField
	Errors                                       []formError
	Started                                      string // signed time the form was first drawn (usage statistics)
	CanSave                                      bool   // a "Save draft" button (drafts.go)
	// A multi-step form (steps.go): the page's place, the answers carried
	// through it, and on the last page every answer to check.
	Step   *stepView
	Hidden []hiddenInput
	Check  []checkStep
	// Multipart: the form takes files (enctype multipart/form-data).
	Multipart bool
}

// hasFileField reports whether a service's form takes files.
func hasFileField(svc *gateway.Service) bool {
	for i := range svc.Fields {
		if svc.Fields[i].Type == gateway.FieldFile {
			return true
		}
	}
	return false
}

// formPage shows a service's form, empty.
func (s *Server) formPage(c *fiber.Ctx) error {
	svc, ok := s.Catalog.Get(c.Params("id"))
	if !ok {
		return gateway.Errorf(gateway.ENotFound, "error.service_not_found", nil)
	}
	if svc.Prefix != "" { // an existing e-service: no form here
		return c.Redirect(svc.Prefix, fiber.StatusSeeOther)
	}
	st := s.draftState(c, svc)
	if st.token == "" {
		s.trackStart(c, svc) // usage statistics: a fresh form is viewed and started
	}
	return s.renderForm(c, fiber.StatusOK, svc, st)
}

var formTokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{24}$`)

// renderForm draws the form with the values the resident typed and the
// errors found, so that nothing typed is lost.
func (s *Server) renderForm(c *fiber.Ctx, status int, svc *gateway.Service, st formState) error {
	l := s.localizer(c)
	action := "/services/" + svc.ID
	if st.action != "" {
		action = st.action
	}
	if pre := principal(c).Prefilled(svc); len(pre) > 0 {
		st.prefill, st.prefillHint = pre, "form.prefilled"
		for name, v := range pre {
			if f := svc.Field(name); f != nil && f.Prefill == gateway.PrefillPersonnummer {
				pre[name] = personnummerText(v)
			}
		}
	}
	if hasFileField(svc) && s.Intake != nil {
		// Files attached earlier are shown by name (and carried) again.
		ctx, cancel := s.storeCtx(c)
		st.values = s.Intake.AttachmentValues(ctx, svc, st.values, s.formUploadScopes(c))
		cancel()
	}
	fc := newFormContent(l, svc, action, st)
	fc.Multipart = hasFileField(svc)
	fc.Started = s.formStamp(svc, st.values)
	fc.SignInNotice = signInNotice(c, l, svc, st)
	fc.CanSave = s.Drafts != nil
	page, title := "service", fc.Title
	switch {
	case st.check && len(svc.Steps) > 0:
		page, title = "check", l.T("form.check.title", "Title", fc.Title)
		fc.Check = s.checkAnswers(l, svc, st.values)
		fc.Hidden = hiddenValues(svc, st.values, nil)
	case len(svc.Steps) > 0:
		st.step = min(max(st.step, 0), len(svc.Steps)-1)
		fc.addStep(l, svc, st)
		title = l.T("form.step.title", "Step", fc.Step.Title, "Title", fc.Title)
	default:
		fc.addFields(l, svc, st)
		if len(fc.Errors) > 0 {
			s.keepForLanguageSwitch(c, svc, st)
		}
	}
	if len(st.values) > 0 {
		c.Set(fiber.HeaderCacheControl, "no-store") // what a resident typed
	}
	if len(fc.Errors) > 0 || fc.FormError != "" {
		return s.render(c, status, page, l.T("form.error_title_prefix", "Title", title), fc)
	}
	return s.render(c, status, page, title, fc)
}

// newFormContent is the head of a service's form that posts to action:
// its title, department and description, the form token (st's when it is
// well-formed, a new one otherwise) and a problem with the whole form.
func newFormContent(l *locales.Localizer, svc *gateway.Service, action string, st formState) formContent {
	formToken := st.token
	if !formTokenPattern.MatchString(formToken) {
		formToken = randomToken(18)
	}
	fc := formContent{
		Title: l.T(svc.MsgTitle()), Department: l.T(gateway.MsgDepartment(svc.Department)),
		Description: l.Optional(svc.MsgDescription()), Action: action, FormToken: formToken,
		ErrorTitle: l.T("form.error_summary"),
	}
	if st.formErr != nil {
		fc.FormError = l.Message(*st.formErr)
	}
	return fc
}

// addFields adds the service's fields with the values and errors of st;
// each error also goes to the error summary, in form order.
func (fc *formContent) addFields(l *locales.Localizer, svc *gateway.Service, st formState) {
	fc.addFieldsWhere(l, svc, st, func(*gateway.Field) bool { return true })
}

// addFieldsWhere is addFields for the fields that keep says to draw.
func (fc *formContent) addFieldsWhere(l *locales.Localizer, svc *gateway.Service, st formState, keep func(*gateway.Field) bool) {
	for i := range svc.Fields {
		f := &svc.Fields[i]
		if !keep(f) {
			continue
		}
		ff := viewField(l, svc, f, st.values[f.Name])
		if v, ok := st.prefill[f.Name]; ok {
			ff.Value, ff.ReadOnly, ff.Hint, ff.DateParts = v, true, l.T(st.prefillHint), nil
		}
		if m, bad := st.errs[f.Name]; bad {
			ff.Error = fieldMessage(l, ff, m)
			fc.Errors = append(fc.Errors, formError{ID: ff.errorTarget(), Label: ff.Label, Error: ff.Error})
		}
		ff.Describedby = describedBy(ff)
		fc.Fields = append(fc.Fields, ff)
	}
}

func viewField(l *locales.Localizer, svc *gateway.Service, f *gateway.Field, vals []string) formField {
	ff := formField{
		Name: f.Name, ID: "f-" + f.Name, Kind: string(f.Type), InputType: "text",
		Label: l.T(svc.MsgLabel(f)), Hint: l.Optional(svc.MsgHint(f)), Required: f.Required,
		MaxLength: f.MaxLength, Autocomplete: f.Autocomplete,
		RequiredText: l.T("form.required"), ChooseText: l.T("form.choose"),
	}
	if len(vals) > 0 {
		ff.Value = vals[len(vals)-1]
	}
	if k, ok := f.Kind(); ok {
		v := k.View(f, vals)
		if v.InputType != "" {
			ff.InputType = v.InputType
		}
		ff.InputMode, ff.Min, ff.Max, ff.Checked, ff.Group = v.InputMode, v.Min, v.Max, v.Checked, v.Group
		if ff.Autocomplete == "" {
			ff.Autocomplete = v.Autocomplete
		}
		if v.DateParts {
			ff.DateParts = dateParts(l, ff)
		}
		for _, p := range v.Parts {
			ff.Parts = append(ff.Parts, formPart{ID: ff.ID + p.Suffix, Label: l.T(p.Label), Value: p.Value, InputMode: p.InputMode, Autocomplete: p.Autocomplete})
		}
		if v.Note != "" {
			ff.Note = l.Message(gateway.Message{ID: v.Note, Data: v.NoteData})
		}
		ff.Accept, ff.Files = v.Accept, v.Files
		if v.InputType == "file" {
			ff.Value, ff.FilesText = "", l.T("file.attached")
		}
	}
	selected := map[string]bool{}
	for _, v := range vals {
		selected[v] = true
	}
	for _, o := range f.Options {
		ff.Options = append(ff.Options, formOption{Value: o, Label: l.T(svc.MsgOption(f, o)), Selected: selected[o]})
	}
	return ff
}

// errorTarget is the id the error summary links to: the field's input, or
// for a group of check boxes its first box (a fieldset cannot take focus).
func (ff formField) errorTarget() string {
	if ff.Group {
		return ff.ID + "-0"
	}
	return ff.ID
}

func describedBy(ff formField) string {
	ids := ""
	if ff.Hint != "" {
		ids = ff.ID + "-hint"
	}
	if ff.Error != "" {
		if ids != "" {
			ids += " "
		}
		ids += ff.ID + "-error"
	}
	return ids
}

// submitForm accepts a form post and hands it to the intake: on a problem
// the form is drawn again with everything typed kept; a sign-in below the
// service's level keeps the values and sends the browser to sign in; once
// stored durably, the receipt.
func (s *Server) submitForm(c *fiber.Ctx) error {
	svc, ok := s.Catalog.Get(c.Params("id"))
	if !ok {
		return gateway.Errorf(gateway.ENotFound, "error.service_not_found", nil)
	}
	values := postValues(c)
	formToken := firstValue(values["_form"])
	delete(values, "_form")
	delete(values, "_csrf")
	st := formState{values: values, token: formToken, action: draftAction(c, svc)}
	if firstValue(values[navField]) == navSave {
		return s.saveDraft(c, svc, st) // drafts.go
	}
	if nav := takeNav(svc, values); nav.action != "send" {
		return s.navigate(c, svc, st, nav) // a multi-step form's pages
	}
	req := intake.Request{Service: svc, Channel: gateway.ChannelDigital, Principal: principal(c), Values: values,
		Locale: lang(c).String(), Started: firstValue(values[stampField]),
		Errors: uploadErrors(c), UploadScopes: s.formUploadScopes(c)}
	if formTokenPattern.MatchString(formToken) {
		req.IdempotencyKey, req.IdempotencyScope = formToken, "form"
	}
	res, err := s.Intake.Submit(c.UserContext(), req)
	var gerr *gateway.Error
	switch {
	case err == nil:
	case errors.Is(err, intake.ErrStepUp) && errors.As(err, &gerr):
		return s.stepUp(c, svc, st, gerr) // sign in at the service's level; the values are kept
	case errors.As(err, &gerr) && gerr.Code == gateway.EInvalid:
		st.errs, st.step = gerr.Fields, stepOfFirstError(svc, gerr.Fields)
		return s.renderForm(c, fiber.StatusUnprocessableEntity, svc, st)
	case errors.As(err, &gerr) && gerr.Code == gateway.EForbidden:
		st.formErr, st.check = &gerr.Message, true
		return s.renderForm(c, fiber.StatusForbidden, svc, st)
	default:
		return err
	}
	s.dropDraft(c)
	return c.Redirect("/s/"+res.Submission.ID+"?receipt=1", fiber.StatusSeeOther)
}

// postValues is the posted form: name -> values, in the order sent.
func postValues(c *fiber.Ctx) map[string][]string {
	values := map[string][]string{}
	c.Request().PostArgs().VisitAll(func(k, v []byte) {
		key := string(k)
		values[key] = append(values[key], string(v))
	})
	joinDateParts(values)
	return values
}

// personnummerText is a 12-digit personnummer as people write it,
// YYYYMMDD-NNNN.
func personnummerText(digits string) string {
	if len(digits) != 12 {
		return digits
	}
	return digits[:8] + "-" + digits[8:]
}
