package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

// MaxBetween is the most submissions DepartmentSubmissionsBetween returns
// in one call.
const MaxBetween = 1000

// DepartmentSubmissionsBetween lists a department's submissions created in
// [from, to], newest first, skipping the first offset, with payloads (while
// kept) and histories: what Open311's GET requests shows. count is capped
// at MaxBetween; submissions past their retention are left out.
func (s *Store) DepartmentSubmissionsBetween(ctx context.Context, department string, from, to time.Time, offset, count int) ([]*gateway.Submission, error) {
	if count <= 0 || count > MaxBetween {
		count = MaxBetween
	}
	if offset < 0 {
		offset = 0
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ids, err := s.rdb.ZRevRangeByScore(ctx, s.keys.dept(department), &redis.ZRangeBy{
		Min: strconv.FormatInt(from.UnixMilli(), 10), Max: strconv.FormatInt(to.UnixMilli(), 10),
		Offset: int64(offset), Count: int64(count),
	}).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	if len(ids) == 0 {
		return []*gateway.Submission{}, nil
	}
	type read struct {
		meta    *redis.MapStringStringCmd
		payload *redis.StringCmd
		hist    *redis.StringSliceCmd
	}
	reads := make([]read, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			reads[i] = read{p.HGetAll(ctx, s.keys.sub(id)), p.Get(ctx, s.keys.payload(id)), p.LRange(ctx, s.keys.hist(id), 0, -1)}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err)
	}
	out := make([]*gateway.Submission, 0, len(ids))
	for i, r := range reads {
		m := r.meta.Val()
		if len(m) == 0 {
			continue // past its retention
		}
		sub, err := decodeMeta(m)
		if err != nil {
			return nil, unavailable(fmt.Errorf("submission %s: %w", ids[i], err))
		}
		if p, err := r.payload.Result(); err == nil {
			if err := json.Unmarshal([]byte(p), &sub.Payload); err != nil {
				return nil, unavailable(fmt.Errorf("submission %s: decode payload: %w", ids[i], err))
			}
		}
		sub.History = make([]gateway.StatusChange, 0, len(r.hist.Val()))
		for _, h := range r.hist.Val() {
			var c gateway.StatusChange
			if err := json.Unmarshal([]byte(h), &c); err != nil {
				return nil, unavailable(fmt.Errorf("submission %s: decode history: %w", ids[i], err))
			}
			sub.History = append(sub.History, c)
		}
		out = append(out, sub)
	}
	return out, nil
}
