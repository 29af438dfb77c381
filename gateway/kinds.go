package gateway

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// FieldKind is one kind of form field (text, date, select, ...): a module
// that registers itself (RegisterFieldKind, from an init function in
// services/fields/<kind>/) like the connector kinds do. It knows which
// manifest settings apply to it, how to validate what is sent, how to
// describe the value in JSON Schema and what the HTML form needs to draw
// it; the drawing itself is the template "field-<kind>"
// (web/templates/field_<kind>.html).
type FieldKind interface {
	// Check returns what is wrong with a field's declaration for this
	// kind (settings that do not apply, settings it needs).
	Check(f *Field) []FieldProblem
	// Validate turns the values sent for f into the typed payload value
	// (nil: empty and optional) or the message saying what is wrong.
	// now is the reference for "today".
	Validate(s *Service, f *Field, in []string, now time.Time) (any, *Message)
	// Schema is the JSON Schema of the field's value (without title and
	// description, which the caller adds).
	Schema(f *Field) map[string]any
	// View is what the HTML form needs beyond the field's common parts.
	View(f *Field, vals []string) FieldView
	// Members are the members of the field's JSON value when it is an
	// object, in the order the form posts them under the field's name
	// (the JSON API decoder turns the object into those values); nil for
	// a value that is not an object.
	Members() []string
	// Example is a valid value of a required f without a pattern, for the
	// OpenAPI document's example payload.
	Example(f *Field) any
}

// FieldProblem is something wrong with a field's declaration; Key is the
// manifest key it is about ("options", "min", "min_date", "pattern", ...).
type FieldProblem struct{ Key, Msg string }

// FieldView is the kind-specific part of a field as the HTML form draws it.
type FieldView struct {
	InputType    string // the input element's type; "" means "text"
	InputMode    string
	Min, Max     string
	Autocomplete string // used when the manifest gives none
	Checked      bool   // a checkbox that is ticked
	DateParts    bool   // drawn as day, month and year inputs
	Group        bool   // drawn as a group of options: errors point at the first
	// A value of several inputs (Members): each input, in order, and a
	// note (message ID) on how to fill them.
	Parts []FieldPart
	Note  string
	// NoteData are the placeholders of Note.
	NoteData map[string]any
	// A file input: its accept attribute, and the files already attached
	// (kept when the form is drawn again).
	Accept string
	Files  []AttachedFile
}

// AttachedFile is a file already attached to a file field.
type AttachedFile struct{ ID, Name, Size string }

// FieldPart is one input of a field of several.
type FieldPart struct {
	Suffix       string // added to the field's id: "" for the first input
	Label        string // message ID
	Value        string
	InputMode    string
	Autocomplete string
}

var (
	kindsMu sync.RWMutex
	kinds   = map[string]FieldKind{}
)

// RegisterFieldKind makes a field kind available to manifests under name.
// It panics on a duplicate name (a programming error, found at start-up).
func RegisterFieldKind(name string, k FieldKind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, dup := kinds[name]; dup {
		panic(fmt.Sprintf("gateway: field kind %q registered twice", name))
	}
	kinds[name] = k
}

// LookupFieldKind returns the field kind registered under name.
func LookupFieldKind(name string) (FieldKind, bool) {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	k, ok := kinds[name]
	return k, ok
}

