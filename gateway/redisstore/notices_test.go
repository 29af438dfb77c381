package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/notice"
)

// Notices are bounded in count; a save prunes the ended ones; reads leave
// out ended ones. Satisfaction answers are stored once. On the real and
// the embedded Redis (the demo).
func TestNoticesBoundedAndPruned(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := context.Background()
		now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
		mk := func(end time.Duration) notice.Notice {
			return notice.Notice{ID: notice.NewID(), Severity: notice.Disruption, Start: now.Add(-time.Hour), End: now.Add(end),
				Texts: map[string]notice.Text{"sv": {Title: "t", Body: "b"}}}
		}
		short := mk(time.Minute)
		if err := s.SaveNotice(ctx, short, now); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < notice.MaxActive; i++ {
			if err := s.SaveNotice(ctx, mk(time.Hour), now); err != nil {
				t.Fatal(err)
			}
		}
		var gerr *gateway.Error
		if err := s.SaveNotice(ctx, mk(time.Hour), now); !errors.As(err, &gerr) || gerr.Code != gateway.EConflict {
			t.Fatalf("notice %d: %v", notice.MaxActive+1, err)
		}
		// Two minutes later the short one has ended: read without it, and
		// the next save prunes it and fits.
		later := now.Add(2 * time.Minute)
		if list, err := s.Notices(ctx, later); err != nil || len(list) != notice.MaxActive-1 {
			t.Fatalf("notices: %d %v", len(list), err)
		}
		if err := s.SaveNotice(ctx, mk(time.Hour), later); err != nil {
			t.Fatalf("after the end of one: %v", err)
		}
		if n := rdb.HLen(ctx, s.keys.notices()).Val(); n != notice.MaxActive {
			t.Fatalf("stored %d", n)
		}
		if ok, err := s.DeleteNotice(ctx, short.ID); err != nil || ok {
			t.Fatalf("delete a pruned notice: %v %v", ok, err)
		}

		id := s.newID()
		first, err := s.SaveSatisfaction(ctx, id, 4, "bra", now, time.Hour)
		if err != nil || !first {
			t.Fatalf("first answer: %v %v", first, err)
		}
		if again, err := s.SaveSatisfaction(ctx, id, 1, "", now, time.Hour); err != nil || again {
			t.Fatalf("second answer stored: %v %v", again, err)
		}
		if score, comment, ok, err := s.SatisfactionOf(ctx, id); err != nil || !ok || score != 4 || comment != "bra" {
			t.Fatalf("answer: %d %q %v %v", score, comment, ok, err)
		}
		if ttl := rdb.TTL(ctx, s.keys.satisfaction(id)).Val(); ttl <= 0 || ttl > 24*time.Hour {
			t.Fatalf("answer TTL %v (at least a day)", ttl)
		}
	})
}
