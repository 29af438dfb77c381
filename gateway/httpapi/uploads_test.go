package httpapi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/clamav"
	"github.com/kommun/servicegateway/gateway/clamav/clamdtest"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/gateway/s3blob"
	"github.com/kommun/servicegateway/gateway/s3blob/s3test"
	"github.com/kommun/servicegateway/gateway/servicepoint"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"
	_ "github.com/kommun/servicegateway/services/fields/all"
)

// attachManifest is a test service with file fields and no sign-in:
// drawings (PDF or PNG, 1 MB, two files) and a document (DOCX or ODT).
const attachManifest = `id = "attach-test"
version = "1.0.0"
department = "city-office"
category = "democracy"
assurance = "none"
channels = ["digital", "api"]
retention_days = 1
fallback_language = "sv"

[[fields]]
name = "title"
type = "text"
required = true

[[fields]]
name = "drawings"
type = "file"
required = true
accept = ["application/pdf", "image/png"]
max_size = "1MB"
max_files = 2

[[fields]]
name = "archive"
type = "file"
accept = ["application/pdf"]
max_size = "25MB"

[[fields]]
name = "document"
type = "file"
accept = ["application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/vnd.oasis.opendocument.text"]

[route]
kind = "http"

[route.settings]
url = "http://127.0.0.1:9/cases"
secret = "${CASESIM_SECRET}"
`

const attachSV = `"attach-test.title" = "Bilagetest"
"attach-test.summary" = "Ett test med filer"
"attach-test.field.title.label" = "Rubrik"
"attach-test.field.drawings.label" = "Ritningar"
"attach-test.field.document.label" = "Dokument"
"attach-test.field.archive.label" = "Arkiv"
`

type uploadEnv struct {
	*env
	rdb    *redistest.Server
	clamd  *clamdtest.Server
	intake *intake.Intake
	blobs  *s3blob.Store            // with uploadOpts.s3
	links  *gateway.AttachmentLinks // with uploadOpts.s3: the signed download route is on ln
	ln     net.Listener
}

type uploadOpts struct {
	uploadTTL time.Duration
	noScanner bool
	policy    string // intake.ScanRefuse (default), ScanHold, ScanAccept
	s3        bool   // the bytes in an S3-protocol server (gofakes3 on a real listener)
}

// newUploadEnv is the real HTTP layer on a real redis-server with the
// test service, the real Redis attachment store and a real clamd-protocol
// scanner that flags EICAR.
func newUploadEnv(t testing.TB, o uploadOpts) *uploadEnv {
	t.Helper()
	srv := redistest.Start(t)
	store := redisstore.New(srv.Client(t), "test")
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"city-office/attach-test/service.toml": {Data: []byte(attachManifest)},
		"city-office/attach-test/messages.sv.toml": {Data: []byte(attachSV)}}
	_, cat, err := services.LoadCatalog(fsys, tr)
	if err != nil {
		t.Fatal(err)
	}
	e := &uploadEnv{rdb: srv}
	if o.s3 {
		e.blobs, _ = s3test.Start(t)
		store.Blobs = e.blobs
	}
	var scanner intake.Scanner
	if !o.noScanner {
		e.clamd = clamdtest.Start(t)
		scanner = clamav.New(e.clamd.Addr())
	}
	policy := intake.ScanRefuse
	if o.policy != "" {
		policy = o.policy
	}
	in, err := intake.New(intake.Deps{Store: store, Locker: store, Attachments: store, Scanner: scanner, Logger: quiet,
		Config: intake.Config{UploadTTL: o.uploadTTL, ScanUnavailable: policy, MaxSubmissionAttachments: 5 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	e.intake = in
	deps := httpapi.Deps{Catalog: cat, Store: store, Desk: store, DeadLetters: store, Statuses: store, Translations: tr,
		Ready: store.Ping, Logger: quiet, Intake: in}
	if o.s3 {
		e.ln, e.links = listenWithLinks(t)
		deps.Attachments, deps.AttachmentLinks = store, e.links
	}
	app, err := httpapi.NewServer(deps)
	if err != nil {
		t.Fatal(err)
	}
	e.env = &env{app: app, store: store}
	if e.ln != nil {
		go app.Listener(e.ln)
		t.Cleanup(func() { app.Shutdown() })
	}
	return e
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// pdf is a PDF of n bytes (magic bytes, then random).
func pdf(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	copy(b, "%PDF-1.7\n")
	return b
}

var pngBytes = append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1, 2, 3}, 100)...)

