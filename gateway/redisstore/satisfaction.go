package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

// satisfaction is a submission's answer to the satisfaction question, as
// stored. The comment is for the department only (never in open data) and
// expires with the answer.
type satisfaction struct {
	Score   int       `json:"score"`
	Comment string    `json:"comment,omitempty"`
	At      time.Time `json:"at"`
}

// SaveSatisfaction stores the answer of submission id, once: false when the
// submission was answered already. It expires after keep (the service's
// retention; at least a day).
func (s *Store) SaveSatisfaction(ctx context.Context, id string, score int, comment string, at time.Time, keep time.Duration) (bool, error) {
	a := satisfaction{Score: score, Comment: comment, At: at.UTC()}
	if !validID(id) {
		return false, notFound(id)
	}
	if keep < 24*time.Hour {
		keep = 24 * time.Hour
	}
	b, err := json.Marshal(a)
	if err != nil {
		return false, gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ok, err := s.rdb.SetNX(ctx, s.keys.satisfaction(id), b, keep).Result()
	if err != nil {
		return false, unavailable(err)
	}
	return ok, nil
}

// SatisfactionOf returns the answer of submission id (score and comment);
// ok false when none.
func (s *Store) SatisfactionOf(ctx context.Context, id string) (score int, comment string, ok bool, err error) {
	if !validID(id) {
		return 0, "", false, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	v, err := s.rdb.Get(ctx, s.keys.satisfaction(id)).Result()
	if errors.Is(err, redis.Nil) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, unavailable(err)
	}
	var a satisfaction
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		return 0, "", false, unavailable(err)
	}
	return a.Score, a.Comment, true, nil
}
