package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
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
// "token": "..."} (token optional: an idempotency token for the answer).
// 202 {"seq": n}: the answer is recorded and queued for the case system.
// 409 when no completion is requested, 404 for anyone but the owner.
func (s *Server) apiAnswer(c *fiber.Ctx) error {
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
