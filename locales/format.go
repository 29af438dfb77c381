package locales

import (
	"time"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
	"golang.org/x/text/message"
	"golang.org/x/text/number"
	"golang.org/x/text/unicode/bidi"

	cldr "github.com/go-playground/locales"
	"github.com/go-playground/locales/ar"
	"github.com/go-playground/locales/en"
	"github.com/go-playground/locales/fi"
	"github.com/go-playground/locales/so"
	"github.com/go-playground/locales/sv"
	"github.com/go-playground/locales/uk"
)

// Name is a language's name in that language, from CLDR, with a capital
// first letter where the script has one ("Svenska", "Suomi", "العربية"), as
// language switches show it.
func Name(t language.Tag) string {
	n := display.Self.Name(t)
	if n == "" {
		return t.String()
	}
	_, size := utf8.DecodeRuneInString(n)
	return cases.Title(t).String(n[:size]) + n[size:]
}

// Dir is the writing direction of a language, "rtl" or "ltr": the Unicode
// bidirectional class of the first letter of the language's name written in
// itself (CLDR), so that any right-to-left language gets "rtl" without a
// hand-kept list.
func Dir(t language.Tag) string {
	for _, r := range display.Self.Name(t) {
		props, _ := bidi.LookupRune(r)
		switch props.Class() {
		case bidi.R, bidi.AL:
			return "rtl"
		case bidi.L:
			return "ltr"
		}
	}
	return "ltr"
}

// Dir is the writing direction of the localizer's language.
func (l *Localizer) Dir() string { return Dir(l.Lang) }

// Name is the localizer's language's name in itself.
func (l *Localizer) Name() string { return Name(l.Lang) }

// Int formats a whole number with the language's digit grouping (CLDR).
func (l *Localizer) Int(n int64) string {
	return message.NewPrinter(l.Lang).Sprint(number.Decimal(n))
}

// Decimal formats v with exactly frac decimals, with the language's decimal
// separator and grouping (CLDR): 12 345,7 in Swedish, 12,345.7 in English.
func (l *Localizer) Decimal(v float64, frac int) string {
	return message.NewPrinter(l.Lang).Sprint(number.Decimal(v, number.MinFractionDigits(frac), number.MaxFractionDigits(frac)))
}

// The CLDR calendar data for date formats, by base language. A language
// missing here gets ISO 8601 dates, and TestEveryShippedLocaleHasDates fails.
var calendars = map[string]cldr.Translator{
	"ar": ar.New(), "en": en.New(), "fi": fi.New(), "so": so.New(), "sv": sv.New(), "uk": uk.New(),
}

func (l *Localizer) calendar() cldr.Translator {
	b, _ := l.Lang.Base()
	return calendars[b.String()]
}

// HasCalendar reports whether the language has CLDR date formats.
func (l *Localizer) HasCalendar() bool { return l.calendar() != nil }

// Date formats a date for people to read in the language (CLDR medium
// format: "22 nov. 2026", "22.11.2026"), in t's location.
func (l *Localizer) Date(t time.Time) string {
	if c := l.calendar(); c != nil {
		return c.FmtDateMedium(t)
	}
	return t.Format(time.DateOnly)
}

// DateTime formats a date and a time of day (hours and minutes) for people
// to read in the language, in t's location. This is the one place the
// gateway formats dates it shows; machine-readable copies stay RFC 3339.
func (l *Localizer) DateTime(t time.Time) string {
	if c := l.calendar(); c != nil {
		return c.FmtDateMedium(t) + " " + c.FmtTimeShort(t)
	}
	return t.Format("2006-01-02 15:04")
}

// Timestamp is DateTime with seconds, for logs and event histories.
func (l *Localizer) Timestamp(t time.Time) string {
	if c := l.calendar(); c != nil {
		return c.FmtDateMedium(t) + " " + c.FmtTimeMedium(t)
	}
	return t.Format(time.DateTime)
}

// LanguageName names a language in the localizer's language, from CLDR
// ("arabiska" on a Swedish page); "" when CLDR has no name for it there.
func (l *Localizer) LanguageName(t language.Tag) string {
	return display.Tags(l.Lang).Name(t)
}
