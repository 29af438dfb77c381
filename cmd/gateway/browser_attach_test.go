package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

// writePDF writes a PDF-looking file of about n bytes and returns its path
// and SHA-256.
func writePDF(t *testing.T, name string, n int) (string, string) {
	t.Helper()
	b := []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	for i := 0; len(b) < n; i++ {
		b = append(b, fmt.Sprintf("%d 0 obj << /Length %d >> stream\nq %d %d l S Q\nendstream endobj\n", i, i*7, i%97, i%89)...)
	}
	b = append(b, "%%EOF\n"...)
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return p, hex.EncodeToString(sum[:])
}

// The building permit in a browser with JavaScript switched off, with a
// drawing attached, to the case in the reference case system with the
// file's bytes intact; then the case system asks for more (needs_info), the
// resident answers on the status page with a file, and the case system
// gets the follow-up once, with that file. Real processes: redis-server,
// the casesim and gateway binaries, headless Chromium.
func TestBrowserBuildingPermitWithAttachmentsNoJavaScript(t *testing.T) {
	chrome := needChromium(t)
	rs, cs, gw := startStack(t, nil) // the development identity provider is on
	b := newBrowser(t, chrome)
	b.do("switch JavaScript off", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	drawing, drawingSum := writePDF(t, "fasadritning garage.pdf", 300_000)
	answerFile, answerSum := writePDF(t, "situationsplan.pdf", 120_000)

	// Sign in at the level the service asks (substantial): the applicant
	// is then taken from the e-ID.
	if code := b.navigate("sign in", chromedp.Navigate(gw.URL+"/auth/login?level=substantial&return_to=/services/building-permit")); code != 200 {
		t.Fatalf("sign-in: %d", code)
	}
	b.do("choose bertil", chromedp.Click(chromedp.CSS("#persona-bertil")))
	if code := b.navigate("sign in as bertil", chromedp.Click(chromedp.CSS(`main form button[type="submit"]`))); code != 200 {
		t.Fatalf("sign in: %d", code)
	}
	if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`!!document.querySelector("#f-project")`)); err != nil || !ok {
		b.fail("the form's first step", fmt.Errorf("no #f-project (%v)", err))
	}
	next := `button[name="_nav"][value="next"]`
	step := func(what string, fill ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		b.do(what, fill...)
		if code := b.navigate(what+": continue", chromedp.Click(chromedp.CSS(next))); code != 200 {
			b.fail(what, fmt.Errorf("status %d\ngateway:\n%s", code, gw.Out))
		}
	}
	step("the project", chromedp.SetValue(chromedp.CSS("#f-project"), "garage"), chromedp.SendKeys(chromedp.CSS("#f-property"), "Kåbo 12:3"))
	step("the applicant", chromedp.SetValue(chromedp.CSS("#f-applying_as"), "owner"))
	step("the details with a drawing",
		chromedp.SendKeys(chromedp.CSS("#f-floor_area"), "30"),
		chromedp.SendKeys(chromedp.CSS("#f-description"), "Ett fristående garage i trä vid infarten."),
		chromedp.SetUploadFiles(chromedp.CSS("#f-drawings"), []string{drawing}),
	)
	step("the contact", chromedp.SendKeys(chromedp.CSS("#f-phone"), "018-727 00 00"), chromedp.Click(chromedp.CSS("#f-correct")))
	// Check your answers: the drawing is named there.
	if main := b.text("main"); !strings.Contains(main, "fasadritning garage.pdf") {
		b.fail("check your answers", fmt.Errorf("the attached drawing is not listed"))
	}
	b.screenshot("attach-1-check-answers")
	if code := b.navigate("send", chromedp.Click(chromedp.CSS(`button[name="_nav"][value="send"]`))); code != 200 {
		t.Fatalf("send: status %d", code)
	}
	m := regexp.MustCompile(`/s/([a-z2-7]{32})\?receipt=1$`).FindStringSubmatch(b.location())
	if m == nil {
		b.fail("receipt", fmt.Errorf("at %s", b.location()))
	}
	id := m[1]

	// The case, with the drawing fetched through its signed link.
	var c caseJSON
	eventually(t, 30*time.Second, "the case in casesim", func() bool {
		for _, x := range cases(t, cs.URL) {
			if x.SubmissionID == id {
				c = x
				return true
			}
		}
		return false
	})
	if c.Service != "building-permit" || len(c.Attachments) != 1 || c.Attachments[0].SHA256 != drawingSum ||
		c.Attachments[0].Name != "fasadritning garage.pdf" || c.Attachments[0].Type != "application/pdf" {
		t.Fatalf("case %+v, want one drawing with sha256 %s", c, drawingSum)
	}

	// The department asks for more (a signed status update, as casesim
	// sends them).
	body := `{"status":"needs_info","message":"Skicka också en situationsplan."}`
	ts := fmt.Sprint(time.Now().Unix())
	req, _ := http.NewRequest(http.MethodPost, gw.URL+gateway.StatusUpdatePath(id), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(httpjson.HeaderTimestamp, ts)
	req.Header.Set(httpjson.HeaderSignature, httpjson.Sign([]byte(demoSecret), ts, gateway.StatusUpdateSigned(http.MethodPost, id, []byte(body))))
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("needs_info: %d", res.StatusCode)
	}

	// The resident answers on the status page with a file.
	if code := b.navigate("open the status page", chromedp.Navigate(gw.URL+"/s/"+id)); code != 200 {
		t.Fatalf("status page: %d", code)
	}
	if q := b.text("#question"); q != "Skicka också en situationsplan." {
		t.Fatalf("question %q", q)
	}
	b.do("write the answer",
		chromedp.SendKeys(chromedp.CSS("#answer"), "Här är situationsplanen."),
		chromedp.SetUploadFiles(chromedp.CSS("#answer_files"), []string{answerFile}),
	)
	b.screenshot("attach-2-answer")
	if code := b.navigate("send the answer", chromedp.Click(chromedp.CSS(`form[action$="/answer"] button[type="submit"]`))); code != 200 {
		t.Fatalf("answer: status %d", code)
	}
	if !strings.Contains(b.location(), "answered=1") {
		b.fail("after the answer", fmt.Errorf("at %s", b.location()))
	}
	eventually(t, 30*time.Second, "the follow-up in casesim", func() bool {
		for _, x := range cases(t, cs.URL) {
			if x.SubmissionID == id && len(x.FollowUps) > 0 {
				c = x
				return true
			}
		}
		return false
	})
	f := c.FollowUps[0]
	if len(c.FollowUps) != 1 || f.Deliveries != 1 || f.Answer != "Här är situationsplanen." || len(f.Attachments) != 1 ||
		f.Attachments[0].SHA256 != answerSum || f.Attachments[0].Name != "situationsplan.pdf" {
		t.Fatalf("follow-ups %+v, want one, delivered once, with the plan (sha256 %s)", c.FollowUps, answerSum)
	}
	// The gateway is a conduit: once delivered and fetched, no file is left.
	rdb := rs.Client(t)
	eventually(t, 30*time.Second, "the files deleted from Redis", func() bool {
		keys, err := rdb.Keys(context.Background(), "*{f:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys) == 0
	})
}
