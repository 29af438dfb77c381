package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

// CallbackVerifier checks a request signed by a service's back-end with the
// route's secret (the http connector implements it: X-Gateway-Timestamp and
// X-Gateway-Signature over timestamp + "." + the signed bytes, which for a
// status update are gateway.StatusUpdateSigned: method, path and body).
type CallbackVerifier interface {
	VerifyCallback(timestamp, signature string, body []byte) error
}

// Headers of a signed status update: the same as a delivery's.
const (
	headerTimestamp = "X-Gateway-Timestamp"
	headerSignature = "X-Gateway-Signature"
)

// StatusUpdater is the part of the store status updates need: the update
// is recorded unless its nonce (a signed update's signature) was seen within
// window, or it repeats the last history entry (replayed).
type StatusUpdater interface {
	UpdateStatusOnce(ctx context.Context, id string, change gateway.StatusChange, caseRef, nonce string, window time.Duration) (moved, replayed bool, err error)
	// RecordUnknownStatus keeps an update for a submission the store does
	// not have (lost in a failover while the back-end holds the case).
	RecordUnknownStatus(ctx context.Context, id, service string, change gateway.StatusChange, caseRef, nonce string, window time.Duration) (replayed bool, err error)
}

// Limits of a status update.
const (
	maxStatusMessage = 2000 // characters
	maxCaseReference = 256  // bytes
	maxServiceID     = 128  // bytes
	maxClockAhead    = 5 * time.Minute
	// signatureMemory is how long a signed update's signature is
	// remembered: longer than the timestamps the verifier accepts (within
	// 5 minutes either way), so a replay is never recorded twice.
	signatureMemory = 11 * time.Minute
	// statusUpdateLimit updates per submission per statusUpdateWindow; more
	// are answered 429 (a case moves a handful of times in its life).
	statusUpdateLimit  = 30
	statusUpdateWindow = time.Hour
)

// statusUpdateRequest is the body of POST /api/v1/submissions/{id}/status.
type statusUpdateRequest struct {
	Status        gateway.Status `json:"status"`
	Message       string         `json:"message"`
	CaseReference string         `json:"case_reference"`
	At            string         `json:"at"`
	// Service is the back-end's service id: optional, needed only to
	// verify a signed update for a submission the gateway does not have.
	Service string `json:"service"`
}

// apiStatusUpdate: POST /api/v1/submissions/{id}/status. A back-end reports
// how its case is going. The caller is the owning department (a principal
// with role department and the service's department) or presents a
// signature made with the service's route secret over method, path and
// body. The update is added to the history unless it is a replay (its
// signature seen within signatureMemory, or the same as the last entry);
// the status only moves forwards (see redisstore.UpdateStatusOnce). An
// update for a submission the store does not have may be kept (see
// unknownStatusUpdate).
func (s *Server) apiStatusUpdate(c *fiber.Ctx) error {
	st := s.Statuses
	if st == nil {
		return gateway.Errorf(gateway.EUnavailable, "error.store_unavailable", errors.New("store cannot update statuses"))
	}
	if mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType)); err != nil || mt != fiber.MIMEApplicationJSON {
		return &gateway.Error{Code: "unsupported_media_type", Message: gateway.Message{ID: "error.json_required"}}
	}
	sub, err := s.getSubmission(c)
	var gerr *gateway.Error
	if errors.As(err, &gerr) && gerr.Code == gateway.ENotFound {
		return s.unknownStatusUpdate(c, st, err)
	}
	if err != nil {
		return err
	}
	how, err := s.authorizeStatusUpdate(c, sub)
	if err != nil {
		return err
	}
	if err := s.limitStatusUpdates(c, sub.ID); err != nil {
		return err
	}
	change, caseRef, _, err := parseStatusUpdate(c.Body(), s.Config.Now())
	if err != nil {
		return err
	}
	nonce := ""
	if how == "signature" {
		nonce = c.Get(headerSignature) // copied by the store (hashed into a key)
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	moved, replayed, err := st.UpdateStatusOnce(ctx, sub.ID, change, caseRef, nonce, signatureMemory)
	if err != nil {
		return err
	}
	current := sub.Status
	if moved {
		current = change.Status
		s.trackStatusChanged(sub) // usage statistics
	}
	s.Logger.Info("status update", "request_id", c.Locals(localsRequestID), "reference", sub.Reference,
		"service", sub.Service, "status", change.Status, "moved", moved, "replayed", replayed, "auth", how)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"reference": sub.Reference, "status": current, "moved": moved, "replayed": replayed})
}

// unknownStatusUpdate handles an update for a submission the store does
// not have: a failover to a lagging replica can lose a submission the
// back-end already holds. An update from the right department, or signed
// with the secret of the service named in the body, is kept (202,
// "known": false) instead of lost; anything else gets notFound, as before.
func (s *Server) unknownStatusUpdate(c *fiber.Ctx, st StatusUpdater, notFound error) error {
	id := c.Params("id")
	change, caseRef, service, err := parseStatusUpdate(c.Body(), s.Config.Now())
	if err != nil {
		return notFound // say nothing more about an id we do not know
	}
	how := ""
	p := principal(c)
	switch {
	case p.HasRole(gateway.RoleDepartment) && p.Department != "":
		how = "department"
	case c.Get(headerSignature) != "" && service != "" && s.Callbacks != nil:
		if v := s.Callbacks(service); v != nil &&
			v.VerifyCallback(c.Get(headerTimestamp), c.Get(headerSignature), gateway.StatusUpdateSigned(c.Method(), id, c.Body())) == nil {
			how = "signature"
		}
	}
	if how == "" {
		return notFound
	}
	if err := s.limitStatusUpdates(c, id); err != nil {
		return err
	}
	nonce := ""
	if how == "signature" {
		nonce = c.Get(headerSignature)
	}
	if how == "department" {
		service = "department:" + p.Department
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	replayed, err := st.RecordUnknownStatus(ctx, id, service, change, caseRef, nonce, signatureMemory)
	if err != nil {
		return err
	}
	s.Logger.Warn("status update for a submission this gateway does not have; kept", "request_id", c.Locals(localsRequestID),
		"service", service, "status", change.Status, "replayed", replayed, "auth", how)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"known": false, "recorded": true, "replayed": replayed})
}

