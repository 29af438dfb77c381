// Package personnummer parses and validates Swedish personal identity numbers
// (personnummer) and coordination numbers (samordningsnummer).
//
// Accepted input forms (surrounding white space is trimmed):
//
//	YYYYMMDD-NNNC  YYYYMMDD+NNNC  YYYYMMDDNNNC   (12 digits: the separator is ignored)
//	YYMMDD-NNNC    YYMMDDNNNC                    (10 digits: person is younger than 100)
//	YYMMDD+NNNC                                  (10 digits: person is 100 or older)
//
// Only the ASCII digits 0-9 count as digits. C is a Luhn check digit computed
// over the ten-digit form YYMMDDNNN. For a samordningsnummer 60 is added to
// the day of birth (day 61-91). The birth date must be a real calendar date
// and may not lie in the future.
//
// Errors returned by this package never contain the input, so they are safe to
// log. Use [Mask] or [Number.Masked] when a number must appear in a log line.
package personnummer

import (
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode"
)

// Number is a validated personnummer or samordningsnummer in 12-digit form
// "YYYYMMDDNNNC". Values should be obtained from [Parse] or [ParseAt]; the
// methods are safe (do not panic) on any other value as well.
type Number string

// Sentinel errors. All errors returned by [Parse] and [ParseAt] match
// ErrInvalid and exactly one of ErrFormat, ErrChecksum or ErrDate with
// [errors.Is]. They never contain the parsed input.
var (
	// ErrInvalid matches every error returned by this package.
	ErrInvalid = errors.New("personnummer: invalid")
	// ErrFormat: wrong length, separator, or a character that is not an
	// ASCII digit.
	ErrFormat = &pnrError{"personnummer: invalid format"}
	// ErrChecksum: the Luhn check digit does not match.
	ErrChecksum = &pnrError{"personnummer: invalid check digit"}
	// ErrDate: not a real calendar date, birth date in the future, or (for
	// the 10-digit forms) no century agrees with the separator.
	ErrDate = &pnrError{"personnummer: invalid date"}
)

type pnrError struct{ msg string }

func (e *pnrError) Error() string { return e.msg }

// Is makes every sentinel match ErrInvalid.
func (e *pnrError) Is(target error) bool { return target == ErrInvalid }

// Parse parses s using the current time as reference for choosing the century
// of the 10-digit forms and for rejecting future birth dates.
func Parse(s string) (Number, error) {
	return ParseAt(s, time.Now())
}

// ParseAt parses s using now as reference for choosing the century of the
// 10-digit forms and for rejecting future birth dates. Dates are compared in
// now's location.
func ParseAt(s string, now time.Time) (Number, error) {
	s = strings.TrimSpace(s)
	digits, sep := s, byte('-') // no separator means '-'
	switch len(s) {
	case 10, 12:
	case 11:
		digits, sep = s[:6]+s[7:], s[6]
	case 13:
		digits, sep = s[:8]+s[9:], s[8]
	default:
		return "", ErrFormat
	}
	if sep != '-' && sep != '+' {
		return "", ErrFormat
	}
	if !allDigits(digits) {
		return "", ErrFormat
	}
	short := digits[len(digits)-10:] // YYMMDDNNNC
	if luhn(short[:9]) != short[9] {
		return "", ErrChecksum
	}
	month := atoi(short[2:4])
	day := atoi(short[4:6])
	ny, nm, nd := now.Date()
	today := dateKey(ny, int(nm), nd)

	if len(digits) == 12 {
		year := atoi(digits[:4])
		if !validDate(year, month, day) || dateKey(year, month, day) > today {
			return "", ErrDate
		}
		return Number(digits), nil
	}

	// 10 digits: choose the century. y0 is the latest year not after the
	// current year that ends in YY; the person is then younger than one year
	// (or born in the future), 99-100 years old at y0-100 and 199-200 at
	// y0-200.
	yy := atoi(short[:2])
	y0 := ny - mod(ny-yy, 100)
	for _, year := range [...]int{y0, y0 - 100, y0 - 200} {
		if year < 0 || year > 9999 || !validDate(year, month, day) || dateKey(year, month, day) > today {
			continue
		}
		a := age(year, month, day, ny, int(nm), nd)
		if (sep == '+' && a >= 100 && a < 200) || (sep == '-' && a < 100) {
			return Number(itoa4(year) + short[2:]), nil
		}
	}
	return "", ErrDate
}

