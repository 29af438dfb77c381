package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/notice"
)

// SaveNotice stores (or replaces) a notice; it prunes expired notices first
// and refuses a new one when notice.MaxActive are stored (EConflict).
func (s *Store) SaveNotice(ctx context.Context, n notice.Notice, now time.Time) error {
	b, err := json.Marshal(n)
	if err != nil {
		return gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	if len(b) > notice.MaxJSON {
		return gateway.Errorf(gateway.EInvalid, "notice.error.too_large", fmt.Errorf("notice %d bytes", len(b)))
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ok, err := saveNoticeScript.Run(ctx, s.rdb, []string{s.keys.notices(), s.keys.noticeEnds()},
		now.UnixMilli(), n.ID, b, n.End.UnixMilli(), notice.MaxActive).Int()
	if err != nil {
		return unavailable(err)
	}
	if ok == 0 {
		return &gateway.Error{Code: gateway.EConflict, Message: gateway.Message{ID: "notice.error.full",
			Data: map[string]any{"Max": notice.MaxActive}}, Cause: notice.ErrFull}
	}
	return nil
}

// DeleteNotice removes a notice; false when there was none.
func (s *Store) DeleteNotice(ctx context.Context, id string) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var h *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HDel(ctx, s.keys.notices(), id)
		p.ZRem(ctx, s.keys.noticeEnds(), id)
		return nil
	})
	if err != nil {
		return false, unavailable(err)
	}
	n := h.Val()
	return n > 0, nil
}

// Notices returns the stored notices that have not ended at now, in no
// particular order (notice.Select orders and filters them for a page).
func (s *Store) Notices(ctx context.Context, now time.Time) ([]notice.Notice, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, s.keys.notices()).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]notice.Notice, 0, len(m))
	for id, v := range m {
		var n notice.Notice
		if err := json.Unmarshal([]byte(v), &n); err != nil {
			return nil, unavailable(fmt.Errorf("notice %s: %w", id, err))
		}
		if n.End.After(now) {
			out = append(out, n)
		}
	}
	return out, nil
}
