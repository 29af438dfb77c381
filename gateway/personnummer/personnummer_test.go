package personnummer

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode"
)

// fixedNow is the reference time of all table tests.
var fixedNow = time.Date(2026, time.June, 15, 12, 0, 0, 0, time.UTC)

// testLuhn is an independent Luhn implementation for the tests: walk the
// payload from the right, doubling every other digit starting with the
// rightmost one, and return the digit that makes the total a multiple of 10.
func testLuhn(t testing.TB, payload string) byte {
	t.Helper()
	if len(payload) != 9 {
		t.Fatalf("testLuhn: payload must have 9 digits, got %d", len(payload))
	}
	sum := 0
	double := true
	for i := len(payload) - 1; i >= 0; i-- {
		d := int(payload[i] - '0')
		if double {
			d = (d*2)/10 + (d*2)%10
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

// withCheck replaces the trailing 'X' of s with the correct check digit,
// computed over the last nine digits before it (YYMMDDNNN).
func withCheck(t testing.TB, s string) string {
	t.Helper()
	if !strings.HasSuffix(s, "X") {
		return s
	}
	var digits []byte
	for i := 0; i < len(s)-1; i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits = append(digits, s[i])
		}
	}
	if len(digits) < 9 {
		t.Fatalf("withCheck: too few digits in test input")
	}
	return s[:len(s)-1] + string(testLuhn(t, string(digits[len(digits)-9:])))
}

// badCheck is like withCheck but returns a wrong check digit.
func badCheck(t testing.TB, s string) string {
	t.Helper()
	good := withCheck(t, s)
	last := good[len(good)-1]
	return good[:len(good)-1] + string('0'+(last-'0'+1)%10)
}

func TestLuhnHelperKnownNumbers(t *testing.T) {
	// Well-known valid numbers (Skatteverket examples / test numbers).
	for _, s := range []string{"1212121212", "8112289874", "7010632391"} {
		if got := testLuhn(t, s[:9]); got != s[9] {
			t.Errorf("testLuhn(%s) = %c, want %c", s[:9], got, s[9])
		}
		if got := luhn(s[:9]); got != s[9] {
			t.Errorf("luhn(%s) = %c, want %c", s[:9], got, s[9])
		}
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  string
		coord bool
		birth string // YYYY-MM-DD
	}{
		// Literal, well-known numbers.
		{"skatteverket 12 dash", "19121212-1212", "191212121212", false, "1912-12-12"},
		{"skatteverket 12 plain", "191212121212", "191212121212", false, "1912-12-12"},
		{"12 digits plus ignored", "19121212+1212", "191212121212", false, "1912-12-12"},
		{"10 plus", "121212+1212", "191212121212", false, "1912-12-12"},
		{"10 dash chooses 2012", "121212-1212", "201212121212", false, "2012-12-12"},
		{"10 plain chooses 2012", "1212121212", "201212121212", false, "2012-12-12"},
		{"classic 10 dash", "811228-9874", "198112289874", false, "1981-12-28"},
		{"classic 10 plain", "8112289874", "198112289874", false, "1981-12-28"},
		{"classic 12", "198112289874", "198112289874", false, "1981-12-28"},
		{"trimmed", "  19811228-9874\t\n", "198112289874", false, "1981-12-28"},
		{"samordning literal", "701063-2391", "197010632391", true, "1970-10-03"},

		// Leap years.
		{"2000-02-29 12", withCheck(t, "20000229-123X"), "", false, "2000-02-29"},
		{"2000-02-29 10", withCheck(t, "000229-123X"), "", false, "2000-02-29"},
		{"2024-02-29 12", withCheck(t, "20240229-456X"), "", false, "2024-02-29"},
		{"2024-02-29 10", withCheck(t, "240229456X"), "", false, "2024-02-29"},
		{"1996-02-29", withCheck(t, "19960229001X"), "", false, "1996-02-29"},
		{"1904-02-29 plus", withCheck(t, "040229+002X"), "", false, "1904-02-29"},

		// Century choice around fixedNow (2026-06-15).
		{"born today", withCheck(t, "260615-001X"), "", false, "2026-06-15"},
		{"tomorrow -> 1926, age 99", withCheck(t, "260616-001X"), "", false, "1926-06-16"},
		{"exactly 100 with plus", withCheck(t, "260615+001X"), "", false, "1926-06-15"},
		{"plus age 99 -> 1826", withCheck(t, "260616+001X"), "", false, "1826-06-16"},
		{"270101 dash -> 1927", withCheck(t, "270101-001X"), "", false, "1927-01-01"},
		{"270101 plus -> 1827", withCheck(t, "270101+001X"), "", false, "1827-01-01"},
		{"991231 dash -> 1999", withCheck(t, "991231-001X"), "", false, "1999-12-31"},
		{"991231 plus -> 1899", withCheck(t, "991231+001X"), "", false, "1899-12-31"},
		{"12 digits today", withCheck(t, "20260615-001X"), "", false, "2026-06-15"},
		{"12 digits old", withCheck(t, "18500101-001X"), "", false, "1850-01-01"},

		// Samordningsnummer (day + 60).
		{"coord day 61", withCheck(t, "19850161-123X"), "", true, "1985-01-01"},
		{"coord day 91", withCheck(t, "19850191-123X"), "", true, "1985-01-31"},
		{"coord 30 Apr", withCheck(t, "19850490-123X"), "", true, "1985-04-30"},
		{"coord 2000-02-29", withCheck(t, "20000289-123X"), "", true, "2000-02-29"},
		{"coord 10 digits", withCheck(t, "850161-123X"), "", true, "1985-01-01"},
		{"coord 10 plus", withCheck(t, "100361+123X"), "", true, "1910-03-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseAt(tt.in, fixedNow)
			if err != nil {
				t.Fatalf("ParseAt(%q) error: %v", tt.in, err)
			}
			want := tt.want
			if want == "" {
				// Derive the expected 12-digit form from the birth date
				// and the last four digits of the input.
				b, _ := time.Parse("2006-01-02", tt.birth)
				day := b.Day()
				if tt.coord {
					day += 60
				}
				want = fmt.Sprintf("%04d%02d%02d%s", b.Year(), int(b.Month()), day, tt.in[len(tt.in)-4:])
			}
			if got := n.String(); got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
			if got := n.IsCoordination(); got != tt.coord {
				t.Errorf("IsCoordination() = %v, want %v", got, tt.coord)
			}
			if got := n.BirthDate().Format("2006-01-02"); got != tt.birth {
				t.Errorf("BirthDate() = %s, want %s", got, tt.birth)
			}
			if got, w := n.Masked(), want[:8]+"-****"; got != w {
				t.Errorf("Masked() = %q, want %q", got, w)
			}
			// The normalised form must parse to itself.
			if n2, err := ParseAt(n.String(), fixedNow); err != nil || n2 != n {
				t.Errorf("round trip: ParseAt(String()) = %q, %v", n2, err)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		// Check digit.
		{"bad check 12", "19121212-1213", ErrChecksum},
		{"bad check 10", "811228-9875", ErrChecksum},
		{"bad check plain", "8112289873", ErrChecksum},
		{"bad check coord", badCheck(t, "19850161-123X"), ErrChecksum},
		{"bad check leap", badCheck(t, "20000229-123X"), ErrChecksum},

		// Dates (all with correct check digits).
		{"1900-02-29 12", withCheck(t, "19000229-123X"), ErrDate},
		{"1900-02-29 plus", withCheck(t, "000229+123X"), ErrDate},
		{"2023-02-29 12", withCheck(t, "20230229-123X"), ErrDate},
		{"2023-02-29 10", withCheck(t, "230229-123X"), ErrDate},
		{"1997-02-29", withCheck(t, "19970229-123X"), ErrDate},
		{"2100-02-29 future anyway", withCheck(t, "21000229-123X"), ErrDate},
		{"month 00", withCheck(t, "19850001-123X"), ErrDate},
		{"month 13", withCheck(t, "19851301-123X"), ErrDate},
		{"day 00", withCheck(t, "19850100-123X"), ErrDate},
		{"day 32", withCheck(t, "19850132-123X"), ErrDate},
		{"31 April", withCheck(t, "19850431-123X"), ErrDate},
		{"future 12 digits", withCheck(t, "20260616-123X"), ErrDate},
		{"far future 12 digits", withCheck(t, "99991231-123X"), ErrDate},

		// Samordningsnummer out of range.
		{"coord day 60", withCheck(t, "19850160-123X"), ErrDate},
		{"coord day 92", withCheck(t, "19850192-123X"), ErrDate},
		{"coord day 99", withCheck(t, "19850199-123X"), ErrDate},
		{"coord day 33..59", withCheck(t, "19850145-123X"), ErrDate},
		{"coord 31 Feb", withCheck(t, "19850291-123X"), ErrDate},
		{"coord 31 April", withCheck(t, "19850491-123X"), ErrDate},
		{"coord 1900-02-29", withCheck(t, "19000289-123X"), ErrDate},
		{"coord 2023-02-29", withCheck(t, "20230289-123X"), ErrDate},
		{"coord future", withCheck(t, "20260676-123X"), ErrDate},

		// Format.
		{"empty", "", ErrFormat},
		{"spaces only", "   ", ErrFormat},
		{"9 digits", "121212121", ErrFormat},
		{"11 digits", "19121212121", ErrFormat},
		{"13 digits", "1912121212120", ErrFormat},
		{"14 chars", "19121212-12120", ErrFormat},
		{"separator misplaced 12", "1912121-21212", ErrFormat},
		{"separator misplaced 10", "12121-21212", ErrFormat},
		{"dash at 6 with 12 digits", "191212-121212", ErrFormat},
		{"double separator", "19121212--1212", ErrFormat},
		{"space separator", "19121212 1212", ErrFormat},
		{"slash separator", "121212/1212", ErrFormat},
		{"letter", "19121212-12a2", ErrFormat},
		{"letters", "abcdefghij", ErrFormat},
		{"leading plus", "+8112289874", ErrFormat},
		{"leading minus", "-811228987", ErrFormat},
		{"hex-ish", "0x12121212", ErrFormat},
		{"NUL byte", "19121212-1212\x00", ErrFormat},
		{"NUL separator 10", "121212\x001212", ErrFormat}, // found by FuzzParse
		{"NUL separator 12", "19121212\x001212", ErrFormat},
		{"DEL separator", "121212\x7f1212", ErrFormat},
		{"fullwidth digits", "１９１２１２１２-１２１２", ErrFormat},
		{"fullwidth one digit", "1912121２-1212", ErrFormat},
		{"arabic-indic digits", "١٢١٢١٢-١٢١٢", ErrFormat},
		{"arabic-indic zero", "19121212-121٠", ErrFormat},
		{"devanagari digits", "१२१२१२१२१२", ErrFormat},
		{"superscript", "19121212-121²", ErrFormat},
		{"unicode dash", "121212\u20121212", ErrFormat},
		{"invalid utf8", "121212\xff1212", ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseAt(tt.in, fixedNow)
			if err == nil {
				t.Fatalf("ParseAt(%q) = %q, want error %v", tt.in, n, tt.want)
			}
			if n != "" {
				t.Errorf("ParseAt(%q) returned %q together with an error", tt.in, n)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("ParseAt(%q) error = %v, want %v", tt.in, err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			for _, other := range []error{ErrFormat, ErrChecksum, ErrDate} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("error %v also matches %v", err, other)
				}
			}
			assertNoLeak(t, tt.in, err.Error())
		})
	}
}

// assertNoLeak fails if msg contains the input or any 4-digit run of it.
func assertNoLeak(t *testing.T, in, msg string) {
	t.Helper()
	if strings.TrimSpace(in) != "" && strings.Contains(msg, strings.TrimSpace(in)) {
		t.Errorf("error message %q contains the input", msg)
	}
	if strings.IndexFunc(msg, unicode.IsDigit) >= 0 {
		t.Errorf("error message %q contains digits", msg)
	}
}

// TestCenturyExhaustive checks, for several reference dates, every birth date
// from 199 years back up to the reference date: the 10-digit form with the
// separator required by the person's age must parse back to the same number,
// and the 10-digit form with the other separator must not.
func TestCenturyExhaustive(t *testing.T) {
	nows := []time.Time{
		fixedNow,
		time.Date(2024, 2, 29, 23, 59, 0, 0, time.UTC),
		time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 2, 28, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC),
	}
	for _, now := range nows {
		ny, nm, nd := now.Date()
		start := time.Date(ny-199, nm, nd, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
		end := time.Date(ny, nm, nd, 0, 0, 0, 0, time.UTC)
		for b := start; !b.After(end); b = b.AddDate(0, 0, 1) {
			age := ny - b.Year()
			if int(nm)*100+nd < int(b.Month())*100+b.Day() {
				age--
			}
			sep, other := "-", "+"
			if age >= 100 {
				sep, other = "+", "-"
			}
			date := b.Format("060102")
			in := withCheck(t, date+sep+"123X")
			want := Number(b.Format("20060102") + in[len(in)-4:])
			got, err := ParseAt(in, now)
			if err != nil || got != want {
				t.Fatalf("now %s: ParseAt(%q) = %q, %v; want %q", now.Format("2006-01-02"), in, got, err, want)
			}
			if got, err := ParseAt(strings.Replace(in, sep, "", 1), now); sep == "-" && (err != nil || got != want) {
				t.Fatalf("now %s: no-separator form of %q = %q, %v; want %q", now.Format("2006-01-02"), in, got, err, want)
			}
			// With the other separator the result, if any, must be a different person.
			if got, err := ParseAt(date+other+in[7:], now); err == nil && got == want {
				t.Fatalf("now %s: ParseAt(%q) unexpectedly = %q", now.Format("2006-01-02"), date+other+in[7:], got)
			}
			// 12-digit forms are valid regardless of separator.
			for _, s := range []string{string(want), string(want[:8]) + "-" + string(want[8:]), string(want[:8]) + "+" + string(want[8:])} {
				if got, err := ParseAt(s, now); err != nil || got != want {
					t.Fatalf("now %s: ParseAt(%q) = %q, %v", now.Format("2006-01-02"), s, got, err)
				}
			}
		}
		// The day after now is in the future.
		tomorrow := end.AddDate(0, 0, 1)
		in := withCheck(t, tomorrow.Format("20060102")+"-123X")
		if _, err := ParseAt(in, now); !errors.Is(err, ErrDate) {
			t.Errorf("now %s: ParseAt(%q) error = %v, want ErrDate", now.Format("2006-01-02"), in, err)
		}
	}
}

// TestLeapDayCentury covers 10-digit 29 February numbers whose natural
// century has no 29 February (2100, 1900).
func TestLeapDayCentury(t *testing.T) {
	tests := []struct {
		now  time.Time
		in   string
		want string // 12-digit birth date prefix, "" for ErrDate
	}{
		// 2100 is not a leap year; 2000 is.
		{time.Date(2100, 2, 28, 0, 0, 0, 0, time.UTC), "000229-123X", "20000229"}, // age 99
		{time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC), "000229-123X", ""},          // age 100 needs '+'
		{time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC), "000229+123X", "20000229"},
		{time.Date(2100, 2, 28, 0, 0, 0, 0, time.UTC), "000229+123X", ""}, // 1900 not leap
		// 1900 is not a leap year.
		{fixedNow, "000229+123X", ""},
		{time.Date(2000, 2, 28, 0, 0, 0, 0, time.UTC), "000229-123X", ""}, // 2000-02-29 is tomorrow, 1900 invalid
		{time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC), "000229-123X", "20000229"},
		{time.Date(2004, 3, 1, 0, 0, 0, 0, time.UTC), "040229+123X", "19040229"},
	}
	for _, tt := range tests {
		in := withCheck(t, tt.in)
		n, err := ParseAt(in, tt.now)
		switch {
		case tt.want == "" && !errors.Is(err, ErrDate):
			t.Errorf("now %s: ParseAt(%q) = %q, %v; want ErrDate", tt.now.Format("2006-01-02"), in, n, err)
		case tt.want != "" && (err != nil || n.String() != tt.want+in[7:]):
			t.Errorf("now %s: ParseAt(%q) = %q, %v; want %s%s", tt.now.Format("2006-01-02"), in, n, err, tt.want, in[7:])
		}
	}
}

