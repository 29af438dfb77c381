package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

const demoSecret = "integration-test-secret"

func gatewayEnv(redisURL, casesimURL string) map[string]string {
	return map[string]string{
		"GATEWAY_ADDR": "127.0.0.1:0", "REDIS_URL": redisURL, "CASESIM_URL": casesimURL, "CASESIM_SECRET": demoSecret,
		"GATEWAY_RETRY_BASE": "100ms", "GATEWAY_RETRY_MAX": "500ms", "GATEWAY_CLAIM_IDLE": "2s",
		"GATEWAY_RATELIMIT": "off", "GATEWAY_SHUTDOWN_TIMEOUT": "10s", "GATEWAY_LOG_LEVEL": "warn",
		"GATEWAY_DRAIN_DELAY": "0s",
	}
}

// submitForm goes through the HTML form as a browser would: GET the form
// (cookie and hidden tokens), POST it, follow to the receipt.
func submitForm(t *testing.T, gw string, values url.Values) (id string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: client.CheckRedirect}
	res, err := c.Get(gw + "/services/street-fault")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, name := range []string{"_csrf", "_form"} {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindSubmatch(page)
		if m == nil {
			t.Fatalf("form lacks %s", name)
		}
		values.Set(name, string(m[1]))
	}
	res, err = c.PostForm(gw+"/services/street-fault", values)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc := res.Header.Get("Location")
	m := regexp.MustCompile(`^/s/([a-z2-7]{32})`).FindStringSubmatch(loc)
	if res.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("form post: %d %q", res.StatusCode, loc)
	}
	return m[1]
}

