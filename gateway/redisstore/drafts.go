package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Saved drafts (intake.Drafts). A draft is named by an id (a signed-in
// resident's) or a code (resume and handover): only its digest is in the
// key, so a code is never stored. Each draft is indexed under its owner,
// which bounds how many one owner keeps; Redis expires both.

// SaveDraft stores a draft under id for ttl and indexes it under owner.
// It reports false, storing nothing, when owner already has max drafts
// (saving one of them again is always allowed).
func (s *Store) SaveDraft(ctx context.Context, owner, id string, data []byte, ttl time.Duration, max int) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	d := s.keys.draftDigest(id)
	n, err := saveDraftScript.Run(ctx, s.rdb, []string{s.keys.savedDraft(d), s.keys.draftIndex(owner)},
		d, data, ttl.Milliseconds(), time.Now().UnixMilli(), max).Int()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// LoadDraft returns the draft stored under id; nil when there is none.
func (s *Store) LoadDraft(ctx context.Context, id string) ([]byte, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	b, err := s.rdb.HGet(ctx, s.keys.savedDraft(s.keys.draftDigest(id)), "d").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return b, nil
}

// TakeDraft returns and deletes the draft stored under id (once: of two
// callers at the same time, one gets it); nil when there is none.
func (s *Store) TakeDraft(ctx context.Context, id string) ([]byte, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	d := s.keys.draftDigest(id)
	b, err := takeDraftScript.Run(ctx, s.rdb, []string{s.keys.savedDraft(d)}, d).Text()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return []byte(b), nil
}

// ListDrafts returns owner's live drafts, at most max.
func (s *Store) ListDrafts(ctx context.Context, owner string, max int) ([][]byte, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	vals, err := listDraftsScript.Run(ctx, s.rdb, []string{s.keys.draftIndex(owner)},
		time.Now().UnixMilli(), s.keys.savedDraftPrefix(), max).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err)
	}
	out := make([][]byte, 0, len(vals))
	for _, v := range vals {
		out = append(out, []byte(v))
	}
	return out, nil
}
