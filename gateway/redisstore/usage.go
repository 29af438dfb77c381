package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Usage statistics (gateway/usage implements the meaning; this is storage).

// usageVisitorsTTL is how long a day's visitor estimate is kept.
const usageVisitorsTTL = 400 * 24 * time.Hour

// AddUsage adds counters (day -> field -> n) with HINCRBY and visitor hashes
// (day -> scope -> members) with PFADD, in one pipeline. The counters are
// added by one script with a token per call, so a pipeline re-sent by
// go-redis after a broken connection does not count them twice (PFADD and
// EXPIRE may run twice: they are idempotent).
func (s *Store) AddUsage(ctx context.Context, counts map[string]map[string]int64, visitors map[string]map[string][]string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	keys := []string{s.keys.onceUsage(ackToken())}
	args := []any{onceKeep.Milliseconds()}
	for day, fields := range counts {
		keys = append(keys, s.keys.usageDay(day))
		for f, n := range fields {
			args = append(args, len(keys), f, n)
		}
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if len(keys) > 1 {
			usageAddScript.Eval(ctx, p, keys, args...) // EVAL: a pipeline cannot fall back from EVALSHA
		}
		for day, scopes := range visitors {
			for scope, members := range scopes {
				if len(members) == 0 {
					continue
				}
				key := s.keys.usageVisitors(day, scope)
				args := make([]any, len(members))
				for i, m := range members {
					args[i] = m
				}
				p.PFAdd(ctx, key, args...)
				p.Expire(ctx, key, usageVisitorsTTL)
			}
		}
		return nil
	})
	return err
}

// UsageDayRows returns the precomputed open-data rows of each day (nil
// where none is stored), in the order of days: one MGET.
func (s *Store) UsageDayRows(ctx context.Context, days []string) ([][]byte, error) {
	out := make([][]byte, len(days))
	if len(days) == 0 {
		return out, nil
	}
	keys := make([]string, len(days))
	for i, d := range days {
		keys[i] = s.keys.usageOpenDay(d)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	for i, v := range vals {
		if str, ok := v.(string); ok {
			out[i] = []byte(str)
		}
	}
	return out, nil
}

// PutUsageDayRows stores a closed day's open-data rows for ttl.
func (s *Store) PutUsageDayRows(ctx context.Context, day string, rows []byte, ttl time.Duration) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.rdb.Set(ctx, s.keys.usageOpenDay(day), rows, ttl).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// UsageCounts returns each day's counters, in the order of days.
func (s *Store) UsageCounts(ctx context.Context, days []string) ([]map[string]int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	cmds := make([]*redis.MapStringStringCmd, len(days))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range days {
			cmds[i] = p.HGetAll(ctx, s.keys.usageDay(d))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]map[string]int64, len(days))
	for i, c := range cmds {
		m := map[string]int64{}
		for f, v := range c.Val() {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				m[f] = n
			}
		}
		out[i] = m
	}
	return out, nil
}

// UsageVisitors estimates the distinct visitors of each day in scope.
func (s *Store) UsageVisitors(ctx context.Context, days []string, scope string) ([]int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	cmds := make([]*redis.IntCmd, len(days))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range days {
			cmds[i] = p.PFCount(ctx, s.keys.usageVisitors(d, scope))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(days))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// UsageSecret returns the 32-byte random secret with the name, creating it
// (SET NX, with the TTL when not 0) if it does not exist, so every replica
// uses the same one.
func (s *Store) UsageSecret(ctx context.Context, name string, ttl time.Duration) ([]byte, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	key := s.keys.usageSecret(name)
	var get *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SetNX(ctx, key, b, ttl)
		get = p.Get(ctx, key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	v, err := get.Bytes()
	if err != nil {
		return nil, err
	}
	if len(v) != 32 {
		return nil, errors.New("redisstore: usage secret has the wrong length")
	}
	return v, nil
}
