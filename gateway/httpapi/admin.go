package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

// DeadLetterStore is what the administration of dead letters needs from
// the store (*redisstore.Store implements it).
type DeadLetterStore interface {
	DeadLetterPage(ctx context.Context, offset, limit int) ([]gateway.DeadLetter, int64, error)
	DeadLetterInfo(ctx context.Context, id string) (gateway.DeadLetter, bool, error)
	Redrive(ctx context.Context, id string) error
	// CloseDeadLetter changes the status like a status update (the
	// resident's and the department's events with it) and reports
	// whether the status moved.
	CloseDeadLetter(ctx context.Context, id string, status gateway.Status, message string, retention time.Duration) (moved bool, err error)
	LookupReference(ctx context.Context, reference string) (string, error)
}

// defaultCloseRetention is how long a closed dead letter's metadata is kept
// when its service is no longer in the catalog.
const defaultCloseRetention = 30 * 24 * time.Hour

func (s *Server) deadLetters() (DeadLetterStore, error) {
	st := s.DeadLetters
	if st == nil {
		return nil, gateway.Errorf(gateway.EUnavailable, "error.store_unavailable", errors.New("store has no dead letters"))
	}
	return st, nil
}

// deadLetterID resolves the {id} of an admin route: a submission id or a
// receipt reference (the pages use references: they are not secrets).
func (s *Server) deadLetterID(c *fiber.Ctx, st DeadLetterStore, param string) (string, error) {
	p := strings.Clone(strings.TrimSpace(param)) // Fiber lends it
	if len(p) == 32 && strings.ToLower(p) == p && !strings.Contains(p, "-") {
		return p, nil
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	return st.LookupReference(ctx, p)
}

// deadLetterView is a dead letter as the API shows it: never the payload.
type deadLetterView struct {
	gateway.DeadLetter
	DeadLettered bool                   `json:"dead_lettered"`
	History      []gateway.StatusChange `json:"history,omitempty"`
}

// Dead letters by department. An administrator whose sign-in carries a
// department claim administers that department's dead letters only: the
// list shows only those, and any other is "not found" (404, so that
// another department's references cannot be probed). An administrator
// without a department claim is the municipality's and sees all.

// mayAdminister reports whether p may see and act on dl.
func mayAdminister(p *gateway.Principal, dl gateway.DeadLetter) bool {
	return p != nil && (p.Department == "" || p.Department == dl.Department)
}

// deptScanLimit bounds the dead letters read to make a department's page
// (the dead-letter index is not split by department).
const deptScanLimit = 10000

// readDeadLetterPage checks the admin role and reads the page of dead letters
// that ?offset=&limit= ask for, of the admin's department when they have one.
func (s *Server) readDeadLetterPage(c *fiber.Ctx) (list []gateway.DeadLetter, total int64, offset, limit int, err error) {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	st, err := s.deadLetters()
	if err != nil {
		return nil, 0, 0, 0, err
	}
	offset, limit = pageArgs(c)
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	if p.Department == "" {
		list, total, err = st.DeadLetterPage(ctx, offset, limit)
		return list, total, offset, limit, err
	}
	const batch = 500
	for from := 0; from < deptScanLimit; from += batch {
		page, all, err := st.DeadLetterPage(ctx, from, batch)
		if err != nil {
			return nil, 0, 0, 0, err
		}
		for _, dl := range page {
			if !mayAdminister(p, dl) {
				continue
			}
			if total >= int64(offset) && len(list) < limit {
				list = append(list, dl)
			}
			total++
		}
		if len(page) < batch || int64(from+batch) >= all {
			break
		}
	}
	return list, total, offset, limit, nil
}

// apiDeadLetters: GET /api/v1/admin/dead-letters[?offset=&limit=].
func (s *Server) apiDeadLetters(c *fiber.Ctx) error {
	list, total, offset, limit, err := s.readDeadLetterPage(c)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"dead_letters": list, "total": total, "offset": offset, "limit": limit})
}

func pageArgs(c *fiber.Ctx) (offset, limit int) {
	offset, _ = strconv.Atoi(c.Query("offset"))
	limit, _ = strconv.Atoi(c.Query("limit"))
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	return max(offset, 0), limit
}

