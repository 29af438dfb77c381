package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// The service-point desk in headless Chromium against real processes: the
// staff persona signs in through the persona picker, files a street fault
// on a visitor's behalf, opens the printable receipt in the visitor's
// language and checks the print view, then registers a phone contact in
// three clicks. No JavaScript on any page.
func TestBrowserDesk(t *testing.T) {
	chrome := needChromium(t)
	_, _, gw := startStack(t, nil)
	b := newBrowser(t, chrome)

	// 1. The desk needs a sign-in: the persona picker; Sara signs in.
	if code := b.navigate("open the desk", chromedp.Navigate(gw.URL+"/desk")); code != 200 {
		t.Fatalf("GET /desk: %d", code)
	}
	b.do("wait for the persona picker", chromedp.WaitVisible(chromedp.CSS(`input[name="persona"]`)))
	b.do("choose sara", chromedp.Click(chromedp.CSS("#persona-sara")))
	if code := b.navigate("sign in as sara", chromedp.Click(chromedp.CSS(`main form button[type="submit"]`))); code != 200 {
		b.fail("sign in as sara", fmt.Errorf("status %d", code))
	}
	if b.path() != "/desk" || b.text("#point-name") != "Servicepunkt Centrum" {
		t.Fatalf("after sign-in at %s, point %q", b.location(), b.text("#point-name"))
	}
	b.screenshot("desk-1-desk")

	// 2. Start the street-fault form for a visitor and fill it in.
	if code := b.navigate("start the form", chromedp.Click(chromedp.CSS(`a.desk-start[data-service="street-fault"]`))); code != 200 {
		t.Fatalf("desk form: %d", code)
	}
	if b.path() != "/desk/services/street-fault" {
		t.Fatalf("form at %s", b.location())
	}
	b.do("fill in the visitor and the form",
		chromedp.SendKeys(chromedp.CSS("#visitor-pnr"), "19900101-3011"),
		chromedp.Click(chromedp.CSS("#visitor-check-0")), // id_document
		chromedp.Click(chromedp.CSS("#visitor-consent")),
		chromedp.SetValue(chromedp.CSS("#visitor-lang"), "en"),
		chromedp.SetValue(chromedp.CSS("#f-kind"), "pothole"),
		chromedp.SendKeys(chromedp.CSS("#f-description"), "Ett djupt hål i cykelbanan vid bron"),
		chromedp.SendKeys(chromedp.CSS("#f-location"), "Kungsgatan 12"),
	)
	b.screenshot("desk-2-form")
	if code := b.navigate("send for the visitor", chromedp.Click(chromedp.CSS("#desk-submit"))); code != 200 {
		t.Fatalf("send: %d", code)
	}

	// 3. The printable receipt, in the visitor's language (English).
	b.do("wait for the receipt", chromedp.WaitVisible(chromedp.CSS("#desk-receipt")))
	if !regexp.MustCompile(`/desk/receipt/[a-z2-7]{32}$`).MatchString(b.location()) {
		t.Fatalf("receipt at %s", b.location())
	}
	ref := b.text("#reference")
	if b.attr("html", "lang") != "en" || !strings.Contains(b.text("h1"), "Receipt") {
		t.Errorf("the receipt is not in English: lang %q, h1 %q", b.attr("html", "lang"), b.text("h1"))
	}
	if got := b.text("#receipt-subject"); got != "19900101-****" {
		t.Errorf("subject on the receipt %q", got)
	}
	if main := b.text("main"); strings.Contains(main, "19900101-3011") || strings.Contains(main, "199001013011") {
		t.Errorf("the receipt shows the personnummer in full")
	}
	if link := b.text("#receipt-link"); !regexp.MustCompile(`/s/[a-z2-7]{32}$`).MatchString(link) {
		t.Errorf("status link %q", link)
	}
	// The print view: only the receipt.
	b.do("emulate print media", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return err
	}))
	display := func(sel string) string {
		d, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector(`+jsString(sel)+`)).display`))
		if err != nil {
			b.fail("display of "+sel, err)
		}
		return d
	}
	for _, sel := range []string{".site-header", ".site-footer", "p.no-print", ".breadcrumb"} {
		if d := display(sel); d != "none" {
			t.Errorf("print view shows %s (display %s)", sel, d)
		}
	}
	if d := display("#desk-receipt"); d == "none" {
		t.Errorf("print view hides the receipt")
	}
	b.screenshot("desk-3-receipt-print")
	b.do("back to screen media", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: ""})
		return err
	}))

	// 4. Back at the desk: today's work lists the filing, masked; a phone
	// contact takes three clicks (service, channel, outcome).
	if code := b.navigate("back to the desk", chromedp.Click(chromedp.CSS("p.no-print a.button"))); code != 200 {
		t.Fatalf("desk: %d", code)
	}
	row := `#work-today tr[data-reference="` + ref + `"]`
	if b.count(row) != 1 || !strings.Contains(b.text(row), "19900101-****") {
		t.Fatalf("today's work lacks %s", ref)
	}
	b.do("click 1: the service", chromedp.Click(chromedp.CSS(`#contact-form input[name="service"][value="street-fault"]`)))
	b.do("click 2: the channel", chromedp.Click(chromedp.CSS("#contact-channel-phone")))
	if code := b.navigate("click 3: the outcome", chromedp.Click(chromedp.CSS("#outcome-resolved"))); code != 200 {
		t.Fatalf("contact: %d", code)
	}
	if !strings.Contains(b.text("#desk-notice"), "Kontakten är registrerad") {
		t.Errorf("no notice after the contact: %q", b.text("#desk-notice"))
	}
	if got := b.text("#contacts-today tbody tr:first-child"); !strings.Contains(got, "1") {
		t.Errorf("contacts today %q", got)
	}
	b.screenshot("desk-4-contact")
}
