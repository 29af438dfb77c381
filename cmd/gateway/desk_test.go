package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// csrfOf returns the session's CSRF token of a signed-in client.
func csrfOf(t *testing.T, c *http.Client, gw string) string {
	t.Helper()
	res, err := c.Get(gw + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&me); err != nil || me.CSRF == "" {
		t.Fatalf("GET /api/v1/me: %d %v", res.StatusCode, err)
	}
	return me.CSRF
}

// send makes a request as a signed-in client and returns status and body.
func send(t *testing.T, c *http.Client, method, url, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

const deskHomeCare = `"applying_for":"self","personnummer":"19900101-3011","help_types":["shopping"],"living_situation":"alone","needs":"Jag behöver hjälp med inköp och städning varje vecka","phone":"018-727 00 00","consent":true`

// Real processes (redis-server, casesim, the gateway with its development
// identity provider): the staff persona Sara files home care for the
// resident persona Bertil at her service point; Bertil signs in and finds
// it on My pages, marked as filed with help at Servicepunkt Centrum; the
// back-end received it with channel "assisted". Then each refused attempt:
// a resident at the desk or filing on behalf, staff reading what a
// resident filed alone.
func TestDeskFilesForResident(t *testing.T) {
	_, cs, gw := startStack(t, nil)

	sara := signIn(t, gw.URL, "sara", "/desk")
	saraCSRF := csrfOf(t, sara, gw.URL)
	code, body := send(t, sara, "POST", gw.URL+"/api/v1/services/home-care/submissions",
		`{`+deskHomeCare+`,"on_behalf_of":{"personnummer":"19900101-3011","identity_check":"id_document","consent":true}}`, "X-CSRF-Token", saraCSRF)
	if code != 202 {
		t.Fatalf("Sara files for Bertil: %d %s", code, body)
	}
	var filed struct {
		ID, Reference, Channel, Subject string
		ServicePoint                    string `json:"service_point"`
	}
	_ = json.Unmarshal([]byte(body), &filed)
	if filed.Channel != "assisted" || filed.Subject != "19900101-****" || filed.ServicePoint != "sp-centrum" {
		t.Fatalf("answer %s", body)
	}
	// A phone contact that did not become a submission.
	if code, body := send(t, sara, "POST", gw.URL+"/api/v1/contacts", `{"service":"home-care","channel":"phone","outcome":"referred","language":"sv"}`, "X-CSRF-Token", saraCSRF); code != 201 {
		t.Fatalf("contact: %d %s", code, body)
	}

	// Bertil signs in and sees it on My pages, filed with help at Sara's point.
	bertil := signIn(t, gw.URL, "bertil", "/my")
	code, page := send(t, bertil, "GET", gw.URL+"/my", "")
	if code != 200 || !strings.Contains(page, filed.Reference) || !strings.Contains(page, "Lämnat med hjälp på Servicepunkt Centrum") {
		t.Fatalf("Bertil's My pages (%d) lack the filing %s with the service point", code, filed.Reference)
	}
	code, list := send(t, bertil, "GET", gw.URL+"/api/v1/me/submissions", "")
	if code != 200 || !strings.Contains(list, `"service_point":"sp-centrum"`) || !strings.Contains(list, `"channel":"assisted"`) {
		t.Fatalf("Bertil's list: %d %s", code, list)
	}
	// The back-end received it once, with channel assisted.
	type caseWithChannel struct {
		SubmissionID string `json:"submission_id"`
		Channel      string `json:"channel"`
	}
	var got []caseWithChannel
	eventually(t, 30*time.Second, "the case in casesim", func() bool {
		got = nil
		getJSON(t, cs.URL+"/cases", &got)
		return len(got) == 1
	})
	if got[0].SubmissionID != filed.ID || got[0].Channel != "assisted" {
		t.Fatalf("casesim received %+v", got[0])
	}

	// Refused: a resident at the desk, filing on behalf, registering contacts.
	anna := signIn(t, gw.URL, "anna", "/my")
	annaCSRF := csrfOf(t, anna, gw.URL)
	if code, _ := send(t, anna, "GET", gw.URL+"/desk", ""); code != 403 {
		t.Errorf("a resident at the desk: %d, want 403", code)
	}
	if code, _ := send(t, anna, "POST", gw.URL+"/api/v1/services/street-fault/submissions",
		`{"kind":"pothole","description":"Djupt hål i körbanan","location":"Storgatan 1","on_behalf_of":{"personnummer":"19900101-3011","identity_check":"known","consent":true}}`,
		"X-CSRF-Token", annaCSRF); code != 403 {
		t.Errorf("a resident filing on behalf: %d, want 403", code)
	}
	if code, _ := send(t, anna, "POST", gw.URL+"/api/v1/contacts", `{"service":"home-care","channel":"phone","outcome":"resolved"}`, "X-CSRF-Token", annaCSRF); code != 403 {
		t.Errorf("a resident registering a contact: %d, want 403", code)
	}
	// Staff cannot read what Bertil filed alone.
	code, body = send(t, bertil, "POST", gw.URL+"/api/v1/services/home-care/submissions", `{`+deskHomeCare+`}`, "X-CSRF-Token", csrfOf(t, bertil, gw.URL))
	if code != 202 {
		t.Fatalf("Bertil files alone: %d %s", code, body)
	}
	var own struct{ ID string }
	_ = json.Unmarshal([]byte(body), &own)
	for _, path := range []string{"/api/v1/submissions/" + own.ID, "/s/" + own.ID, "/desk/receipt/" + own.ID} {
		if code, _ := send(t, sara, "GET", gw.URL+path, ""); code != 404 {
			t.Errorf("staff reading %s: %d, want 404", strings.Replace(path, own.ID, "{id}", 1), code)
		}
	}
	// The statistics count the assisted submission and the phone contact.
	admin := signIn(t, gw.URL, "admin", "/admin/dead-letters") // administrators land on their work
	eventually(t, 30*time.Second, "usage figures", func() bool {
		var rep struct {
			Totals struct {
				SubmittedBy map[string]int64 `json:"submitted_by_channel"`
				ContactsBy  map[string]int64 `json:"contacts_by_channel"`
			} `json:"totals"`
		}
		code, body := send(t, admin, "GET", gw.URL+"/api/v1/usage?service=home-care", "")
		if code != 200 || json.Unmarshal([]byte(body), &rep) != nil {
			return false
		}
		return rep.Totals.SubmittedBy["assisted"] == 1 && rep.Totals.ContactsBy["phone"] == 1 && rep.Totals.SubmittedBy["digital"] == 0
	})
	// The audit: the filing, and no personnummer in full.
	code, audit := send(t, admin, "GET", gw.URL+"/api/v1/admin/audit", "")
	if code != 200 || !strings.Contains(audit, `"action":"filed_on_behalf"`) || !strings.Contains(audit, "19900101-****") || strings.Contains(audit, "199001013011") {
		t.Fatalf("audit: %d %s", code, audit)
	}
	noPayloadInLogs(t, gw, "199001013011", "19900101-3011")
	gw.Stop()
}

// GATEWAY_SERVICE_POINTS_FILE: read strictly; a bad file stops the start
// before anything else begins, naming the problem.
func TestServicePointsFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(good, []byte("[[points]]\nid = \"sp-norr\"\nname = \"Servicepunkt Norr\"\nlanguages = [\"sv\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("[[points]]\nid = \"sp-norr\"\nname = \"Norr\"\nfax = \"1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := loadServicePoints(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Get("sp-norr"); !ok || len(d.All()) != 1 {
		t.Fatalf("good file: %+v", d.All())
	}
	if d, err := loadServicePoints(""); err != nil {
		t.Fatal(err)
	} else if _, ok := d.Get("sp-centrum"); !ok {
		t.Fatal("the default lacks sp-centrum")
	}
	env := map[string]string{"GATEWAY_SERVICE_POINTS_FILE": bad, "GATEWAY_ADDR": "127.0.0.1:0"}
	err = run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "GATEWAY_SERVICE_POINTS_FILE") || !strings.Contains(err.Error(), "points.fax") {
		t.Fatalf("bad file: %v", err)
	}
}