// loadDeadLetter finds a dead letter by id or reference, with its history;
// not found when p may not administer it.
func (s *Server) loadDeadLetter(c *fiber.Ctx, p *gateway.Principal, param string) (deadLetterView, error) {
	st, err := s.deadLetters()
	if err != nil {
		return deadLetterView{}, err
	}
	id, err := s.deadLetterID(c, st, param)
	if err != nil {
		return deadLetterView{}, err
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	dl, dead, err := st.DeadLetterInfo(ctx, id)
	if err != nil {
		return deadLetterView{}, err
	}
	if !mayAdminister(p, dl) {
		return deadLetterView{}, gateway.Errorf(gateway.ENotFound, "error.submission_not_found", nil)
	}
	sub, err := s.Store.Get(ctx, id)
	if err != nil {
		return deadLetterView{}, err
	}
	return deadLetterView{DeadLetter: dl, DeadLettered: dead, History: sub.History}, nil
}

// apiDeadLetter: GET /api/v1/admin/dead-letters/{id}: reason, attempts and
// history; never the payload.
func (s *Server) apiDeadLetter(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	v, err := s.loadDeadLetter(c, p, c.Params("id"))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(v)
}

// replay sends a dead letter to the queue again with a fresh count of
// attempts.
func (s *Server) replay(c *fiber.Ctx, p *gateway.Principal, param string) (string, error) {
	st, err := s.deadLetters()
	if err != nil {
		return "", err
	}
	id, err := s.deadLetterID(c, st, param)
	if err != nil {
		return "", err
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	dl, _, err := st.DeadLetterInfo(ctx, id)
	if err != nil {
		return "", err
	}
	if !mayAdminister(p, dl) {
		return "", gateway.Errorf(gateway.ENotFound, "error.submission_not_found", nil)
	}
	if err := st.Redrive(ctx, id); err != nil {
		return "", err
	}
	s.Logger.Warn("dead letter replayed", "request_id", c.Locals(localsRequestID), "reference", dl.Reference,
		"service", dl.Service, "admin", p.Subject)
	return dl.Reference, nil
}

// closeDead ends a dead letter that was handled another way.
func (s *Server) closeDead(c *fiber.Ctx, p *gateway.Principal, param string, status gateway.Status, message string) (string, error) {
	st, err := s.deadLetters()
	if err != nil {
		return "", err
	}
	if status == "" {
		status = gateway.StatusFailed
	}
	if status != gateway.StatusFailed && status != gateway.StatusClosed {
		return "", &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"},
			Fields: gateway.FieldErrors{"status": {ID: "admin.dead.close_status_invalid"}}}
	}
	// The message is the department's to the resident, as a status
	// update's (the status page shows it): the same checks. A form's
	// textarea sends CRLF line ends; stored as LF like an API's.
	msg, bad := residentMessage(strings.ReplaceAll(message, "\r\n", "\n"))
	if bad != nil {
		return "", &gateway.Error{Code: gateway.EInvalid, Message: gateway.Message{ID: "error.validation"},
			Fields: gateway.FieldErrors{"message": *bad}}
	}
	id, err := s.deadLetterID(c, st, param)
	if err != nil {
		return "", err
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	dl, _, err := st.DeadLetterInfo(ctx, id)
	if err != nil {
		return "", err
	}
	if !mayAdminister(p, dl) {
		return "", gateway.Errorf(gateway.ENotFound, "error.submission_not_found", nil)
	}
	retention := defaultCloseRetention
	if svc, ok := s.Catalog.Get(dl.Service); ok && svc.Retention > 0 {
		retention = svc.Retention
	}
	moved, err := st.CloseDeadLetter(ctx, id, status, msg, retention)
	if err != nil {
		return "", err
	}
	if moved {
		// A status change like a case system's: counted once, as
		// apiStatusUpdate does (the resident's and the department's
		// events were written by the store with the status).
		if sub, err := s.Store.Get(ctx, id); err == nil {
			s.trackStatusChanged(sub)
		} else {
			s.Logger.Warn("dead letter closed; its status change not counted", "request_id", c.Locals(localsRequestID),
				"reference", dl.Reference, "error", err)
		}
	}
	s.Logger.Warn("dead letter closed", "request_id", c.Locals(localsRequestID), "reference", dl.Reference,
		"service", dl.Service, "status", status, "moved", moved, "admin", p.Subject)
	return dl.Reference, nil
}

// apiReplayDeadLetter: POST /api/v1/admin/dead-letters/{id}/replay.
func (s *Server) apiReplayDeadLetter(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	ref, err := s.replay(c, p, c.Params("id"))
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"reference": ref, "replayed": true})
}

// apiCloseDeadLetter: POST /api/v1/admin/dead-letters/{id}/close with an
// optional JSON body {"status": "failed"|"closed", "message": "..."}.
func (s *Server) apiCloseDeadLetter(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	var req struct {
		Status  gateway.Status `json:"status"`
		Message string         `json:"message"`
	}
	if body := c.Body(); len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return gateway.Errorf(gateway.EInvalid, "error.bad_json", err)
		}
	}
	ref, err := s.closeDead(c, p, c.Params("id"), req.Status, req.Message)
	if err != nil {
		return err
	}
	status := req.Status
	if status == "" {
		status = gateway.StatusFailed
	}
	return c.JSON(fiber.Map{"reference": ref, "closed": true, "status": status})
}