// limitStatusUpdates allows statusUpdateLimit updates per submission per
// statusUpdateWindow (shared by every replica through the Counter).
func (s *Server) limitStatusUpdates(c *fiber.Ctx, id string) error {
	if s.Counter == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 500*time.Millisecond)
	defer cancel()
	n, ttl, err := s.Counter.Hit(ctx, "status:"+id, statusUpdateWindow)
	if err != nil {
		s.Logger.Warn("status update limit unavailable", "error", err)
		return nil
	}
	if n > statusUpdateLimit {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(ttl.Seconds())+1))
		return gateway.Errorf(gateway.ETooMany, "error.rate_limited", errors.New("too many status updates for one submission"))
	}
	return nil
}

// authorizeStatusUpdate lets the owning department through, or a request
// signed with the service's route secret. It returns how the caller was
// recognised ("department" or "signature"), for the log.
func (s *Server) authorizeStatusUpdate(c *fiber.Ctx, sub *gateway.Submission) (string, error) {
	p := principal(c)
	if p.HasRole(gateway.RoleDepartment) {
		if p.Department != "" && p.Department == sub.Department {
			return "department", nil
		}
		return "", gateway.Errorf(gateway.EForbidden, "error.forbidden", errors.New("department principal of another department"))
	}
	sig := c.Get(headerSignature)
	if sig == "" {
		if p != nil {
			return "", gateway.Errorf(gateway.EForbidden, "error.forbidden", errors.New("not a department"))
		}
		return "", gateway.Errorf(gateway.EUnauth, "delivery.status_update.unauthorized", errors.New("no credentials"))
	}
	var v CallbackVerifier
	if s.Callbacks != nil {
		v = s.Callbacks(sub.Service)
	}
	if v == nil {
		return "", gateway.Errorf(gateway.EUnauth, "delivery.status_update.unauthorized", errors.New("service has no signing secret"))
	}
	signed := gateway.StatusUpdateSigned(c.Method(), sub.ID, c.Body())
	if err := v.VerifyCallback(c.Get(headerTimestamp), sig, signed); err != nil {
		return "", gateway.Errorf(gateway.EUnauth, "delivery.status_update.unauthorized", err)
	}
	return "signature", nil
}

// residentMessage trims and checks a department's message to the resident
// (a status update's, or an administrator's closing a dead letter): valid
// UTF-8, no control characters but line feeds and tabs, at most
// maxStatusMessage characters. bad is the field error, nil when it is fine.
func residentMessage(raw string) (msg string, bad *gateway.Message) {
	msg = strings.TrimSpace(raw)
	switch {
	case !utf8.ValidString(msg) || strings.ContainsFunc(msg, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
		return msg, &gateway.Message{ID: "validation.encoding"}
	case utf8.RuneCountInString(msg) > maxStatusMessage:
		return msg, &gateway.Message{ID: "validation.max_length", Data: map[string]any{"Max": maxStatusMessage}}
	}
	return msg, nil
}

// parseStatusUpdate decodes and checks a status update; service is the
// optional service id in it.
func parseStatusUpdate(body []byte, now time.Time) (change gateway.StatusChange, caseRef, service string, err error) {
	var req statusUpdateRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil || dec.More() {
		return gateway.StatusChange{}, "", "", gateway.Errorf(gateway.EInvalid, "error.bad_json", err)
	}
	errs := gateway.FieldErrors{}
	if !req.Status.Valid() || req.Status == gateway.StatusReceived {
		errs["status"] = gateway.Message{ID: "delivery.status_update.status"}
	}
	msg, bad := residentMessage(req.Message)
	if bad != nil {
		errs["message"] = *bad
	}
	ref := strings.TrimSpace(req.CaseReference)
	switch {
	case len(ref) > maxCaseReference:
		errs["case_reference"] = gateway.Message{ID: "validation.max_length", Data: map[string]any{"Max": maxCaseReference}}
	case !utf8.ValidString(ref) || strings.ContainsFunc(ref, unicode.IsControl):
		errs["case_reference"] = gateway.Message{ID: "validation.encoding"}
	}
	at := now.UTC()
	if req.At != "" {
		t, err := time.Parse(time.RFC3339Nano, req.At)
		if err != nil || t.After(now.Add(maxClockAhead)) {
			errs["at"] = gateway.Message{ID: "delivery.status_update.at"}
		} else {
			at = t.UTC()
		}
	}
	if len(req.Service) > maxServiceID || strings.ContainsFunc(req.Service, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) {
		errs["service"] = gateway.Message{ID: "validation.encoding"}
	}
	if len(errs) > 0 {
		return gateway.StatusChange{}, "", "", &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"}, Fields: errs}
	}
	return gateway.StatusChange{Status: req.Status, At: at, Note: "status_update", Message: msg}, ref, req.Service, nil
}
