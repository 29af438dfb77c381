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

// Save and resume, and the desk -> home handover, in headless Chromium with
// JavaScript switched off, against real processes (redis-server, casesim,
// the gateway with its development identity provider): an anonymous
// resident saves a form and gets a code; another browser types it at
// /fortsatt and sends the form. Staff hand a desk form over; the visitor
// signs in at home in the other browser, types the slip's code and sends
// it as their own.
func TestBrowserDraftJourney(t *testing.T) {
	chrome := needChromium(t)
	_, _, gw := startStack(t, nil)
	noJS := func(b *browser) {
		b.do("switch JavaScript off", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}))
	}
	first, second := newBrowser(t, chrome), newBrowser(t, chrome)
	noJS(first)
	noJS(second)
	code := regexp.MustCompile(`^[2-9A-Z]{4}(-[2-9A-Z]{4}){3}$`)
	submit := `form[method="post"] button[type="submit"]`

	// 1. Anonymous: fill in, save, get the code.
	if c := first.navigate("open the form", chromedp.Navigate(gw.URL+"/services/street-fault")); c != 200 {
		t.Fatalf("form: %d", c)
	}
	desc := "Ett djupt hål i cykelbanan vid bron, sparat till senare"
	first.do("fill in the form",
		chromedp.SetValue(chromedp.CSS("#f-kind"), "pothole"),
		chromedp.SendKeys(chromedp.CSS("#f-description"), desc),
		chromedp.SendKeys(chromedp.CSS("#f-location"), "Kungsgatan 12"),
	)
	if c := first.navigate("save the draft", chromedp.Click(chromedp.CSS("#save-draft"))); c != 200 {
		t.Fatalf("save: %d", c)
	}
	resume := first.text("#resume-code")
	if !code.MatchString(resume) {
		t.Fatalf("resume code %q", resume)
	}
	first.screenshot("drafts-1-code")

	// 2. Another browser types it (small letters, no dashes) and sends.
	if c := second.navigate("open /fortsatt", chromedp.Navigate(gw.URL+"/fortsatt")); c != 200 {
		t.Fatalf("/fortsatt: %d", c)
	}
	second.do("type the code", chromedp.SendKeys(chromedp.CSS("#resume-code"), strings.ToLower(strings.ReplaceAll(resume, "-", ""))))
	if c := second.navigate("continue", chromedp.Click(chromedp.CSS("#resume-submit"))); c != 200 {
		t.Fatalf("resume: %d", c)
	}
	if second.path() != "/services/street-fault" || second.value("#f-description") != desc {
		t.Fatalf("resumed at %s with %q", second.location(), second.value("#f-description"))
	}
	if c := second.navigate("send", chromedp.Click(chromedp.CSS(submit))); c != 200 || !strings.HasPrefix(second.path(), "/s/") {
		t.Fatalf("send the resumed form: %d at %s", c, second.location())
	}

	// 3. The desk: Sara hands a form over for Bertil.
	if c := first.navigate("sign in for the desk form", chromedp.Navigate(gw.URL+"/auth/login?return_to=%2Fdesk%2Fservices%2Fstreet-fault")); c != 200 {
		t.Fatalf("sign-in: %d", c)
	}
	first.do("choose sara", chromedp.Click(chromedp.CSS("#persona-sara")))
	if c := first.navigate("sign in as sara", chromedp.Click(chromedp.CSS(`main form button[type="submit"]`))); c != 200 {
		first.fail("sign in as sara", fmt.Errorf("status %d", c))
	}
	if first.path() != "/desk/services/street-fault" {
		t.Fatalf("after sign-in at %s", first.location())
	}
	lamp := "Gatlampan utanför porten är trasig sedan en vecka"
	first.do("fill in the visitor and the form",
		chromedp.SendKeys(chromedp.CSS("#visitor-pnr"), "19900101-3011"),
		chromedp.SetValue(chromedp.CSS("#f-kind"), "streetlight"),
		chromedp.SendKeys(chromedp.CSS("#f-description"), lamp),
		chromedp.SendKeys(chromedp.CSS("#f-location"), "Kungsgatan 14"),
	)
	if c := first.navigate("hand over", chromedp.Click(chromedp.CSS("#desk-handover"))); c != 200 {
		t.Fatalf("hand over: %d", c)
	}
	handover := first.text("#handover-code")
	if !code.MatchString(handover) || first.text("#handover-subject") != "19900101-****" {
		t.Fatalf("slip: code %q, subject %q", handover, first.text("#handover-subject"))
	}
	first.screenshot("drafts-2-slip")

	// 4. At home: Bertil signs in, types the code, sends it himself.
	if c := second.navigate("sign in for /fortsatt", chromedp.Navigate(gw.URL+"/auth/login?return_to=%2Ffortsatt")); c != 200 {
		t.Fatalf("sign-in: %d", c)
	}
	second.do("choose bertil", chromedp.Click(chromedp.CSS("#persona-bertil")))
	if c := second.navigate("sign in as bertil", chromedp.Click(chromedp.CSS(`main form button[type="submit"]`))); c != 200 || second.path() != "/fortsatt" {
		t.Fatalf("sign in as bertil: %d at %s", c, second.location())
	}
	second.do("type the slip's code", chromedp.SendKeys(chromedp.CSS("#resume-code"), handover))
	if c := second.navigate("continue", chromedp.Click(chromedp.CSS("#resume-submit"))); c != 200 {
		t.Fatalf("resume the handover: %d", c)
	}
	if second.path() != "/services/street-fault" || second.value("#f-description") != lamp {
		t.Fatalf("handed-over form at %s with %q", second.location(), second.value("#f-description"))
	}
	second.screenshot("drafts-3-home")
	if c := second.navigate("send", chromedp.Click(chromedp.CSS(submit))); c != 200 || !strings.HasPrefix(second.path(), "/s/") {
		t.Fatalf("send the handed-over form: %d at %s", c, second.location())
	}
	// It is Bertil's own submission, on his My pages; the draft is gone.
	if c := second.navigate("open My pages", chromedp.Navigate(gw.URL+"/my")); c != 200 {
		t.Fatalf("My pages: %d", c)
	}
	if second.count("#my-submissions tbody tr") != 1 || second.count("#my-drafts-empty") != 1 {
		t.Fatalf("My pages: %d submissions, drafts empty %d", second.count("#my-submissions tbody tr"), second.count("#my-drafts-empty"))
	}
}