// FieldKindNames lists the registered field kinds, sorted.
func FieldKindNames() []string {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	out := make([]string, 0, len(kinds))
	for n := range kinds {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Kind returns the field's registered kind.
func (f *Field) Kind() (FieldKind, bool) { return LookupFieldKind(string(f.Type)) }

// Settings a field kind may accept (CheckSettings).
type Setting uint

const (
	SettingOptions Setting = 1 << iota // options (select, multi-select)
	SettingRange                       // min, max (numbers)
	SettingDates                       // min_date, max_date
	SettingPattern                     // pattern
	SettingRequire                     // require (location)
	SettingFile                        // accept, max_size, max_files (file)
)

// CheckSettings returns a problem for each setting of f that the kind
// (allowed) does not take, and for missing options when it needs them.
func CheckSettings(f *Field, allowed Setting) []FieldProblem {
	var out []FieldProblem
	if allowed&SettingOptions != 0 {
		if len(f.Options) == 0 {
			out = append(out, FieldProblem{"type", fmt.Sprintf("a %s field needs options", f.Type)})
		}
	} else if len(f.Options) > 0 {
		out = append(out, FieldProblem{"options", "options are only for select and multi-select fields"})
	}
	if allowed&SettingRange == 0 && (f.Min != nil || f.Max != nil) {
		out = append(out, FieldProblem{"min", "min and max are only for number fields"})
	}
	if allowed&SettingDates == 0 && (f.MinDate != "" || f.MaxDate != "") {
		out = append(out, FieldProblem{"min_date", "min_date and max_date are only for date fields"})
	}
	if allowed&SettingRequire == 0 && f.Require != "" {
		out = append(out, FieldProblem{"require", "require is only for location fields"})
	}
	if allowed&SettingFile == 0 && (len(f.Accept) > 0 || f.MaxSize != 0 || f.MaxFiles != 0) {
		out = append(out, FieldProblem{"accept", "accept, max_size and max_files are only for file fields"})
	}
	if allowed&SettingPattern == 0 && f.Pattern != "" {
		out = append(out, FieldProblem{"pattern", fmt.Sprintf("a pattern does not apply to a %s field", f.Type)})
	}
	return out
}

// CheckInput rejects values that are not valid UTF-8, hold NUL or hold
// characters a resident does not type (hiddenChar; line breaks and tabs
// only when multiline). Every kind's Validate calls it first, directly
// or through TextValue.
func CheckInput(in []string, multiline bool) *Message {
	for _, v := range in {
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return msg(MsgInvalidEncoding)
		}
		if !multiline {
			v = strings.TrimSpace(v) // surrounding white space is trimmed anyway
		}
		if strings.ContainsFunc(v, func(r rune) bool { return hiddenChar(r, multiline) }) {
			return msg(MsgControlChars)
		}
	}
	return nil
}

// TextValue is the common start of a single-value kind: the input is
// checked (CheckInput), one value at most, trimmed (line ends made "\n"
// when multiline), required when the field is, and within min_length and
// max_length (defaultMax when the manifest sets none). An empty optional
// value is "" with no message.
func TextValue(f *Field, in []string, multiline bool, defaultMax int) (string, *Message) {
	if m := CheckInput(in, multiline); m != nil {
		return "", m
	}
	if len(in) > 1 {
		return "", msg(MsgSingleValue)
	}
	v := ""
	if len(in) == 1 {
		v = strings.TrimSpace(in[0])
	}
	if multiline {
		v = strings.ReplaceAll(v, "\r\n", "\n")
	}
	if v == "" {
		if f.Required {
			return "", msg(MsgRequired)
		}
		return "", nil
	}
	n := utf8.RuneCountInString(v)
	if f.MinLength > 0 && n < f.MinLength {
		return "", msg(MsgMinLength, "Min", f.MinLength)
	}
	max := f.MaxLength
	if max <= 0 {
		max = defaultMax
	}
	if n > max {
		return "", msg(MsgMaxLength, "Max", max)
	}
	return v, nil
}

// MatchPattern returns the service's pattern message when f has a pattern
// that v does not match.
func MatchPattern(s *Service, f *Field, v string) *Message {
	if f.Regexp != nil && !f.Regexp.MatchString(v) {
		return &Message{ID: s.MsgPatternError(f)}
	}
	return nil
}

// ExampleText is "Exempeltext", made as long as f's min_length.
func ExampleText(f *Field) string {
	text := "Exempeltext"
	for len([]rune(text)) < f.MinLength {
		text += " exempeltext"
	}
	return text
}

// NewMessage is a validation message with data given as key, value pairs.
func NewMessage(id string, kv ...any) *Message { return msg(id, kv...) }

// StringSchema is the JSON Schema of a single string value of f: minLength
// (1 when required), maxLength (defaultMax when the manifest sets none and
// defaultMax > 0) and the pattern.
func StringSchema(f *Field, defaultMax int) map[string]any {
	p := map[string]any{"type": "string"}
	if f.MinLength > 0 {
		p["minLength"] = f.MinLength
	} else if f.Required {
		p["minLength"] = 1
	}
	if f.MaxLength > 0 {
		p["maxLength"] = f.MaxLength
	} else if defaultMax > 0 {
		p["maxLength"] = defaultMax
	}
	if f.Pattern != "" {
		p["pattern"] = "^(?:" + f.Pattern + ")$"
	}
	return p
}

// ResolveDate turns "today", "today+N", "today-N" (days) or "YYYY-MM-DD"
// into a date at midnight UTC.
func ResolveDate(spec string, now time.Time) (time.Time, bool) { return resolveDate(spec, now) }

// FormatNumber writes x as short as it reads.
func FormatNumber(x float64) string { return formatNumber(x) }

// IsTrue reports whether a checkbox value means ticked.
func IsTrue(v string) bool { return isTrue(v) }
