package gateway

import (
	"regexp"
	"slices"
	"time"
)

// FieldType is the kind of a form field.
type FieldType string

// The built-in field kinds (services/fields/<kind>/ registers each).
const (
	FieldText         FieldType = "text"
	FieldTextarea     FieldType = "textarea"
	FieldNumber       FieldType = "number"
	FieldDate         FieldType = "date"
	FieldEmail        FieldType = "email"
	FieldPhone        FieldType = "phone"
	FieldSelect       FieldType = "select"
	FieldMultiSelect  FieldType = "multi-select"
	FieldCheckbox     FieldType = "checkbox"
	FieldPersonnummer FieldType = "personnummer"
	FieldLocation     FieldType = "location"
	FieldFile         FieldType = "file"
)

// What a field may be prefilled with from the sign-in.
const (
	PrefillPersonnummer = "personnummer"
	PrefillName         = "name"
)

// HasOptions reports whether fields of this type choose among options.
func (t FieldType) HasOptions() bool { return t == FieldSelect || t == FieldMultiSelect }

// Field is one input of a service's form. Its label, hint and option labels
// are translations with the IDs given by the Msg* methods.
type Field struct {
	Name      string
	Type      FieldType
	Required  bool
	MinLength int      // in characters; 0 means no minimum
	MaxLength int      // in characters; 0 means the type's default
	Pattern   string   // a Go regular expression the whole value must match
	Min, Max  *float64 // for numbers; for dates, see MinDate/MaxDate
	MinDate   string   // "YYYY-MM-DD" or "today"
	MaxDate   string
	Options   []string // values for select and multi-select
	// Autocomplete is the HTML autocomplete token (e.g. "email", "tel").
	Autocomplete string
	// ShowIf are the conditions on earlier answers for the field to be
	// shown; a hidden field is neither validated nor stored.
	ShowIf []Condition
	// Prefill names what the sign-in already says that the field holds
	// (PrefillPersonnummer, PrefillName): a signed-in person is not asked
	// for it; the value is taken from the identity, never from the form.
	Prefill string
	// Require says what a location field must be given: "address",
	// "coordinates" or "either" (""; both may be given).
	Require string
	// File fields (services/fields/file): the media types accepted (found
	// by sniffing the content), the largest file in bytes and the most
	// files; the kind supplies defaults for the last two.
	Accept   []string
	MaxSize  int64
	MaxFiles int

	Regexp *regexp.Regexp // compiled Pattern, anchored; set by the manifest decoder
}

// Service is an e-service a department offers through the gateway.
type Service struct {
	ID         string
	Version    string
	Department string
	Category   string
	Keywords   []string
	Assurance  Assurance
	Channels   []Channel
	Retention  time.Duration
	Fields     []Field
	// Steps group the fields into pages (a multi-step form ending with a
	// check-your-answers page); none: one page.
	Steps  []Step
	Route  Route
	Source string // the manifest file it came from, for messages
	// Prefix is the path under which the gateway serves an existing
	// e-service it proxies (route kind "proxy", e.g. "/e/library/");
	// empty for a service with a form. Such a service has no fields and
	// takes no submissions: the catalog links to the prefix.
	Prefix string

	// NotifyEmailField is the e-mail field whose value, when given, is the
	// address the resident is told about progress at (gateway/notify).
	NotifyEmailField string

	// Open311, when set, publishes the service through the Open311
	// GeoReport v2 facade (gateway/open311).
	Open311 *Open311
}

// Open311 is how a service appears in Open311 GeoReport v2 (manifest table
// [open311]). Its requests are public there (description, address, status),
// so only services without personal data (assurance none) may declare it.
type Open311 struct {
	// ServiceCode is the Open311 service_code; default: the service id.
	ServiceCode string
	// Keywords are the Open311 keywords; default: the manifest's.
	Keywords []string
	// LocationField is the field that receives address_string and
	// lat/long: a location field (address and coordinates apart) or a
	// text field (one line); required.
	LocationField string
	// DescriptionField receives description; EmailField receives email
	// (never shown in GET requests). Both optional.
	DescriptionField, EmailField string
}

// Route says where a service's submissions go.
type Route struct {
	Kind string // the connector kind, e.g. "http"
}

// AllowsChannel reports whether the manifest lists ch among the channels
// the service may be used through.
func (s *Service) AllowsChannel(ch Channel) bool { return slices.Contains(s.Channels, ch) }

// Field returns the field with the name, or nil.
func (s *Service) Field(name string) *Field {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i]
		}
	}
	return nil
}

// Message IDs of a service's translations. Departments ship these in their
// translation files; the manifest check requires them in every locale.

// MsgTitle is the ID of the service's title.
func (s *Service) MsgTitle() string { return s.ID + ".title" }

// MsgSummary is the ID of the one-sentence summary shown in the catalog.
func (s *Service) MsgSummary() string { return s.ID + ".summary" }

// MsgDescription is the ID of the longer text above the form.
func (s *Service) MsgDescription() string { return s.ID + ".description" }

// MsgKeywords is the ID of extra search words, comma separated, per language.
func (s *Service) MsgKeywords() string { return s.ID + ".keywords" }

// MsgLabel is the ID of a field's label.
func (s *Service) MsgLabel(f *Field) string { return s.ID + ".field." + f.Name + ".label" }

// MsgHint is the ID of a field's optional hint.
func (s *Service) MsgHint(f *Field) string { return s.ID + ".field." + f.Name + ".hint" }

// MsgOption is the ID of the label of one of a field's options.
func (s *Service) MsgOption(f *Field, value string) string {
	return s.ID + ".field." + f.Name + ".option." + value
}

// MsgPatternError is the ID of the message shown when the value does not
// match the field's pattern. Required when a field has a pattern.
func (s *Service) MsgPatternError(f *Field) string {
	return s.ID + ".field." + f.Name + ".pattern_error"
}

// MsgDepartment is the ID of a department's name.
func MsgDepartment(id string) string { return "department." + id }

// MsgCategory is the ID of a category's name.
func MsgCategory(id string) string { return "category." + id }

// RequiredMessages lists the message IDs a service's translations must hold
// in every shipped locale (hints and descriptions are optional).
func (s *Service) RequiredMessages() []string {
	ids := []string{s.MsgTitle(), s.MsgSummary(), MsgDepartment(s.Department), MsgCategory(s.Category)}
	for i := range s.Steps {
		ids = append(ids, s.MsgStepTitle(&s.Steps[i]))
	}
	for i := range s.Fields {
		f := &s.Fields[i]
		ids = append(ids, s.MsgLabel(f))
		for _, o := range f.Options {
			ids = append(ids, s.MsgOption(f, o))
		}
		if f.Pattern != "" {
			ids = append(ids, s.MsgPatternError(f))
		}
	}
	return ids
}