func statusPage(t *testing.T, gw, id string) string {
	res, err := client.Get(gw + "/s/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// The whole journey through real processes: HTML form and JSON API in, one
// case each in casesim, the case number on the status page.
func TestEndToEnd(t *testing.T) {
	_, cs, gw := startStack(t, nil)

	formID := submitForm(t, gw.URL, url.Values{"kind": {"streetlight"}, "description": {"Gatlyktan är trasig sedan i måndags"}, "location": {"Kungsgatan 12"}})
	apiID := mustSubmit(t, gw.URL, "street-fault", `{"kind":"pothole","description":"Djupt hål mitt i körbanan","location":"Vaksalagatan 3"}`)

	for _, id := range []string{formID, apiID} {
		waitDelivered(t, 30*time.Second, "delivery of "+id, gw.URL, id)
		s := submission(t, gw.URL, id)
		if !regexp.MustCompile(`^KS-\d{4}-\d{6}$`).MatchString(s.CaseReference) {
			t.Fatalf("case reference %q", s.CaseReference)
		}
		if page := statusPage(t, gw.URL, id); !strings.Contains(page, s.CaseReference) || !strings.Contains(page, "Överlämnat till förvaltningen") {
			t.Fatalf("status page lacks the case number %s", s.CaseReference)
		}
	}
	got := cases(t, cs.URL)
	if len(got) != 2 {
		t.Fatalf("want 2 cases, got %d: %+v", len(got), got)
	}
	for _, c := range got {
		if c.IdempotencyKey != c.SubmissionID || c.Service != "street-fault" || (c.SubmissionID != formID && c.SubmissionID != apiID) {
			t.Fatalf("case %+v", c)
		}
	}
	gw.Stop()
}

// A submission with a receipt but not yet delivered survives a gateway stop
// (SIGTERM) and a crash (SIGKILL): started again, the gateway delivers
// each exactly once.
func TestRestartDeliversOnce(t *testing.T) {
	for _, how := range []string{"sigterm", "sigkill"} {
		t.Run(how, func(t *testing.T) {
			_, csBin := binaries(t)
			rs := redistest.Start(t, redistest.WithAOF("always"))
			// The case system is not there yet: its port is reserved and closed.
			csAddr := freeAddr(t)
			env := gatewayEnv(rs.URL(), "http://"+csAddr)
			gw := gatewayProc(t, env)
			var ids []string
			for i := 0; i < 3; i++ {
				ids = append(ids, mustSubmit(t, gw.URL, "street-fault", `{"kind":"litter","description":"Överfull papperskorg vid busshållplatsen","location":"Centralstationen"}`))
			}
			if s := submission(t, gw.URL, ids[0]); s.Status != "received" {
				t.Fatalf("delivered with no back-end? %+v", s)
			}
			if how == "sigterm" {
				gw.Stop()
			} else {
				gw.Kill()
			}
			cs := start(t, csBin, map[string]string{"CASESIM_ADDR": csAddr, "CASESIM_SECRET": demoSecret})
			gw = gatewayProc(t, env)
			waitDelivered(t, 60*time.Second, "delivery after restart", gw.URL, ids...)
			got := cases(t, cs.URL)
			if len(got) != len(ids) {
				t.Fatalf("want %d cases, got %d", len(ids), len(got))
			}
			seen := map[string]bool{}
			for _, c := range got {
				if seen[c.SubmissionID] {
					t.Fatalf("submission %s became two cases", c.SubmissionID)
				}
				seen[c.SubmissionID] = true
			}
		})
	}
}

// `gateway check` names the file, the line and the key, and exits non-zero.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	svc := filepath.Join(dir, "streets", "bench-repair")
	if err := os.MkdirAll(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "id = \"bench-repair\"\nversion = \"1.0.0\"\ndepartment = \"streets-parks\"\ncategory = \"streets-traffic\"\nassurance = \"none\"\nretention_days = 30\ncolour = \"green\"\n\n[[fields]]\nname = \"where\"\ntype = \"text\"\n\n[route]\nkind = \"http\"\n[route.settings]\nurl = \"${CASESIM_URL}/cases\"\nsecret = \"${CASESIM_SECRET}\"\n"
	msgs := "\"bench-repair.title\" = \"Bänk\"\n\"bench-repair.summary\" = \"Laga bänk\"\n\"bench-repair.field.where.label\" = \"Var\"\n"
	for name, body := range map[string]string{"service.toml": manifest, "messages.sv.toml": msgs, "messages.en.toml": msgs} {
		if err := os.WriteFile(filepath.Join(svc, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	err := run(context.Background(), []string{"check", dir}, func(string) string { return "" }, &out, &out)
	if err == nil {
		t.Fatal("check passed a manifest with an unknown key")
	}
	if want := `streets/bench-repair/service.toml:7: unknown key "colour"`; !strings.Contains(err.Error(), want) {
		t.Fatalf("want %q in %q", want, err)
	}
	// The binary exits non-zero with that message.
	gwBin, _ := binaries(t)
	cmd := execCommand(gwBin, "check", dir)
	b, cerr := cmd.CombinedOutput()
	if cerr == nil || !strings.Contains(string(b), `service.toml:7: unknown key "colour"`) {
		t.Fatalf("binary check: %v\n%s", cerr, b)
	}
	// The built-in services pass.
	out.Reset()
	if err := run(context.Background(), []string{"check"}, func(string) string { return "" }, &out, &out); err != nil || !strings.Contains(out.String(), "no problems") {
		t.Fatalf("built-in check: %v %s", err, out.String())
	}
}

// --help lists every setting.
func TestHelpListsEverySetting(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !strings.Contains(out.String(), s.Name) {
			t.Errorf("--help lacks %s", s.Name)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !strings.Contains(string(readme), "`"+s.Name+"`") {
			t.Errorf("README lacks setting %s", s.Name)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]map[string]string{
		"bad duration":             {"GATEWAY_RETRY_BASE": "soon"},
		"bad number":               {"GATEWAY_WORKERS": "-1"},
		"no workers, embedded":     {"GATEWAY_WORKERS": "0"},
		"production no redis":      {"GATEWAY_ENV": "production"},
		"bad ratelimit":            {"GATEWAY_RATELIMIT": "maybe"},
		"bad env":                  {"GATEWAY_ENV": "staging"},
		"wait, embedded":           {"GATEWAY_REDIS_WAIT_REPLICAS": "1"},
		"wait with cluster":        {"GATEWAY_REDIS_WAIT_REPLICAS": "1", "REDIS_ADDRS": "a:1,b:2,c:3"},
		"wait too long":            {"GATEWAY_REDIS_WAIT_REPLICAS": "1", "REDIS_URL": "redis://x:6379", "GATEWAY_REDIS_WAIT_TIMEOUT": "5s"},
		"area of one corner":       {"GATEWAY_AREA": "59.8,17.6"},
		"area not numbers":         {"GATEWAY_AREA": "north,east;south,west"},
		"session cache long":       {"GATEWAY_SESSION_CACHE": "10m"},
		"unknown attachment store": {"GATEWAY_ATTACHMENT_STORE": "disk"},
		"s3 without bucket":        {"GATEWAY_ATTACHMENT_STORE": "s3", "GATEWAY_S3_ENDPOINT": "minio:9000"},
		"s3 endpoint a URL":        {"GATEWAY_ATTACHMENT_STORE": "s3", "GATEWAY_S3_ENDPOINT": "https://minio:9000", "GATEWAY_S3_BUCKET": "b"},
	}
	for name, env := range cases {
		if _, err := loadConfig(func(k string) string { return env[k] }); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := loadConfig(func(string) string { return "" }); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	// Production: plain http to a store that is not local only when allowed.
	prod := func(extra map[string]string) map[string]string {
		env := productionEnv(t)
		env["GATEWAY_ATTACHMENT_STORE"], env["GATEWAY_S3_BUCKET"] = "s3", "attachments"
		env["GATEWAY_S3_ACCESS_KEY"], env["GATEWAY_S3_SECRET_KEY"] = "gateway", "an-access-secret-of-the-store"
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	for _, c := range []struct {
		env map[string]string
		ok  bool
	}{
		{map[string]string{"GATEWAY_S3_ENDPOINT": "minio.internal:9000", "GATEWAY_S3_TLS": "off"}, false},
		{map[string]string{"GATEWAY_S3_ENDPOINT": "minio.internal:9000", "GATEWAY_S3_TLS": "off", "GATEWAY_S3_ALLOW_PLAIN": "on"}, true},
		{map[string]string{"GATEWAY_S3_ENDPOINT": "127.0.0.1:9000", "GATEWAY_S3_TLS": "off"}, true},
		{map[string]string{"GATEWAY_S3_ENDPOINT": "s3.eu-north-1.amazonaws.com"}, true},
	} {
		env := prod(c.env)
		_, err := loadConfig(func(k string) string { return env[k] })
		if (err == nil) != c.ok {
			t.Errorf("production %v: %v", c.env, err)
		}
	}
	sentinelWait := map[string]string{"GATEWAY_REDIS_WAIT_REPLICAS": "1", "REDIS_ADDRS": "s1:26379,s2:26379", "REDIS_MASTER_NAME": "gw"}
	if _, err := loadConfig(func(k string) string { return sentinelWait[k] }); err != nil {
		t.Errorf("WAIT with Sentinel: %v", err)
	}
}

// The demo: no configuration at all (embedded Redis, in-process casesim)
// serves the catalog and delivers a submission.
func TestDemoWithNoConfiguration(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	env := map[string]string{"GATEWAY_ADDR": "127.0.0.1:0", "GATEWAY_LOG_LEVEL": "error"}
	go func() { errc <- run(ctx, nil, func(k string) string { return env[k] }, pw, io.Discard); pw.Close() }()
	buf := make([]byte, 256)
	n, _ := pr.Read(buf)
	m := listening.FindStringSubmatch(string(buf[:n]))
	if m == nil {
		t.Fatalf("no listening line: %q", buf[:n])
	}
	go io.Copy(io.Discard, pr)
	gw := m[1]
	res, err := client.Get(gw + "/")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("catalog: %v %v", err, res)
	}
	res.Body.Close()
	code, rec := postJSON(t, gw+"/api/v1/services/street-fault/submissions", `{"kind":"graffiti","description":"Klotter på lekstugan i parken","location":"Lekparken"}`)
	if code != 202 {
		t.Fatalf("submit: %d", code)
	}
	id := rec["id"].(string)
	eventually(t, 30*time.Second, "demo delivery", func() bool { return submission(t, gw, id).CaseReference != "" })
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run returned %v", err)
	}
}

// productionEnv is a production configuration loadConfig accepts.
func productionEnv(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{"GATEWAY_ENV": "production", "REDIS_URL": "redis://127.0.0.1:1/0", "CASESIM_URL": "http://cases.example",
		"CASESIM_SECRET": "Zq8s0d7cM2yQ1n4vLk9xT3pW6bR5eH8jA0uC7fG2"}
	if _, err := loadConfig(func(k string) string { return env[k] }); err != nil {
		t.Fatalf("base production configuration: %v", err)
	}
	return env
}
