package gateway

import (
	"errors"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kommun/servicegateway/gateway/personnummer"
)

// Default maximum lengths, in characters, when a manifest sets none.
const (
	DefaultMaxText     = 200
	DefaultMaxTextarea = 5000
	maxEmail           = 254
	maxPhone           = 30
)

// Validation message IDs. Their translations live in locales/.
const (
	MsgRequired        = "validation.required"
	MsgMinLength       = "validation.min_length"
	MsgMaxLength       = "validation.max_length"
	MsgNumber          = "validation.number"
	MsgMin             = "validation.min"
	MsgMax             = "validation.max"
	MsgDate            = "validation.date"
	MsgMinDate         = "validation.min_date"
	MsgMaxDate         = "validation.max_date"
	MsgEmail           = "validation.email"
	MsgPhone           = "validation.phone"
	MsgOption          = "validation.option"
	MsgSingleValue     = "validation.single_value"
	MsgCheckbox        = "validation.checkbox_required"
	MsgPersonnummer    = "validation.personnummer"
	MsgPnrChecksum     = "validation.personnummer_checksum"
	MsgPnrDate         = "validation.personnummer_date"
	MsgUnknownField    = "validation.unknown_field"
	MsgInvalidEncoding = "validation.encoding"
	MsgType            = "validation.type"
	MsgControlChars    = "validation.control_chars"
)

// ValidationMessages lists every message ID Validate may return, so tests can
// check that each one is translated.
var ValidationMessages = []string{MsgRequired, MsgMinLength, MsgMaxLength, MsgNumber, MsgMin, MsgMax,
	MsgDate, MsgMinDate, MsgMaxDate, MsgEmail, MsgPhone, MsgOption, MsgSingleValue, MsgCheckbox,
	MsgPersonnummer, MsgPnrChecksum, MsgPnrDate, MsgUnknownField, MsgInvalidEncoding, MsgType, MsgControlChars}

// DateLayout is the layout of date values (ISO 8601, as HTML date inputs send).
const DateLayout = "2006-01-02"

