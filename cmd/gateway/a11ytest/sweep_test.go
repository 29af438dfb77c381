// Package a11ytest is the accessibility sweep: the real gateway binary with
// a real redis-server and casesim, driven by headless Chromium, with
// axe-core (testdata/axe.min.js, MPL-2.0, vendored unchanged) run on every
// page in every language the gateway serves, signed in as each role,
// including error states. It also checks reflow at 320 CSS pixels (WCAG
// 1.4.10) and the keyboard path through the skip link and the error summary.
//
// One gateway and one browser serve the whole sweep, so it stays within a
// few minutes on two cores.
package a11ytest

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

//go:embed testdata/axe.min.js
var axeSource string

const secret = "a11y-sweep-secret"

// wcagTags are the rule sets the sweep runs: WCAG 2.0 and 2.1, A and AA.
var wcagTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

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

// browser is one tab; every failure names the page it was on.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T, chrome string) *browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
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
		chromedp.Flag("lang", "sv-SE"),
		chromedp.Flag("accept-lang", "sv-SE,sv"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	t.Cleanup(cancelAlloc)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	return &browser{t: t, ctx: tabCtx}
}

func (b *browser) fatal(what string, err error) {
	b.t.Helper()
	msg := what + ": " + err.Error()
	if b.ctx.Err() == nil {
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
	// Like navigate: an element that never appears fails, not hangs.
	if err := chromedp.Do(b.ctx); err != nil {
		b.fatal(what, err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fatal(what, err)
	}
}

// navigate runs steps that load a page and returns its HTTP status.
func (b *browser) navigate(what string, steps ...chromedp.Action[chromedp.Void]) int64 {
	b.t.Helper()
	// A page that never shows what a step waits for fails, not hangs. The
	// tab is made first on the browser's own context (a tab made on the
	// timeout's context would close with it).
	if err := chromedp.Do(b.ctx); err != nil {
		b.fatal(what, err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		b.fatal(what, err)
	}
	if resp == nil {
		b.fatal(what, errors.New("no response"))
	}
	return resp.Status
}

func eval[T any](b *browser, what, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fatal(what, err)
	}
	return v
}

func (b *browser) location() string {
	b.t.Helper()
	return eval[string](b, "location", `location.href`)
}

func (b *browser) clearCookies() {
	b.t.Helper()
	b.do("clear cookies", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.ClearBrowserCookies, cdp.Empty{})
		return err
	}))
}

// violation is one axe-core rule broken on a page.
type violation struct {
	ID, Impact, Help string
	Nodes            []string
}

// axe runs axe-core on the page with the WCAG 2.0/2.1 A and AA rules.
func (b *browser) axe() []violation {
	b.t.Helper()
	if !eval[bool](b, "is axe loaded", `typeof axe !== "undefined"`) {
		if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
			b.fatal("inject axe-core", err)
		}
	}
	tags, _ := json.Marshal(wcagTags)
	js := `axe.run(document, {runOnly: {type: "tag", values: ` + string(tags) + `}, resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations.map(v => ({
		ID: v.id, Impact: v.impact || "", Help: v.help,
		Nodes: v.nodes.slice(0, 6).map(n => n.target.join(" ") + " :: " + (n.failureSummary || "").replace(/\s+/g, " "))}))))`
	out := eval[string](b, "run axe-core", js)
	var vs []violation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		b.fatal("axe-core result", err)
	}
	return vs
}

// reflow is the page's width at a 320 px wide viewport (WCAG 1.4.10: no
// scrolling in two dimensions at 320 CSS pixels), and what sticks out.
func (b *browser) reflow() (int, string) {
	b.t.Helper()
	b.do("narrow the viewport to 320 px", chromedp.EmulateViewport(320, 800))
	defer b.do("widen the viewport", chromedp.EmulateViewport(1280, 1000))
	w := eval[int](b, "scrollWidth at 320 px", `document.documentElement.scrollWidth`)
	if w <= 320 {
		return w, ""
	}
	wide := eval[string](b, "what is too wide", `[...document.querySelectorAll("body *")].filter(e => {
		const r = e.getBoundingClientRect(); return r.right > 321 || r.left < -1 }).slice(0, 8).map(e =>
		e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof e.className === "string" ? "." + e.className.trim().replace(/\s+/g, ".") : "") +
		" [" + Math.round(e.getBoundingClientRect().left) + ".." + Math.round(e.getBoundingClientRect().right) + "]").join(", ")`)
	return w, wide
}