type part struct {
	name, file string // file "" is a value
	body       []byte
}

func multipartBody(t testing.TB, parts ...part) (string, []byte) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		var pw io.Writer
		var err error
		if p.file != "" {
			pw, err = w.CreateFormFile(p.name, p.file)
		} else {
			pw, err = w.CreateFormField(p.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(p.body)
	}
	w.Close()
	return w.FormDataContentType(), buf.Bytes()
}

// postFiles posts a multipart form as the browser would: CSRF token and
// form token first.
func (e *uploadEnv) postFiles(t *testing.T, cookie, csrf, token string, parts ...part) resp {
	t.Helper()
	all := append([]part{{name: "_csrf", body: []byte(csrf)}, {name: "_form", body: []byte(token)}}, parts...)
	ct, body := multipartBody(t, all...)
	req := httptest.NewRequest("POST", "/services/attach-test", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Cookie", cookie)
	return e.do(t, req)
}

// attachmentKeys counts the stored attachment keys (metadata and chunks).
func (e *uploadEnv) attachmentKeys(t testing.TB) []string {
	t.Helper()
	if e.blobs != nil {
		if objs := s3test.Objects(t, e.blobs); len(objs) > 0 {
			return objs
		}
	}
	c := e.rdb.Client(t)
	keys, err := c.Keys(context.Background(), "test:{f:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func receiptID(t *testing.T, r resp) string {
	t.Helper()
	if r.status != http.StatusSeeOther {
		t.Fatalf("want a redirect to the receipt, got %d\n%.2000s", r.status, r.body)
	}
	m := regexp.MustCompile(`^/s/([a-z2-7]{32})`).FindStringSubmatch(r.header.Get("Location"))
	if m == nil {
		t.Fatalf("location %q", r.header.Get("Location"))
	}
	return m[1]
}

// storedHash reads an attachment's bytes back from the store.
func (e *uploadEnv) storedHash(t *testing.T, id string) string {
	t.Helper()
	rc, _, err := e.store.OpenAttachment(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return sha(b)
}

// The HTML form takes files without JavaScript: multipart/form-data with
// a file input; a file larger than the body limit (256 kB) streams
// through; the record lists the file and the stored bytes hash as sent.
func TestFormUploadHappyPath(t *testing.T) {
	e := newUploadEnv(t, uploadOpts{})
	page := e.get(t, "/services/attach-test")
	if !strings.Contains(page.body, `enctype="multipart/form-data"`) || !strings.Contains(page.body, `type="file"`) ||
		!strings.Contains(page.body, `accept="application/pdf,.pdf,image/png,.png"`) {
		t.Fatalf("form:\n%s", page.body)
	}
	cookie, csrf, token := e.form(t, "/services/attach-test")
	plan := pdf(t, 700_000)
	r := e.postFiles(t, cookie, csrf, token, part{name: "title", body: []byte("Altan")},
		part{name: "drawings", file: "C:\\Users\\me\\ritning 1.pdf", body: plan}, part{name: "drawings", file: "karta.png", body: pngBytes},
		part{name: "document", file: "", body: nil}) // an empty file input
	id := receiptID(t, r)
	sub, err := e.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.Attachments) != 2 {
		t.Fatalf("attachments %+v", sub.Attachments)
	}
	a := sub.Attachments[0]
	if a.Name != "ritning 1.pdf" || a.Type != "application/pdf" || a.Size != int64(len(plan)) || a.SHA256 != sha(plan) || a.Field != "drawings" {
		t.Fatalf("description %+v", a)
	}
	if got := e.storedHash(t, a.ID); got != sha(plan) {
		t.Fatalf("stored bytes hash %s, sent %s", got, sha(plan))
	}
	if sub.Attachments[1].Type != "image/png" {
		t.Fatalf("second %+v", sub.Attachments[1])
	}
	if _, owner, _ := e.store.Attachment(context.Background(), a.ID); owner != id {
		t.Fatalf("claimed by %q, want %q", owner, id)
	}
}

// With the bytes in an S3-protocol server: the HTML form's files reach
// the object store through the real route (a DOCX recognised and a zip
// bomb refused by looking inside the stored object), the signed download
// link on a real listener serves bytes with the hash sent, and delivery's
// release deletes the fetched object.
func TestFormUploadS3(t *testing.T) {
	e := newUploadEnv(t, uploadOpts{s3: true})
	cookie, csrf, token := e.form(t, "/services/attach-test")
	plan := pdf(t, 4_000_000)
	// A zip bomb in the document field is refused by looking inside the
	// stored object (ranged reads), and its object is deleted.
	r := e.postFiles(t, cookie, csrf, token, part{name: "title", body: []byte("Altan")},
		part{name: "drawings", file: "karta.png", body: pngBytes}, part{name: "document", file: "bomb.docx", body: zipBomb(t)})
	if !strings.Contains(r.body, "har en filtyp som inte tas emot") {
		t.Fatalf("zip bomb not refused: %d\n%.1500s", r.status, r.body)
	}
	cookie, csrf, token = e.form(t, "/services/attach-test")
	docx := zipWith(t, map[string]string{"[Content_Types].xml": "<Types/>", "word/document.xml": "<w:document/>"})
	r = e.postFiles(t, cookie, csrf, token, part{name: "title", body: []byte("Altan")},
		part{name: "drawings", file: "karta.png", body: pngBytes}, part{name: "archive", file: "ritning.pdf", body: plan},
		part{name: "document", file: "beskrivning.docx", body: docx})
	id := receiptID(t, r)
	sub, err := e.store.Get(context.Background(), id)
	if err != nil || len(sub.Attachments) != 3 {
		t.Fatalf("%+v %v", sub, err)
	}
	if d := sub.Attachments[2]; d.Type != "application/vnd.openxmlformats-officedocument.wordprocessingml.document" || d.SHA256 != sha(docx) {
		t.Fatalf("document %+v", d)
	}
	a := sub.Attachments[1]
	if a.Field != "archive" || a.SHA256 != sha(plan) {
		t.Fatalf("%+v", a)
	}
	// The three files, and the first post's png (kept for that form, so
	// its resident need not send it again); not the refused zip bomb.
	objs := s3test.Objects(t, e.blobs)
	for _, a := range sub.Attachments {
		if !slices.Contains(objs, a.ID) {
			t.Fatalf("no object for %+v in %v", a, objs)
		}
	}
	if len(objs) != 4 {
		t.Fatalf("objects %v, want four", objs)
	}
	if n := len(e.rdbChunkKeys(t)); n != 0 {
		t.Fatalf("%d chunk keys in Redis with the s3 store", n)
	}
	url, _ := e.links.Link(a)
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK || sha(body) != sha(plan) || res.Header.Get("X-Content-SHA256") != sha(plan) {
		t.Fatalf("download: %d, %d bytes, %v", res.StatusCode, len(body), err)
	}
	if err := e.store.AttachmentsDelivered(context.Background(), []string{a.ID}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if objs := s3test.Objects(t, e.blobs); len(objs) != 3 || slices.Contains(objs, a.ID) {
		t.Fatalf("objects after delivery and fetch: %v, want all but the fetched one", objs)
	}
}

// rdbChunkKeys lists the attachment chunk keys in Redis.
func (e *uploadEnv) rdbChunkKeys(t testing.TB) []string {
	t.Helper()
	keys, err := e.rdb.Client(t).Keys(context.Background(), "test:{f:*}:c:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// Refused files, each with a clear message on the field, the values typed
// kept, and nothing stored: a PNG named .pdf, an executable named .pdf,
// one byte over max_size, one file too many, the EICAR test file, a zip
// bomb in a document field, a zip that is no office document.
func TestFormUploadRefusals(t *testing.T) {
	e := newUploadEnv(t, uploadOpts{})
	bomb := zipBomb(t)
	plainZip := zipWith(t, map[string]string{"a.txt": "hello"})
	cases := []struct {
		name  string
		parts []part
		want  string
	}{
		{"png named pdf", []part{{name: "drawings", file: "plan.pdf", body: pngBytes}}, "har en filtyp som inte tas emot"},
		{"exe named pdf", []part{{name: "drawings", file: "plan.pdf", body: append([]byte("MZ\x90\x00"), make([]byte, 500)...)}}, "har en filtyp som inte tas emot"},
		{"oversize", []part{{name: "drawings", file: "big.pdf", body: pdf(t, 1_000_001)}}, "är för stor. Största tillåtna storlek är 1 MB"},
		{"too many", []part{{name: "drawings", file: "a.pdf", body: pdf(t, 100)}, {name: "drawings", file: "b.pdf", body: pdf(t, 100)},
			{name: "drawings", file: "c.pdf", body: pdf(t, 100)}}, "För många filer. Högsta antal filer: 2"},
		{"eicar", []part{{name: "drawings", file: "virus.pdf", body: append([]byte("%PDF-1.4\n"), clamdtest.EICAR...)}}, "stoppades av virusskyddet"},
		{"zip bomb", []part{{name: "drawings", file: "a.pdf", body: pdf(t, 100)}, {name: "document", file: "bomb.docx", body: bomb}}, "har en filtyp som inte tas emot"},
		{"plain zip", []part{{name: "drawings", file: "a.pdf", body: pdf(t, 100)}, {name: "document", file: "x.docx", body: plainZip}}, "har en filtyp som inte tas emot"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cookie, csrf, token := e.form(t, "/services/attach-test")
			r := e.postFiles(t, cookie, csrf, token, append([]part{{name: "title", body: []byte("Mitt bygge")}}, c.parts...)...)
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, c.want) {
				t.Fatalf("status %d, want 422 with %q:\n%.3000s", r.status, c.want, r.body)
			}
			if !strings.Contains(r.body, `value="Mitt bygge"`) {
				t.Fatal("the typed value was not kept")
			}
			// Files refused are gone; one accepted in the same post is kept
			// (shown ticked) for the next try, and expires if not sent.
			for _, k := range e.attachmentKeys(t) {
				id := strings.TrimSuffix(strings.TrimPrefix(k, "test:{f:"), "}:meta")
				if strings.HasSuffix(k, ":meta") && !strings.Contains(r.body, `value="`+id+`" checked`) {
					t.Fatalf("attachment %s stored but not offered again", id)
				}
			}
			e.rdb.Client(t).FlushAll(context.Background())
		})
	}
}

// A file accepted in an attempt that failed is kept: the form shows it
// ticked and the next post sends its id, without the bytes again. Another
// browser cannot use that id.
func TestFormKeepsEarlierUploadAndBindsItToTheBrowser(t *testing.T) {
	e := newUploadEnv(t, uploadOpts{})
	cookie, csrf, token := e.form(t, "/services/attach-test")
	plan := pdf(t, 5000)
	r := e.postFiles(t, cookie, csrf, token, part{name: "drawings", file: "plan.pdf", body: plan}) // no title
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", r.status)
	}
	m := regexp.MustCompile(`name="drawings" value="([a-z2-7]{32})" checked`).FindStringSubmatch(r.body)
	if m == nil || !strings.Contains(r.body, "plan.pdf") {
		t.Fatalf("the uploaded file is not offered again:\n%s", r.body)
	}
	kept := m[1]

	// Another browser (its own CSRF cookie) sends the id: refused.
	cookie2, csrf2, token2 := e.form(t, "/services/attach-test")
	r = e.postFiles(t, cookie2, csrf2, token2, part{name: "title", body: []byte("Stöld")}, part{name: "drawings", body: []byte(kept)})
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "En bifogad fil finns inte längre") {
		t.Fatalf("another browser used the upload: %d\n%.2000s", r.status, r.body)
	}

	// The same browser sends it again with the title: accepted.
	r = e.postFiles(t, cookie, csrf, token, part{name: "title", body: []byte("Altan")}, part{name: "drawings", body: []byte(kept)})
	id := receiptID(t, r)
	sub, _ := e.store.Get(context.Background(), id)
	if len(sub.Attachments) != 1 || sub.Attachments[0].ID != kept || sub.Attachments[0].SHA256 != sha(plan) {
		t.Fatalf("attachments %+v", sub.Attachments)
	}
}

// A form post whose CSRF token does not come before its files is refused
// before a byte is stored.
func TestFormUploadNeedsCSRFFirst(t *testing.T) {
	e := newUploadEnv(t, uploadOpts{})
	cookie, _, token := e.form(t, "/services/attach-test")
	ct, body := multipartBody(t, part{name: "_form", body: []byte(token)}, part{name: "drawings", file: "a.pdf", body: pdf(t, 1000)})
	req := httptest.NewRequest("POST", "/services/attach-test", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Cookie", cookie)
	if r := e.do(t, req); r.status != http.StatusForbidden {
		t.Fatalf("status %d", r.status)
	}
	if keys := e.attachmentKeys(t); len(keys) != 0 {
		t.Fatalf("stored: %v", keys)
	}
}

// The scanner down: refused with a clear message by default (fail
// closed); held (the file kept and listed, the submission waiting until
// the scanner is back and finds it clean); accepted unchecked when
// configured to.
func TestScannerDown(t *testing.T) {
	for _, policy := range []string{intake.ScanRefuse, intake.ScanHold, intake.ScanAccept} {
		t.Run(policy, func(t *testing.T) {
			e := newUploadEnv(t, uploadOpts{policy: policy})
			e.clamd.Down.Store(true)
			cookie, csrf, token := e.form(t, "/services/attach-test")
			r := e.postFiles(t, cookie, csrf, token, part{name: "title", body: []byte("x")}, part{name: "drawings", file: "a.pdf", body: pdf(t, 1000)})
			switch policy {
			case intake.ScanAccept:
				receiptID(t, r)
				return
			case intake.ScanHold:
				m := regexp.MustCompile(`name="drawings" value="([a-z2-7]{32})" checked`).FindStringSubmatch(r.body)
				if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "kunde inte kontrolleras just nu") || m == nil {
					t.Fatalf("held: status %d\n%.3000s", r.status, r.body)
				}
				// Still down: the same answer, the file still kept.
				r = e.postFiles(t, cookie, csrf, token, part{name: "title", body: []byte("x")}, part{name: "drawings", body: []byte(m[1])})
				if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `value="`+m[1]+`" checked`) {
					t.Fatalf("still down: %d\n%.3000s", r.status, r.body)
				}
				// Back: scanned at submit, accepted.
				e.clamd.Down.Store(false)
				r = e.postFiles(t, cookie, csrf, token, part{name: "title", body: []byte("x")}, part{name: "drawings", body: []byte(m[1])})
				receiptID(t, r)
				if a, _, err := e.store.Attachment(context.Background(), m[1]); err != nil || !a.Scanned {
					t.Fatalf("not marked scanned: %+v %v", a, err)
				}
				return
			}
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "kunde inte kontrolleras just nu") {
				t.Fatalf("status %d\n%.2000s", r.status, r.body)
			}
			if keys := e.attachmentKeys(t); len(keys) != 0 {
				t.Fatalf("stored: %v", keys)
			}
		})
	}
}

