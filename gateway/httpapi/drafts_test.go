package httpapi_test

import (
	"context"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/intake"
)

// Save and resume, and the desk -> home handover, through the real HTTP
// layer on a real listener, a real redis-server and real sign-ins with the
// development identity provider (auth_test.go).

var (
	savedHref   = regexp.MustCompile(`href="/services/([a-z-]+)\?saved=([A-Za-z0-9_-]{24})"`)
	codeOnPage  = regexp.MustCompile(`id="(?:resume|handover)-code" class="code">([A-Z0-9-]{19})<`)
	formAction  = regexp.MustCompile(`<form method="post" action="(/services/[^"]+)"`)
	draftLocRe  = regexp.MustCompile(`^/services/([a-z-]+)\?(saved|draft)=([A-Za-z0-9_-]+)$`)
	receiptLoc  = regexp.MustCompile(`^/s/([a-z2-7]{32})\?receipt=1$`)
	buildingVal = url.Values{"project": {"extension"}, "property": {"Svartbäcken 1:23"}, "address": {"Storgatan 1, Uppsala"}}
)

// draftKeys are the stored drafts' keys in the test prefix.
func (e *authEnv) draftKeys(t *testing.T) []string {
	t.Helper()
	keys, err := e.rdb.Keys(context.Background(), "test:{d}:draft:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// storedDrafts is every stored draft's JSON.
func (e *authEnv) storedDrafts(t *testing.T) string {
	t.Helper()
	var all strings.Builder
	for _, k := range e.draftKeys(t) {
		all.WriteString(e.rdb.HGet(context.Background(), k, "d").Val())
	}
	return all.String()
}

// with returns v with the form's tokens and more values.
func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// saveForm opens path's form and presses Save draft with v.
func (b *browser) saveForm(path string, v url.Values, kv ...string) answer {
	b.t.Helper()
	csrf, form := b.formTokens(path)
	return b.post(path, with(v, append([]string{"_csrf", csrf, "_form", form, "_nav", "save"}, kv...)...))
}

// resume types code at /fortsatt.
func (b *browser) resume(code string) answer {
	b.t.Helper()
	a := b.get("/fortsatt")
	if a.status != 200 {
		b.t.Fatalf("GET /fortsatt: %d", a.status)
	}
	return b.post("/fortsatt", url.Values{"_csrf": {hidden(b.t, a.body, "_csrf")}, "code": {code}})
}

// A signed-in resident saves a step of a multi-step form; My pages lists
// the draft (to them only); another browser opens it after the same person
// signs in; sending deletes it. Unknown fields and what the sign-in gives
// are not stored.
func TestDraftSavedResumedInAnotherBrowserAndDeletedBySending(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	b := e.browser(t)
	b.signIn("bertil", "/services/building-permit")
	a := b.saveForm("/services/building-permit", buildingVal, "_step", "0", "evil_field", "x-not-a-field",
		"applicant_personnummer", "19900101-3011", "__proto__", "y")
	if a.status != 303 || a.header.Get("Location") != "/my?draft=saved#drafts" {
		t.Fatalf("save: %d %q %.500s", a.status, a.header.Get("Location"), a.body)
	}
	stored := e.storedDrafts(t)
	if !strings.Contains(stored, "Svartbäcken 1:23") {
		t.Fatalf("nothing stored: %q", stored)
	}
	values := stored[strings.Index(stored, `"values"`):strings.Index(stored, `"owner"`)]
	for _, not := range []string{"evil_field", "x-not-a-field", "__proto__", "applicant_personnummer", "199001013011", "19900101-3011", "_csrf", "_nav"} {
		if strings.Contains(values, not) {
			t.Errorf("the draft holds %q: %s", not, stored)
		}
	}
	my := b.get("/my?draft=saved")
	m := savedHref.FindStringSubmatch(my.body)
	if my.status != 200 || m == nil || m[1] != "building-permit" || !strings.Contains(my.body, "Mina utkast") || !strings.Contains(my.body, "Utkastet är sparat") {
		t.Fatalf("My pages: %d %.3000s", my.status, my.body)
	}
	if strings.Contains(my.body, "Svartbäcken") {
		t.Error("My pages shows the draft's contents")
	}
	id := m[2]
	href := "/services/building-permit?saved=" + id

	// Not signed in, or another person: the draft does not open, is not
	// listed, and cannot be deleted.
	if r := e.browser(t).get(href); r.status != 200 || strings.Contains(r.body, "Svartbäcken") {
		t.Fatalf("anonymous opens the draft: %d", r.status)
	}
	dragan := e.browser(t)
	dragan.signIn("dragan", "/my")
	if r := dragan.get(href); strings.Contains(r.body, "Svartbäcken") {
		t.Fatal("another person opens the draft")
	}
	if r := dragan.get("/my"); strings.Contains(r.body, id) {
		t.Fatal("another person's My pages lists the draft")
	}
	csrf, _ := dragan.formTokens("/services/street-fault")
	if r := dragan.post("/my/drafts/"+id+"/delete", url.Values{"_csrf": {csrf}}); r.status != 404 {
		t.Fatalf("another person deletes the draft: %d", r.status)
	}

	// Bertil in a second browser (another cookie jar) after signing in.
	b2 := e.browser(t)
	b2.signIn("bertil", "/my")
	my2 := b2.get("/my")
	if !strings.Contains(my2.body, href) {
		t.Fatalf("the second browser's My pages lacks the draft")
	}
	page := b2.get(href)
	if page.status != 200 || !strings.Contains(page.body, `value="Svartbäcken 1:23"`) || !strings.Contains(page.body, `action="/services/building-permit?saved=`+id+`"`) {
		t.Fatalf("resumed form: %d %.3000s", page.status, page.body)
	}
	if !strings.Contains(page.body, `name="_nav" value="save"`) {
		t.Error("the resumed step has no Save draft button")
	}
	// Saving again updates the same draft (still one).
	v := with(buildingVal, "_csrf", hidden(t, page.body, "_csrf"), "_form", hidden(t, page.body, "_form"), "_nav", "save", "_step", "0", "property", "Svartbäcken 1:24")
	if r := b2.post(html.UnescapeString(formAction.FindStringSubmatch(page.body)[1]), v); r.status != 303 {
		t.Fatalf("save again: %d", r.status)
	}
	if n := len(e.draftKeys(t)); n != 1 || !strings.Contains(e.storedDrafts(t), "Svartbäcken 1:24") {
		t.Fatalf("after saving again: %d drafts", n)
	}
	// Send the whole form from the draft: the receipt, and the draft is gone.
	send := with(v, "_nav", "send", "applying_as", "owner", "floor_area", "25", "height", "3",
		"description", "En tillbyggnad på 25 kvadratmeter mot trädgården", "phone", "018-727 00 00", "correct", "true")
	send.Del("_step")
	r := b2.post(href, send)
	if r.status != 303 || !receiptLoc.MatchString(r.header.Get("Location")) {
		t.Fatalf("send from the draft: %d %q %.2000s", r.status, r.header.Get("Location"), r.body)
	}
	if n := len(e.draftKeys(t)); n != 0 {
		t.Fatalf("%d drafts left after sending", n)
	}
	if my := b.get("/my"); strings.Contains(my.body, id) || !strings.Contains(my.body, `id="my-drafts-empty"`) {
		t.Fatal("My pages still lists the sent draft")
	}
}

// An anonymous resident gets a code, shown once and stored only as a
// digest; it opens the draft once, in any browser.
func TestDraftAnonymousResumeCode(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	a := e.browser(t)
	v := url.Values{"kind": {"pothole"}, "description": {"Ett djupt hål i körbanan vid busshållplatsen"}, "location": {"Storgatan 1"}, "secret_extra": {"nope"}}
	r := a.saveForm("/services/street-fault", v)
	m := codeOnPage.FindStringSubmatch(r.body)
	if r.status != 200 || m == nil || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("anonymous save: %d %.2000s", r.status, r.body)
	}
	code := m[1]
	if _, ok := gateway.NormalizeDraftCode(code); !ok {
		t.Fatalf("code %q", code)
	}
	// Nowhere in Redis, keys or values.
	keys, _ := e.rdb.Keys(context.Background(), "*").Result()
	for _, k := range keys {
		dump := k + e.rdb.Dump(context.Background(), k).Val()
		if strings.Contains(dump, code) || strings.Contains(dump, strings.ReplaceAll(code, "-", "")) {
			t.Fatalf("the code is stored in %s", k)
		}
	}
	// Sealed with a key made from the code: nothing readable in Redis.
	if stored := e.storedDrafts(t); stored == "" || strings.Contains(stored, "busshållplatsen") || strings.Contains(stored, "street-fault") {
		t.Fatalf("the code draft is readable in Redis: %q", stored)
	}
	// Typed in another browser, in small letters with spaces.
	c := e.browser(t)
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	r = c.resume(typed)
	loc := r.header.Get("Location")
	lm := draftLocRe.FindStringSubmatch(loc)
	if r.status != 303 || lm == nil || lm[1] != "street-fault" || lm[2] != "draft" {
		t.Fatalf("resume: %d %q %.1000s", r.status, loc, r.body)
	}
	page := c.get(loc)
	if !strings.Contains(page.body, "Ett djupt hål i körbanan vid busshållplatsen") || strings.Contains(page.body, "secret_extra") || strings.Contains(page.body, "nope") {
		t.Fatalf("resumed form lacks the values, or has the unknown field: %.2000s", page.body)
	}
	// The code is used up: not in the first browser, not in the second.
	for _, br := range []*browser{a, c} {
		if r := br.resume(code); r.status != 422 || !strings.Contains(r.body, "Koden stämmer inte") {
			t.Fatalf("a used code: %d", r.status)
		}
	}
	// Sending the resumed form gives a receipt.
	send := with(v, "_csrf", hidden(t, page.body, "_csrf"), "_form", hidden(t, page.body, "_form"))
	if r := c.post(html.UnescapeString(formAction.FindStringSubmatch(page.body)[1]), send); r.status != 303 || !receiptLoc.MatchString(r.header.Get("Location")) {
		t.Fatalf("send: %d %q", r.status, r.header.Get("Location"))
	}
}

// Wrong codes count against the limit per address, browser and person;
// once over it even the right code waits.
func TestDraftResumeCodeRateLimit(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	r := e.browser(t).saveForm("/services/street-fault", url.Values{"kind": {"litter"}, "description": {"Skräp överallt i parken"}})
	code := codeOnPage.FindStringSubmatch(r.body)[1]
	g := e.browser(t)
	for i := 0; i < httpapi_DraftResumeLimit; i++ {
		if r := g.resume(gateway.NewDraftCode()); r.status != 422 {
			t.Fatalf("wrong code %d: %d", i, r.status)
		}
	}
	r = g.resume(gateway.NewDraftCode())
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "för många koder") {
		t.Fatalf("over the limit: %d %q", r.status, r.header.Get("Retry-After"))
	}
	if r := g.resume(code); r.status != 429 {
		t.Fatalf("the right code over the limit: %d", r.status)
	}
	// Another browser from the same address is limited too (per address).
	if r := e.browser(t).resume(code); r.status != 429 {
		t.Fatalf("another browser, same address: %d", r.status)
	}
	// The draft was not used up by the refused tries.
	if len(e.draftKeys(t)) != 1 {
		t.Fatal("the draft is gone")
	}
}

