package httpapi

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

// MessageDeadLetterStore lists what the notifier and the follow-up
// dispatcher gave up on.
type MessageDeadLetterStore interface {
	NotificationDeadLetters(ctx context.Context, limit int) ([]gateway.NotifyEvent, error)
	FollowUpDeadLetters(ctx context.Context, limit int) ([]string, error)
}

// apiMessageDeadLetters: GET /api/v1/admin/message-dead-letters (role
// admin, all departments): notifications to residents and follow-ups to
// case systems that became dead letters, newest first (?limit=, at most
// 500). Notifications name the submission, status, attempts and reason;
// follow-ups are "<submission id> <answer number> <reason>".
func (s *Server) apiMessageDeadLetters(c *fiber.Ctx) error {
	p, err := requireRole(c, gateway.RoleAdmin)
	if err != nil {
		return err
	}
	if p.Department != "" {
		return gateway.Errorf(gateway.EForbidden, "error.forbidden", errors.New("department administrators see their dead letters only"))
	}
	if s.MessageDeadLetters == nil {
		return gateway.Errorf(gateway.EUnavailable, "error.store_unavailable", errors.New("no message dead letters"))
	}
	_, limit := pageArgs(c)
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	notes, err := s.MessageDeadLetters.NotificationDeadLetters(ctx, limit)
	if err != nil {
		return err
	}
	fups, err := s.MessageDeadLetters.FollowUpDeadLetters(ctx, limit)
	if err != nil {
		return err
	}
	if notes == nil {
		notes = []gateway.NotifyEvent{}
	}
	if fups == nil {
		fups = []string{}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"notifications": notes, "followups": fups})
}