// page is one page of the sweep: a GET path, or steps that lead to it (an
// error state after a post), and the status it must answer with.
type page struct {
	name   string
	path   string
	status int64
	// post, when set, opens path and then sends its form as it is, to
	// show the form with errors (or, with fill, filled in).
	post string
	// fill, when set, fills in the form before post sends it.
	fill []chromedp.Action[chromedp.Void]
	// keyboard checks the error summary with the keyboard.
	keyboard bool
	// extra checks more on the page.
	extra func(s *sweep, where string)
	// reach, when set, leads to the page instead of path (a later step of
	// a multi-step form) and returns its status.
	reach func(s *sweep, lang, where string) int64
}

type sweep struct {
	t        *testing.T
	b        *browser
	gw       string
	langs    []string
	problems []string
	pages    int
}

func (s *sweep) problem(format string, args ...any) {
	s.problems = append(s.problems, fmt.Sprintf(format, args...))
}

func withLang(path, lang string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "lang=" + lang
}

// check opens p in every language and runs axe-core, the reflow check and
// the keyboard checks asked for.
func (s *sweep) check(role string, pages []page) {
	s.t.Helper()
	for _, lang := range s.langs {
		for _, p := range pages {
			where := fmt.Sprintf("%s %s [%s]", role, p.name, lang)
			var code int64
			if p.reach != nil {
				code = p.reach(s, lang, where)
			} else if p.post != "" {
				s.b.navigate(where+": open the form", chromedp.Navigate(s.gw+withLang(p.path, lang)))
				if len(p.fill) > 0 {
					s.b.do(where+": fill in the form", p.fill...)
				}
				code = s.b.navigate(where+": send the form", chromedp.Click(chromedp.CSS(p.post)))
			} else {
				code = s.b.navigate(where, chromedp.Navigate(s.gw+withLang(p.path, lang)))
			}
			s.pages++
			if code != p.status {
				s.problem("%s: status %d, want %d (at %s)", where, code, p.status, s.b.location())
			}
			if got := eval[string](s.b, "html lang", `document.documentElement.lang`); got != lang {
				s.problem("%s: <html lang=%q>, want %q", where, got, lang)
			}
			for _, v := range s.b.axe() {
				s.problem("%s: axe %s (%s): %s\n\t%s", where, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n\t"))
			}
			if w, wide := s.b.reflow(); w > 320 {
				s.problem("%s: scrolls sideways at 320 px (scrollWidth %d): %s", where, w, wide)
			}
			if p.keyboard {
				s.errorSummaryKeyboard(where)
			}
			if p.extra != nil {
				p.extra(s, where)
			}
			// Right to left: the pages of a language written that way, and
			// every page of the first language turned around, must mirror.
			if lang == s.langs[0] || eval[string](s.b, "dir", `document.documentElement.dir`) == "rtl" {
				s.rtlLayout(where)
			}
		}
	}
}

// rtlLayout turns the page right to left (if it is not already) and checks
// that the layout mirrors: the header's first item (the site's name) is on
// the right, a field in error is marked on its right edge, the focused skip
// link is inside the viewport, and nothing scrolls sideways at 320 px.
func (s *sweep) rtlLayout(where string) {
	b := s.b
	where += " right to left"
	was := eval[string](b, "dir", `document.documentElement.dir`)
	b.do("turn right to left", chromedp.Evaluate[chromedp.Void](`document.documentElement.dir = "rtl"`))
	defer b.do("turn back", chromedp.Evaluate[chromedp.Void](`document.documentElement.dir = `+jsString(was)))
	res := eval[string](b, "mirrored layout", `(() => {
		const row = document.querySelector(".header-row").getBoundingClientRect();
		const brand = document.querySelector(".brand").getBoundingClientRect();
		if (brand.left < row.left + row.width / 2) return "the site's name stays on the left";
		for (const f of document.querySelectorAll(".field-error")) {
			const st = getComputedStyle(f);
			if (parseFloat(st.borderRightWidth) === 0 || parseFloat(st.borderLeftWidth) !== 0) return "a field in error is marked on the left";
		}
		return "";
	})()`)
	if res != "" {
		s.problem("%s: does not mirror: %s", where, res)
	}
	if w, wide := b.reflow(); w > 320 {
		s.problem("%s: scrolls sideways at 320 px (scrollWidth %d): %s", where, w, wide)
	}
	b.do("focus the skip link", chromedp.Evaluate[chromedp.Void](`document.querySelector("a.skip").focus()`))
	if !eval[bool](b, "skip link in view", `(() => { const r = document.activeElement.getBoundingClientRect();
		return r.width > 10 && r.left >= 0 && r.right <= innerWidth })()`) {
		s.problem("%s: the focused skip link is outside the viewport", where)
	}
	b.do("blur the skip link", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`))
}

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

// errorSummaryKeyboard: the summary has focus when the page opens, Tab
// reaches its first link, and Enter moves focus to the field in error.
func (s *sweep) errorSummaryKeyboard(where string) {
	b := s.b
	if got := eval[string](b, "focused element", `(document.activeElement || {}).id || ""`); got != "error-summary" {
		s.problem("%s: focus is on %q after the post, want the error summary", where, got)
		b.do("focus the error summary", chromedp.Focus(chromedp.CSS("#error-summary")))
	}
	first := eval[string](b, "error summary's first link", `document.querySelector("#error-summary a").getAttribute("href")`)
	b.do("tab to the first error", chromedp.KeyEvent(kb.Tab))
	if got := eval[string](b, "focused link", `document.activeElement.getAttribute("href") || ""`); got != first {
		s.problem("%s: Tab from the error summary focuses %q, want its first link %q", where, got, first)
		return
	}
	before := b.location()
	b.do("follow the link with Enter", pressEnter())
	if after := b.location(); after != before {
		s.problem("%s: Enter on the error summary's link went from %s to %s", where, before, after)
	}
	got := eval[string](b, "focused field", `(document.activeElement || {}).id || ""`)
	if "#"+got != first {
		s.problem("%s: Enter on %s leaves focus on %q, want the field it names", where, first, got)
	}
	if !eval[bool](b, "focused is a form control", `["INPUT","SELECT","TEXTAREA"].includes((document.activeElement || {}).tagName)`) {
		s.problem("%s: the error summary's link %s focuses a %s, not an input", where, first, eval[string](b, "tag", `(document.activeElement || {tagName: "nothing"}).tagName`))
	}
}

// pressEnter presses Enter as a keyboard does: one keydown that carries the
// text, so the browser drops the keypress when the keydown was handled (a
// link followed), and a keyup. chromedp.KeyEvent sends the keypress as an
// event of its own, which would reach the field a link just focused and
// send its form.
func pressEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter",
			WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Text: "\r", UnmodifiedText: "\r"}
		if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, down); err != nil {
			return err
		}
		up := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
		_, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, up)
		return err
	})
}

// skipLinkKeyboard: the first Tab on a page reaches the skip link, which
// is then visible, and Enter moves focus to the main content.
func (s *sweep) skipLinkKeyboard(lang string) {
	b := s.b
	where := "skip link [" + lang + "]"
	b.navigate(where, chromedp.Navigate(s.gw+withLang("/", lang)))
	b.do("first Tab", chromedp.KeyEvent(kb.Tab))
	if !eval[bool](b, "skip link focused", `document.activeElement.classList.contains("skip")`) {
		s.problem("%s: the first Tab focuses %s, not the skip link", where, eval[string](b, "focused", `document.activeElement.outerHTML.slice(0, 80)`))
		return
	}
	if !eval[bool](b, "skip link visible", `(() => { const r = document.activeElement.getBoundingClientRect();
		return r.width > 10 && r.height > 10 && r.left >= 0 && r.right <= innerWidth && r.top >= 0 })()`) {
		s.problem("%s: the focused skip link is not visible in the viewport", where)
	}
	b.do("follow the skip link", pressEnter())
	if got := eval[string](b, "focused after skip", `(document.activeElement || {}).id || ""`); got != "main" {
		s.problem("%s: after Enter focus is on %q, want main", where, got)
	}
	if w, wide := b.reflow(); w > 320 {
		s.problem("%s: scrolls sideways at 320 px (scrollWidth %d): %s", where, w, wide)
	}
}

// signInBack: a 401 page links to a sign-in that comes back to path.
func signInBack(path string) func(s *sweep, where string) {
	return func(s *sweep, where string) {
		href := eval[string](s.b, "sign-in link", `(document.querySelector("main a#error-sign-in") || {}).href || ""`)
		u, err := url.Parse(href)
		var back *url.URL
		if err == nil {
			back, err = url.Parse(u.Query().Get("return_to"))
		}
		if href == "" || err != nil || u.Path != "/auth/login" || back.Path != path {
			s.problem("%s: no sign-in link back to %s (found %q)", where, path, href)
		}
	}
}

// chartSeriesNotByColourOnly: in a chart with two series the second is
// hatched with a pattern that exists, in the bars and in the legend
// (WCAG 1.4.1: colour is not the only way to tell them apart).
func chartSeriesNotByColourOnly(s *sweep, where string) {
	res := eval[string](s.b, "chart series", `(() => {
		const bars = [...document.querySelectorAll("svg rect.bar-b")];
		if (bars.length === 0) return "no bars of a second series";
		for (const r of bars) {
			const m = /^url\(#(.+)\)$/.exec(r.getAttribute("fill") || "");
			if (!m || !document.getElementById(m[1]) || document.getElementById(m[1]).tagName !== "pattern") return "a bar is not hatched: fill=" + r.getAttribute("fill");
		}
		for (const sw of document.querySelectorAll(".legend .swatch.bar-b")) {
			if (!getComputedStyle(sw).backgroundImage.includes("gradient")) return "the legend's swatch is plain";
		}
		return "";
	})()`)
	if res != "" {
		s.problem("%s: chart series differ by colour only: %s", where, res)
	}
}

// signIn signs in as a development persona (login_hint approves at once).
func (s *sweep) signIn(persona, returnTo string) {
	s.t.Helper()
	s.b.clearCookies()
	q := url.Values{"login_hint": {persona}, "return_to": {returnTo}}
	if code := s.b.navigate("sign in as "+persona, chromedp.Navigate(s.gw+"/auth/login?"+q.Encode())); code != 200 {
		s.b.fatal("sign in as "+persona, fmt.Errorf("status %d", code))
	}
	if u, _ := url.Parse(s.b.location()); u == nil || u.Path != returnTo {
		s.b.fatal("sign in as "+persona, fmt.Errorf("landed at %s, want %s", s.b.location(), returnTo))
	}
}

var statusID = regexp.MustCompile(`/s/([a-z2-7]{32})`)

// fileStreetFault sends the street-fault form and returns the submission id.
func (s *sweep) fileStreetFault() string {
	s.t.Helper()
	b := s.b
	b.navigate("open the street-fault form", chromedp.Navigate(s.gw+"/services/street-fault?lang=sv"))
	b.do("fill in the street-fault form",
		chromedp.SetValue(chromedp.CSS("#f-kind"), "pothole"),
		chromedp.SendKeys(chromedp.CSS("#f-description"), "Ett djupt hål i gatan framför biblioteket"),
		chromedp.SendKeys(chromedp.CSS("#f-location"), "Stora torget 1"),
	)
	if code := b.navigate("send the street-fault form", chromedp.Click(chromedp.CSS(`form[method="post"] button[type="submit"]`))); code != 200 {
		b.fatal("send the street-fault form", fmt.Errorf("status %d", code))
	}
	m := statusID.FindStringSubmatch(b.location())
	if m == nil {
		b.fatal("receipt", fmt.Errorf("no status id in %s", b.location()))
	}
	return m[1]
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// askForMore sets needs_info with a question, signed as the case system
// does.
func askForMore(t *testing.T, gw, id string) {
	t.Helper()
	body := `{"status":"needs_info","message":"Var exakt ligger hålet?"}`
	ts := fmt.Sprint(time.Now().Unix())
	req, _ := http.NewRequest(http.MethodPost, gw+gateway.StatusUpdatePath(id), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(httpjson.HeaderTimestamp, ts)
	req.Header.Set(httpjson.HeaderSignature, httpjson.Sign([]byte(secret), ts, gateway.StatusUpdateSigned(http.MethodPost, id, []byte(body))))
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("needs_info: status %d", res.StatusCode)
	}
}

func waitStatus(t *testing.T, gw, id, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s struct{ Status string }
		res, err := httpClient.Get(gw + "/api/v1/submissions/" + id)
		if err == nil {
			_ = json.NewDecoder(res.Body).Decode(&s)
			res.Body.Close()
		}
		if s.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("submission %s: status %q after 30s, want %q", id, s.Status, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAccessibilitySweep(t *testing.T) {
	chrome := chromiumPath()
	if chrome == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium found; CI must have one")
		}
		t.Skip("no Chromium found (looked for /usr/bin/chromium, chromium, chromium-browser, google-chrome)")
	}
	gwBin, csBin := binaries(t)
	rs := redistest.Start(t)
	cs := start(t, csBin, map[string]string{"CASESIM_ADDR": "127.0.0.1:0", "CASESIM_SECRET": secret})
	gwp := start(t, gwBin, map[string]string{
		"GATEWAY_ADDR": "127.0.0.1:0", "REDIS_URL": rs.URL(), "CASESIM_URL": cs.URL, "CASESIM_SECRET": secret,
		"GATEWAY_RETRY_BASE": "50ms", "GATEWAY_RETRY_MAX": "100ms", "GATEWAY_RETRY_ATTEMPTS": "2",
		"GATEWAY_BREAKER_FAILURES": "0", "GATEWAY_RATELIMIT": "off", "GATEWAY_DRAFTS_PER_BROWSER": "50", "GATEWAY_LOG_LEVEL": "warn",
	})
	gw := gwp.URL
	b := newBrowser(t, chrome)
	s := &sweep{t: t, b: b, gw: gw}
	defer func() {
		if t.Failed() {
			t.Logf("gateway output:\n%s", gwp.Out)
		}
	}()

	// The languages are the ones the gateway offers (the page's own and its
	// rel=alternate links), so a new locale file is swept without touching
	// this test.
	b.navigate("open the catalog", chromedp.Navigate(gw+"/"))
	langs := eval[[]string](b, "languages offered", `[document.documentElement.lang, ...[...document.querySelectorAll('link[rel="alternate"][hreflang]')].map(e => e.hreflang)]`)
	if len(langs) < 2 {
		t.Fatalf("the language switch offers %v, want at least Swedish and English", langs)
	}
	s.langs = langs
	t.Logf("languages: %v", langs)

	var services []string
	{
		var body struct {
			Services []struct {
				ID        string
				SubmitURL string `json:"submit_url"`
			}
		}
		res, err := httpClient.Get(gw + "/api/v1/services")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if err != nil || len(body.Services) == 0 {
			t.Fatalf("services: %v %+v", err, body)
		}
		for _, sv := range body.Services {
			if sv.SubmitURL != "" { // an existing e-service behind the front door has no form of ours
				services = append(services, sv.ID)
			}
		}
	}

	// A delivered submission for the status pages; then the case system
	// goes away, so the next one becomes a dead letter for the admin pages.
	delivered := s.fileStreetFault()
	waitStatus(t, gw, delivered, "delivered")
	// One the department asked about: the status page shows the answer
	// form with its file input.
	asked := s.fileStreetFault()
	waitStatus(t, gw, asked, "delivered")
	askForMore(t, gw, asked)
	cs.Kill()
	dead := s.fileStreetFault()

	send := `form[method="post"] button[type="submit"]`

	// Anonymous visitors.
	anon := []page{
		{name: "catalog", path: "/", status: 200},
		{name: "search", path: "/?q=felanmalan", status: 200},
		{name: "search without results", path: "/?q=qqqqzzzz", status: 200},
		{name: "receipt", path: "/s/" + delivered + "?receipt=1", status: 200},
		{name: "status", path: "/s/" + delivered, status: 200},
		{name: "status not delivered", path: "/s/" + dead, status: 200},
		{name: "status with a completion request", path: "/s/" + asked, status: 200},
		{name: "street-fault with errors", path: "/services/street-fault", post: send, status: 422, keyboard: true},
		{name: "open data", path: "/open-data/", status: 200},
		{name: "accessibility statement", path: "/tillganglighet", status: 200},
		{name: "receipt check", path: "/receipts/verify", status: 200},
		{name: "sign-in picker", path: "/my", status: 200},
		{name: "dashboard 401", path: "/dashboard", status: 401, extra: signInBack("/dashboard")},
		{name: "audit 401", path: "/admin/audit", status: 401, extra: signInBack("/admin/audit")},
		{name: "404", path: "/no-such-page", status: 404},
		{name: "unknown service 404", path: "/services/no-such-service", status: 404},
		{name: "resume code", path: "/fortsatt", status: 200},
		{name: "resume code with errors", path: "/fortsatt", post: "#resume-submit", status: 422, keyboard: true},
		{name: "draft saved with a code", path: "/services/street-fault", post: "#save-draft", status: 200},
	}
	for _, id := range services {
		anon = append(anon, page{name: "form " + id, path: "/services/" + id, status: 200})
	}
	b.clearCookies()
	s.check("anonymous", anon)
	for _, lang := range langs {
		s.skipLinkKeyboard(lang)
	}

	// A resident signed in at the highest level: every form with errors.
	s.signIn("cecilia", "/my")
	resident := []page{
		{name: "my pages", path: "/my", status: 200},
		{name: "draft saved, my pages with drafts", path: "/services/street-fault", post: "#save-draft", status: 200},
		{name: "resume code signed in", path: "/fortsatt", status: 200},
		{name: "dashboard 403", path: "/dashboard", status: 403},
		{name: "desk 403", path: "/desk", status: 403},
	}
	for _, id := range services {
		resident = append(resident, page{name: "form " + id + " with errors", path: "/services/" + id, post: send, status: 422, keyboard: true})
	}
	// The building permit's drawings: the file input, and after a post
	// with a drawing but no description, the drawing listed as attached.
	drawing := filepath.Join(t.TempDir(), "ritning.pdf")
	if err := os.WriteFile(drawing, []byte("%PDF-1.7\n% a drawing\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	toDetails := func(s *sweep, lang, where string) int64 {
		next := chromedp.Click(chromedp.CSS(`button[name="_nav"][value="next"]`))
		s.b.navigate(where+": open the form", chromedp.Navigate(s.gw+withLang("/services/building-permit", lang)))
		s.b.do(where+": the project", chromedp.SetValue(chromedp.CSS("#f-project"), "new-house"),
			chromedp.SendKeys(chromedp.CSS("#f-property"), "Kvarnen 1:2"))
		s.b.navigate(where+": continue", next)
		s.b.do(where+": the applicant", chromedp.SetValue(chromedp.CSS("#f-applying_as"), "owner"))
		return s.b.navigate(where+": continue", next)
	}
	resident = append(resident,
		page{name: "building permit, the drawings step", status: 200, reach: toDetails},
		page{name: "building permit, a drawing attached and errors", status: 422, keyboard: true, reach: func(s *sweep, lang, where string) int64 {
			toDetails(s, lang, where)
			s.b.do(where+": attach a drawing", chromedp.SendKeys(chromedp.CSS("#f-floor_area"), "120"),
				chromedp.SetUploadFiles(chromedp.CSS("#f-drawings"), []string{drawing}))
			return s.b.navigate(where+": continue", chromedp.Click(chromedp.CSS(`button[name="_nav"][value="next"]`)))
		}, extra: func(s *sweep, where string) {
			if n := eval[int](s.b, "drawings listed", `document.querySelectorAll('.attached-files input[type=checkbox]:checked').length`); n != 1 {
				s.problem("%s: %d attached drawings listed, want 1", where, n)
			}
		}},
	)
	s.check("resident", resident)

	// Service-point staff: the desk, a form filed for a visitor, its receipt.
	s.signIn("sara", "/desk")
	b.navigate("open the desk form", chromedp.Navigate(gw+"/desk/services/street-fault?lang=sv"))
	b.do("fill in the desk form",
		chromedp.SendKeys(chromedp.CSS("#visitor-pnr"), "19900101-3011"),
		chromedp.Click(chromedp.CSS("#visitor-check-0")),
		chromedp.Click(chromedp.CSS("#visitor-consent")),
		chromedp.SetValue(chromedp.CSS("#f-kind"), "pothole"),
		chromedp.SendKeys(chromedp.CSS("#f-description"), "Ett djupt hål i cykelbanan vid bron"),
		chromedp.SendKeys(chromedp.CSS("#f-location"), "Kungsgatan 12"),
	)
	if code := b.navigate("file for the visitor", chromedp.Click(chromedp.CSS("#desk-submit"))); code != 200 {
		b.fatal("file for the visitor", fmt.Errorf("status %d", code))
	}
	receipt, _ := url.Parse(b.location())
	staff := []page{
		{name: "desk", path: "/desk", status: 200},
		{name: "desk search", path: "/desk?q=bygg", status: 200},
		{name: "desk form", path: "/desk/services/street-fault", status: 200},
		{name: "desk form with errors", path: "/desk/services/street-fault", post: "#desk-submit", status: 422, keyboard: true},
		{name: "desk receipt", path: receipt.Path, status: 200},
		{name: "desk handover slip", path: "/desk/services/street-fault", status: 200, post: "#desk-handover", fill: []chromedp.Action[chromedp.Void]{
			chromedp.SendKeys(chromedp.CSS("#visitor-pnr"), "19900101-3011"),
			chromedp.SendKeys(chromedp.CSS("#f-description"), "Gatlampan vid porten är trasig"),
		}},
		{name: "dashboard", path: "/dashboard", status: 200, extra: chartSeriesNotByColourOnly},
		{name: "audit 403", path: "/admin/audit", status: 403},
	}
	s.check("staff", staff)

	// Administrators: dead letters, one dead letter, the audit, the dashboard.
	s.signIn("admin", "/admin/dead-letters")
	ref := ""
	for deadline := time.Now().Add(30 * time.Second); ref == ""; {
		b.navigate("list the dead letters", chromedp.Navigate(gw+"/admin/dead-letters"))
		ref = eval[string](b, "a dead letter's link", `(document.querySelector("tr.dead-letter a") || {}).pathname || ""`)
		if ref == "" && time.Now().After(deadline) {
			b.fatal("dead letters", errors.New("no dead letter listed after 30s"))
		}
	}
	admin := []page{
		{name: "dead letters", path: "/admin/dead-letters", status: 200},
		{name: "dead letter", path: ref, status: 200},
		{name: "audit", path: "/admin/audit", status: 200},
		{name: "dashboard", path: "/dashboard", status: 200},
		{name: "notices", path: "/admin/notices", status: 200},
		{name: "message dead letters", path: "/admin/message-dead-letters", status: 200},
	}
	s.check("admin", admin)

	t.Logf("swept %d page views in %d languages", s.pages, len(langs))
	for _, p := range s.problems {
		t.Error(p)
	}
}