// The API: upload with POST /api/v1/uploads, then a JSON submission with
// the id; and a multipart/form-data submission in one request. Both store
// the bytes as sent.
func TestAPIUploads(t *testing.T) {
	e := newUploadEnv(t, uploadOpts{})
	plan := pdf(t, 400_000)
	req := httptest.NewRequest("POST", "/api/v1/uploads?service=attach-test&field=drawings&name=plan.pdf", bytes.NewReader(plan))
	req.Header.Set("Content-Type", "application/octet-stream")
	r := e.do(t, req)
	if r.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	var a gateway.Attachment
	json.Unmarshal([]byte(r.body), &a)
	if a.SHA256 != sha(plan) || a.Type != "application/pdf" || a.Size != int64(len(plan)) {
		t.Fatalf("upload answer %s", r.body)
	}
	r = e.postJSON(t, "/api/v1/services/attach-test/submissions", `{"title":"Altan","drawings":["`+a.ID+`"]}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("submit: %d %s", r.status, r.body)
	}
	var rec struct{ ID string }
	json.Unmarshal([]byte(r.body), &rec)
	sub, _ := e.store.Get(context.Background(), rec.ID)
	if len(sub.Attachments) != 1 || e.storedHash(t, sub.Attachments[0].ID) != sha(plan) {
		t.Fatalf("attachments %+v", sub.Attachments)
	}
	// The same id again, for another submission: refused.
	r = e.postJSON(t, "/api/v1/services/attach-test/submissions", `{"title":"Igen","drawings":["`+a.ID+`"]}`)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("reused id: %d %s", r.status, r.body)
	}

	// Refused upload: a PNG named .pdf is 422 with the field's message.
	req = httptest.NewRequest("POST", "/api/v1/uploads?service=attach-test&field=drawings&name=plan.pdf", bytes.NewReader(pngBytes))
	req.Header.Set("Content-Type", "application/octet-stream")
	if r := e.do(t, req); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `"drawings"`) {
		t.Fatalf("wrong type: %d %s", r.status, r.body)
	}

	// Multipart submission.
	ct, body := multipartBody(t, part{name: "title", body: []byte("Garage")}, part{name: "drawings", file: "plan.pdf", body: plan})
	req = httptest.NewRequest("POST", "/api/v1/services/attach-test/submissions", bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	r = e.do(t, req)
	if r.status != http.StatusAccepted {
		t.Fatalf("multipart submit: %d %s", r.status, r.body)
	}
	json.Unmarshal([]byte(r.body), &rec)
	sub, _ = e.store.Get(context.Background(), rec.ID)
	if len(sub.Attachments) != 1 || e.storedHash(t, sub.Attachments[0].ID) != sha(plan) {
		t.Fatalf("multipart attachments %+v", sub.Attachments)
	}
}

// An upload nobody submits is gone after GATEWAY_UPLOAD_TTL (bytes and
// description), and its id is then refused.
func TestAbandonedUploadExpires(t *testing.T) {
	e := newUploadEnv(t, uploadOpts{uploadTTL: 300 * time.Millisecond})
	req := httptest.NewRequest("POST", "/api/v1/uploads?service=attach-test&field=drawings&name=plan.pdf", bytes.NewReader(pdf(t, 300_000)))
	r := e.do(t, req)
	if r.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	var a gateway.Attachment
	json.Unmarshal([]byte(r.body), &a)
	for _, k := range e.attachmentKeys(t) { // (may be gone already on a slow machine)
		if ttl := e.rdb.Client(t).PTTL(context.Background(), k).Val(); ttl > 300*time.Millisecond {
			t.Fatalf("%s expires in %v, not GATEWAY_UPLOAD_TTL", k, ttl)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(e.attachmentKeys(t)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still stored: %v", e.attachmentKeys(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	r = e.postJSON(t, "/api/v1/services/attach-test/submissions", `{"title":"Sent","drawings":["`+a.ID+`"]}`)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("expired id: %d %s", r.status, r.body)
	}
}

// A client that closes the connection in the middle of a file leaves
// nothing stored and no goroutine behind (real TCP listener).
func TestInterruptedUpload(t *testing.T) {
	t.Run("redis", func(t *testing.T) { testInterruptedUpload(t, false) })
	t.Run("s3", func(t *testing.T) { testInterruptedUpload(t, true) })
}

func testInterruptedUpload(t *testing.T, s3 bool) {
	e := newUploadEnv(t, uploadOpts{noScanner: true, s3: s3})
	ln := e.ln
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		go e.app.Listener(ln)
		t.Cleanup(func() { e.app.Shutdown() })
	}
	// Warm up (connection pools, the server's workers).
	if res, err := http.Get("http://" + ln.Addr().String() + "/services/attach-test"); err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if e.blobs != nil {
		s3test.Objects(t, e.blobs) // the store's client keeps a connection
	}
	before := runtime.NumGoroutine()
	for range 3 {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /api/v1/uploads?service=attach-test&field=archive&name=a.pdf HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", 9_000_000)
		conn.Write(pdf(t, 3_000_000)[:2_000_000]) // 19 chunks or one 5 MiB part stored, then the client is gone
		conn.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(e.attachmentKeys(t)) > 0 || runtime.NumGoroutine() > before+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("left: keys %v, goroutines %d (before %d)\n%s", e.attachmentKeys(t), runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The body limit still holds on every other route: bodies are streamed
// now, and only the upload routes read theirs as streams.
func TestBodyLimitKeptOutsideUploads(t *testing.T) {
	e := newUploadEnv(t, uploadOpts{noScanner: true})
	big := strings.Repeat("a", 300_000)
	r := e.postJSON(t, "/api/v1/services/attach-test/submissions", `{"title":"`+big+`"}`)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("JSON over the limit: %d", r.status)
	}
	// Chunked (no Content-Length), through a real connection.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go e.app.Listener(ln)
	t.Cleanup(func() { e.app.Shutdown() })
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/api/v1/services/attach-test/submissions", io.MultiReader(strings.NewReader(`{"title":"`), strings.NewReader(big), strings.NewReader(`"}`)))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked over the limit: %d", res.StatusCode)
	}
}

func zipWith(t testing.TB, files map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, _ := zw.Create(name)
		w.Write([]byte(body))
	}
	zw.Close()
	return buf.Bytes()
}

// zipBomb looks like a Word document whose body inflates 1,000 times.
func zipBomb(t testing.TB) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("[Content_Types].xml")
	w.Write([]byte("<Types/>"))
	w, _ = zw.Create("word/document.xml")
	w.Write(make([]byte, 20<<20))
	zw.Close()
	return buf.Bytes()
}

// Staff at a service point attach the visitor's drawings on the desk form
// (multipart, the same streaming and checks); a refused file is a field
// error with the other values kept.
func TestDeskFormTakesFiles(t *testing.T) {
	deps, store, _ := baseDeps(t)
	deps.Authenticate = httpapi.AuthenticateForTests(deskPersonas)
	deps.ServicePoints = servicepoint.Default()
	in, err := intake.New(intake.Deps{Store: store, Locker: store, Desk: store, Attachments: store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	deps.Intake = in
	e := &uploadEnv{env: &env{app: build(t, deps), store: store}}
	r := e.get(t, "/desk/services/building-permit", "X-Test-Principal", "sara")
	if r.status != 200 || !strings.Contains(r.body, `enctype="multipart/form-data"`) || !strings.Contains(r.body, `id="f-drawings"`) {
		t.Fatalf("desk form: %d\n%.3000s", r.status, r.body)
	}
	var cookie string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "gw_csrf=") {
			cookie = strings.SplitN(c, ";", 2)[0]
		}
	}
	csrf, token := hidden(t, r.body, "_csrf"), hidden(t, r.body, "_form")
	post := func(drawing part) resp {
		ct, body := multipartBody(t, part{name: "_csrf", body: []byte(csrf)}, part{name: "_form", body: []byte(token)},
			part{name: "_visitor", body: []byte("19900101-3011")}, part{name: "_identity_check", body: []byte("id_document")},
			part{name: "_consent", body: []byte("true")},
			part{name: "project", body: []byte("new-house")}, part{name: "property", body: []byte("Kvarnen 1:2")},
			part{name: "applicant_name", body: []byte("Bertil Berg")}, part{name: "applying_as", body: []byte("owner")},
			part{name: "floor_area", body: []byte("120")}, part{name: "description", body: []byte("Ett hus i trä, rödmålat, mitt på tomten")},
			drawing, part{name: "phone", body: []byte("018-727 00 00")}, part{name: "correct", body: []byte("true")})
		req := httptest.NewRequest("POST", "/desk/services/building-permit", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Cookie", cookie)
		req.Header.Set("X-Test-Principal", "sara")
		return e.do(t, req)
	}
	if r := post(part{name: "drawings", file: "plan.pdf", body: pngBytes}); r.status != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, "har en filtyp som inte tas emot") || !strings.Contains(r.body, "Kvarnen 1:2") {
		t.Fatalf("wrong type at the desk: %d\n%.3000s", r.status, r.body)
	}
	plan := pdf(t, 300_000)
	r = post(part{name: "drawings", file: "plan.pdf", body: plan})
	if r.status != http.StatusSeeOther {
		t.Fatalf("desk submit: %d\n%.3000s", r.status, r.body)
	}
	id := strings.TrimPrefix(r.header.Get("Location"), "/desk/receipt/")
	sub, err := store.Get(context.Background(), id)
	if err != nil || len(sub.Attachments) != 1 || sub.Attachments[0].SHA256 != sha(plan) || sub.Channel != gateway.ChannelAssisted {
		t.Fatalf("desk submission %+v %v", sub, err)
	}
}

// hiddenInputs are a page's hidden inputs as a browser posts them.
func hiddenInputs(body string) []part {
	var out []part
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(body, -1) {
		out = append(out, part{name: m[1], body: []byte(html.UnescapeString(m[2]))})
	}
	return out
}

// A drawing attached on the building permit's third step is carried
// through the later steps and the check-your-answers page (by its id,
// bound to the signed-in resident) into the submission, bytes intact.
func TestMultiStepCarriesAttachment(t *testing.T) {
	deps, store, _ := baseDeps(t)
	deps.Authenticate = httpapi.AuthenticateForTests(deskPersonas)
	in, err := intake.New(intake.Deps{Store: store, Locker: store, Attachments: store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	deps.Intake = in
	e := &uploadEnv{env: &env{app: build(t, deps), store: store}}
	const path = "/services/building-permit"
	r := e.get(t, path, "X-Test-Principal", "bertil")
	var cookie string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "gw_csrf=") {
			cookie = strings.SplitN(c, ";", 2)[0]
		}
	}
	step := func(page string, parts ...part) resp {
		t.Helper()
		ct, body := multipartBody(t, append(hiddenInputs(page), parts...)...)
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Cookie", cookie)
		req.Header.Set("X-Test-Principal", "bertil")
		r := e.do(t, req)
		if r.status >= 400 {
			t.Fatalf("step: %d\n%.3000s", r.status, r.body)
		}
		return r
	}
	next := part{name: "_nav", body: []byte("next")}
	r = step(r.body, part{name: "_step", body: []byte("0")}, next, part{name: "project", body: []byte("new-house")},
		part{name: "property", body: []byte("Kvarnen 1:2")})
	r = step(r.body, part{name: "_step", body: []byte("1")}, next, part{name: "applying_as", body: []byte("owner")})
	if !strings.Contains(r.body, `id="f-drawings"`) {
		t.Fatalf("not the drawings step:\n%.3000s", r.body)
	}
	plan := pdf(t, 300_000)
	r = step(r.body, part{name: "_step", body: []byte("2")}, next, part{name: "floor_area", body: []byte("120")},
		part{name: "description", body: []byte("Ett hus i trä, rödmålat, mitt på tomten")}, part{name: "drawings", file: "situationsplan.pdf", body: plan})
	if !strings.Contains(r.body, `name="drawings" value="attachment:`) {
		t.Fatalf("the drawing is not carried:\n%.3000s", r.body)
	}
	r = step(r.body, part{name: "_step", body: []byte("3")}, next, part{name: "phone", body: []byte("018-727 00 00")}, part{name: "correct", body: []byte("true")})
	if !strings.Contains(r.body, "situationsplan.pdf (300 kB)") {
		t.Fatalf("check page does not name the drawing:\n%.3000s", r.body)
	}
	r = step(r.body, part{name: "_nav", body: []byte("send")})
	id := receiptID(t, r)
	sub, err := store.Get(context.Background(), id)
	if err != nil || len(sub.Attachments) != 1 || e.storedHash(t, sub.Attachments[0].ID) != sha(plan) {
		t.Fatalf("submission %+v %v", sub, err)
	}
}

