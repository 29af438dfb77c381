package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/servicepoint"
)

// MessageDeadLetterStore lists and replays what the notifier (messages to
// residents, department webhooks) and the follow-up dispatcher (answers
// for case systems) gave up on.
type MessageDeadLetterStore interface {
	NotificationDeadLetters(ctx context.Context, limit int) ([]gateway.NotifyEvent, error)
	FollowUpDeadLetters(ctx context.Context, limit int) ([]gateway.FollowUpDead, error)
	ReplayNotification(ctx context.Context, event string) (gateway.NotifyEvent, bool, error)
	ReplayFollowUp(ctx context.Context, id string, seq int) (gateway.FollowUpDead, bool, error)
}

// Audit actions of message replays (shown on /admin/audit).
const (
	actionMessageReplayed  = "message_replayed"
	actionFollowUpReplayed = "followup_replayed"
)

// messageScanLimit bounds the dead letters read for one list or replay
// (the stores keep at most 10,000 of each).
const messageScanLimit = 10000

// Message dead letters by department, like the submissions' dead letters
// (see mayAdminister): an administrator with a department claim sees and
// replays that department's only; any other is "not found".
func mayAdministerDept(p *gateway.Principal, department string) bool {
	return p != nil && (p.Department == "" || p.Department == department)
}

func (s *Server) messageDeadLetters() (MessageDeadLetterStore, error) {
	if s.MessageDeadLetters == nil {
		return nil, gateway.Errorf(gateway.EUnavailable, "error.store_unavailable", errors.New("no message dead letters"))
	}
	return s.MessageDeadLetters, nil
}

// readMessageDeadLetters reads the newest limit dead letters of each kind
// that p may administer.
func (s *Server) readMessageDeadLetters(c *fiber.Ctx, p *gateway.Principal, limit int) ([]gateway.NotifyEvent, []gateway.FollowUpDead, error) {
	st, err := s.messageDeadLetters()
	if err != nil {
		return nil, nil, err
	}
	scan := limit
	if p.Department != "" {
		scan = messageScanLimit
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	all, err := st.NotificationDeadLetters(ctx, scan)
	if err != nil {
		return nil, nil, err
	}
	notes := []gateway.NotifyEvent{}
	for _, ev := range all {
		if mayAdministerDept(p, ev.Department) && len(notes) < limit {
			notes = append(notes, ev)
		}
	}
	fall, err := st.FollowUpDeadLetters(ctx, scan)
	if err != nil {
		return nil, nil, err
	}
	fups := []gateway.FollowUpDead{}
	for _, d := range fall {
		if mayAdministerDept(p, d.Department) && len(fups) < limit {
			fups = append(fups, d)
		}
	}
	return notes, fups, nil
}

// apiMessageDeadLetters: GET /api/v1/admin/message-dead-letters (role
// admin; a department's administrator sees that department's): messages
// to residents, department webhooks and follow-ups to case systems that
// became dead letters, newest first (?limit=, at most 500 of each).
func (s *Server) apiMessageDeadLetters(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	_, limit := pageArgs(c)
	notes, fups, err := s.readMessageDeadLetters(c, p, limit)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"notifications": notes, "followups": fups})
}

// replayNotification replays the dead-lettered event named event, when p
// may administer it, and audits it. It returns the submission's reference
// ("" when the submission is gone).
func (s *Server) replayNotification(c *fiber.Ctx, p *gateway.Principal, event string) (string, error) {
	st, err := s.messageDeadLetters()
	if err != nil {
		return "", err
	}
	event = strings.Clone(strings.TrimSpace(event))
	if event == "" || len(event) > 128 {
		return "", gateway.Errorf(gateway.ENotFound, "admin.msgdead.not_found", nil)
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	all, err := st.NotificationDeadLetters(ctx, messageScanLimit)
	if err != nil {
		return "", err
	}
	var dl *gateway.NotifyEvent
	for i := range all {
		if all[i].Event == event {
			dl = &all[i]
			break
		}
	}
	if dl == nil || !mayAdministerDept(p, dl.Department) {
		return "", gateway.Errorf(gateway.ENotFound, "admin.msgdead.not_found", nil)
	}
	if _, found, err := st.ReplayNotification(ctx, event); err != nil {
		return "", err
	} else if !found {
		return "", gateway.Errorf(gateway.ENotFound, "admin.msgdead.not_found", errors.New("replayed already"))
	}
	ref := s.referenceOf(ctx, dl.SubmissionID)
	kind, what := "resident", string(dl.Status)
	if dl.Kind == gateway.KindWebhook {
		kind, what = dl.Kind, dl.Type
	}
	s.Logger.Warn("message dead letter replayed", "request_id", c.Locals(localsRequestID), "reference", ref,
		"kind", kind, "admin", p.Subject)
	return ref, s.audit(c, p, "", servicepoint.AuditEntry{Action: actionMessageReplayed, Reference: ref, Service: kind + ":" + what})
}

// replayFollowUp replays the dead-lettered follow-up (id, seq), when p may
// administer it, and audits it.
func (s *Server) replayFollowUp(c *fiber.Ctx, p *gateway.Principal, id string, seq int) (string, error) {
	st, err := s.messageDeadLetters()
	if err != nil {
		return "", err
	}
	id = strings.Clone(strings.TrimSpace(id))
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	all, err := st.FollowUpDeadLetters(ctx, messageScanLimit)
	if err != nil {
		return "", err
	}
	var dl *gateway.FollowUpDead
	for i := range all {
		if all[i].SubmissionID == id && all[i].Seq == seq {
			dl = &all[i]
			break
		}
	}
	if dl == nil || !mayAdministerDept(p, dl.Department) {
		return "", gateway.Errorf(gateway.ENotFound, "admin.msgdead.not_found", nil)
	}
	if _, found, err := st.ReplayFollowUp(ctx, id, seq); err != nil {
		return "", err
	} else if !found {
		return "", gateway.Errorf(gateway.ENotFound, "admin.msgdead.not_found", errors.New("replayed already"))
	}
	ref := s.referenceOf(ctx, id)
	s.Logger.Warn("follow-up dead letter replayed", "request_id", c.Locals(localsRequestID), "reference", ref,
		"seq", seq, "admin", p.Subject)
	return ref, s.audit(c, p, "", servicepoint.AuditEntry{Action: actionFollowUpReplayed, Reference: ref, Service: "answer:" + strconv.Itoa(seq)})
}

// referenceOf is the receipt reference of submission id ("" when gone):
// audit entries and logs name references, never ids.
func (s *Server) referenceOf(ctx context.Context, id string) string {
	if s.Store == nil {
		return ""
	}
	sub, err := s.Store.Get(ctx, id)
	if err != nil {
		return ""
	}
	return sub.Reference
}

// maxReplayBody bounds the body of a replay request.
const maxReplayBody = 1024

// apiReplayNotification: POST /api/v1/admin/message-dead-letters/notifications/replay
// with {"event": "<event id>"} (the id is in the body, not the path: it
// holds the submission id, the status link's secret, and paths are
// logged). 202 when queued again; 404 when there is no such dead letter
// (for this administrator), or it was replayed already.
func (s *Server) apiReplayNotification(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	var req struct {
		Event string `json:"event"`
	}
	if err := decodeSmallJSON(c.Body(), &req); err != nil {
		return err
	}
	ref, err := s.replayNotification(c, p, req.Event)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"replayed": true, "reference": ref})
}

