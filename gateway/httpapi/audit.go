package httpapi

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/servicepoint"
)

// The audit stream: every action staff take on behalf of a resident (filed,
// refused, receipt opened), with who, when, where, the subject masked and
// what. Append-only in Redis (XADD); administrators read it at
// GET /api/v1/admin/audit and /admin/audit.

// audit appends an entry through the intake (which logs one that cannot be
// written, with its reference). Callers refuse a refusal or a receipt whose
// entry cannot be written.
func (s *Server) audit(c *fiber.Ctx, p *gateway.Principal, point string, e servicepoint.AuditEntry) error {
	return s.Intake.Audit(c.UserContext(), p, point, e)
}

func (s *Server) readAudit(c *fiber.Ctx) ([]servicepoint.AuditEntry, int64, error) {
	if _, err := requireRole(c, gateway.RoleAdmin); err != nil {
		return nil, 0, err
	}
	st, err := s.desk()
	if err != nil {
		return nil, 0, err
	}
	limit, _ := strconv.Atoi(c.Query("limit", "100"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	return st.Audit(ctx, clone(c.Query("before")), limit)
}

// apiAudit: GET /api/v1/admin/audit[?before=&limit=] (role admin), newest
// first; "next" is the cursor for the page after.
func (s *Server) apiAudit(c *fiber.Ctx) error {
	entries, total, err := s.readAudit(c)
	if err != nil {
		return err
	}
	out := fiber.Map{"entries": entries, "total": total}
	if len(entries) > 0 {
		out["next"] = entries[len(entries)-1].ID
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

type auditRow struct {
	When, WhenISO, Who, Where, Subject, Action, Service, Reference, Check string
}

type auditContent struct {
	Rows  []auditRow
	Total int64
	Next  string
}

// auditPage: GET /admin/audit[?before=], the audit stream for
// administrators.
func (s *Server) auditPage(c *fiber.Ctx) error {
	entries, total, err := s.readAudit(c)
	if err != nil {
		return err
	}
	l := s.localizer(c)
	ac := auditContent{Total: total}
	for _, e := range entries {
		r := auditRow{WhenISO: e.At, Who: e.ActorName, Where: e.ServicePoint, Subject: e.Subject,
			Action: l.T("desk.audit.action." + e.Action), Service: e.Service, Reference: e.Reference}
		if t, err := time.Parse(time.RFC3339Nano, e.At); err == nil {
			r.When = l.Timestamp(t.In(stockholm))
		}
		if pt, ok := s.ServicePoints.Get(e.ServicePoint); ok {
			r.Where = pt.Name
		}
		if svc, ok := s.Catalog.Get(e.Service); ok {
			r.Service = l.T(svc.MsgTitle())
		}
		if e.IdentityCheck != "" {
			r.Check = l.T("desk.check." + e.IdentityCheck)
		}
		ac.Rows = append(ac.Rows, r)
	}
	if len(entries) == 100 {
		ac.Next = entries[len(entries)-1].ID
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, fiber.StatusOK, "admin_audit", l.T("desk.audit.title"), ac)
}
