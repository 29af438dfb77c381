package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The resident's sign-in journey in headless Chromium against real
// processes (redis-server, casesim, the gateway with its development
// identity provider): sign in through the persona picker, fill in a form
// that needs a higher level, step up, send, find the case on My pages,
// sign out. No JavaScript on any page: links, forms and redirects only.
func TestBrowserSignInJourney(t *testing.T) {
	chrome := needChromium(t)
	_, _, gw := startStack(t, nil) // no issuer: the development provider is on
	b := newBrowser(t, chrome)
	pick := func(persona string) {
		t.Helper()
		b.do("wait for the persona picker", chromedp.WaitVisible(chromedp.CSS(`input[name="persona"]`)))
		if b.path() != "/dev-idp/authorize" {
			t.Fatalf("expected the persona picker, at %s", b.location())
		}
		b.do("choose "+persona, chromedp.Click(chromedp.CSS("#persona-"+persona)))
		if code := b.navigate("sign in as "+persona, chromedp.Click(chromedp.CSS(`main form button[type="submit"]`))); code != 200 {
			b.fail("sign in as "+persona, fmt.Errorf("status %d", code))
		}
	}

	// 1. My pages need a sign-in: the browser goes to the persona picker.
	if code := b.navigate("open My pages", chromedp.Navigate(gw.URL+"/my")); code != 200 {
		t.Fatalf("GET /my: %d", code)
	}
	if got := b.text("main h1"); got != "Välj en testperson" {
		t.Errorf("picker heading %q", got)
	}
	b.screenshot("auth-1-picker")
	pick("anna")
	if b.path() != "/my" || b.text("#my-name") != "Anna Andersson" || b.text("#my-personnummer") != "19850709-****" {
		t.Fatalf("after sign-in: %s, name %q", b.location(), b.text("#my-name"))
	}
	b.screenshot("auth-2-my-anna")

	// 2. Home care needs "substantial"; Anna signed in at "low". She fills
	// in the form and sends it.
	if code := b.navigate("open the home-care form", chromedp.Navigate(gw.URL+"/services/home-care")); code != 200 {
		t.Fatalf("form: %d", code)
	}
	needs := "Jag behöver hjälp med inköp och städning varje vecka"
	b.do("fill in the form",
		chromedp.SetValue(chromedp.CSS("#f-applying_for"), "self"),
		chromedp.SendKeys(chromedp.CSS("#f-personnummer"), "19900101-3011"),
		chromedp.Click(chromedp.CSS(`input[name="help_types"][value="shopping"]`)),
		chromedp.SetValue(chromedp.CSS("#f-living_situation"), "alone"),
		chromedp.SendKeys(chromedp.CSS("#f-needs"), needs),
		chromedp.SendKeys(chromedp.CSS("#f-phone"), "018-727 00 00"),
		chromedp.Click(chromedp.CSS("#f-consent")),
	)
	submit := `form[method="post"] button[type="submit"]`
	// 3. Step-up: the picker again, asking for "väsentlig".
	if code := b.navigate("send the form (step-up)", chromedp.Click(chromedp.CSS(submit))); code != 200 {
		t.Fatalf("step-up: status %d", code)
	}
	b.do("wait for the picker", chromedp.WaitVisible(chromedp.CSS(`input[name="persona"]`)))
	if got := b.text("main"); !strings.Contains(got, "tillitsnivå väsentlig") {
		t.Errorf("the picker does not say which level is asked for: %q", got)
	}
	b.screenshot("auth-3-step-up")
	pick("bertil")
	// Back at the form, everything typed still there.
	b.do("wait for the form", chromedp.WaitVisible(chromedp.CSS("#f-needs")))
	if b.path() != "/services/home-care" {
		t.Fatalf("after step-up at %s", b.location())
	}
	if got := b.value("#f-needs"); got != needs {
		t.Errorf("needs after step-up %q", got)
	}
	if got := b.value("#f-personnummer"); got != "19900101-3011" {
		t.Errorf("personnummer after step-up %q", got)
	}
	if got := b.value("#f-phone"); got != "018-727 00 00" {
		t.Errorf("phone after step-up %q", got)
	}
	b.screenshot("auth-4-form-kept")
	// 4. Send: the receipt.
	if code := b.navigate("send the form", chromedp.Click(chromedp.CSS(submit))); code != 200 {
		t.Fatalf("receipt: status %d", code)
	}
	b.do("wait for the receipt", chromedp.WaitVisible(chromedp.CSS("#reference")))
	if !regexp.MustCompile(`/s/[a-z2-7]{32}\?receipt=1$`).MatchString(b.location()) {
		t.Fatalf("receipt at %s", b.location())
	}
	ref := b.text("#reference")

	// 5. My pages show the case; reload until it has its case number.
	row := `#my-submissions tr[data-reference="` + ref + `"]`
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code := b.navigate("open My pages", chromedp.Navigate(gw.URL+"/my")); code != 200 {
			t.Fatalf("my: %d", code)
		}
		b.do("wait for My pages", chromedp.WaitVisible(chromedp.CSS("#my-name")))
		if b.text("#my-name") != "Bertil Berg" {
			t.Fatalf("My pages for %q", b.text("#my-name"))
		}
		if b.count(row) == 1 && b.attr(row+" td[data-status]", "data-status") == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for the case on My pages (%d rows)", b.count("#my-submissions tbody tr"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := b.text(row + " .case-reference"); !regexp.MustCompile(`^KS-\d{4}-\d{6}$`).MatchString(got) {
		t.Errorf("case number on My pages %q", got)
	}
	b.screenshot("auth-5-my-pages")

	// 6. Sign out; My pages need a sign-in again.
	if code := b.navigate("sign out", chromedp.Click(chromedp.CSS("#sign-out"))); code != 200 {
		t.Fatalf("sign out: %d", code)
	}
	if b.path() != "/" {
		t.Errorf("after sign-out at %s", b.location())
	}
	if code := b.navigate("open My pages signed out", chromedp.Navigate(gw.URL+"/my")); code != 200 {
		t.Fatalf("my: %d", code)
	}
	if b.path() != "/dev-idp/authorize" {
		t.Fatalf("signed out, /my went to %s", b.location())
	}
}
