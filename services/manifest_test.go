package services_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/text/language"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"
	_ "github.com/kommun/servicegateway/services/connectors/email"
	_ "github.com/kommun/servicegateway/services/connectors/httpjson"
)

var update = flag.Bool("update", false, "rewrite golden files")

// options are for test services translated into Swedish and English: the
// loader's checks do not depend on how many languages ship.
func options(t *testing.T, langs ...language.Tag) services.Options {
	t.Helper()
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	if len(langs) == 0 {
		langs = []language.Tag{language.Swedish, language.English}
	}
	return services.Options{Locales: langs, Known: tr.Has}
}

// The shipped services load without a single problem, and the catalog has
// what DESIGN.md promises.
func TestBuiltinServicesLoad(t *testing.T) {
	loaded, err := services.Load(services.Builtin, options(t, locales.Shipped...))
	if err != nil {
		t.Fatalf("built-in services: %v", err)
	}
	if len(loaded.Services) < 6 {
		t.Fatalf("want at least six example services, got %d", len(loaded.Services))
	}
	depts := map[string]bool{}
	var street *gateway.Service
	for _, s := range loaded.Services {
		depts[s.Department] = true
		if s.ID == "street-fault" {
			street = s
		}
		if loaded.Modules[s.ID] == nil {
			t.Errorf("%s: no connector module", s.ID)
		}
	}
	if len(depts) < 5 {
		t.Errorf("want services from at least five departments, got %v", depts)
	}
	if street == nil || street.Assurance != gateway.AssuranceNone {
		t.Fatalf("street-fault must exist and be anonymous: %+v", street)
	}
	for _, f := range []string{"description", "location", "email"} {
		if street.Field(f) == nil {
			t.Errorf("street-fault lacks field %q", f)
		}
	}
}

const goodManifest = `id = "test-service"
version = "1.0.0"
department = "streets-parks"
category = "streets-traffic"
assurance = "none"
retention_days = 30

[[fields]]
name = "what"
type = "text"
required = true

[[fields]]
name = "size"
type = "select"
options = ["small", "big"]

[route]
kind = "http"

[route.settings]
url = "${CASESIM_URL}/cases"
secret = "${CASESIM_SECRET}"
`

const goodSV = `"test-service.title" = "Test"
"test-service.summary" = "Ett test"
"test-service.field.what.label" = "Vad"
"test-service.field.size.label" = "Storlek"
"test-service.field.size.option.small" = "Liten"
"test-service.field.size.option.big" = "Stor"
`

var goodEN = strings.NewReplacer("Test\"", "Test\"", "Ett test", "A test", "Vad", "What", "Storlek", "Size", "Liten", "Small", "Stor", "Big").Replace(goodSV)

func fsWith(manifest, sv, en string) fstest.MapFS {
	m := fstest.MapFS{"dept/test-service/service.toml": {Data: []byte(manifest)}}
	if sv != "" {
		m["dept/test-service/messages.sv.toml"] = &fstest.MapFile{Data: []byte(sv)}
	}
	if en != "" {
		m["dept/test-service/messages.en.toml"] = &fstest.MapFile{Data: []byte(en)}
	}
	return m
}

func TestLoadGood(t *testing.T) {
	loaded, err := services.Load(fsWith(goodManifest, goodSV, goodEN), options(t))
	if err != nil {
		t.Fatal(err)
	}
	s := loaded.Services[0]
	if s.ID != "test-service" || len(s.Fields) != 2 || s.Retention.Hours() != 30*24 || s.Route.Kind != "http" {
		t.Fatalf("decoded wrongly: %+v", s)
	}
	if got := len(loaded.Translations); got != 2 {
		t.Fatalf("want 2 translation files, got %d", got)
	}
	// Channels default to digital and assisted.
	if len(s.Channels) != 2 {
		t.Fatalf("default channels: %v", s.Channels)
	}
}