// httpapi_DraftResumeLimit is httpapi.ConfigDefault.DraftResumeLimit.
const httpapi_DraftResumeLimit = 10

// Staff hand a started form over; the slip's code opens it only for the
// person the desk recorded, signed in, once; what they send is their own
// digital submission.
func TestDraftDeskHandoverToHome(t *testing.T) {
	e := newAuthEnv(t, authOpts{desk: true})
	staff := e.browser(t)
	staff.signIn("sara", "/desk")
	csrf, form := staff.formTokens("/desk/services/street-fault")
	v := url.Values{"_csrf": {csrf}, "_form": {form}, "_visitor": {"19900101-3011"}, "_visitor_lang": {"en"}, "_handover": {"1"},
		"kind": {"streetlight"}, "description": {"Gatlampan utanför porten är trasig sedan en vecka"}, "location": {"Storgatan 1"}, "unknown": {"dropped"}}
	slip := staff.post("/desk/services/street-fault", v)
	m := codeOnPage.FindStringSubmatch(slip.body)
	if slip.status != 200 || m == nil {
		t.Fatalf("handover: %d %.2000s", slip.status, slip.body)
	}
	code := m[1]
	if !strings.Contains(slip.body, "19900101-****") || strings.Contains(slip.body, "199001013011") || strings.Contains(slip.body, "19900101-3011") ||
		!strings.Contains(slip.body, "Finish your application at home") || !strings.Contains(slip.body, "/fortsatt") {
		t.Fatalf("slip: %.3000s", slip.body)
	}
	if stored := e.storedDrafts(t); stored == "" || strings.Contains(stored, "199001013011") || strings.Contains(stored, "Gatlampan") {
		t.Fatalf("the handover is readable in Redis: %q", stored)
	}
	audit, _ := e.rdb.XRange(context.Background(), "test:{q}:audit", "-", "+").Result()
	found := false
	for _, x := range audit {
		if s, _ := x.Values["e"].(string); strings.Contains(s, `"handed_over"`) && strings.Contains(s, "19900101-****") && !strings.Contains(s, "199001013011") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit entry of the handover: %v", audit)
	}
	// The service point counts the visit (shown the e-service).
	if desk := staff.get("/desk"); !strings.Contains(desk.body, "<tr><td>Visad hur e-tjänsten fungerar</td><td>1</td></tr>") {
		t.Error("the desk's contacts today lack the handover")
	}
	// A handover without a valid personnummer is refused.
	v2 := with(v, "_visitor", "19900101-3012")
	if r := staff.post("/desk/services/street-fault", v2); r.status != 422 || !strings.Contains(r.body, "inte ett giltigt personnummer") {
		t.Fatalf("handover with a bad number: %d", r.status)
	}

	// Not signed in: asked to sign in first; the code stays valid.
	anon := e.browser(t)
	if r := anon.resume(code); r.status != 401 || !strings.Contains(r.body, "Logga in med e-legitimation först") {
		t.Fatalf("anonymous with a handover code: %d", r.status)
	}
	// Another person: refused; the code stays valid.
	dragan := e.browser(t)
	dragan.signIn("dragan", "/fortsatt")
	if r := dragan.resume(code); r.status != 403 || !strings.Contains(r.body, "annan person") {
		t.Fatalf("another person: %d", r.status)
	}
	// The visitor, signed in at home: the draft opens and is theirs.
	home := e.browser(t)
	home.signIn("bertil", "/fortsatt")
	r := home.resume(code)
	lm := draftLocRe.FindStringSubmatch(r.header.Get("Location"))
	if r.status != 303 || lm == nil || lm[2] != "saved" {
		t.Fatalf("the visitor resumes: %d %q %.1000s", r.status, r.header.Get("Location"), r.body)
	}
	page := home.get(r.header.Get("Location"))
	if !strings.Contains(page.body, "Gatlampan utanför porten är trasig sedan en vecka") || strings.Contains(page.body, "dropped") {
		t.Fatalf("the handed-over form lacks the values, or has the unknown field")
	}
	// Now the visitor's own draft (not sealed: found by their sign-in).
	if stored := e.storedDrafts(t); !strings.Contains(stored, `"owner":"se-pnr:199001013011"`) || !strings.Contains(stored, `"point":"sp-centrum"`) || strings.Contains(stored, `"for"`) {
		t.Fatalf("the visitor's draft: %s", stored)
	}
	if my := home.get("/my"); !strings.Contains(my.body, "Påbörjat på Servicepunkt Centrum") || !strings.Contains(my.body, lm[3]) {
		t.Fatalf("My pages lacks the handed-over draft: %.3000s", my.body)
	}
	// Once: a second use fails, for the visitor and for anyone else.
	if r := home.resume(code); r.status != 422 {
		t.Fatalf("second use: %d", r.status)
	}
	if r := dragan.resume(code); r.status != 422 {
		t.Fatalf("second use by another person: %d", r.status)
	}
	// The visitor sends it: their own digital submission.
	send := with(v, "_csrf", hidden(t, page.body, "_csrf"), "_form", hidden(t, page.body, "_form"))
	for _, k := range []string{"_visitor", "_visitor_lang", "_handover", "unknown"} {
		send.Del(k)
	}
	r = home.post(html.UnescapeString(formAction.FindStringSubmatch(page.body)[1]), send)
	rm := receiptLoc.FindStringSubmatch(r.header.Get("Location"))
	if r.status != 303 || rm == nil {
		t.Fatalf("send: %d %q %.2000s", r.status, r.header.Get("Location"), r.body)
	}
	sub, err := e.store.Get(context.Background(), rm[1])
	if err != nil || sub.Channel != gateway.ChannelDigital || sub.Subject != "se-pnr:199001013011" || sub.Actor != "" || sub.ServicePoint != "" {
		t.Fatalf("submission: %v %+v", err, sub)
	}
	if n := len(e.draftKeys(t)); n != 0 {
		t.Fatalf("%d drafts left after sending", n)
	}
}