// --- pages ---------------------------------------------------------------

type deadLetterRow struct {
	Reference, Service, Department, Reason, LastError string
	Attempts                                          int
	DeadAt, DeadAtISO, Created                        string
	Link                                              string
}

type deadLettersContent struct {
	Rows   []deadLetterRow
	Total  int
	Notice string
}

func (s *Server) deadLetterRow(c *fiber.Ctx, dl gateway.DeadLetter) deadLetterRow {
	l := s.localizer(c)
	title := dl.Service
	if svc, ok := s.Catalog.Get(dl.Service); ok {
		title = l.T(svc.MsgTitle())
	}
	r := deadLetterRow{Reference: dl.Reference, Service: title, Department: l.T(gateway.MsgDepartment(dl.Department)),
		Reason: reasonText(l.T, dl.Reason), LastError: dl.LastError, Attempts: dl.Attempts,
		Created: l.DateTime(dl.CreatedAt.In(stockholm)),
		Link:    "/admin/dead-letters/" + url.PathEscape(dl.Reference)}
	if !dl.DeadAt.IsZero() {
		r.DeadAt, r.DeadAtISO = l.DateTime(dl.DeadAt.In(stockholm)), dl.DeadAt.Format(time.RFC3339)
	}
	return r
}

// reasonText names a dead-letter reason for people.
func reasonText(t func(string, ...any) string, reason string) string {
	switch reason {
	case "permanent":
		return t("admin.dead.reason.permanent")
	case "max_attempts":
		return t("admin.dead.reason.max_attempts")
	case "unknown_service":
		return t("admin.dead.reason.unknown_service")
	case "redelivered":
		return t("admin.dead.reason.redelivered")
	}
	return reason
}

// notice turns ?done= after a form post into a message.
func notice(t func(string, ...any) string, c *fiber.Ctx) string {
	ref := c.Query("ref")
	switch c.Query("done") {
	case "replayed":
		return t("admin.dead.replayed", "Reference", ref)
	case "closed":
		return t("admin.dead.closed", "Reference", ref)
	}
	return ""
}

// deadLettersPage: GET /admin/dead-letters.
func (s *Server) deadLettersPage(c *fiber.Ctx) error {
	list, total, _, _, err := s.readDeadLetterPage(c)
	if err != nil {
		return err
	}
	l := s.localizer(c)
	dc := deadLettersContent{Total: int(total), Notice: notice(l.T, c)}
	for _, dl := range list {
		dc.Rows = append(dc.Rows, s.deadLetterRow(c, dl))
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, fiber.StatusOK, "admin_dead_letters", l.T("admin.dead.title"), dc)
}

type historyView struct{ ISO, When, Status, Note, Message string }

type deadLetterContent struct {
	Row          deadLetterRow
	DeadLettered bool
	Status       string
	History      []historyView
}

// deadLetterPage: GET /admin/dead-letters/{reference}.
func (s *Server) deadLetterPage(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	v, err := s.loadDeadLetter(c, p, c.Params("ref"))
	if err != nil {
		return err
	}
	l := s.localizer(c)
	dc := deadLetterContent{Row: s.deadLetterRow(c, v.DeadLetter), DeadLettered: v.DeadLettered,
		Status: l.T("status.value." + v.Status)}
	for _, h := range v.History {
		dc.History = append(dc.History, historyView{ISO: h.At.Format(time.RFC3339), When: l.Timestamp(h.At.In(stockholm)),
			Status: l.T("status.value." + string(h.Status)), Note: h.Note, Message: h.Message})
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, fiber.StatusOK, "admin_dead_letter", l.T("admin.dead.detail_title", "Reference", v.Reference), dc)
}

// replayDeadLetterForm: POST /admin/dead-letters/{reference}/replay.
func (s *Server) replayDeadLetterForm(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	ref, err := s.replay(c, p, c.Params("ref"))
	if err != nil {
		return err
	}
	return c.Redirect("/admin/dead-letters?done=replayed&ref="+url.QueryEscape(ref), fiber.StatusSeeOther)
}

// closeDeadLetterForm: POST /admin/dead-letters/{reference}/close.
func (s *Server) closeDeadLetterForm(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	ref, err := s.closeDead(c, p, c.Params("ref"), gateway.Status(c.FormValue("status")), c.FormValue("message"))
	if err != nil {
		return err
	}
	return c.Redirect("/admin/dead-letters?done=closed&ref="+url.QueryEscape(ref), fiber.StatusSeeOther)
}