// Validate checks submitted values against the service's fields and returns
// the typed payload: strings, float64 for numbers, bool for checkboxes,
// []string for multi-selects and the 12-digit form of personnummer. Empty
// optional fields and fields hidden by their conditions (show_if) are left
// out. The HTML form and the JSON API both call it,
// so they accept exactly the same input. now is the reference for "today".
func (s *Service) Validate(values map[string][]string, now time.Time) (map[string]any, FieldErrors) {
	payload := make(map[string]any, len(s.Fields))
	errs := FieldErrors{}
	shown := s.Shown(values)
	for i := range s.Fields {
		f := &s.Fields[i]
		if !shown[f.Name] {
			continue // hidden by its conditions: neither validated nor stored
		}
		v, msg := f.validate(s, values[f.Name], now)
		if msg != nil {
			errs[f.Name] = *msg
			continue
		}
		if v != nil {
			payload[f.Name] = v
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return payload, nil
}

// UnknownFields returns an error for every key that is not a field of s.
func (s *Service) UnknownFields(keys []string) FieldErrors {
	errs := FieldErrors{}
	for _, k := range keys {
		if s.Field(k) == nil {
			errs[k] = Message{ID: MsgUnknownField}
		}
	}
	return errs
}

func msg(id string, kv ...any) *Message {
	m := &Message{ID: id}
	if len(kv) > 0 {
		m.Data = map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m.Data[kv[i].(string)] = kv[i+1]
		}
	}
	return m
}

func (f *Field) maxLength() int {
	if f.MaxLength > 0 {
		return f.MaxLength
	}
	switch f.Type {
	case FieldTextarea:
		return DefaultMaxTextarea
	case FieldEmail:
		return maxEmail
	case FieldPhone:
		return maxPhone
	}
	return DefaultMaxText
}

// hiddenChar reports a character a resident does not type and a case
// officer cannot see: control characters (line breaks and tabs only in
// multi-line text) and the bidirectional embeddings, overrides and
// isolates (U+202A-U+202E, U+2066-U+2069) that make text display in
// another order than it is stored ("Trojan Source"). The directional
// marks LRM, RLM and ALM, which Arabic and Hebrew keyboards type, pass.
func hiddenChar(r rune, multiline bool) bool {
	switch {
	case r == '\n' || r == '\r' || r == '\t':
		return !multiline
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return unicode.IsControl(r)
}

func (f *Field) validate(s *Service, in []string, now time.Time) (any, *Message) {
	for _, v := range in {
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return nil, msg(MsgInvalidEncoding)
		}
		multiline := f.Type == FieldTextarea
		if !multiline {
			v = strings.TrimSpace(v) // surrounding white space is trimmed below anyway
		}
		if strings.ContainsFunc(v, func(r rune) bool { return hiddenChar(r, multiline) }) {
			return nil, msg(MsgControlChars)
		}
	}
	if f.Type == FieldMultiSelect {
		return f.validateMulti(in)
	}
	if f.Type == FieldCheckbox {
		checked := len(in) > 0 && isTrue(in[len(in)-1])
		if f.Required && !checked {
			return nil, msg(MsgCheckbox)
		}
		return checked, nil
	}
	if len(in) > 1 {
		return nil, msg(MsgSingleValue)
	}
	v := ""
	if len(in) == 1 {
		v = strings.TrimSpace(in[0])
	}
	if f.Type == FieldTextarea {
		v = strings.ReplaceAll(v, "\r\n", "\n")
	}
	if v == "" {
		if f.Required {
			return nil, msg(MsgRequired)
		}
		return nil, nil
	}
	n := utf8.RuneCountInString(v)
	if f.MinLength > 0 && n < f.MinLength {
		return nil, msg(MsgMinLength, "Min", f.MinLength)
	}
	if max := f.maxLength(); n > max {
		return nil, msg(MsgMaxLength, "Max", max)
	}
	switch f.Type {
	case FieldNumber:
		x, err := strconv.ParseFloat(strings.Replace(v, ",", ".", 1), 64)
		if err != nil || x != x || x > 1e15 || x < -1e15 {
			return nil, msg(MsgNumber)
		}
		if f.Min != nil && x < *f.Min {
			return nil, msg(MsgMin, "Min", formatNumber(*f.Min))
		}
		if f.Max != nil && x > *f.Max {
			return nil, msg(MsgMax, "Max", formatNumber(*f.Max))
		}
		return x, nil
	case FieldDate:
		d, err := time.Parse(DateLayout, v)
		if err != nil {
			return nil, msg(MsgDate)
		}
		if min, ok := resolveDate(f.MinDate, now); ok && d.Before(min) {
			return nil, msg(MsgMinDate, "Date", min.Format(DateLayout))
		}
		if max, ok := resolveDate(f.MaxDate, now); ok && d.After(max) {
			return nil, msg(MsgMaxDate, "Date", max.Format(DateLayout))
		}
	case FieldEmail:
		a, err := mail.ParseAddress(v)
		if err != nil || a.Address != v || a.Name != "" || !strings.Contains(v[strings.LastIndexByte(v, '@'):], ".") {
			return nil, msg(MsgEmail)
		}
	case FieldPhone:
		digits := 0
		for i, r := range v {
			switch {
			case r >= '0' && r <= '9':
				digits++
			case r == '+' && i == 0, r == ' ', r == '-', r == '(', r == ')':
			default:
				return nil, msg(MsgPhone)
			}
		}
		if digits < 6 || digits > 15 {
			return nil, msg(MsgPhone)
		}
	case FieldSelect:
		if !slices.Contains(f.Options, v) {
			return nil, msg(MsgOption)
		}
	case FieldPersonnummer:
		p, err := personnummer.ParseAt(v, now)
		switch {
		case errors.Is(err, personnummer.ErrChecksum):
			return nil, msg(MsgPnrChecksum)
		case errors.Is(err, personnummer.ErrDate):
			return nil, msg(MsgPnrDate)
		case err != nil:
			return nil, msg(MsgPersonnummer)
		}
		return p.String(), nil
	}
	if f.Regexp != nil && !f.Regexp.MatchString(v) {
		return nil, &Message{ID: s.MsgPatternError(f)}
	}
	return v, nil
}

func (f *Field) validateMulti(in []string) (any, *Message) {
	var out []string
	for _, v := range in {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if !slices.Contains(f.Options, v) {
			return nil, msg(MsgOption)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		if f.Required {
			return nil, msg(MsgRequired)
		}
		return nil, nil
	}
	return out, nil
}

func isTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "1", "yes", "ja":
		return true
	}
	return false
}

func formatNumber(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// resolveDate turns "today", "today+N", "today-N" (days) or "YYYY-MM-DD"
// into a date at midnight UTC.
func resolveDate(spec string, now time.Time) (time.Time, bool) {
	if spec == "" {
		return time.Time{}, false
	}
	if rest, ok := strings.CutPrefix(spec, "today"); ok {
		y, m, d := now.Date()
		today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		if rest == "" {
			return today, true
		}
		n, err := strconv.Atoi(rest)
		if err != nil {
			return time.Time{}, false
		}
		return today.AddDate(0, 0, n), true
	}
	t, err := time.Parse(DateLayout, spec)
	return t, err == nil
}

// ValidDateSpec reports whether a manifest's min_date/max_date is usable.
func ValidDateSpec(spec string) bool {
	_, ok := resolveDate(spec, time.Now())
	return ok
}
