package main

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The resident's journey in a real browser (headless Chromium), against real
// processes: redis-server, casesim and the gateway. The pages have no
// JavaScript of their own, so everything here is links, forms and reloads.

// chromiumPath finds a Chromium or Chrome executable, or returns "".
func chromiumPath() string {
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// needChromium returns the Chromium to drive. Without one the test is
// skipped, or fails under CI, which must have one.
func needChromium(t *testing.T) string {
	t.Helper()
	chrome := chromiumPath()
	if chrome == "" {
		msg := "no Chromium found (looked for /usr/bin/chromium, and chromium, chromium-browser, google-chrome on PATH)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI must have one")
		}
		t.Skip(msg + "; install chromium to run the browser test")
	}
	return chrome
}

// newBrowser starts headless chrome and opens one tab in it. Screenshots go
// to a temporary directory and to $BROWSER_SCREENSHOTS if set. The browser
// is closed when the test ends.
func newBrowser(t *testing.T, chrome string) *browser {
	t.Helper()
	shots := []string{t.TempDir()}
	if dir := os.Getenv("BROWSER_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		shots = append(shots, dir)
	}

	// The whole browser session is bounded, so the test cannot hang.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		// A Swedish resident's browser: headless Chromium would otherwise
		// send Accept-Language: en-US and rightly get English pages.
		chromedp.Flag("lang", "sv-SE"),
		chromedp.Flag("accept-lang", "sv-SE,sv"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1600),
	)
	// Closes the browser and waits for it; registered after the first
	// t.TempDir, so it runs before the temp dirs go.
	t.Cleanup(cancelAlloc)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	return &browser{t: t, ctx: tabCtx, shots: shots}
}

// browser drives one tab. Every step fails the test with the page it was on.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots []string // directories the screenshots go to
}

// fail stops the test, saying what was being done and where the tab was.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	msg := what + ": " + err.Error()
	if errors.Is(err, context.DeadlineExceeded) || b.ctx.Err() != nil {
		msg += " (the browser session ran out of time)"
	} else {
		// A few seconds to say where the tab is; the tab stays usable.
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		if loc, lerr := chromedp.Run(ctx, chromedp.Location()); lerr == nil {
			msg += "\npage: " + loc
		}
		if html, herr := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main"))); herr == nil {
			msg += "\n" + html
		}
	}
	b.t.Fatal(msg)
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.fail(what, err)
	}
}

// navigate runs steps that load a new page (a link, a form, an address) and
// waits until that page has loaded; it returns the page's HTTP status.
func (b *browser) navigate(what string, steps ...chromedp.Action[chromedp.Void]) int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, steps...)
	if err != nil {
		b.fail(what, err)
	}
	if resp == nil {
		b.fail(what, errors.New("no response"))
	}
	return resp.Status
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fail("text of "+sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *browser) value(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.fail("value of "+sel, err)
	}
	return s
}

func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	a, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		b.fail(name+" of "+sel, err)
	}
	if !a.Exists {
		b.fail(name+" of "+sel, errors.New("no such attribute"))
	}
	return a.Value
}

func (b *browser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.fail("location", err)
	}
	return loc
}

// path is the path of the tab's address.
func (b *browser) path() string {
	b.t.Helper()
	u, err := url.Parse(b.location())
	if err != nil {
		b.t.Fatal(err)
	}
	return u.Path
}

func (b *browser) count(sel string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
	if err != nil {
		b.fail("count of "+sel, err)
	}
	return n
}

// screenshot saves the whole page as a PNG in each screenshot directory.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	for _, dir := range b.shots {
		p := filepath.Join(dir, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
		b.t.Logf("screenshot %s", p)
	}
}