// TestNowLocation checks that "today" is taken in now's location.
func TestNowLocation(t *testing.T) {
	// 2026-06-15 23:30 in UTC+2 is 21:30 UTC; in UTC-10 it is 2026-06-14.
	east := time.FixedZone("UTC+2", 2*3600)
	west := time.FixedZone("UTC-10", -10*3600)
	in := withCheck(t, "20260615-123X")
	if _, err := ParseAt(in, time.Date(2026, 6, 15, 0, 30, 0, 0, east)); err != nil {
		t.Errorf("east: %v", err)
	}
	if _, err := ParseAt(in, time.Date(2026, 6, 14, 23, 30, 0, 0, west)); !errors.Is(err, ErrDate) {
		t.Errorf("west: err = %v, want ErrDate", err)
	}
}

func TestParseUsesCurrentTime(t *testing.T) {
	n, err := Parse("19121212-1212")
	if err != nil || n != "191212121212" {
		t.Fatalf("Parse = %q, %v", n, err)
	}
	// A 10-digit number of someone born yesterday is never 100+ years old.
	y := time.Now().AddDate(0, 0, -1)
	in := withCheck(t, y.Format("060102")+"-123X")
	n, err = Parse(in)
	if err != nil || n.BirthDate().Year() != y.Year() {
		t.Fatalf("Parse(yesterday) = %q, %v", n, err)
	}
	tomorrow := time.Now().AddDate(0, 0, 2)
	if _, err := Parse(withCheck(t, tomorrow.Format("20060102")+"-123X")); !errors.Is(err, ErrDate) {
		t.Errorf("Parse(future) error = %v, want ErrDate", err)
	}
}

