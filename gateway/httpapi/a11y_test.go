package httpapi_test

import (
	"fmt"
	"html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// No dead ends: navigation by role, and an error page that always offers
// the next step. Real redis-server, real HTTP server, the development
// identity provider.

func hrefOf(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<a href="([^"]*)"[^>]*id="` + regexp.QuoteMeta(id) + `"`).FindStringSubmatch(body)
	if m == nil {
		m = regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*href="([^"]*)"`).FindStringSubmatch(body)
	}
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func TestHeaderNavigationByRole(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	anon := e.browser(t)
	if got := hrefOf(t, anon.get("/open-data/").body, "account-link"); got != "/auth/login?return_to=%2Fopen-data%2F" {
		t.Errorf("a visitor's sign-in link on /open-data/: %q, want it to come back to the page", got)
	}
	cases := []struct {
		persona, start string
		want, not      []string // link ids in the header
	}{
		{"anna", "/my", []string{"account-link"}, []string{"nav-desk", "nav-dashboard", "nav-dead-letters", "nav-audit"}},
		{"sara", "/desk", []string{"nav-desk", "nav-dashboard"}, []string{"account-link", "nav-dead-letters", "nav-audit"}},
		{"admin", "/admin/dead-letters", []string{"nav-dead-letters", "nav-audit", "nav-dashboard"}, []string{"account-link", "nav-desk"}},
	}
	for _, tc := range cases {
		t.Run(tc.persona, func(t *testing.T) {
			b := e.browser(t)
			// Signing in from the header lands each role on its own work.
			a, at := b.follow("/auth/login?login_hint=" + tc.persona + "&return_to=%2Fmy")
			// (this test's gateway has no desk or dashboard: they answer
			// 404 here, with the same header)
			if at != tc.start {
				t.Fatalf("after sign-in: %d at %s, want %s", a.status, at, tc.start)
			}
			for _, id := range tc.want {
				if hrefOf(t, a.body, id) == "" {
					t.Errorf("header lacks %s", id)
				}
			}
			for _, id := range tc.not {
				if hrefOf(t, a.body, id) != "" {
					t.Errorf("header has %s", id)
				}
			}
			if !strings.Contains(a.body, `aria-current="page"`) {
				t.Errorf("the header does not mark the current page")
			}
			if !strings.Contains(a.body, `id="footer-sign-out"`) {
				t.Errorf("no sign-out for %s", tc.persona)
			}
		})
	}
}

func TestErrorPagesOfferAWayOn(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	anon := e.browser(t)

	// 401: a sign-in that comes back to the page.
	r := anon.get("/dashboard")
	if r.status != 401 || hrefOf(t, r.body, "error-sign-in") != "/auth/login?return_to=%2Fdashboard" {
		t.Errorf("401 on /dashboard: %d, sign-in %q", r.status, hrefOf(t, r.body, "error-sign-in"))
	}
	a, at := anon.follow(hrefOf(t, r.body, "error-sign-in") + "&login_hint=sara")
	if at != "/dashboard" {
		t.Errorf("the 401 page's sign-in ended at %s (%d)", at, a.status)
	}

	// 403 for a signed-in person: a way to their own start page.
	res := e.browser(t)
	res.signIn("anna", "/my")
	r = res.get("/desk")
	if r.status != 403 || hrefOf(t, r.body, "error-home") != "/my" {
		t.Errorf("403 on /desk for a resident: %d, home %q", r.status, hrefOf(t, r.body, "error-home"))
	}

	// An expired form: says so, with a way back to the form.
	_, form := anon.formTokens("/services/street-fault")
	r = anon.post("/services/street-fault", url.Values{"_csrf": {"stale"}, "_form": {form}, "description": {"Ett hål i gatan vid torget"}})
	if r.status != 403 || !strings.Contains(r.body, "Sidan har gått ut") || strings.Contains(r.body, "Du har inte behörighet") {
		t.Errorf("expired form: %d %.600s", r.status, r.body)
	}
	if got := hrefOf(t, r.body, "error-back"); got != "/services/street-fault" {
		t.Errorf("expired form: back link %q", got)
	}

	// A sign-in below the level needed: sign in again at that level, or
	// go back to the form with what was typed.
	anon = e.browser(t)
	csrf, form := anon.formTokens("/services/home-care")
	v := url.Values{"_csrf": {csrf}, "_form": {form}, "needs": {"Hjälp med inköp varje vecka"}}
	r = anon.post("/services/home-care", v)
	loc := r.header.Get("Location")
	if r.status != 303 || !strings.HasPrefix(loc, "/auth/login?") {
		t.Fatalf("step-up: %d %q", r.status, loc)
	}
	lu, _ := url.Parse(loc)
	back := lu.Query().Get("return_to")
	r, _ = anon.follow(loc + "&login_hint=anna") // anna has "low"
	if r.status != 403 {
		t.Fatalf("too low: %d", r.status)
	}
	signIn, _ := url.Parse(hrefOf(t, r.body, "error-sign-in"))
	if signIn == nil || signIn.Path != "/auth/login" || signIn.Query().Get("level") != "substantial" || signIn.Query().Get("return_to") != back {
		t.Errorf("too low: sign-in link %q, want level substantial back to %s", hrefOf(t, r.body, "error-sign-in"), back)
	}
	if got := hrefOf(t, r.body, "error-back"); got != back {
		t.Errorf("too low: back link %q, want %s", got, back)
	}
	// Bertil has the level: the form comes back filled in and says so.
	r, at = anon.follow(signIn.String() + "&login_hint=bertil")
	if r.status != 200 || at != back {
		t.Fatalf("after the sign-in: %d at %s", r.status, at)
	}
	if !strings.Contains(r.body, "Du är inloggad med tillitsnivå väsentlig") || !strings.Contains(r.body, "Hjälp med inköp varje vecka") {
		t.Errorf("the form after the sign-in does not say to press Send, or lost the values: %.3000s", r.body)
	}
}

