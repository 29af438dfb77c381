package intake

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kommun/servicegateway/gateway"
)

// Answers is the part of the store completion answers need: reading the
// submission, and recording an answer together with its follow-up job in
// one atomic step (see redisstore.Store.Answer).
type Answers interface {
	Get(ctx context.Context, id string) (*gateway.Submission, error)
	Answer(ctx context.Context, id, token, question, answer string, at time.Time) (int, error)
}

// AnswerRequest is a resident's answer to a completion request.
type AnswerRequest struct {
	Principal    *gateway.Principal // nil: not signed in
	SubmissionID string
	Text         string
	// Token identifies this answer (e.g. drawn when the form was shown),
	// so a form sent twice records one answer; "" draws one.
	Token string
	// Attachments come with the file field kind: they will be validated
	// here like a form's files and passed to the store with the text.
}

// Answer records the resident's answer to the open completion request
// (status needs_info) and queues it for delivery to the case system as a
// follow-up of the case. The rules are those of reading a submission: a
// submission of a signed-in person is answered only by that person (anyone
// else gets ENotFound, as when reading); an anonymous one by whoever holds
// its status link. It returns the answer's number.
func (in *Intake) Answer(ctx context.Context, r AnswerRequest) (int, error) {
	if in.answers == nil {
		return 0, gateway.Errorf(gateway.EUnavailable, "error.store_unavailable", errors.New("intake: no Answers dependency"))
	}
	text := strings.TrimSpace(strings.ReplaceAll(r.Text, "\r\n", "\n"))
	switch {
	case text == "":
		return 0, invalidAnswer(gateway.Message{ID: "validation.required"})
	case !utf8.ValidString(text) || strings.ContainsFunc(text, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\t' }):
		return 0, invalidAnswer(gateway.Message{ID: "validation.encoding"})
	case utf8.RuneCountInString(text) > gateway.MaxAnswerLength:
		return 0, invalidAnswer(gateway.Message{ID: "validation.max_length", Data: map[string]any{"Max": gateway.MaxAnswerLength}})
	}
	token := r.Token
	if token == "" || len(token) > 64 {
		var b [16]byte
		_, _ = rand.Read(b[:])
		token = base64.RawURLEncoding.EncodeToString(b[:])
	}
	sctx, cancel := context.WithTimeout(ctx, in.cfg.StoreTimeout)
	defer cancel()
	sub, err := in.answers.Get(sctx, r.SubmissionID)
	if err != nil {
		return 0, err
	}
	if sub.Subject != "" && (r.Principal == nil || r.Principal.Machine || r.Principal.Subject != sub.Subject) {
		return 0, gateway.Errorf(gateway.ENotFound, "error.submission_not_found", errors.New("answer: not the owner"))
	}
	return in.answers.Answer(sctx, sub.ID, token, Question(sub), text, in.cfg.Now())
}

func invalidAnswer(m gateway.Message) error {
	return &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"}, Fields: gateway.FieldErrors{"answer": m}}
}

// Question is the open completion request of sub: the message of the
// newest needs_info entry of its history ("" when it has none).
func Question(sub *gateway.Submission) string {
	for i := len(sub.History) - 1; i >= 0; i-- {
		h := sub.History[i]
		if h.Status == gateway.StatusNeedsInfo && h.Note != "answered" && h.Message != "" {
			return h.Message
		}
	}
	return ""
}