// The desk form drawn again with errors keeps the service's values across
// a language switch (the language links carry a draft for this browser).
func TestDeskFormKeepsValuesAcrossLanguageSwitch(t *testing.T) {
	e := newAuthEnv(t, authOpts{desk: true})
	staff := e.browser(t)
	staff.signIn("sara", "/desk")
	csrf, form := staff.formTokens("/desk/services/street-fault")
	v := url.Values{"_csrf": {csrf}, "_form": {form}, "_visitor": {"19900101-3011"}, "_identity_check": {"known"},
		"kind": {"pothole"}, "description": {"Ett djupt hål i körbanan"}, "location": {"Storgatan 7"}}
	r := staff.post("/desk/services/street-fault", v) // no consent: drawn again
	if r.status != 422 {
		t.Fatalf("desk form without consent: %d", r.status)
	}
	m := regexp.MustCompile(`href="(/desk/services/street-fault\?[^"]*lang=en[^"]*)"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no English link: %.3000s", r.body)
	}
	en := staff.get(html.UnescapeString(m[1]))
	if en.status != 200 || !strings.Contains(en.body, `lang="en"`) || !strings.Contains(en.body, "Ett djupt hål i körbanan") || !strings.Contains(en.body, `value="Storgatan 7"`) {
		t.Fatalf("after the language switch: %d %.3000s", en.status, en.body)
	}
	if strings.Contains(en.body, "19900101-3011") {
		t.Error("the visitor's number is kept across the switch")
	}
	// Another browser cannot open it.
	other := e.browser(t)
	other.signIn("sara", "/desk")
	if o := other.get(html.UnescapeString(m[1])); strings.Contains(o.body, "Ett djupt hål i körbanan") {
		t.Error("another browser sees the kept values")
	}
}

// Bounds: a draft too large, and the count per browser and per person, are
// refused with the form drawn again, values kept.
func TestDraftLimits(t *testing.T) {
	e := newAuthEnv(t, authOpts{drafts: intake.DraftConfig{MaxBytes: 1024, PerBrowser: 2, PerPerson: 2}})
	a := e.browser(t)
	big := url.Values{"kind": {"other"}, "description": {strings.Repeat("lång text ", 150)}}
	r := a.saveForm("/services/street-fault", big)
	if r.status != 413 || !strings.Contains(r.body, "för långt för att sparas som utkast") || !strings.Contains(r.body, "lång text lång text") {
		t.Fatalf("too large: %d %.1000s", r.status, r.body)
	}
	small := url.Values{"kind": {"other"}, "description": {"Något är trasigt här"}}
	for i := 0; i < 2; i++ {
		if r := a.saveForm("/services/street-fault", small); r.status != 200 {
			t.Fatalf("code draft %d: %d", i, r.status)
		}
	}
	if r := a.saveForm("/services/street-fault", small); r.status != 429 || !strings.Contains(r.body, "Något är trasigt här") {
		t.Fatalf("third code draft from one browser: %d", r.status)
	}
	if r := e.browser(t).saveForm("/services/street-fault", small); r.status != 200 {
		t.Fatalf("another browser: %d", r.status)
	}
	b := e.browser(t)
	b.signIn("bertil", "/my")
	for i := 0; i < 2; i++ {
		if r := b.saveForm("/services/street-fault", small); r.status != 303 {
			t.Fatalf("draft %d: %d", i, r.status)
		}
	}
	if r := b.saveForm("/services/street-fault", small); r.status != 429 || !strings.Contains(r.body, "så många sparade utkast") {
		t.Fatalf("third draft of one person: %d", r.status)
	}
	// Saving one of the two again is allowed.
	id := savedHref.FindStringSubmatch(b.get("/my").body)[2]
	if r := b.saveForm("/services/street-fault?saved="+id, small); r.status != 303 {
		t.Fatalf("saving an existing draft again: %d", r.status)
	}
}

// Drafts expire: gone from Redis, from My pages, and their codes fail.
func TestDraftExpiry(t *testing.T) {
	e := newAuthEnv(t, authOpts{drafts: intake.DraftConfig{TTL: 1500 * time.Millisecond, CodeTTL: 1500 * time.Millisecond}})
	b := e.browser(t)
	b.signIn("bertil", "/my")
	small := url.Values{"kind": {"other"}, "description": {"Något är trasigt här"}}
	if r := b.saveForm("/services/street-fault", small); r.status != 303 {
		t.Fatalf("save: %d", r.status)
	}
	id := savedHref.FindStringSubmatch(b.get("/my").body)[2]
	r := e.browser(t).saveForm("/services/street-fault", small)
	code := codeOnPage.FindStringSubmatch(r.body)[1]
	// Wait for Redis to expire them (no clock is asserted on).
	deadline := time.Now().Add(20 * time.Second)
	for len(e.draftKeys(t)) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the drafts never expired")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if my := b.get("/my"); strings.Contains(my.body, id) || !strings.Contains(my.body, `id="my-drafts-empty"`) {
		t.Fatal("My pages lists an expired draft")
	}
	if p := b.get("/services/street-fault?saved=" + id); strings.Contains(p.body, "Något är trasigt här") {
		t.Fatal("an expired draft opens")
	}
	if r := e.browser(t).resume(code); r.status != 422 {
		t.Fatalf("an expired code: %d", r.status)
	}
	if idx, _ := e.rdb.Keys(context.Background(), "test:{d}:drafts:*").Result(); len(idx) != 0 {
		for _, k := range idx {
			if n := e.rdb.ZCard(context.Background(), k).Val(); n != 0 {
				t.Errorf("index %s still counts %d expired drafts", k, n)
			}
		}
	}
}