// Switching language on a form shown with errors keeps what was typed.
func TestLanguageSwitchKeepsTypedValues(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	csrf, form := b.formTokens("/services/street-fault")
	r := b.post("/services/street-fault", url.Values{"_csrf": {csrf}, "_form": {form}, "kind": {"pothole"}, "description": {"kort"}, "location": {"Stora torget 1"}})
	if r.status != 422 {
		t.Fatalf("form with an error: %d", r.status)
	}
	m := regexp.MustCompile(`<a href="([^"]+)" hreflang="en"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no English link: %.2000s", r.body)
	}
	en := html.UnescapeString(m[1])
	if !strings.Contains(en, "draft=") {
		t.Errorf("the English link %q does not keep the values", en)
	}
	a := b.get(en)
	if a.status != 200 || !strings.Contains(a.body, `<html lang="en"`) {
		t.Fatalf("English form: %d", a.status)
	}
	for _, want := range []string{`value="Stora torget 1"`, ">kort</textarea>", `value="pothole" selected`} {
		if !strings.Contains(a.body, want) {
			t.Errorf("English form lacks %q", want)
		}
	}
	// Another browser cannot open them.
	if o := e.browser(t).get(en); strings.Contains(o.body, "Stora torget 1") {
		t.Error("another browser sees the values")
	}
}

// Search results have a title of their own (WCAG 2.4.2).
func TestSearchResultsTitle(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	title := func(path string) string {
		m := regexp.MustCompile(`<title>([^<]*)</title>`).FindStringSubmatch(b.get(path).body)
		if m == nil {
			t.Fatalf("%s has no title", path)
		}
		return html.UnescapeString(m[1])
	}
	front, search := title("/?lang=sv"), title("/?q=forskola&lang=sv")
	if front == search || !strings.HasPrefix(search, "Sökresultat för ”forskola”") {
		t.Errorf("search title %q, front page %q", search, front)
	}
}

// A date is three text inputs in the language's order; the parts are
// joined into YYYY-MM-DD for the validator and split again when the form
// comes back.
func TestDateAsThreeInputs(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	b.signIn("cecilia", "/my")
	page := b.get("/services/building-permit-advice?lang=sv").body
	order := regexp.MustCompile(`name="preferred_date-(year|month|day)"`).FindAllStringSubmatch(page, -1)
	if len(order) != 3 || order[0][1] != "year" || order[2][1] != "day" || strings.Contains(page, `type="date"`) {
		t.Fatalf("Swedish date inputs %v (want year, month, day; no browser date picker)", order)
	}
	if !strings.Contains(page, `id="f-preferred_date" name="preferred_date-year"`) {
		t.Errorf("the first input does not carry the field's id")
	}
	csrf, form := b.formTokens("/services/building-permit-advice?lang=sv")
	post := func(y, m, d string) answer {
		return b.post("/services/building-permit-advice", url.Values{"_csrf": {csrf}, "_form": {form},
			"preferred_date-year": {y}, "preferred_date-month": {m}, "preferred_date-day": {d}})
	}
	// Other fields are missing, so the form comes back either way; what
	// matters is what it says about the date.
	d := time.Now().AddDate(0, 0, 30)
	y, m, day := strconv.Itoa(d.Year()), strconv.Itoa(int(d.Month())), strconv.Itoa(d.Day())
	ok := post(y, m, day)
	if ok.status != 422 || strings.Contains(ok.body, `id="f-preferred_date-error"`) {
		i := strings.Index(ok.body, `id="f-preferred_date-error"`)
		t.Fatalf("a real date is refused: %d %.300s", ok.status, ok.body[max(0, i):])
	}
	for _, want := range []string{`name="preferred_date-year" value="` + y + `"`, `name="preferred_date-month" value="` + fmt.Sprintf("%02d", d.Month()) + `"`, `name="preferred_date-day" value="` + fmt.Sprintf("%02d", d.Day()) + `"`} {
		if !strings.Contains(ok.body, want) {
			t.Errorf("the form after a post lacks %s", want)
		}
	}
	bad := post("2099", "13", "5")
	if !strings.Contains(bad.body, `<p class="error-message" id="f-preferred_date-error">Skriv ett datum som finns`) {
		t.Errorf("an impossible date is not explained for three inputs")
	}
	if !strings.Contains(bad.body, `href="#f-preferred_date"`) || !strings.Contains(bad.body, `name="preferred_date-month" value="13"`) {
		t.Errorf("the error summary does not lead to the date, or the typed month is lost")
	}
	en := b.get("/services/building-permit-advice?lang=en").body
	if order := regexp.MustCompile(`name="preferred_date-(year|month|day)"`).FindAllStringSubmatch(en, -1); len(order) != 3 || order[0][1] != "day" {
		t.Errorf("English date inputs %v, want day first", order)
	}
}

// Form markup the review found wanting: a textarea's autocomplete from the
// manifest, the required marker on a single check box, and the error
// summary's link to a check-box group going to its first box.
func TestFormMarkup(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	docs := b.get("/services/public-documents?lang=sv").body
	if !regexp.MustCompile(`<textarea id="f-postal_address"[^>]* autocomplete="street-address"`).MatchString(docs) {
		t.Errorf("the postal address textarea lacks the manifest's autocomplete")
	}
	b.signIn("cecilia", "/my")
	csrf, form := b.formTokens("/services/home-care?lang=sv")
	r := b.post("/services/home-care", url.Values{"_csrf": {csrf}, "_form": {form}})
	if r.status != 422 {
		t.Fatalf("empty home-care form: %d", r.status)
	}
	if !regexp.MustCompile(`<label for="f-consent">[^<]*<span class="req">\(obligatoriskt\)</span></label>`).MatchString(r.body) {
		t.Errorf("the required consent check box has no required marker")
	}
	if !strings.Contains(r.body, `<li><a href="#f-help_types-0">`) || !strings.Contains(r.body, `id="f-help_types-0"`) {
		t.Errorf("the error summary does not link the check-box group's first box")
	}
	// An empty required field says what to do for its kind.
	for _, want := range []string{
		`<p class="error-message" id="f-help_types-error">Välj minst ett alternativ.</p>`,
		`<p class="error-message" id="f-applying_for-error">Välj ett av alternativen.</p>`,
		`<p class="error-message" id="f-needs-error">Fältet måste fyllas i.</p>`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("the form lacks %s", want)
		}
	}
	// The summary comes first in main, before the heading.
	main := r.body[strings.Index(r.body, `<main`):]
	if i, j := strings.Index(main, `id="error-summary"`), strings.Index(main, "<h1>"); i < 0 || i > j {
		t.Errorf("the error summary is not first in main")
	}
}