func TestNumberMethodsOnInvalidValues(t *testing.T) {
	tests := []struct {
		n      Number
		masked string
	}{
		{"", ""},
		{"garbage123", "garbage***"},
		{"19851301123X", "***********X"},
		{"198513011234", "19851301-****"}, // month 13
		{"19850101-1234", "19850101-****"},
		{"１９８５", "****"},
	}
	for _, tt := range tests {
		if got := tt.n.Masked(); got != tt.masked {
			t.Errorf("Number(%q).Masked() = %q, want %q", string(tt.n), got, tt.masked)
		}
		if tt.n.IsCoordination() {
			t.Errorf("Number(%q).IsCoordination() = true", string(tt.n))
		}
		if !tt.n.BirthDate().IsZero() {
			t.Errorf("Number(%q).BirthDate() = %v, want zero", string(tt.n), tt.n.BirthDate())
		}
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"19121212-1212", "19121212-****"},
		{"191212121212", "19121212-****"},
		{"19121212+1212", "19121212-****"},
		{"  19121212-1212\n", "19121212-****"},
		{"121212-1212", "121212-****"},
		{"121212+1212", "121212+****"},
		{"1212121212", "121212-****"},
		// Shape is enough, the number need not be valid.
		{"19121212-1213", "19121212-****"},
		{"99999999-9999", "99999999-****"},
		// Anything else: all numeric characters masked.
		{"", ""},
		{"abc", "abc"},
		{"pnr 19121212-1212", "pnr ********-****"},
		{"19121212 1212", "******** ****"},
		{"19121212--1212", "********--****"},
		{"1912121212121", "*************"},
		{"12345", "*****"},
		{"１９１２１２１２-１２１２", "********-****"},
		{"١٢١٢١٢-١٢١٢", "******-****"},
		{"19121212-121²", "********-****"},
		{"x\xff1", "x\uFFFD*"},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLogValue(t *testing.T) {
	n, err := ParseAt("19121212-1212", fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("lookup", "pnr", n)
	out := buf.String()
	if !strings.Contains(out, "pnr=19121212-****") || strings.Contains(out, "191212121212") {
		t.Errorf("slog output not masked: %s", out)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"19121212-1212", "191212121212", "19121212+1212", "121212-1212",
		"121212+1212", "1212121212", "811228-9874", "701063-2391",
		"20000229-1236", "000229+1234", "19850161-1234", " 8112289874 ",
		"", "abc", "１９１２１２１２-１２１２", "١٢١٢١٢-١٢١٢", "19121212 1212",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := Mask(s)
		if c := countNumeric(m); c > 8 {
			t.Fatalf("Mask(%q) = %q keeps %d digits", s, m, c)
		}

		check := func(n Number, reparse func(string) (Number, error)) {
			str := n.String()
			if len(str) != 12 || !allASCIIDigits(str) {
				t.Fatalf("String() = %q, want 12 ASCII digits", str)
			}
			n2, err := reparse(str)
			if err != nil || n2 != n {
				t.Fatalf("round trip of %q: got %q, %v", str, n2, err)
			}
			last4 := str[8:]
			masked := n.Masked()
			if masked != str[:8]+"-****" {
				t.Fatalf("Masked() = %q", masked)
			}
			// The last four digits may only appear in Masked() inside the
			// (kept) date part.
			if strings.Contains(masked, last4) && !strings.Contains(str[:8], last4) {
				t.Fatalf("Masked() = %q leaks last four digits", masked)
			}
			if strings.Contains(m, last4) && !strings.Contains(str[:8], last4) {
				t.Fatalf("Mask(%q) = %q leaks last four digits", s, m)
			}
			if !strings.HasSuffix(m, "****") || !strings.HasSuffix(str[:8], digitsOf(m)) || len(digitsOf(m)) < 6 {
				t.Fatalf("Mask(%q) = %q does not keep just the date part of %q", s, m, str)
			}
			bd := n.BirthDate()
			if bd.IsZero() {
				t.Fatalf("BirthDate() of %q is zero", str)
			}
			day := bd.Day()
			if n.IsCoordination() {
				day += 60
			}
			if got := fmt.Sprintf("%04d%02d%02d", bd.Year(), int(bd.Month()), day); got != str[:8] {
				t.Fatalf("BirthDate()/IsCoordination() of %q give %s", str, got)
			}
		}

		if n, err := Parse(s); err == nil {
			check(n, Parse)
		} else if !errors.Is(err, ErrInvalid) || strings.IndexFunc(err.Error(), unicode.IsNumber) >= 0 {
			t.Fatalf("bad error %v", err)
		}
		if n, err := ParseAt(s, fixedNow); err == nil {
			check(n, func(s string) (Number, error) { return ParseAt(s, fixedNow) })
			if n.BirthDate().After(fixedNow) {
				t.Fatalf("BirthDate of %q after now", n)
			}
		}
	})
}

func countNumeric(s string) int {
	c := 0
	for _, r := range s {
		if unicode.IsNumber(r) {
			c++
		}
	}
	return c
}

func digitsOf(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsNumber(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func allASCIIDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
