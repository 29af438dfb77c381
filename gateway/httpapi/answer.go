package httpapi

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/intake"
)

// answerForm: POST /s/{id}/answer. The resident answers the completion
// request shown on the status page (form field "answer", and "token", drawn
// when the page was shown, so a form sent twice is one answer). Then back
// to the status page (303), which shows the answer in the history.
func (s *Server) answerForm(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	_, err := s.Intake.Answer(c.UserContext(), intake.AnswerRequest{Principal: principal(c), SubmissionID: id,
		Text: strings.Clone(c.FormValue("answer")), Token: strings.Clone(c.FormValue("token"))})
	if err != nil {
		return err
	}
	return c.Redirect("/s/"+id+"?answered=1", fiber.StatusSeeOther)
}

// apiAnswer: POST /api/v1/submissions/{id}/answer with {"answer": "...",
// "token": "..."} (token optional: an idempotency token for the answer),
// or the same as multipart/form-data with files under answer_files.
// 202 {"seq": n}: the answer is recorded and queued for the case system.
// 409 when no completion is requested, 404 for anyone but the owner.
func (s *Server) apiAnswer(c *fiber.Ctx) error {
	if _, ok := isMultipart(c); ok { // with files
		text, token, files, err := s.readAnswerParts(c, true)
		if err != nil {
			return err
		}
		seq, err := s.Intake.Answer(c.UserContext(), intake.AnswerRequest{Principal: principal(c),
			SubmissionID: strings.Clone(c.Params("id")), Text: text, Token: token, Attachments: files})
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"seq": seq})
	}
	if mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType)); err != nil || mt != fiber.MIMEApplicationJSON {
		return &gateway.Error{Code: "unsupported_media_type", Message: gateway.Message{ID: "error.json_required"}}
	}
	var req struct {
		Answer string `json:"answer"`
		Token  string `json:"token"`
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body())) // the body is bounded by the server's BodyLimit
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		return gateway.Errorf(gateway.EInvalid, "error.bad_json", errors.New("answer: bad JSON"))
	}
	seq, err := s.Intake.Answer(c.UserContext(), intake.AnswerRequest{Principal: principal(c),
		SubmissionID: strings.Clone(c.Params("id")), Text: req.Answer, Token: req.Token})
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"seq": seq})
}

// multipartAnswer: POST /s/{id}/answer as multipart/form-data, an answer
// with files. Read as a stream before the CSRF middleware (like a form
// with files, uploads.go): the CSRF token must come before the first file,
// each file goes through the intake's answer upload (type by sniffing,
// size while streaming, scanner), and the answer with its files is then
// recorded by the intake (answer.go rules). Other requests go on to
// answerForm.
func (s *Server) multipartAnswer(c *fiber.Ctx) error {
	if _, ok := isMultipart(c); !ok {
		return c.Next()
	}
	text, token, files, err := s.readAnswerParts(c, false)
	if err != nil {
		return err
	}
	id := strings.Clone(c.Params("id"))
	if _, err := s.Intake.Answer(c.UserContext(), intake.AnswerRequest{Principal: principal(c), SubmissionID: id,
		Text: text, Token: token, Attachments: files}); err != nil {
		return err
	}
	return c.Redirect("/s/"+id+"?answered=1", fiber.StatusSeeOther)
}

// readAnswerParts reads a multipart answer as a stream: the text and token
// values, and each file part under answer_files through the intake's
// answer upload. A page's form must send its CSRF token before the first
// file; the API's was checked by the authentication (header or bearer).
// A refused file is an EInvalid error after the rest was read and dropped
// (files already stored expire unclaimed, GATEWAY_UPLOAD_TTL).
func (s *Server) readAnswerParts(c *fiber.Ctx, api bool) (text, token string, files []gateway.Attachment, err error) {
	boundary, _ := isMultipart(c)
	expected := s.expectedCSRF(c)
	scope := intake.UploadScope(principal(c), s.browserScope(c))
	if api {
		scope = apiUploadScope(c)
	}
	csrfOK := api
	var fileErr error
	textLeft := s.Config.BodyLimit
	mr := multipart.NewReader(bodyReader(c), boundary)
	discard := func(p io.Reader) error {
		if _, err := io.Copy(io.Discard, p); err != nil {
			return gateway.Errorf(gateway.EInvalid, "error.bad_request", err)
		}
		return nil
	}
	for parts := 0; ; parts++ {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", "", nil, gateway.Errorf(gateway.EInvalid, "error.bad_request", err)
		}
		if parts >= maxMultipartParts {
			return "", "", nil, fiber.ErrRequestEntityTooLarge
		}
		if p.FileName() == "" { // a value; an empty file input sends filename="" and no bytes
			b, err := io.ReadAll(io.LimitReader(p, int64(textLeft)+1))
			if err != nil {
				return "", "", nil, gateway.Errorf(gateway.EInvalid, "error.bad_request", err)
			}
			if textLeft -= len(b); textLeft < 0 {
				return "", "", nil, fiber.ErrRequestEntityTooLarge
			}
			switch p.FormName() {
			case CSRFConfigDefault.FormField:
				if !api {
					csrfOK = expected != "" && subtle.ConstantTimeCompare(b, []byte(expected)) == 1
				}
			case "answer":
				text = string(b)
			case "token":
				token = string(b)
			}
			continue
		}
		if !csrfOK {
			return "", "", nil, gateway.Errorf(gateway.EForbidden, "error.csrf", nil)
		}
		if p.FormName() != intake.AnswerFileField || fileErr != nil || scope == "" {
			if err := discard(p); err != nil {
				return "", "", nil, err
			}
			continue
		}
		if len(files) >= intake.AnswerMaxFiles {
			fileErr = &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"},
				Fields: gateway.FieldErrors{intake.AnswerFileField: {ID: "answer.files_too_many", Data: map[string]any{"Max": intake.AnswerMaxFiles}}}}
			if err := discard(p); err != nil {
				return "", "", nil, err
			}
			continue
		}
		a, err := s.Intake.UploadAnswerFile(c.UserContext(), p.FileName(), p, scope)
		var gerr *gateway.Error
		if errors.As(err, &gerr) && gerr.Code == gateway.EInvalid {
			fileErr = err
			if err := discard(p); err != nil {
				return "", "", nil, err
			}
			continue
		}
		if err != nil {
			return "", "", nil, err
		}
		files = append(files, a)
	}
	if !csrfOK {
		return "", "", nil, gateway.Errorf(gateway.EForbidden, "error.csrf", nil)
	}
	if fileErr != nil {
		return "", "", nil, fileErr
	}
	return text, token, files, nil
}
