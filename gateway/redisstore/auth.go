package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

// Identity: sessions, sign-ins in progress, form drafts kept across a
// step-up, machine clients' assertion ids, and the per-person and
// per-department indexes of submissions. Keys are in keys.go.

// PutSession stores a session for ttl.
func (s *Store) PutSession(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.rdb.Set(ctx, s.keys.session(id), data, ttl).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// GetSession returns a session and sets its remaining life to ttl in the
// same command (GETEX ... PX), so that a signed-in request costs one round
// trip; nil when there is none. ttl <= 0 leaves the life as it is.
func (s *Store) GetSession(ctx context.Context, id string, ttl time.Duration) ([]byte, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var cmd *redis.StringCmd
	if ttl > 0 {
		cmd = s.rdb.GetEx(ctx, s.keys.session(id), ttl)
	} else {
		cmd = s.rdb.Get(ctx, s.keys.session(id)) // GETEX with 0 would PERSIST
	}
	b, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return b, nil
}

// TouchSession sets a session's remaining life (idle timeout); false when
// the session is gone.
func (s *Store) TouchSession(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ok, err := s.rdb.PExpire(ctx, s.keys.session(id), ttl).Result()
	if err != nil {
		return false, unavailable(err)
	}
	return ok, nil
}

// DeleteSession revokes a session, and tells every replica (sessend).
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.deleteSessionDigests(ctx, []string{digest16(id)})
}

// SessionDigest is the digest of a session id by which ended sessions are
// told (auth.SessionWatch).
func (s *Store) SessionDigest(id string) string { return digest16(id) }

// WatchEndedSessions subscribes to the digests of ended sessions
// (auth.SessionWatch) until ctx is done: listening(true) at every
// (re)subscription, listening(false) when the connection fails (what was
// published meanwhile is lost; the client subscribes again).
func (s *Store) WatchEndedSessions(ctx context.Context, ended func(digest string), listening func(bool)) {
	ps := s.rdb.Subscribe(ctx, s.keys.sessionEnded())
	defer ps.Close()
	on := false
	set := func(v bool) {
		if v != on {
			on = v
			listening(v)
		}
	}
	defer set(false)
	for ctx.Err() == nil {
		msg, err := ps.Receive(ctx)
		if err != nil {
			set(false)
			select { // the next Receive reconnects and subscribes again
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				set(false) // start empty: ends told before now are unknown
				set(true)
			}
		case *redis.Message:
			for _, d := range strings.Fields(m.Payload) {
				ended(d)
			}
		}
	}
}

// MaxSessionsPerSubject bounds a person's session index: a sign-in beyond
// it ends that person's oldest session.
const MaxSessionsPerSubject = 50

// IndexSession adds a session to its subject's index (score: the end of its
// absolute lifetime). Entries past their end are dropped, and beyond
// MaxSessionsPerSubject the oldest sessions are ended. Session keys and the
// index live in different Cluster slots, so these are separate commands:
// a crash between them leaves at worst a stale index entry, dropped later.
func (s *Store) IndexSession(ctx context.Context, subject, id string, ttl time.Duration) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	key := s.keys.sessionIndex(subject)
	now := time.Now()
	var over *redis.StringSliceCmd
	var last *redis.ZSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		// Microseconds: sign-ins in the same millisecond still keep their order.
		p.ZAdd(ctx, key, redis.Z{Score: float64(now.Add(ttl).UnixMicro()), Member: digest16(id)})
		p.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now.UnixMicro(), 10))
		over = p.ZRange(ctx, key, 0, -MaxSessionsPerSubject-1)
		p.ZRemRangeByRank(ctx, key, 0, -MaxSessionsPerSubject-1)
		last = p.ZRangeWithScores(ctx, key, -1, -1)
		return nil
	})
	if err != nil {
		return unavailable(err)
	}
	if l := last.Val(); len(l) == 1 { // the index lives as long as its longest session
		if err := s.rdb.PExpireAt(ctx, key, time.UnixMicro(int64(l[0].Score))).Err(); err != nil {
			return unavailable(err)
		}
	}
	if len(over.Val()) > 0 {
		return s.deleteSessionDigests(ctx, over.Val())
	}
	return nil
}

// RevokeSubjectSessions ends every indexed session of a subject.
func (s *Store) RevokeSubjectSessions(ctx context.Context, subject string) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	key := s.keys.sessionIndex(subject)
	digests, err := s.rdb.ZRange(ctx, key, 0, -1).Result()
	if err != nil {
		return 0, unavailable(err)
	}
	if err := s.deleteSessionDigests(ctx, digests); err != nil {
		return 0, err
	}
	if err := s.rdb.Del(ctx, key).Err(); err != nil {
		return 0, unavailable(err)
	}
	return len(digests), nil
}

