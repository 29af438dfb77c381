package gateway

import (
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Default maximum lengths, in characters, when a manifest sets none.
const (
	DefaultMaxText     = 200
	DefaultMaxTextarea = 5000
	DefaultMaxEmail    = 254
	DefaultMaxPhone    = 30
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
	// The location kind's: coordinates that are not numbers in range (or
	// only one of the two), and coordinates outside the municipality.
	MsgLocationCoordinates = "validation.location_coordinates"
	MsgLocationOutside     = "validation.location_outside"
	MsgLocationAddress     = "validation.location_address" // require = "address", none given
	// The file kind's and the upload's (data: Name, the sanitised file
	// name; Max, a size such as "10 MB" or a count; Allowed, the accepted
	// types' names).
	MsgAttachmentType      = "validation.attachment_type"
	MsgAttachmentTooLarge  = "validation.attachment_too_large"
	MsgAttachmentTooMany   = "validation.attachment_too_many"
	MsgAttachmentTotal     = "validation.attachment_total"
	MsgAttachmentNotFound  = "validation.attachment_not_found"
	MsgAttachmentInfected  = "validation.attachment_infected"
	MsgAttachmentEmpty     = "validation.attachment_empty"
	MsgAttachmentUnscanned = "validation.attachment_unscanned"
)

// ValidationMessages lists every message ID Validate may return, so tests can
// check that each one is translated.
var ValidationMessages = []string{MsgRequired, MsgMinLength, MsgMaxLength, MsgNumber, MsgMin, MsgMax,
	MsgDate, MsgMinDate, MsgMaxDate, MsgEmail, MsgPhone, MsgOption, MsgSingleValue, MsgCheckbox,
	MsgPersonnummer, MsgPnrChecksum, MsgPnrDate, MsgUnknownField, MsgInvalidEncoding, MsgType, MsgControlChars,
	MsgLocationCoordinates, MsgLocationOutside, MsgLocationAddress,
	MsgAttachmentType, MsgAttachmentTooLarge, MsgAttachmentTooMany, MsgAttachmentTotal, MsgAttachmentNotFound,
	MsgAttachmentInfected, MsgAttachmentEmpty, MsgAttachmentUnscanned}

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
	k, ok := f.Kind()
	if !ok { // the manifest loader allows registered kinds only
		return nil, msg(MsgType)
	}
	return k.Validate(s, f, in, now)
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
