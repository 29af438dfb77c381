package httpapi_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/kommun/servicegateway/gateway/httpapi"
)

// A resident who reads Arabic sends a form with a mistake: the page comes
// back right to left, in Arabic, with the error summary and the field's
// message in Arabic and everything typed kept; each language link carries
// its own lang and dir.
func TestArabicFormJourney(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	ar := []string{"Accept-Language", "ar-SE,ar;q=0.9"}
	page := e.get(t, "/services/street-fault", ar...)
	if page.status != 200 {
		t.Fatalf("GET form: %d", page.status)
	}
	if !strings.Contains(page.body, `<html lang="ar" dir="rtl">`) {
		t.Fatalf("the Arabic form is not right to left:\n%.300s", page.body)
	}
	var cookie string
	for _, c := range page.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "gw_csrf=") {
			cookie = strings.SplitN(c, ";", 2)[0]
		}
	}
	bad := url.Values{"_csrf": {hidden(t, page.body, "_csrf")}, "_form": {hidden(t, page.body, "_form")},
		"kind": {"pothole"}, "description": {"حفرة"}, "location": {"شارع الملك 1"}, "email": {"salma@example.se"}}
	r := e.postForm(t, "/services/street-fault", cookie, bad, ar...)
	if r.status != 422 {
		t.Fatalf("invalid form: %d", r.status)
	}
	for _, want := range []string{
		`<html lang="ar" dir="rtl">`,
		"<title>خطأ: ",                  // the title says there is an error
		"هناك ما يحتاج إلى تصحيح",       // the error summary
		"يجب ألا يقل عدد الأحرف عن 10.", // the field's message, placeholder filled
		`href="#f-description"`,         // the summary links to the field
		`aria-invalid="true"`,
		">حفرة</textarea>", // what was typed is kept
		`value="شارع الملك 1"`,
		`value="salma@example.se"`,
		`<option value="pothole" selected>`,  // and what was chosen
		"حفرة في الشارع أو في مسار الدراجات", // the service's own text in Arabic
		`<span aria-current="true" lang="ar" dir="rtl">العربية</span>`,
		`hreflang="sv" lang="sv" dir="ltr">Svenska</a>`,
		`hreflang="fi" lang="fi" dir="ltr">Suomi</a>`,
		`hreflang="uk" lang="uk" dir="ltr">Українська</a>`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the Arabic page with errors lacks %q", want)
		}
	}
	for _, swedish := range []string{"Något behöver rättas", "Skriv minst"} {
		if strings.Contains(r.body, swedish) {
			t.Errorf("the Arabic page shows Swedish %q", swedish)
		}
	}
}

// Every page offers all six languages; a left-to-right language gets
// dir="ltr" and Swedish stays the default.
func TestSixLanguagesOnEveryPage(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	for lang, heading := range map[string]string{"sv": "Hitta en e-tjänst", "en": "Find an e-service", "fi": "Etsi e-palvelu",
		"ar": "ابحث عن خدمة إلكترونية", "so": "Raadi adeeg elektarooni ah", "uk": "Знайдіть електронну послугу"} {
		r := e.get(t, "/?lang="+lang)
		dir := "ltr"
		if lang == "ar" {
			dir = "rtl"
		}
		if !strings.Contains(r.body, `<html lang="`+lang+`" dir="`+dir+`">`) || !strings.Contains(r.body, heading) {
			t.Errorf("%s: want lang, dir %s and %q", lang, dir, heading)
		}
		for _, other := range []string{"sv", "en", "fi", "ar", "so", "uk"} {
			if other != lang && !strings.Contains(r.body, `hreflang="`+other+`" lang="`+other+`"`) {
				t.Errorf("%s: no link to %s", lang, other)
			}
		}
	}
}