// deleteSessionDigests deletes sessions by key digest, one DEL each (the
// keys are in different Cluster slots).
func (s *Store) deleteSessionDigests(ctx context.Context, digests []string) error {
	if len(digests) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, d := range digests {
			p.Del(ctx, s.keys.sessionDigest(d))
		}
		return nil
	})
	if err == nil {
		// After the deletes (a Cluster runs a pipeline's commands on
		// several nodes at once): a replica that reads the session again
		// after this message finds it gone.
		err = s.rdb.Publish(ctx, s.keys.sessionEnded(), strings.Join(digests, " ")).Err()
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// PutLogin remembers a sign-in in progress under its state.
func (s *Store) PutLogin(ctx context.Context, state string, data []byte, ttl time.Duration) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.rdb.Set(ctx, s.keys.login(state), data, ttl).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// TakeLogin returns and deletes a sign-in in progress (each state is used
// once); nil when there is none.
func (s *Store) TakeLogin(ctx context.Context, state string) ([]byte, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	b, err := s.rdb.GetDel(ctx, s.keys.login(state)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return b, nil
}

// PutDraft keeps form values for ttl.
func (s *Store) PutDraft(ctx context.Context, key string, data []byte, ttl time.Duration) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.rdb.Set(ctx, s.keys.draft(key), data, ttl).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// GetDraft returns kept form values; nil when there are none.
func (s *Store) GetDraft(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	b, err := s.rdb.Get(ctx, s.keys.draft(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return b, nil
}

// DeleteDraft forgets kept form values.
func (s *Store) DeleteDraft(ctx context.Context, key string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.rdb.Del(ctx, s.keys.draft(key)).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// FirstUse remembers key for ttl and reports whether it was new (SET NX):
// replay protection for machine clients' assertion ids.
func (s *Store) FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl < time.Second {
		ttl = time.Second
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ok, err := s.rdb.SetNX(ctx, s.keys.jti(key), "1", ttl).Result()
	if err != nil {
		return false, unavailable(err)
	}
	return ok, nil
}

// SubjectSubmissions lists a person's submissions, newest first, without
// payloads.
func (s *Store) SubjectSubmissions(ctx context.Context, subject string, limit int) ([]*gateway.Submission, error) {
	return s.listIndex(ctx, s.keys.subject(subject), limit)
}

// DepartmentSubmissions lists a department's submissions, newest first,
// without payloads.
func (s *Store) DepartmentSubmissions(ctx context.Context, department string, limit int) ([]*gateway.Submission, error) {
	return s.listIndex(ctx, s.keys.dept(department), limit)
}

// IndexMargin is added to the longest retention to make IndexKeep: the
// time a submission may wait for its delivery (retries, a dead letter
// handled by a person) before its retention starts.
const IndexMargin = 30 * 24 * time.Hour

// IndexKeepFor is the IndexKeep for services whose longest retention is
// longest; 0 (a service keeps its submissions) keeps index entries.
func IndexKeepFor(longest time.Duration) time.Duration {
	if longest <= 0 {
		return 0
	}
	return longest + IndexMargin
}

func (s *Store) listIndex(ctx context.Context, key string, limit int) ([]*gateway.Submission, error) {
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var list *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if s.IndexKeep > 0 { // past retention: gone from the index, however many there are
			p.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatInt(s.now().Add(-s.IndexKeep).UnixMilli(), 10))
		}
		list = p.ZRevRange(ctx, key, 0, int64(limit-1))
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	ids := list.Val()
	out, gone, err := s.records(ctx, ids)
	if err != nil {
		return nil, err
	}
	if len(gone) > 0 { // past their retention: drop from the index
		_ = s.rdb.ZRem(ctx, key, gone...).Err()
	}
	return out, nil
}

// records reads the records (without payloads) of ids, in their order;
// gone are the ids whose record is past its retention.
func (s *Store) records(ctx context.Context, ids []string) (out []*gateway.Submission, gone []any, err error) {
	out = make([]*gateway.Submission, 0, len(ids))
	if len(ids) == 0 {
		return out, nil, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, s.keys.sub(id))
		}
		return nil
	})
	if err != nil {
		return nil, nil, unavailable(err)
	}
	for i, c := range cmds {
		m := c.Val()
		if len(m) == 0 {
			gone = append(gone, ids[i])
			continue
		}
		sub, err := decodeMeta(m)
		if err != nil {
			return nil, nil, unavailable(err)
		}
		out = append(out, sub)
	}
	return out, gone, nil
}
