package httpapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/kommun/servicegateway/gateway"
)

// TestPagedLists (issue 14, goal 4): My pages (JSON and HTML, without
// JavaScript) and the department list are paged with cursors, on a real
// listener and redis-server.
func TestPagedLists(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	ctx := context.Background()
	const n = 120
	mine := map[string]bool{}
	for i := range n {
		sub, _, err := e.store.Create(ctx, &gateway.Submission{Service: "street-fault", ServiceVersion: "1.0.0", Department: "streets-parks",
			Channel: gateway.ChannelDigital, Locale: "sv", Subject: "se-pnr:199001013011", Payload: map[string]any{"i": i}}, gateway.Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		mine[sub.ID] = true
	}
	b := e.browser(t)
	b.signIn("bertil", "/my")

	type listAnswer struct {
		Submissions []struct{ ID string } `json:"submissions"`
		Next        string                `json:"next_cursor"`
		Prev        string                `json:"prev_cursor"`
	}
	walk := func(get func(query string) answer, limit string) (ids []string, pages []listAnswer) {
		t.Helper()
		q := "?limit=" + limit
		for range 20 {
			a := get(q)
			var la listAnswer
			if err := json.Unmarshal([]byte(a.body), &la); a.status != 200 || err != nil {
				t.Fatalf("list %s: %d %s", q, a.status, a.body)
			}
			pages = append(pages, la)
			for _, s := range la.Submissions {
				ids = append(ids, s.ID)
			}
			if la.Next == "" {
				return ids, pages
			}
			q = "?limit=" + limit + "&cursor=" + url.QueryEscape(la.Next)
		}
		t.Fatal("no end of the list")
		return nil, nil
	}
	// My pages as JSON: 50, 50, 20, each submission once.
	ids, pages := walk(func(q string) answer { return b.get("/api/v1/me/submissions" + q) }, "50")
	seen := map[string]bool{}
	for _, id := range ids {
		if !mine[id] || seen[id] {
			t.Fatalf("listed %s (mine %v, twice %v)", id, mine[id], seen[id])
		}
		seen[id] = true
	}
	if len(ids) != n || len(pages) != 3 || pages[0].Prev != "" || pages[1].Prev == "" {
		t.Fatalf("%d listed on %d pages", len(ids), len(pages))
	}
	// prev_cursor goes back to the page before.
	back := b.get("/api/v1/me/submissions?limit=50&cursor=" + url.QueryEscape(pages[2].Prev))
	var la listAnswer
	_ = json.Unmarshal([]byte(back.body), &la)
	if back.status != 200 || len(la.Submissions) != 50 || la.Submissions[0].ID != pages[1].Submissions[0].ID {
		t.Errorf("back one page: %d %.300s", back.status, back.body)
	}
	for _, q := range []string{"?limit=0", "?limit=201", "?limit=x", "?cursor=nonsense", "?cursor=o1.abc"} {
		if a := b.get("/api/v1/me/submissions" + q); a.status != 422 {
			t.Errorf("%s: %d %s", q, a.status, a.body)
		}
	}

	// My pages as HTML: 50 rows and a link to older ones, no link to
	// newer; the older page links back.
	rows := regexp.MustCompile(`<tr data-reference=`)
	link := func(body, id string) string {
		m := regexp.MustCompile(`id="` + id + `"|href="(/my\?cursor=[^"]+)" rel="(?:prev|next)" id="` + id + `"`).FindStringSubmatch(body)
		if m == nil {
			return ""
		}
		return strings.ReplaceAll(m[1], "&amp;", "&")
	}
	p1 := b.get("/my")
	if p1.status != 200 || len(rows.FindAllString(p1.body, -1)) != 50 || link(p1.body, "my-older") == "" || strings.Contains(p1.body, `id="my-newer"`) {
		t.Fatalf("my page 1: %d, %d rows", p1.status, len(rows.FindAllString(p1.body, -1)))
	}
	p2 := b.get(link(p1.body, "my-older"))
	if p2.status != 200 || len(rows.FindAllString(p2.body, -1)) != 50 || link(p2.body, "my-newer") == "" || link(p2.body, "my-older") == "" {
		t.Fatalf("my page 2: %d %.500s", p2.status, p2.body)
	}
	p3 := b.get(link(p2.body, "my-older"))
	if p3.status != 200 || len(rows.FindAllString(p3.body, -1)) != 20 || strings.Contains(p3.body, `id="my-older"`) {
		t.Fatalf("my page 3: %d, %d rows", p3.status, len(rows.FindAllString(p3.body, -1)))
	}
	if again := b.get(link(p2.body, "my-newer")); len(rows.FindAllString(again.body, -1)) != 50 || !strings.Contains(again.body, pages[0].Submissions[0].ID) {
		t.Errorf("back to page 1: %d", again.status)
	}

	// The department list, with a department client's per-call assertions.
	dept, _ := walk(func(q string) answer {
		return e.browser(t).get("/api/v1/department/submissions"+q, "Authorization", "Bearer "+e.assertion(t, "streets-system", nil))
	}, "40")
	if len(dept) != n {
		t.Errorf("department list walked %d of %d", len(dept), n)
	}
}
