package main

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

type open311Request struct {
	ID          string `json:"service_request_id" xml:"service_request_id"`
	Token       string `json:"token" xml:"token"`
	Status      string `json:"status" xml:"status"`
	StatusNotes string `json:"status_notes" xml:"status_notes"`
}

// A street-fault app posts through Open311 to the real gateway process; the
// request becomes a case in casesim; casesim posts status updates; GET
// requests/{id} shows them, open then closed, with the department's latest
// message as status_notes.
func TestOpen311ToCaseAndBack(t *testing.T) {
	_, csBin := binaries(t)
	rs := redistest.Start(t, redistest.WithAOF("always"))
	gwAddr := freeAddr(t)
	cs := start(t, csBin, map[string]string{"CASESIM_ADDR": "127.0.0.1:0", "CASESIM_SECRET": demoSecret, "CASESIM_GATEWAY_URL": "http://" + gwAddr})
	keys := filepath.Join(t.TempDir(), "open311-keys")
	if err := os.WriteFile(keys, []byte("# Open311 clients\nfixa-gatan-app fixa-gatan-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := deliveryEnv(rs.URL(), cs.URL)
	env["GATEWAY_ADDR"] = gwAddr
	env["GATEWAY_OPEN311_KEYS_FILE"] = keys
	env["GATEWAY_OPEN311_JURISDICTION"] = "kommun.example"
	gw := gatewayProc(t, env)
	base := gw.URL + "/open311/v2"

	form := url.Values{"api_key": {"fixa-gatan-0123456789abcdef"}, "jurisdiction_id": {"kommun.example"}, "service_code": {"street-fault"},
		"attribute[kind]": {"streetlight"}, "description": {"The street light is out at the crossing"},
		"address_string": {"Storgatan 1"}, "lat": {"59.858600"}, "long": {"17.638900"}}
	post := func(v url.Values) (int, []byte) {
		t.Helper()
		res, err := client.PostForm(base+"/requests.json", v)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	// The demo key is not a key once a keys file is configured.
	demo := url.Values{}
	for k, v := range form {
		demo[k] = v
	}
	demo.Set("api_key", demoOpen311Key)
	if code, body := post(demo); code != 403 {
		t.Fatalf("demo key with a keys file: %d %s", code, body)
	}
	code, body := post(form)
	var posted []open311Request
	if err := json.Unmarshal(body, &posted); code != 200 || err != nil || len(posted) != 1 {
		t.Fatalf("post: %d %s %v", code, body, err)
	}
	id, token := posted[0].ID, posted[0].Token

	// It becomes a case in casesim, delivered like any submission.
	var caseRef string
	eventually(t, 30*time.Second, "the case in casesim", func() bool {
		for _, c := range cases(t, cs.URL) {
			if c.SubmissionID == token && c.Service == "street-fault" {
				caseRef = c.CaseReference
				return true
			}
		}
		return false
	})
	waitDelivered(t, 30*time.Second, "delivered", gw.URL, token)

	read := func(format string) open311Request {
		t.Helper()
		res, err := client.Get(base + "/requests/" + id + "." + format)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("GET requests/%s.%s: %d %s", id, format, res.StatusCode, b)
		}
		if format == "json" {
			var out []open311Request
			if err := json.Unmarshal(b, &out); err != nil || len(out) != 1 {
				t.Fatalf("%v %s", err, b)
			}
			return out[0]
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
			t.Fatalf("content type %q", ct)
		}
		var out struct {
			Requests []open311Request `xml:"request"`
		}
		if err := xml.Unmarshal(b, &out); err != nil || len(out.Requests) != 1 {
			t.Fatalf("%v %s", err, b)
		}
		return out.Requests[0]
	}
	if r := read("json"); r.Status != "open" || r.StatusNotes != "" {
		t.Fatalf("after delivery: %+v", r)
	}

	// The case officer starts on it, then closes it (casesim forwards both,
	// signed, to the gateway).
	if code, m := postJSON(t, cs.URL+"/cases/"+caseRef+"/status", `{"status":"in_progress","message":"Vi byter lampan i veckan."}`); code != 200 || m["gateway_status"] != float64(200) {
		t.Fatalf("casesim in_progress: %d %v", code, m)
	}
	if r := read("xml"); r.Status != "open" || r.StatusNotes != "Vi byter lampan i veckan." {
		t.Fatalf("in progress: %+v", r)
	}
	if code, m := postJSON(t, cs.URL+"/cases/"+caseRef+"/status", `{"status":"closed","message":"Lampan är utbytt."}`); code != 200 || m["gateway_status"] != float64(200) {
		t.Fatalf("casesim closed: %d %v", code, m)
	}
	for _, f := range []string{"json", "xml"} {
		if r := read(f); r.Status != "closed" || r.StatusNotes != "Lampan är utbytt." {
			t.Fatalf("%s after closing: %+v", f, r)
		}
	}
	// And in the list of closed requests.
	var closed []open311Request
	if code := getJSON(t, base+"/requests.json?status=closed&service_code=street-fault", &closed); code != 200 || len(closed) != 1 || closed[0].ID != id {
		t.Fatalf("closed list: %d %+v", code, closed)
	}
}
