package intake

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/kommun/servicegateway/gateway"
)

// Answers is the part of the store completion answers need: reading the
// submission, claiming the answer's files for it, and recording an answer
// together with its follow-up job in one atomic step (see
// redisstore.Store.Answer).
type Answers interface {
	Get(ctx context.Context, id string) (*gateway.Submission, error)
	ClaimAttachments(ctx context.Context, submissionID string, ids []string, ttl time.Duration) error
	Answer(ctx context.Context, id, token, question, answer string, atts []gateway.Attachment, at time.Time) (int, error)
}

// AnswerFileTypes are the media types of files sent with an answer (found
// by sniffing at upload).
var AnswerFileTypes = []string{"application/pdf", "image/jpeg", "image/png"}

// The other rules of files sent with an answer: the largest file, the most
// files, and how long the bytes are kept for the follow-up's delivery (its
// retries included) when Config.AttachmentKeep is unset; AnswerFileField
// names them in the form and in errors.
const (
	AnswerMaxFileSize = 10 << 20
	AnswerMaxFiles    = 5
	AnswerFileTTL     = 14 * 24 * time.Hour
	AnswerFileField   = "answer_files"
)

// AnswerRequest is a resident's answer to a completion request.
type AnswerRequest struct {
	Principal    *gateway.Principal // nil: not signed in
	SubmissionID string
	Text         string
	// Token identifies this answer (e.g. drawn when the form was shown),
	// so a form sent twice records one answer; "" draws one.
	Token string
	// Attachments are the files sent with the answer, already stored by
	// the upload (their type found by sniffing); checked here against the
	// answer's rules, claimed for the submission and recorded with the text.
	Attachments []gateway.Attachment
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
	if err := checkAnswerFiles(r.Attachments); err != nil {
		return 0, err
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
	if len(r.Attachments) > 0 {
		ids := make([]string, len(r.Attachments))
		for i, a := range r.Attachments {
			ids[i] = a.ID
		}
		// Claimed before the answer is written: an answer never names a
		// file that can expire as an unclaimed upload. Claiming again for
		// the same submission (a form sent twice) is harmless.
		keep := in.cfg.AttachmentKeep
		if keep <= 0 {
			keep = AnswerFileTTL
		}
		if err := in.answers.ClaimAttachments(sctx, sub.ID, ids, keep); err != nil {
			if errors.Is(err, gateway.ErrAttachmentNotFound) {
				return 0, invalidAnswerFiles(gateway.Message{ID: "answer.file_missing"}, err)
			}
			return 0, err
		}
	}
	return in.answers.Answer(sctx, sub.ID, token, Question(sub), text, r.Attachments, in.cfg.Now())
}

// answerFiles carries the answer's file field, so that an answer's files
// go through exactly the upload rules of a form's (Upload: sniffing, the
// name's extension, size while streaming, the malware scanner).
var answerFiles = &gateway.Service{ID: "answer", Fields: []gateway.Field{{Name: AnswerFileField, Type: gateway.FieldFile,
	Accept: AnswerFileTypes, MaxSize: AnswerMaxFileSize, MaxFiles: AnswerMaxFiles}}}

// UploadAnswerFile stores one file sent with an answer to a completion
// request, under the answer's file rules; the answer (Answer) then claims
// it. Refused files are EInvalid with a message on AnswerFileField.
//
// A file the scanner could not check is refused when the policy is to
// hold it (ScanHold): an answer has no later submit to check it at, so it
// fails closed ("try again"); ScanAccept keeps it unchecked, as for forms.
func (in *Intake) UploadAnswerFile(ctx context.Context, name string, body io.Reader, scope string) (gateway.Attachment, error) {
	a, err := in.Upload(ctx, Upload{Service: answerFiles, Field: AnswerFileField, Name: name, Body: body, Scope: scope})
	if err != nil || in.scanner == nil || a.Scanned || in.cfg.ScanUnavailable != ScanHold {
		return a, err
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.StoreTimeout)
	defer cancel()
	if derr := in.attachments.DeleteAttachments(dctx, a.ID); derr != nil {
		in.log.Warn("unscanned answer file not deleted; it expires", "attachment", a.ID, "err", derr)
	}
	return gateway.Attachment{}, fieldError(AnswerFileField, gateway.NewMessage(gateway.MsgAttachmentUnscanned, "Name", a.Name))
}

// checkAnswerFiles applies the answer's file rules to files the upload
// stored (defence in depth: the upload applies them first).
func checkAnswerFiles(atts []gateway.Attachment) error {
	if len(atts) > AnswerMaxFiles {
		return invalidAnswerFiles(gateway.Message{ID: "answer.files_too_many", Data: map[string]any{"Max": AnswerMaxFiles}}, gateway.ErrAttachmentTooMany)
	}
	for _, a := range atts {
		switch {
		case a.ID == "" || a.SHA256 == "":
			return invalidAnswerFiles(gateway.Message{ID: "answer.file_missing"}, gateway.ErrAttachmentNotFound)
		case a.Size > AnswerMaxFileSize:
			return invalidAnswerFiles(gateway.Message{ID: "answer.file_too_large", Data: map[string]any{"Max": AnswerMaxFileSize >> 20}}, gateway.ErrAttachmentTooLarge)
		case !slices.Contains(AnswerFileTypes, a.Type):
			return invalidAnswerFiles(gateway.Message{ID: "answer.file_type"}, gateway.ErrAttachmentType)
		}
	}
	return nil
}

func invalidAnswerFiles(m gateway.Message, cause error) error {
	return &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"}, Fields: gateway.FieldErrors{AnswerFileField: m}, Cause: cause}
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