// apiReplayFollowUp: POST /api/v1/admin/message-dead-letters/followups/replay
// with {"id": "<submission id>", "seq": n}.
func (s *Server) apiReplayFollowUp(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	var req struct {
		ID  string `json:"id"`
		Seq int    `json:"seq"`
	}
	if err := decodeSmallJSON(c.Body(), &req); err != nil {
		return err
	}
	ref, err := s.replayFollowUp(c, p, req.ID, req.Seq)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"replayed": true, "reference": ref})
}

func decodeSmallJSON(body []byte, v any) error {
	if len(body) > maxReplayBody {
		return gateway.Errorf(gateway.EInvalid, "error.bad_json", errors.New("body too large"))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return gateway.Errorf(gateway.EInvalid, "error.bad_json", err)
	}
	return nil
}

// --- page ------------------------------------------------------------------

type messageDeadRow struct {
	Kind, Status, Department, Reference, Reason, When, WhenISO string
	Attempt                                                    int
	Event                                                      string // notifications: the replay form's value
	ID                                                         string // follow-ups
	Seq                                                        int
}

type messageDeadContent struct {
	Notifications, FollowUps []messageDeadRow
	Notice                   string
}

// messageDeadLettersPage: GET /admin/message-dead-letters.
func (s *Server) messageDeadLettersPage(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	notes, fups, err := s.readMessageDeadLetters(c, p, 100)
	if err != nil {
		return err
	}
	l := s.localizer(c)
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	when := func(ms int64) (string, string) {
		if ms <= 0 {
			return "", ""
		}
		t := time.UnixMilli(ms)
		return l.Timestamp(t.In(stockholm)), t.UTC().Format(time.RFC3339)
	}
	mc := messageDeadContent{}
	switch c.Query("done") {
	case "replayed":
		mc.Notice = l.T("admin.msgdead.replayed", "Reference", c.Query("ref"))
	}
	for _, ev := range notes {
		kind := "admin.msgdead.kind.resident"
		status := l.T("status.value." + string(ev.Status))
		if ev.Kind == gateway.KindWebhook {
			kind, status = "admin.msgdead.kind.webhook", ev.Type
		}
		r := messageDeadRow{Kind: l.T(kind), Status: status, Department: l.T(gateway.MsgDepartment(ev.Department)),
			Reference: s.referenceOf(ctx, ev.SubmissionID), Reason: ev.Reason, Attempt: ev.Attempt, Event: ev.Event}
		r.When, r.WhenISO = when(ev.AtMs)
		mc.Notifications = append(mc.Notifications, r)
	}
	for _, d := range fups {
		r := messageDeadRow{Kind: l.T("admin.msgdead.kind.followup"), Department: l.T(gateway.MsgDepartment(d.Department)),
			Reference: s.referenceOf(ctx, d.SubmissionID), Reason: d.Reason, ID: d.SubmissionID, Seq: d.Seq}
		r.When, r.WhenISO = when(d.AtMs)
		mc.FollowUps = append(mc.FollowUps, r)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, fiber.StatusOK, "admin_message_dead_letters", l.T("admin.msgdead.title"), mc)
}

// replayNotificationForm: POST /admin/message-dead-letters/notifications/replay.
func (s *Server) replayNotificationForm(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	ref, err := s.replayNotification(c, p, c.FormValue("event"))
	if err != nil {
		return err
	}
	return c.Redirect("/admin/message-dead-letters?done=replayed&ref="+url.QueryEscape(ref), fiber.StatusSeeOther)
}

// replayFollowUpForm: POST /admin/message-dead-letters/followups/replay.
func (s *Server) replayFollowUpForm(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	seq, _ := strconv.Atoi(c.FormValue("seq"))
	ref, err := s.replayFollowUp(c, p, c.FormValue("id"), seq)
	if err != nil {
		return err
	}
	return c.Redirect("/admin/message-dead-letters?done=replayed&ref="+url.QueryEscape(ref), fiber.StatusSeeOther)
}
