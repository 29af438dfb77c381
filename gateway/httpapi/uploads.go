package httpapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"regexp"
	"slices"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/intake"
)

// File uploads. Request bodies are streamed (fiber's StreamRequestBody):
// the routes that take files read them part by part and hand each file to
// the intake as a stream, so a 20 MB drawing never sits in the gateway's
// memory; every other route keeps the body limit (limitBody).
//
// The attachment contract (README): a form or API client sends files
// either
//   - as multipart/form-data to the submit route itself (the HTML form, and
//     POST /api/v1/services/{id}/submissions), a file part per file under
//     the file field's name; or
//   - one by one to POST /api/v1/uploads?service=&field=&name= (the raw
//     bytes as the body), which answers the stored file's description with
//     its id, and then in the JSON submission as the file field's value,
//     an array of those ids.
//
// An upload is bound to its uploader (intake.UploadScope): the signed-in
// person, else the browser (its CSRF cookie) or the API client (its
// address); only a submission from the same scope can attach it. Uploads
// nobody submits expire (GATEWAY_UPLOAD_TTL).

// Limits of a multipart body besides its files: parts, and bytes of the
// non-file parts together (the body limit).
const maxMultipartParts = 200

// localsUploadErrors holds the field errors of refused files of a
// multipart request, for the handler to report with the form's others.
const localsUploadErrors = "uploadErrors"

var multipartSubmitPath = regexp.MustCompile(`^(/api/v1|/desk)?/services/[^/]+(/submissions)?$`)

// limitBody keeps the body limit for every request whose handler does not
// stream its body (streamed says which): a declared length over the limit
// is refused before reading, a chunked body is read up to the limit.
func (s *Server) limitBody(streamed func(c *fiber.Ctx) bool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		req := c.Request()
		if !req.IsBodyStream() || streamed(c) {
			return c.Next()
		}
		limit := s.Config.BodyLimit
		switch n := req.Header.ContentLength(); {
		case n > limit:
			c.Context().SetConnectionClose() // the body is not read: the connection cannot carry another request
			return fiber.ErrRequestEntityTooLarge
		case n == -1: // chunked
			b, err := io.ReadAll(io.LimitReader(c.Context().RequestBodyStream(), int64(limit)+1))
			if err != nil {
				return fiber.ErrBadRequest
			}
			if len(b) > limit {
				c.Context().SetConnectionClose()
				return fiber.ErrRequestEntityTooLarge
			}
			req.SetBody(b)
		}
		return c.Next()
	}
}

// isMultipart reports a multipart/form-data request and its boundary.
func isMultipart(c *fiber.Ctx) (string, bool) {
	mt, params, err := mime.ParseMediaType(string(c.Request().Header.ContentType()))
	if err != nil || mt != fiber.MIMEMultipartForm || params["boundary"] == "" {
		return "", false
	}
	return params["boundary"], true
}

// bodyReader is the request body as a stream. A body that ends before its
// Content-Length (the client went away mid-upload) is errBodyCut, not the
// end of a shorter file (nor io.ErrUnexpectedEOF, which io.ReadFull's
// callers take for the end).
func bodyReader(c *fiber.Ctx) io.Reader {
	if c.Request().IsBodyStream() {
		r := c.Context().RequestBodyStream()
		if n := c.Request().Header.ContentLength(); n >= 0 {
			return &fullBody{r: r, left: int64(n)}
		}
		return r
	}
	return bytes.NewReader(c.Body())
}

var errBodyCut = errors.New("request body ended before its Content-Length")

// fullBody reads a body of a declared length, failing when it ends short.
type fullBody struct {
	r    io.Reader
	left int64
}

func (b *fullBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if (err == io.EOF || err == io.ErrUnexpectedEOF) && b.left > 0 {
		return n, errBodyCut
	}
	return n, err
}

// browserScope is the upload scope of a browser: its CSRF cookie (HttpOnly,
// random, per browser), hashed; "" without one.
func (s *Server) browserScope(c *fiber.Ctx) string {
	tok := c.Cookies(s.cookieName(CSRFConfigDefault.CookieName))
	if len(tok) != 43 {
		return ""
	}
	return "browser:" + digest16(tok)
}