// jsString quotes s as a JavaScript string literal (selectors only: no
// backslashes or newlines in them).
func jsString(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

func TestBrowserJourney(t *testing.T) {
	chrome := needChromium(t)
	_, cs, gw := startStack(t, nil)
	b := newBrowser(t, chrome)

	// 1. The catalog, in Swedish for a browser that asks for Swedish.
	if code := b.navigate("open the catalog", chromedp.Navigate(gw.URL+"/")); code != 200 {
		t.Fatalf("GET /: status %d", code)
	}
	b.do("wait for the search field", chromedp.WaitVisible(chromedp.CSS("#q")))
	if lang := b.attr("html", "lang"); lang != "sv" {
		t.Fatalf(`<html lang=%q>, want "sv"`, lang)
	}

	// 2. Search without diacritics; Enter submits the search form.
	b.do("type the search", chromedp.SendKeys(chromedp.CSS("#q"), "felanmalan"))
	if code := b.navigate("submit the search", chromedp.SendKeys(chromedp.CSS("#q"), "\n")); code != 200 {
		t.Fatalf("search: status %d", code)
	}
	if u, err := url.Parse(b.location()); err != nil || u.Path != "/" || u.Query().Get("q") != "felanmalan" {
		t.Fatalf("search went to %s, want /?q=felanmalan", b.location())
	}
	link := `main a[href="/services/street-fault"]`
	b.do("wait for the search result", chromedp.WaitVisible(chromedp.CSS(".result-count")))
	if b.count(link) != 1 {
		b.fail("search for felanmalan", errors.New("no single link to /services/street-fault"))
	}
	if got := b.text(link); got != "Felanmälan gata, park och lekplats" {
		t.Errorf("result link text %q", got)
	}
	b.screenshot("1-search")
	if code := b.navigate("follow the result link", chromedp.Click(chromedp.CSS(link))); code != 200 {
		t.Fatalf("service page: status %d", code)
	}
	b.do("wait for the form", chromedp.WaitVisible(chromedp.CSS("#f-description")))
	if u, _ := url.Parse(b.location()); u == nil || u.Path != "/services/street-fault" {
		t.Fatalf("result link went to %s", b.location())
	}

	// 3. One error: the description is too short. Nothing typed is lost.
	submit := `form[method="post"] button[type="submit"]`
	b.do("fill in the form",
		chromedp.SetValue(chromedp.CSS("#f-kind"), "pothole"),
		chromedp.SendKeys(chromedp.CSS("#f-description"), "kort"),
		chromedp.SendKeys(chromedp.CSS("#f-location"), "Stora torget 1"),
	)
	if code := b.navigate("submit the form with an error", chromedp.Click(chromedp.CSS(submit))); code != 422 {
		t.Errorf("form with an error: status %d, want 422", code)
	}
	b.do("wait for the error summary", chromedp.WaitVisible(chromedp.CSS(".error-summary")))
	// A screen reader user hears first that the page is about an error.
	if title, err := chromedp.Run(b.ctx, chromedp.Title()); err != nil || !strings.HasPrefix(title, "Fel: ") {
		t.Errorf("title of the form with an error: %q (%v), want it to start with \"Fel: \"", title, err)
	}
	if n := b.count(".error-summary li"); n != 1 {
		t.Errorf("error summary lists %d errors, want 1", n)
	}
	if got := b.attr(".error-summary li a", "href"); got != "#f-description" {
		t.Errorf("error summary links to %q, want #f-description", got)
	}
	if got := b.text(".error-summary li a"); !strings.Contains(got, "Skriv minst 10 tecken.") {
		t.Errorf("error summary says %q", got)
	}
	if got := b.text("#f-description-error"); got != "Skriv minst 10 tecken." {
		t.Errorf("field error for description: %q", got)
	}
	if got := b.attr("#f-description", "aria-invalid"); got != "true" {
		t.Errorf("description aria-invalid=%q", got)
	}
	if got := b.value("#f-location"); got != "Stora torget 1" {
		t.Errorf("location after the error: %q, want it kept", got)
	}
	if got := b.value("#f-kind"); got != "pothole" {
		t.Errorf("kind after the error: %q, want it kept", got)
	}
	if got := b.value("#f-description"); got != "kort" {
		t.Errorf("description after the error: %q, want it kept", got)
	}
	if n := b.count(".field-error"); n != 1 {
		t.Errorf("%d fields marked as errors, want 1", n)
	}
	b.screenshot("2-form-error")

	// 4. Correct the description and send.
	description := "Det är ett djupt hål i gatan framför biblioteket"
	b.do("correct the description",
		// Empty the field (SetValue refuses ""), then type as a resident would.
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#f-description").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#f-description"), description),
	)
	if got := b.value("#f-description"); got != description {
		t.Fatalf("typed description reads %q", got)
	}
	if code := b.navigate("submit the corrected form", chromedp.Click(chromedp.CSS(submit))); code != 200 {
		t.Errorf("receipt: status %d", code)
	}
	b.do("wait for the receipt", chromedp.WaitVisible(chromedp.CSS("#reference")))
	m := regexp.MustCompile(`/s/([a-z2-7]{32})\?receipt=1$`).FindStringSubmatch(b.location())
	if m == nil {
		t.Fatalf("receipt at %s", b.location())
	}
	id := m[1]
	if got := b.text(".receipt h1"); got != "Tack! Vi har tagit emot ditt ärende" {
		t.Errorf("receipt heading %q", got)
	}
	ref := b.text("#reference")
	if ref == "" {
		t.Fatal("receipt has no reference")
	}
	if s := submission(t, gw.URL, id); s.Reference != ref {
		t.Errorf("receipt shows reference %q, the API %q", ref, s.Reference)
	}
	b.screenshot("3-receipt")

	// 5. Reload the status page until the department has the case.
	refresh := `main a.button[href="/s/` + id + `"]`
	if got := b.text(refresh); got != "Uppdatera status" {
		t.Errorf("refresh link says %q", got)
	}
	// Always through the link at least once, as a resident coming back would.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code := b.navigate("refresh the status", chromedp.Click(chromedp.CSS(refresh))); code != 200 {
			t.Fatalf("status page: status %d", code)
		}
		b.do("wait for the status", chromedp.WaitVisible(chromedp.CSS("#status")))
		if b.attr("#status", "data-status") == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for delivered: status %q (%s)\ngateway:\n%s", b.attr("#status", "data-status"), b.text("#status"), gw.Out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if b.count(".receipt") != 0 {
		t.Errorf("the status page (no ?receipt=1) still shows the receipt")
	}
	if got := b.text("#status"); got != "Överlämnat till förvaltningen" {
		t.Errorf("status text %q", got)
	}
	caseRef := b.text("#case-reference")
	if !regexp.MustCompile(`^KS-\d{4}-\d{6}$`).MatchString(caseRef) {
		t.Fatalf("case number %q", caseRef)
	}
	var matching []caseJSON
	for _, c := range cases(t, cs.URL) {
		if c.CaseReference == caseRef {
			matching = append(matching, c)
		}
	}
	if len(matching) != 1 {
		t.Fatalf("casesim has %d cases %s, want 1: %+v", len(matching), caseRef, matching)
	}
	if c := matching[0]; c.SubmissionID != id || c.Service != "street-fault" {
		t.Errorf("case %+v, want submission %s of street-fault", c, id)
	}
	b.screenshot("4-status-delivered")

	// 6. The same page in English.
	en := `nav.lang a[hreflang="en"]`
	if got := b.text(en); got != "English" {
		t.Errorf("language link says %q", got)
	}
	if code := b.navigate("switch to English", chromedp.Click(chromedp.CSS(en))); code != 200 {
		t.Fatalf("English status page: status %d", code)
	}
	b.do("wait for the status in English", chromedp.WaitVisible(chromedp.CSS("#status")))
	if lang := b.attr("html", "lang"); lang != "en" {
		t.Fatalf(`<html lang=%q> after choosing English`, lang)
	}
	if got := b.text("#status"); got != "Passed on to the department" {
		t.Errorf("English status text %q", got)
	}
	if got := b.text("#case-reference"); got != caseRef {
		t.Errorf("English page shows case number %q, want %q", got, caseRef)
	}
	b.screenshot("5-status-en")
}
