package locales_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"golang.org/x/text/language"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/web"
)

// usedIDs collects every message ID the gateway's own code and templates
// use: literal IDs in templates (.L.T "id") and in Go code (T("id"),
// Errorf(code, "id"), Message{ID: "id"}), plus the IDs built from domain
// vocabularies (statuses, levels of assurance, validation messages).
func usedIDs(t *testing.T) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	tmplRe := regexp.MustCompile(`\.(?:L\.)?(?:T|N|Optional) "([a-z_.]+)"`)
	srcs, err := web.TemplateSources()
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range srcs {
		for _, m := range tmplRe.FindAllStringSubmatch(src, -1) {
			ids[m[1]] = true
		}
	}
	goRe := regexp.MustCompile(`(?:\.T\(|\.N\(|\.Optional\(|Errorf\([A-Za-z.]+, |ID: )"([a-z_]+\.[a-z_.]+)"`)
	err = filepath.WalkDir("..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range goRe.FindAllStringSubmatch(string(b), -1) {
			if !strings.HasSuffix(m[1], ".") { // a prefix; its IDs are listed below
				ids[m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range gateway.Statuses {
		ids["status.value."+string(s)] = true
		ids["status.explain."+string(s)] = true
	}
	for a := gateway.AssuranceNone; a <= gateway.AssuranceHigh; a++ {
		ids["assurance."+a.String()] = true
	}
	for _, id := range gateway.ValidationMessages {
		ids[id] = true
	}
	for _, k := range []string{"not_found", "forbidden", "too_many", "bad_request", "unavailable", "internal"} {
		ids["error.title."+k] = true
	}
	return ids
}

// A test fails when any message ID used is missing in a shipped locale.
func TestEveryUsedMessageIsTranslated(t *testing.T) {
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	ids := usedIDs(t)
	if len(ids) < 80 {
		t.Fatalf("found only %d message IDs in use; the scanner is broken", len(ids))
	}
	for _, lang := range locales.Shipped {
		var missing []string
		for id := range ids {
			if !tr.Has(lang, id) {
				missing = append(missing, id)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s lacks %d messages: %v", lang, len(missing), missing)
		}
	}
}

// Every shipped locale has the same messages: none is only half translated.
func TestLocalesHaveTheSameIDs(t *testing.T) {
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	base := strings.Join(tr.IDs(locales.Default), "\n")
	for _, lang := range locales.Shipped[1:] {
		if got := strings.Join(tr.IDs(lang), "\n"); got != base {
			t.Errorf("%s and %s differ in message IDs", lang, locales.Default)
		}
	}
}

// Validation messages read well in both languages, with their data filled.
func TestValidationMessagesInBothLanguages(t *testing.T) {
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"Min": 10, "Max": 200, "Date": "2026-11-22", "Name": "ritning.pdf", "Allowed": "PDF, PNG"}
	cases := []struct {
		lang language.Tag
		id   string
		want string
	}{
		{language.Swedish, gateway.MsgRequired, "Fältet måste fyllas i."},
		{language.English, gateway.MsgRequired, "This field is required."},
		{language.Swedish, gateway.MsgMinLength, "Skriv minst 10 tecken."},
		{language.English, gateway.MsgMinLength, "Enter at least 10 characters."},
		{language.Swedish, gateway.MsgMaxDate, "Datumet får inte vara efter 2026-11-22."},
		{language.English, gateway.MsgMax, "The number must be 200 or less."},
		{language.Swedish, gateway.MsgPnrChecksum, "Personnumret stämmer inte. Kontrollera de fyra sista siffrorna."},
	}
	for _, tc := range cases {
		if got := tr.Localizer(tc.lang).T(tc.id, data); got != tc.want {
			t.Errorf("%s %s = %q, want %q", tc.lang, tc.id, got, tc.want)
		}
	}
	for _, lang := range locales.Shipped {
		for _, id := range gateway.ValidationMessages {
			got := tr.Localizer(lang).T(id, data)
			if got == id || strings.Contains(got, "{{") || strings.Contains(got, "<no value>") {
				t.Errorf("%s %s renders as %q", lang, id, got)
			}
		}
	}
	if got := tr.Localizer(language.Swedish).N("catalog.results", 1, "Query", "skola"); got != "1 e-tjänst matchar ”skola”." {
		t.Errorf("singular: %q", got)
	}
	if got := tr.Localizer(language.English).N("catalog.results", 3, "Query", "school"); got != "3 e-services match “school”." {
		t.Errorf("plural: %q", got)
	}
}

func TestMatch(t *testing.T) {
	cases := []struct {
		in   string
		want language.Tag
		ok   bool
	}{
		{"en-GB,en;q=0.9", language.English, true},
		{"sv-SE", language.Swedish, true},
		{"fi;q=1, en;q=0.5", language.Finnish, true},
		{"ar-SA,ar;q=0.9", language.Arabic, true},
		{"uk-UA", language.Ukrainian, true},
		{"so", language.MustParse("so"), true},
		{"de", language.Swedish, false},
		{"", language.Swedish, false},
	}
	for _, tc := range cases {
		got, ok := locales.Match(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Match(%q) = %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
