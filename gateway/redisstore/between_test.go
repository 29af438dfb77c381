package redisstore

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

// A department's submissions in a window: newest first, within the bounds,
// paged by offset and count, with payload and history, and without those
// past their retention; on both backends (the demo's too).
func TestDepartmentSubmissionsBetween(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		var ids []string
		for i := range 5 { // one a day
			s.now = func() time.Time { return base.Add(time.Duration(i) * 24 * time.Hour) }
			sub := newSubmission()
			sub.Payload = map[string]any{"n": float64(i)}
			got, _, err := s.Create(ctx, sub, Idempotency{})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, got.ID)
		}
		other := newSubmission()
		other.Department = "elsewhere"
		if _, _, err := s.Create(ctx, other, Idempotency{}); err != nil {
			t.Fatal(err)
		}
		day := func(d int) time.Time { return base.Add(time.Duration(d) * 24 * time.Hour) }

		got, err := s.DepartmentSubmissionsBetween(ctx, "streets", day(1), day(3), 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].ID != ids[3] || got[2].ID != ids[1] {
			t.Fatalf("days 1..3: %v", idsOf(got))
		}
		if got[0].Payload["n"] != float64(3) || len(got[0].History) != 1 || got[0].History[0].Status != gateway.StatusReceived {
			t.Fatalf("record: %+v", got[0])
		}
		page, err := s.DepartmentSubmissionsBetween(ctx, "streets", day(0), day(4), 1, 2)
		if err != nil || len(page) != 2 || page[0].ID != ids[3] || page[1].ID != ids[2] {
			t.Fatalf("offset 1, count 2: %v %v", idsOf(page), err)
		}
		// Past its retention (the record gone): left out.
		if err := rdb.Del(ctx, s.keys.sub(ids[2])).Err(); err != nil {
			t.Fatal(err)
		}
		got, err = s.DepartmentSubmissionsBetween(ctx, "streets", day(0), day(4), 0, 0)
		if err != nil || len(got) != 4 {
			t.Fatalf("after one expired: %v %v", idsOf(got), err)
		}
		none, err := s.DepartmentSubmissionsBetween(ctx, "streets", day(10), day(20), 0, 10)
		if err != nil || none == nil || len(none) != 0 {
			t.Fatalf("empty window: %v %v", none, err)
		}
	})
}

func idsOf(subs []*gateway.Submission) []string {
	out := make([]string, len(subs))
	for i, s := range subs {
		out[i] = s.ID
	}
	return out
}