// Each kind of mistake gives a message naming the file and the line.
func TestLoadErrors(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(goodManifest, old) {
			panic("test manifest lacks " + old)
		}
		return strings.Replace(goodManifest, old, new, 1)
	}
	cases := []struct {
		name, manifest, sv, en string
		want                   []string // substrings of the problems, in order
	}{
		{"unknown top-level key", replace(`retention_days = 30`, "retention_days = 30\ncolour = \"red\""), goodSV, goodEN,
			[]string{`dept/test-service/service.toml:7: unknown key "colour"`}},
		{"unknown field key", replace(`required = true`, "required = true\nplaceholdr = \"x\""), goodSV, goodEN,
			[]string{`service.toml:12: unknown key "fields.placeholdr"`}},
		{"unknown settings key", replace(`secret = "${CASESIM_SECRET}"`, "secret = \"${CASESIM_SECRET}\"\nretries = 3"), goodSV, goodEN,
			[]string{`service.toml:24: unknown key "route.settings.retries"`}},
		{"unknown connector kind", replace(`kind = "http"`, `kind = "carrier-pigeon"`), goodSV, goodEN,
			[]string{`service.toml:19: unknown connector kind "carrier-pigeon" (known: `}},
		{"invalid pattern", replace(`required = true`, "required = true\npattern = \"[a-\""), goodSV, goodEN,
			[]string{`service.toml:12: field "what": invalid pattern`}},
		{"literal secret", replace(`secret = "${CASESIM_SECRET}"`, `secret = "hunter2"`), goodSV, goodEN,
			[]string{`service.toml:`, `a secret must be a reference to an environment variable`}},
		{"bad field type", replace(`type = "text"`, `type = "colour"`), goodSV, goodEN,
			[]string{`service.toml:10: field "what": unknown type "colour"`}},
		{"bad assurance", replace(`assurance = "none"`, `assurance = "medium"`), goodSV, goodEN,
			[]string{`service.toml:5: assurance must be none, low, substantial or high, got "medium"`}},
		{"require on text", replace(`required = true`, "required = true\nrequire = \"address\""), goodSV, goodEN,
			[]string{`service.toml:12: field "what": require is only for location fields`}},
		{"bad require", replace(`type = "text"`, "type = \"location\"\nrequire = \"maybe\""), goodSV, goodEN,
			[]string{`field "what": require must be address, coordinates or either, got "maybe"`}},
		{"options on text", replace(`required = true`, "required = true\noptions = [\"a\"]"), goodSV, goodEN,
			[]string{`service.toml:12: field "what": options are only for select`}},
		{"min greater than max", replace(`required = true`, "required = true\nmin_length = 9\nmax_length = 3"), goodSV, goodEN,
			[]string{`service.toml:12: field "what": min_length is greater than max_length`}},
		{"syntax error", replace(`version = "1.0.0"`, `version = "1.0.0`), goodSV, goodEN,
			[]string{`service.toml:2:`}},
		{"type mismatch", replace(`retention_days = 30`, `retention_days = "thirty"`), goodSV, goodEN,
			[]string{`service.toml:6: retention_days: incompatible types`}},
		{"missing translation", goodManifest, goodSV, strings.Replace(goodEN, `"test-service.field.what.label" = "What"`+"\n", "", 1),
			[]string{`service.toml:9: missing translation "test-service.field.what.label" in dept/test-service/messages.en.toml`}},
		{"missing option translation", goodManifest, strings.Replace(goodSV, `"test-service.field.size.option.big" = "Stor"`+"\n", "", 1), goodEN,
			[]string{`service.toml:14: missing translation "test-service.field.size.option.big" in dept/test-service/messages.sv.toml`}},
		{"missing locale file", goodManifest, goodSV, "",
			[]string{`dept/test-service/messages.en.toml: missing translation file for shipped locale "en"`}},
		{"foreign message id", goodManifest, goodSV + "\"other.title\" = \"x\"\n", goodEN,
			[]string{`messages.sv.toml:7: message "other.title" must start with "test-service."`}},
		{"bad id", replace(`id = "test-service"`, `id = "Test Service"`), goodSV, goodEN,
			[]string{`service.toml:1: id must be lower-case`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := services.Load(fsWith(tc.manifest, tc.sv, tc.en), options(t))
			if err == nil {
				t.Fatal("want an error, got none")
			}
			got := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("want %q in:\n%s", w, got)
				}
			}
		})
	}
}

