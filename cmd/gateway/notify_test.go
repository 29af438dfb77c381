package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/notify/smssink"
	"github.com/kommun/servicegateway/services/connectors/email/mailpittest"
)

// recipients counts mailpit's messages per recipient address.
func recipients(t *testing.T, mp *mailpittest.Server) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range mp.Messages(t) {
		raw := string(mp.Raw(t, m.ID))
		for _, line := range strings.Split(raw, "\r\n") {
			if strings.HasPrefix(line, "To: ") {
				out[strings.Trim(strings.TrimPrefix(line, "To: "), "<>")]++
			}
		}
	}
	return out
}

// Real processes: redis-server, casesim, mailpit and the gateway, with the
// reference SMS sink on a real listener. Status updates from casesim reach
// the residents who asked for them exactly once — by e-mail for Anna (My
// pages) and Cy (the form's reply address) and by SMS for Anna — although
// the SMTP server refused connections at first and the gateway was
// SIGKILLed with the notifications pending; Bertil, who opted out, gets
// nothing. Then the completion round trip: casesim asks for more
// information, Anna is told, answers on the status page (the form sent
// twice), and casesim receives the answer once, on the same case.
func TestNotifyThroughRefusalAndRestartThenCompletion(t *testing.T) {
	rs, mp, env := emailStack(t, mailpittest.Options{})
	mp.Stop() // connections refused
	sink := smssink.New("sms-token")
	sinkSrv := httptest.NewServer(sink)
	defer sinkSrv.Close()
	_, csBin := binaries(t)
	gwAddr := freeAddr(t)
	cs := start(t, csBin, map[string]string{"CASESIM_ADDR": "127.0.0.1:0", "CASESIM_SECRET": demoSecret, "CASESIM_GATEWAY_URL": "http://" + gwAddr})
	env["CASESIM_URL"], env["GATEWAY_ADDR"] = cs.URL, gwAddr
	env["GATEWAY_SMS_URL"], env["GATEWAY_SMS_TOKEN"] = sinkSrv.URL+"/messages", "sms-token"
	env["GATEWAY_SESSION_KEY"] = "a-session-key-for-this-test-only-0123456789"
	a := gatewayProc(t, env)

	anna := signIn(t, a.URL, "anna", "/my")
	annaCSRF := csrfOf(t, anna, a.URL)
	if code, body := send(t, anna, "PUT", a.URL+"/api/v1/me/notifications",
		`{"email":"anna@example.org","mobile":"070-123 45 67","events":["in_progress","needs_info"]}`, "X-CSRF-Token", annaCSRF); code != 200 || !strings.Contains(body, `"+46701234567"`) {
		t.Fatalf("Anna's preferences: %d %s", code, body)
	}
	// Bertil opts out on My pages' form (no event ticked).
	bertil := signIn(t, a.URL, "bertil", "/my")
	bertilCSRF := csrfOf(t, bertil, a.URL)
	_, prefsPage := send(t, bertil, "GET", a.URL+"/my/notifications", "")
	formCSRF := regexp.MustCompile(`name="_csrf" value="([^"]*)"`).FindStringSubmatch(prefsPage)
	if formCSRF == nil || !strings.Contains(prefsPage, `name="events" value="needs_info"`) {
		t.Fatalf("preferences page: %s", prefsPage)
	}
	res, err := bertil.PostForm(a.URL+"/my/notifications", url.Values{"_csrf": {formCSRF[1]}, "email": {"bertil@example.org"}, "mobile": {"+46709999999"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Query().Get("saved") != "1" {
		t.Fatalf("saving Bertil's preferences: %d at %s", res.StatusCode, res.Request.URL)
	}
	if code, body := send(t, bertil, "GET", a.URL+"/api/v1/me/notifications", ""); code != 200 || !strings.Contains(body, `"events":[]`) || !strings.Contains(body, "bertil@example.org") {
		t.Fatalf("Bertil's preferences: %d %s", code, body)
	}
	submitAs := func(c *http.Client, csrf, body string) string {
		t.Helper()
		code, out := send(t, c, "POST", a.URL+"/api/v1/services/street-fault/submissions", body, "X-CSRF-Token", csrf)
		if code != 202 {
			t.Fatalf("submit: %d %s", code, out)
		}
		return regexp.MustCompile(`"id":"([^"]+)"`).FindStringSubmatch(out)[1]
	}
	annaID := submitAs(anna, annaCSRF, streetFault)
	bertilID := submitAs(bertil, bertilCSRF, streetFault)
	cyID := mustSubmit(t, a.URL, "street-fault", `{"kind":"pothole","description":"Djupt hål vid bron","location":"Bron 1","email":"cy@example.org"}`)
	caseRef := func(c *http.Client, gw, id string) string {
		t.Helper()
		_, body := send(t, c, "GET", gw+"/api/v1/submissions/"+id, "")
		if m := regexp.MustCompile(`"case_reference":"([^"]+)"`).FindStringSubmatch(body); m != nil {
			return m[1]
		}
		return ""
	}
	owners := map[string]*http.Client{annaID: anna, bertilID: bertil, cyID: client}
	for _, id := range []string{annaID, bertilID, cyID} {
		eventually(t, 30*time.Second, "delivery", func() bool { return caseRef(owners[id], a.URL, id) != "" })
		ref := caseRef(owners[id], a.URL, id)
		if code, m := postJSON(t, cs.URL+"/cases/"+ref+"/status", `{"status":"in_progress","message":"Vi lagar hålet."}`); code != 200 || m["gateway_status"] != float64(200) {
			t.Fatalf("casesim status: %d %v", code, m)
		}
	}
	rdb := rs.Client(t)
	eventually(t, 60*time.Second, "Anna's SMS sent, the e-mails waiting for a retry", func() bool {
		return len(sink.Messages()) == 1 && rdb.ZCard(t.Context(), "gw:{q}:nretry").Val() >= 3
	})
	a.Kill()
	// The SMS did not wait for the refused e-mail; its retry must not send
	// it again.
	if sms := sink.Messages(); len(sms) != 1 {
		t.Fatalf("%d SMS sent while the SMTP server refused connections, want Anna's one", len(sms))
	}

	mp.Start()
	b := gatewayProc(t, env)
	settled := func() bool {
		return rdb.XLen(t.Context(), "gw:{q}:nout").Val() == 0 && rdb.ZCard(t.Context(), "gw:{q}:nretry").Val() == 0
	}
	eventually(t, 120*time.Second, "every notification sent", func() bool {
		return settled() && len(sink.Messages()) == 1 && recipients(t, mp)["cy@example.org"] == 2
	})
	got := recipients(t, mp)
	want := map[string]int{"anna@example.org": 1, "cy@example.org": 2} // Cy: delivered and in progress
	if len(got) != len(want) || got["anna@example.org"] != 1 || got["cy@example.org"] != 2 {
		t.Fatalf("e-mails per recipient %v, want %v", got, want)
	}
	if sms := sink.Messages(); sms[0].To != "+46701234567" || sms[0].Repeats != 0 {
		t.Fatalf("SMS %+v", sms)
	}
	if dead := rdb.ZCard(t.Context(), "gw:{q}:ndead").Val(); dead != 0 {
		t.Fatalf("%d notifications dead-lettered", dead)
	}

	// Completion: casesim asks; Anna is told by SMS and e-mail.
	annaRef := caseRef(anna, b.URL, annaID)
	question := "Vilken av lamporna vid skolan gäller det?"
	if code, m := postJSON(t, cs.URL+"/cases/"+annaRef+"/status", `{"status":"needs_info","message":"`+question+`"}`); code != 200 || m["gateway_status"] != float64(200) {
		t.Fatalf("casesim needs_info: %d %v", code, m)
	}
	eventually(t, 30*time.Second, "Anna told about the completion request", func() bool {
		return len(sink.Messages()) == 2 && recipients(t, mp)["anna@example.org"] == 2
	})
	// The status page shows the question and the answer form.
	res, err = anna.Get(b.URL + "/s/" + annaID)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), question) || !strings.Contains(string(page), `action="/s/`+annaID+`/answer"`) {
		t.Fatalf("status page lacks the question or the form (%d)", res.StatusCode)
	}
	hidden := func(name string) string {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindSubmatch(page)
		if m == nil {
			t.Fatalf("no %s in the form", name)
		}
		return string(m[1])
	}
	form := url.Values{"_csrf": {hidden("_csrf")}, "token": {hidden("token")}, "answer": {"Lampan närmast cykelstället, nummer 12."}}
	for range 2 { // sent twice (a double click): one answer
		res, err := anna.PostForm(b.URL+"/s/"+annaID+"/answer", form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Request.URL.Query().Get("answered") != "1" {
			t.Fatalf("answer: %d at %s", res.StatusCode, res.Request.URL)
		}
	}
	// Someone else cannot answer Anna's case.
	bertilCSRF = csrfOf(t, bertil, b.URL)
	if code, _ := send(t, bertil, "POST", b.URL+"/api/v1/submissions/"+annaID+"/answer", `{"answer":"Inte min"}`, "X-CSRF-Token", bertilCSRF); code != 404 {
		t.Fatalf("Bertil answering Anna's case: %d, want 404", code)
	}
	type followUp struct {
		Seq        int    `json:"seq"`
		Question   string `json:"question"`
		Answer     string `json:"answer"`
		Deliveries int    `json:"deliveries"`
	}
	var c struct {
		SubmissionID string     `json:"submission_id"`
		FollowUps    []followUp `json:"followups"`
	}
	eventually(t, 30*time.Second, "the answer in casesim", func() bool {
		c.FollowUps = nil
		getJSON(t, cs.URL+"/cases/"+annaRef, &c)
		return len(c.FollowUps) > 0
	})
	eventually(t, 30*time.Second, "the follow-up acknowledged", func() bool {
		return rdb.XLen(t.Context(), "gw:{q}:fup").Val() == 0
	})
	getJSON(t, cs.URL+"/cases/"+annaRef, &c)
	if c.SubmissionID != annaID || len(c.FollowUps) != 1 || c.FollowUps[0].Answer != "Lampan närmast cykelstället, nummer 12." ||
		c.FollowUps[0].Question != question || c.FollowUps[0].Seq != 1 {
		t.Fatalf("casesim case: %+v", c)
	}
	for _, p := range []*proc{b} {
		noPayloadInLogs(t, p, "Lampan närmast", "Djupt hål")
	}
}
