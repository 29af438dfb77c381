package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/httpapi"
)

// testClock is a settable clock for the server.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func noticeBody(severity, title string, start, end time.Time, services, departments []string) string {
	texts := map[string]map[string]string{}
	for _, l := range []string{"sv", "en", "fi", "ar", "so", "uk"} {
		texts[l] = map[string]string{"title": title + " " + l, "body": "Text om " + title + " på " + l}
	}
	b, _ := json.Marshal(map[string]any{"severity": severity, "start": start, "end": end, "texts": texts,
		"services": services, "departments": departments})
	return string(b)
}

// Notices: only administrators publish them (audited); they are shown on
// the pages they concern, in the page's language, crisis information as an
// alert; they leave the pages and the API when they end (a clock).
func TestNotices(t *testing.T) {
	deps, store, _ := baseDeps(t)
	clock := &testClock{t: time.Now().Truncate(time.Minute)}
	deps.Notices, deps.Config.Now = store, clock.Now
	deps.Authenticate = httpapi.AuthenticateForTests(testPrincipals)
	e := &env{app: build(t, deps), store: store}
	now := clock.Now()

	const api = "/api/v1/admin/notices"
	all := noticeBody("disruption", "Driftstörning", now.Add(-time.Minute), now.Add(time.Hour), nil, nil)
	for who, want := range map[string]int{"": 401, "resident": 403, "streets": 403} {
		if r := e.postJSON(t, api, all, "X-Test-Principal", who); r.status != want {
			t.Errorf("publish as %q: %d, want %d", who, r.status, want)
		}
	}
	if r := e.get(t, "/admin/notices", "X-Test-Principal", "resident"); r.status != 403 {
		t.Errorf("admin page as a resident: %d", r.status)
	}
	// Every language is needed.
	missing := strings.Replace(all, `"title":"Driftstörning ar"`, `"title":""`, 1)
	if r := e.postJSON(t, api, missing, "X-Test-Principal", "admin"); r.status != 422 || !strings.Contains(r.body, "title_ar") {
		t.Fatalf("a notice without Arabic: %d %s", r.status, r.body)
	}
	publish := func(body string) string {
		t.Helper()
		r := e.postJSON(t, api, body, "X-Test-Principal", "admin")
		if r.status != 201 {
			t.Fatalf("publish: %d %s", r.status, r.body)
		}
		var n struct{ ID string }
		json.Unmarshal([]byte(r.body), &n)
		return n.ID
	}
	idAll := publish(all)
	idCrisis := publish(noticeBody("crisis", "Vattenläcka", now.Add(-time.Minute), now.Add(3*time.Hour), []string{"street-fault"}, nil))
	idDept := publish(noticeBody("maintenance", "Underhåll", now.Add(-time.Minute), now.Add(3*time.Hour), nil, []string{"education"}))
	idLater := publish(noticeBody("maintenance", "Senare", now.Add(2*time.Hour), now.Add(3*time.Hour), nil, nil))

	page := func(path string) string {
		t.Helper()
		r := e.get(t, path)
		if r.status != 200 {
			t.Fatalf("GET %s: %d", path, r.status)
		}
		return r.body
	}
	shown := func(body, id string) bool { return strings.Contains(body, `id="notice-`+id+`"`) }

	// The catalog in Swedish: the notice for everything only.
	cat := page("/")
	if !shown(cat, idAll) || !strings.Contains(cat, "Driftstörning: Driftstörning sv") || shown(cat, idCrisis) || shown(cat, idDept) || shown(cat, idLater) {
		t.Fatalf("catalog notices wrong:\n%s", cat)
	}
	if !strings.Contains(cat, `<section class="site-notice notice-disruption" aria-labelledby="notice-`+idAll+`-h"`) {
		t.Error("a disruption is not a region with a heading")
	}
	// The street-fault form in English: also the crisis, as an alert.
	form := page("/services/street-fault?lang=en")
	if !shown(form, idAll) || !shown(form, idCrisis) || shown(form, idDept) {
		t.Fatalf("street-fault notices wrong:\n%s", form)
	}
	if !strings.Contains(form, `role="alert" id="notice-`+idCrisis+`"`) || !strings.Contains(form, "Crisis information: Vattenläcka en") {
		t.Errorf("the crisis notice is not an alert in English")
	}
	if strings.Contains(form, `role="alert" id="notice-`+idAll+`"`) {
		t.Error("a disruption is an alert")
	}
	// A service of the education department: the department's notice.
	if pre := page("/services/preschool-place?lang=sv"); !shown(pre, idDept) || shown(pre, idCrisis) {
		t.Errorf("preschool-place notices wrong")
	}
	// The status page of a street-fault submission shows the crisis too.
	r := e.postJSON(t, "/api/v1/services/street-fault/submissions", `{"kind":"pothole","description":"Ett djupt hål i vägen","location":"Storgatan 1"}`)
	var sub struct{ ID string }
	json.Unmarshal([]byte(r.body), &sub)
	if st := page("/s/" + sub.ID); !shown(st, idCrisis) {
		t.Errorf("status page lacks the service's crisis notice")
	}
	// The API.
	var out struct {
		Notices []struct{ ID, Title, Severity string }
	}
	if r := e.get(t, "/api/v1/notices?service=street-fault&lang=en"); json.Unmarshal([]byte(r.body), &out) != nil || len(out.Notices) != 2 ||
		out.Notices[0].ID != idCrisis || out.Notices[0].Title != "Vattenläcka en" {
		t.Fatalf("API notices: %s", r.body)
	}

	// Ninety minutes later: the first has ended, the later one not begun.
	clock.Add(90 * time.Minute)
	if cat := page("/"); shown(cat, idAll) || shown(cat, idLater) {
		t.Fatalf("an expired or future notice is shown")
	}
	// Two and a half hours: the later one is on.
	clock.Add(time.Hour)
	if cat := page("/?lang=uk"); !shown(cat, idLater) || !strings.Contains(cat, "Senare uk") {
		t.Fatalf("the later notice is not shown")
	}
	// Past every end: nothing, on the pages and in the API.
	clock.Add(time.Hour)
	if form := page("/services/street-fault"); strings.Contains(form, "site-notice") {
		t.Fatalf("expired notices shown")
	}
	if r := e.get(t, "/api/v1/notices?service=street-fault"); !strings.Contains(r.body, `"notices":[]`) {
		t.Fatalf("API after the end: %s", r.body)
	}

	// The admin page: publish with the form (CSRF), withdraw.
	ap := e.get(t, "/admin/notices", "X-Test-Principal", "admin")
	if ap.status != 200 {
		t.Fatalf("admin page: %d", ap.status)
	}
	cookie := ""
	for _, c := range ap.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "gw_csrf=") {
			cookie = strings.SplitN(c, ";", 2)[0]
		}
	}
	sthlm, _ := time.LoadLocation("Europe/Stockholm")
	v := url.Values{"_csrf": {hidden(t, ap.body, "_csrf")}, "severity": {"maintenance"},
		"start": {clock.Now().Add(-time.Minute).In(sthlm).Format("2006-01-02T15:04")},
		"end":   {clock.Now().Add(time.Hour).In(sthlm).Format("2006-01-02T15:04")}}
	for _, l := range []string{"sv", "en", "fi", "ar", "so", "uk"} {
		v.Set("title_"+l, "Formulär "+l)
		v.Set("body_"+l, "Från formuläret "+l)
	}
	if r := e.postForm(t, "/admin/notices", cookie, v, "X-Test-Principal", "admin"); r.status != 303 {
		t.Fatalf("publish by form: %d %s", r.status, r.body)
	}
	cat = page("/?lang=fi")
	if !strings.Contains(cat, "Formulär fi") {
		t.Fatalf("form notice not shown")
	}
	var list struct{ Notices []struct{ ID string } }
	json.Unmarshal([]byte(e.get(t, api, "X-Test-Principal", "admin").body), &list)
	if len(list.Notices) != 1 {
		t.Fatalf("admin list: %+v", list)
	}
	id := list.Notices[0].ID
	if r := e.postForm(t, "/admin/notices/"+id+"/withdraw", cookie, url.Values{"_csrf": {v.Get("_csrf")}}, "X-Test-Principal", "resident"); r.status != 403 {
		t.Fatalf("withdraw as resident: %d", r.status)
	}
	if r := e.postForm(t, "/admin/notices/"+id+"/withdraw", cookie, url.Values{"_csrf": {v.Get("_csrf")}}, "X-Test-Principal", "admin"); r.status != 303 {
		t.Fatalf("withdraw: %d", r.status)
	}
	if cat := page("/"); strings.Contains(cat, "Formulär") {
		t.Fatal("a withdrawn notice is shown")
	}
	req := httptest.NewRequest("DELETE", api+"/"+id, nil)
	req.Header.Set("X-Test-Principal", "admin")
	if r := e.do(t, req); r.status != 404 {
		t.Fatalf("withdraw twice: %d", r.status)
	}

	// Audited: five published, one withdrawn, by the administrator.
	entries, _, err := store.Audit(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, en := range entries {
		if en.Actor != "admin-1" {
			t.Errorf("audit entry by %q", en.Actor)
		}
		count[en.Action]++
	}
	if got := fmt.Sprint(count); got != "map[notice_published:5 notice_withdrawn:1]" {
		t.Fatalf("audit: %s", got)
	}
}