// formUploadScopes are the scopes whose uploads a form post may attach.
func (s *Server) formUploadScopes(c *fiber.Ctx) []string {
	b := s.browserScope(c)
	out := []string{}
	if u := intake.UploadScope(principal(c), b); u != "" {
		out = append(out, u)
	}
	if b != "" && !slices.Contains(out, b) {
		out = append(out, b)
	}
	return out
}

// apiUploadScope is the upload scope of an API client.
func apiUploadScope(c *fiber.Ctx) string { return intake.UploadScope(principal(c), anonymousScope(c)) }

// expectedCSRF is the CSRF token a form post must carry (as the csrf
// middleware checks it), "" when there is none to compare with.
func (s *Server) expectedCSRF(c *fiber.Ctx) string {
	if sess := session(c); sess != nil {
		return sess.CSRF
	}
	tok := c.Cookies(s.cookieName(CSRFConfigDefault.CookieName))
	if len(tok) != 43 {
		return ""
	}
	return tok
}

// multipartSubmit reads a multipart/form-data submission as a stream:
// each file part goes to the intake's Upload (type, size, scan) and is
// replaced by the stored attachment's id; the other parts are kept. The
// request then goes on as the plain form (urlencoded) or JSON (api) body
// the handlers already read, so the submit rules stay in one place; the
// refused files' field errors are in localsUploadErrors. A form must send
// its CSRF token (the first hidden input) before any file: no byte of a
// forged post is stored. Other requests pass untouched.
//
// guard, when set, is checked before anything is read (the desk: staff
// only).
func (s *Server) multipartSubmit(api bool, guard func(*fiber.Ctx) error) fiber.Handler {
	return func(c *fiber.Ctx) (err error) {
		defer closeUnlessRead(c, &err)
		boundary, ok := isMultipart(c)
		if !ok {
			return c.Next()
		}
		if guard != nil {
			if err := guard(c); err != nil {
				return err
			}
		}
		svc, ok := s.Catalog.Get(c.Params("id"))
		if !ok || svc.Prefix != "" {
			return c.Next() // the handler answers 404
		}
		csrfOK, expected := api, ""
		scope := apiUploadScope(c)
		if !api {
			expected = s.expectedCSRF(c)
			scope = intake.UploadScope(principal(c), s.browserScope(c))
		}
		var names []string
		values := map[string][]string{}
		add := func(name, v string) {
			if _, seen := values[name]; !seen {
				names = append(names, name)
			}
			values[name] = append(values[name], v)
		}
		errs := gateway.FieldErrors{}
		textLeft := s.Config.BodyLimit
		mr := multipart.NewReader(bodyReader(c), boundary)
		for parts := 0; ; parts++ {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return gateway.Errorf(gateway.EInvalid, "error.bad_request", err)
			}
			if parts >= maxMultipartParts {
				return fiber.ErrRequestEntityTooLarge
			}
			name := p.FormName()
			if p.FileName() == "" { // a value (an empty file input sends filename="" and no bytes)
				b, err := io.ReadAll(io.LimitReader(p, int64(textLeft)+1))
				if err != nil {
					return gateway.Errorf(gateway.EInvalid, "error.bad_request", err)
				}
				if textLeft -= len(b); textLeft < 0 {
					return fiber.ErrRequestEntityTooLarge
				}
				if name == CSRFConfigDefault.FormField && !api && expected != "" {
					csrfOK = subtle.ConstantTimeCompare(b, []byte(expected)) == 1
				}
				add(name, string(b))
				continue
			}
			if !csrfOK {
				return gateway.Errorf(gateway.EForbidden, "error.csrf", nil)
			}
			f := svc.Field(name)
			if _, bad := errs[name]; bad || f == nil || f.Type != gateway.FieldFile || scope == "" {
				if f == nil && api {
					errs[name] = *gateway.NewMessage(gateway.MsgUnknownField)
				}
				if _, err := io.Copy(io.Discard, p); err != nil {
					return gateway.Errorf(gateway.EInvalid, "error.bad_request", err)
				}
				continue
			}
			n := 0
			for _, v := range values[name] {
				if v != "" {
					n++
				}
			}
			if n >= f.AttachmentMaxFiles() {
				errs[name] = *gateway.NewMessage(gateway.MsgAttachmentTooMany, "Max", f.AttachmentMaxFiles())
				if _, err := io.Copy(io.Discard, p); err != nil {
					return gateway.Errorf(gateway.EInvalid, "error.bad_request", err)
				}
				continue
			}
			a, err := s.Intake.Upload(c.UserContext(), intake.Upload{Service: svc, Field: name, Name: p.FileName(), Body: p, Scope: scope})
			var gerr *gateway.Error
			if errors.As(err, &gerr) && gerr.Code == gateway.EInvalid && len(gerr.Fields) > 0 {
				for k, m := range gerr.Fields {
					errs[k] = m
				}
				if _, err := io.Copy(io.Discard, p); err != nil { // the rest of a refused file
					return gateway.Errorf(gateway.EInvalid, "error.bad_request", err)
				}
				continue
			}
			if err != nil {
				return err // the body broke off, or the store: nothing of this file is kept
			}
			add(name, a.ID)
		}
		if !csrfOK {
			return gateway.Errorf(gateway.EForbidden, "error.csrf", nil)
		}
		req := c.Request()
		if api {
			obj := make(map[string][]string, len(values))
			for k, v := range values {
				obj[k] = v
			}
			b, err := json.Marshal(obj)
			if err != nil {
				return err
			}
			req.Header.SetContentType(fiber.MIMEApplicationJSON)
			req.SetBody(b)
		} else {
			form := url.Values{}
			for _, k := range names {
				form[k] = values[k]
			}
			req.Header.SetContentType(fiber.MIMEApplicationForm)
			req.SetBodyString(form.Encode())
		}
		c.Locals(localsUploadErrors, errs)
		return c.Next()
	}
}