// String returns the 12-digit form "YYYYMMDDNNNC".
//
// Note that this is the full, unmasked number; use [Number.Masked] for logs.
func (n Number) String() string { return string(n) }

// Masked returns the number with the last four digits hidden, for example
// "19850101-****". The date part (including +60 for a samordningsnummer) is
// kept.
func (n Number) Masked() string {
	if len(n) == 12 && allDigits(string(n)) {
		return string(n[:8]) + "-****"
	}
	return Mask(string(n))
}

// LogValue implements [slog.LogValuer] so that a Number passed to log/slog is
// logged masked.
func (n Number) LogValue() slog.Value { return slog.StringValue(n.Masked()) }

// IsCoordination reports whether n is a samordningsnummer (day of birth + 60).
func (n Number) IsCoordination() bool {
	_, _, d, ok := n.parts()
	return ok && d > 60
}

// BirthDate returns the date of birth at midnight UTC. For a samordningsnummer
// 60 is subtracted from the day. It returns the zero time if n is not a valid
// 12-digit number.
func (n Number) BirthDate() time.Time {
	y, m, d, ok := n.parts()
	if !ok {
		return time.Time{}
	}
	if d > 60 {
		d -= 60
	}
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
}

// parts returns year, month and (possibly coordination) day of a structurally
// valid 12-digit Number.
func (n Number) parts() (y, m, d int, ok bool) {
	s := string(n)
	if len(s) != 12 || !allDigits(s) {
		return 0, 0, 0, false
	}
	y, m, d = atoi(s[:4]), atoi(s[4:6]), atoi(s[6:8])
	if !validDate(y, m, d) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

// Mask masks any string that may contain a personnummer, for use in logs. It
// never returns the last four digits of a number.
//
// If the trimmed input has the shape of a personnummer (10 or 12 ASCII digits,
// optionally with a separator in the right place) the date part is kept and
// the last four digits are replaced: "YYYYMMDD-****", "YYMMDD-****" or
// "YYMMDD+****". The check digit and date are not validated. Otherwise every
// numeric character (in any script) is replaced by '*'.
func Mask(s string) string {
	t := strings.TrimSpace(s)
	isSep := func(c byte) bool { return c == '-' || c == '+' }
	switch {
	case len(t) == 12 && allDigits(t),
		len(t) == 13 && isSep(t[8]) && allDigits(t[:8]) && allDigits(t[9:]):
		return t[:8] + "-****"
	case len(t) == 10 && allDigits(t):
		return t[:6] + "-****"
	case len(t) == 11 && isSep(t[6]) && allDigits(t[:6]) && allDigits(t[7:]):
		return t[:7] + "****"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsNumber(r) {
			return '*'
		}
		return r
	}, s)
}

// luhn returns the Luhn check digit (as an ASCII byte) for the ASCII digits
// in s, doubling the first digit.
func luhn(s string) byte {
	sum := 0
	for i := 0; i < len(s); i++ {
		d := int(s[i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// atoi converts a short string of ASCII digits.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func itoa4(n int) string {
	return string([]byte{
		byte('0' + n/1000%10), byte('0' + n/100%10),
		byte('0' + n/10%10), byte('0' + n%10),
	})
}

func mod(a, b int) int { return (a%b + b) % b }

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(y, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// validDate reports whether y-m-d is a real date, where d may be a
// samordningsnummer day (real day + 60).
func validDate(y, m, d int) bool {
	if d > 60 {
		d -= 60
	}
	return m >= 1 && m <= 12 && d >= 1 && d <= daysIn(y, m)
}

// dateKey maps a date to an int with the same order. d may be a
// samordningsnummer day.
func dateKey(y, m, d int) int {
	if d > 60 {
		d -= 60
	}
	return y*10000 + m*100 + d
}

// age returns the completed years at ny-nm-nd of a person born y-m-d (d may be
// a samordningsnummer day).
func age(y, m, d, ny, nm, nd int) int {
	if d > 60 {
		d -= 60
	}
	a := ny - y
	if nm*100+nd < m*100+d {
		a--
	}
	return a
}