// Golden test: a manifest with many mistakes reports all of them at once,
// in a stable form. Run with -update to rewrite testdata/*.golden.
func TestLoadGolden(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join("testdata", e.Name()))
		}
	}
	if len(dirs) == 0 {
		t.Fatal("no golden cases in testdata")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			_, err := services.Load(os.DirFS(dir), options(t))
			got := "ok\n"
			if err != nil {
				got = err.Error() + "\n"
			}
			golden := filepath.Join("testdata", filepath.Base(dir)+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("problems differ from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestSecretAndExpand(t *testing.T) {
	env := map[string]string{"A": "x", "B": ""}
	get := func(k string) string { return env[k] }
	if got, err := services.Expand("${A}/cases", get); err != nil || got != "x/cases" {
		t.Fatalf("Expand: %q %v", got, err)
	}
	if _, err := services.Expand("${B}/cases", get); err == nil || !strings.Contains(err.Error(), "B") {
		t.Fatalf("Expand of empty var: %v", err)
	}
	var s services.Secret
	for _, bad := range []string{"literal", "${lower}", "$A", "${A}x"} {
		if err := s.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("secret %q accepted", bad)
		}
	}
	if err := s.UnmarshalText([]byte("${A}")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Resolve(get); err != nil || v != "x" {
		t.Fatalf("Resolve: %q %v", v, err)
	}
}

func TestSearch(t *testing.T) {
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	loaded, cat, err := services.LoadCatalog(services.Builtin, tr)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(q string) []string {
		var out []string
		for _, s := range cat.Search(q) {
			out = append(out, s.ID)
		}
		return out
	}
	has := func(list []string, id string) bool {
		for _, x := range list {
			if x == id {
				return true
			}
		}
		return false
	}
	cases := []struct {
		q, want string
	}{
		{"forskola", "preschool-place"},
		{"FÖRSKOLA", "preschool-place"},
		{"preschool", "preschool-place"},
		{"felanmälan", "street-fault"},
		{"felanmalan", "street-fault"},
		{"pothole", "street-fault"},
		{"gatubelysning", "street-fault"},
		{"allmän handling", "public-documents"},
		{"parkering", "parking-permit"},
		{"livsmedel", "food-business-registration"},
		{"hemtjänst", "home-care"},
		{"home care", "home-care"},
		// Every shipped language finds the services in its own words.
		{"päiväkoti", "preschool-place"},
		{"kotipalvelu", "home-care"},
		{"حفرة", "street-fault"},
		{"رخصة بناء", "building-permit-advice"},
		{"xannaano", "preschool-place"},
		{"daryeelka guriga", "home-care"},
		{"дитячий садок", "preschool-place"},
		{"дозвіл на паркування", "parking-permit"},
	}
	for _, tc := range cases {
		if got := ids(tc.q); !has(got, tc.want) {
			t.Errorf("Search(%q) = %v, want it to include %s", tc.q, got, tc.want)
		}
	}
	if got := ids("zzzqqq"); len(got) != 0 {
		t.Errorf("nonsense query found %v", got)
	}
	if got := ids(""); len(got) != len(loaded.Services) {
		t.Errorf("empty query: %d of %d", len(got), len(loaded.Services))
	}
	if got := ids("forskola"); has(got, "street-fault") {
		t.Errorf("forskola should not find street-fault: %v", got)
	}
}

// A service may ship a subset of the languages when it declares a fallback:
// the missing language gets the fallback's text instead of stopping the
// gateway. Without the declaration the same files are an error.
func TestFallbackLanguage(t *testing.T) {
	arabic := language.Arabic
	three := []language.Tag{language.Swedish, language.English, arabic}
	withFallback := strings.Replace(goodManifest, "retention_days = 30\n", "retention_days = 30\nfallback_language = \"sv\"\n", 1)

	// No fallback declared: the Arabic file is missing.
	_, err := services.Load(fsWith(goodManifest, goodSV, goodEN), options(t, three...))
	if err == nil || !strings.Contains(err.Error(), `dept/test-service/messages.ar.toml: missing translation file for shipped locale "ar"`) {
		t.Fatalf("without a fallback: %v", err)
	}

	// Declared: it loads, and Arabic reads the Swedish text.
	loaded, err := services.Load(fsWith(withFallback, goodSV, goodEN), options(t, three...))
	if err != nil {
		t.Fatalf("with a fallback: %v", err)
	}
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Add(loaded.Translations...); err != nil {
		t.Fatal(err)
	}
	if got := tr.Localizer(arabic).T("test-service.field.size.option.big"); got != "Stor" {
		t.Fatalf("Arabic falls back to %q, want the Swedish \"Stor\"", got)
	}
	if got := tr.Localizer(language.English).T("test-service.field.size.option.big"); got != "Big" {
		t.Fatalf("English has its own translation, got %q", got)
	}

	// A partial Arabic file is completed from the fallback, message by message.
	fsys := fsWith(withFallback, goodSV, goodEN)
	fsys["dept/test-service/messages.ar.toml"] = &fstest.MapFile{Data: []byte(`"test-service.title" = "اختبار"` + "\n")}
	loaded, err = services.Load(fsys, options(t, three...))
	if err != nil {
		t.Fatalf("partial Arabic with a fallback: %v", err)
	}
	tr, _ = locales.New()
	if err := tr.Add(loaded.Translations...); err != nil {
		t.Fatal(err)
	}
	if got := tr.Localizer(arabic).T("test-service.title"); got != "اختبار" {
		t.Fatalf("Arabic title = %q, want its own", got)
	}
	if got := tr.Localizer(arabic).T("test-service.field.what.label"); got != "Vad" {
		t.Fatalf("Arabic label = %q, want the Swedish fallback", got)
	}

	// The same partial file without a fallback names the missing messages.
	fsys = fsWith(goodManifest, goodSV, goodEN)
	fsys["dept/test-service/messages.ar.toml"] = &fstest.MapFile{Data: []byte(`"test-service.title" = "اختبار"` + "\n")}
	_, err = services.Load(fsys, options(t, three...))
	if err == nil || !strings.Contains(err.Error(), `missing translation "test-service.field.what.label" in dept/test-service/messages.ar.toml`) {
		t.Fatalf("partial Arabic without a fallback: %v", err)
	}

	// The fallback must be a shipped language.
	bad := strings.Replace(goodManifest, "retention_days = 30\n", "retention_days = 30\nfallback_language = \"de\"\n", 1)
	_, err = services.Load(fsWith(bad, goodSV, goodEN), options(t, three...))
	if err == nil || !strings.Contains(err.Error(), `service.toml:7: fallback_language must be a shipped language (sv, en, ar), got "de"`) {
		t.Fatalf("unshipped fallback: %v", err)
	}
}