// uploadErrors are the field errors of files refused by multipartSubmit.
func uploadErrors(c *fiber.Ctx) gateway.FieldErrors {
	errs, _ := c.Locals(localsUploadErrors).(gateway.FieldErrors)
	return errs
}

// apiUpload: POST /api/v1/uploads?service=&field=&name=, the file's bytes
// as the body (any content type: the type is found from the bytes). 201
// with the stored file's description; its id goes in the submission's
// file field within GATEWAY_UPLOAD_TTL.
func (s *Server) apiUpload(c *fiber.Ctx) (err error) {
	defer closeUnlessRead(c, &err)
	svc, ok := s.Catalog.Get(c.Query("service"))
	if !ok || svc.Prefix != "" {
		return gateway.Errorf(gateway.ENotFound, "error.service_not_found", nil)
	}
	if !svc.AllowsChannel(gateway.ChannelAPI) {
		return &gateway.Error{Code: gateway.EForbidden, Message: gateway.Message{ID: "error.channel_not_allowed",
			Data: map[string]any{"Channel": gateway.Message{ID: "usage.channel." + string(gateway.ChannelAPI)}}}}
	}
	if err := intake.CheckAssurance(principal(c), svc); err != nil {
		return err
	}
	a, err := s.Intake.Upload(c.UserContext(), intake.Upload{Service: svc, Field: c.Query("field"),
		Name: c.Query("name"), Body: bodyReader(c), Scope: apiUploadScope(c)})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"id": a.ID, "field": a.Field, "name": a.Name, "type": a.Type,
		"size": a.Size, "sha256": a.SHA256})
}

// streamedBody reports the requests whose handlers read the body as a
// stream (routes.go): uploads, and multipart submissions.
func streamedBody(c *fiber.Ctx) bool {
	if c.Method() != fiber.MethodPost {
		return false
	}
	if c.Path() == uploadsPath {
		return true
	}
	_, mp := isMultipart(c)
	return mp && (multipartSubmitPath.MatchString(c.Path()) || multipartAnswerPath.MatchString(c.Path()))
}

// multipartAnswerPath is the status page's answer form and the API's
// answer, which take files (answer.go).
var multipartAnswerPath = regexp.MustCompile(`^(/s|/api/v1/submissions)/[^/]+/answer$`)

const uploadsPath = "/api/v1/uploads"

// digest16 is the hex of the first 16 bytes of v's SHA-256.
func digest16(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:16])
}

// closeUnlessRead closes the connection after a streamed request that
// ended in an error: its body may not have been read to the end, so the
// connection cannot carry another request.
func closeUnlessRead(c *fiber.Ctx, err *error) {
	if *err != nil {
		c.Context().SetConnectionClose()
	}
}

// staffOnly guards the desk's multipart form.
func staffOnly(c *fiber.Ctx) error {
	_, err := requireStaff(c)
	return err
}