// A submission with files repeated with its Idempotency-Key gets the same
// receipt (the files, claimed by it, are not "taken"); under another key
// the files are refused, as they belong to the first submission.
func TestIdempotentSubmitWithAttachments(t *testing.T) {
	e := newUploadEnv(t, uploadOpts{noScanner: true})
	req := httptest.NewRequest("POST", "/api/v1/uploads?service=attach-test&field=drawings&name=plan.pdf", bytes.NewReader(pdf(t, 2000)))
	r := e.do(t, req)
	var a gateway.Attachment
	json.Unmarshal([]byte(r.body), &a)
	body := `{"title":"Altan","drawings":["` + a.ID + `"]}`
	first := e.postJSON(t, "/api/v1/services/attach-test/submissions", body, "Idempotency-Key", "k-1")
	again := e.postJSON(t, "/api/v1/services/attach-test/submissions", body, "Idempotency-Key", "k-1")
	if first.status != 202 || again.status != 202 || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %d, again %d %s", first.status, again.status, again.body)
	}
	var r1, r2 struct{ ID string }
	json.Unmarshal([]byte(first.body), &r1)
	json.Unmarshal([]byte(again.body), &r2)
	if r1.ID != r2.ID {
		t.Fatalf("two submissions: %s %s", r1.ID, r2.ID)
	}
	if other := e.postJSON(t, "/api/v1/services/attach-test/submissions", body, "Idempotency-Key", "k-2"); other.status != 422 {
		t.Fatalf("another key with the same files: %d %s", other.status, other.body)
	}
}
