package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

// DeadLetter describes a dead-lettered submission (the domain type).
type DeadLetter = gateway.DeadLetter

// DeadLetterPage lists up to limit dead letters, oldest first, starting
// after offset entries, and the total number of dead letters. Entries whose
// record is gone (expired) are skipped.
func (s *Store) DeadLetterPage(ctx context.Context, offset, limit int) ([]DeadLetter, int64, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	offset = max(offset, 0)
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		total *redis.IntCmd
		zs    *redis.ZSliceCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		total = p.ZCard(ctx, s.keys.dead())
		zs = p.ZRangeWithScores(ctx, s.keys.dead(), int64(offset), int64(offset+limit-1))
		return nil
	})
	if err != nil {
		return nil, 0, unavailable(err)
	}
	entries := zs.Val()
	if len(entries) == 0 {
		return []DeadLetter{}, total.Val(), nil
	}
	metas := make([]*redis.SliceCmd, len(entries))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, z := range entries {
			id, _ := z.Member.(string)
			metas[i] = p.HMGet(ctx, s.keys.sub(id), deadLetterFields...)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, unavailable(err)
	}
	out := make([]DeadLetter, 0, len(entries))
	for i, z := range entries {
		id, _ := z.Member.(string)
		dl, ok := decodeDeadLetter(id, metas[i].Val())
		if !ok {
			continue // the record is gone
		}
		dl.DeadAt = time.UnixMilli(int64(z.Score)).UTC()
		out = append(out, dl)
	}
	return out, total.Val(), nil
}

// deadLetterFields are the fields of a submission's record that describe
// it as a dead letter, in the order decodeDeadLetter reads them (HMGET).
var deadLetterFields = []string{fReference, fService, fDepartment, fDeadReason, fLastError, fAttempts, fStatus, fCreatedAt}

// decodeDeadLetter reads the reply of HMGET of deadLetterFields; ok is
// false when the record is gone. DeadAt is left to the caller.
func decodeDeadLetter(id string, v []any) (dl DeadLetter, ok bool) {
	str := func(j int) string {
		if j < len(v) {
			s, _ := v[j].(string)
			return s
		}
		return ""
	}
	if str(0) == "" {
		return DeadLetter{}, false
	}
	dl = DeadLetter{ID: id, Reference: str(0), Service: str(1), Department: str(2), Reason: str(3), LastError: str(4), Status: str(6)}
	dl.Attempts, _ = strconv.Atoi(str(5))
	dl.CreatedAt, _ = time.Parse(time.RFC3339Nano, str(7))
	return dl, true
}

// DeadLetterInfo returns the dead-letter details of a submission and
// whether it is dead-lettered now. The submission itself comes from Get.
func (s *Store) DeadLetterInfo(ctx context.Context, id string) (DeadLetter, bool, error) {
	if !validID(id) {
		return DeadLetter{}, false, notFound(id)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		score *redis.FloatCmd
		meta  *redis.SliceCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		score = p.ZScore(ctx, s.keys.dead(), id)
		meta = p.HMGet(ctx, s.keys.sub(id), deadLetterFields...)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return DeadLetter{}, false, unavailable(err)
	}
	dl, ok := decodeDeadLetter(id, meta.Val())
	if !ok {
		return DeadLetter{}, false, notFound(id)
	}
	dead := score.Err() == nil
	if dead {
		dl.DeadAt = time.UnixMilli(int64(score.Val())).UTC()
	}
	return dl, dead, nil
}

// CloseDeadLetter ends a dead letter that a person handled another way
// (e.g. passed on by hand, or the resident was contacted): it leaves the
// dead set, its status becomes status (failed or closed) with a history
// entry carrying message (the department's message to the resident, shown
// on the status page like a status update's; may be empty), its payload is
// deleted at once, and the rest expires after retention (0 = kept).
//
// The status change is a status change like a case system's
// (UpdateStatusOnce): when the status moves, the resident's notification
// event and the department's status.changed webhook event are written in
// the same step, each only when someone can be told. moved reports whether
// the status moved (the caller counts the change once). It returns an
// ENotFound error for an unknown submission and an EConflict error when
// the submission is not dead-lettered.
func (s *Store) CloseDeadLetter(ctx context.Context, id string, status gateway.Status, message string, retention time.Duration) (moved bool, err error) {
	if !validID(id) {
		return false, notFound(id)
	}
	if status != gateway.StatusFailed && status != gateway.StatusClosed {
		return false, gateway.Errorf(gateway.EInvalid, "error.status_invalid", fmt.Errorf("a dead letter closes as failed or closed, not %q", status))
	}
	now := s.now().UTC()
	entry, err := json.Marshal(gateway.StatusChange{Status: status, At: now, Note: "dead_letter_closed", Message: message})
	if err != nil {
		return false, gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ref, err := s.rdb.HGet(ctx, s.keys.sub(id), fReference).Result()
	if errors.Is(err, redis.Nil) {
		return false, notFound(id)
	}
	if err != nil {
		return false, unavailable(err)
	}
	k := s.keys
	n, err := closeDeadScript.Run(ctx, s.rdb,
		[]string{k.sub(id), k.payload(id), k.hist(id), k.ref(ref), k.dead(), k.outbox(), k.hooks()},
		id, string(status), status.Rank(), entry, max(retention.Milliseconds(), 0), now.UnixMilli(), ackToken(),
		MaxHistory, MaxOutbox).Int()
	if err := deadOutcome(id, n, err); err != nil {
		return false, err
	}
	return n == 1, nil
}

// Defer puts a job back in the retry set until due without counting an
// attempt, because nothing was tried (the back-end's circuit breaker is
// open). It returns gateway.ErrNotPending, doing nothing, when the job was already
// acknowledged.
func (s *Store) Defer(ctx context.Context, job gateway.Job, due time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	k := s.keys
	id := job.SubmissionID
	return outcome(deferScript.Run(ctx, s.rdb,
		[]string{k.sub(id), k.deliveries(), k.retry()},
		group, job.StreamID, due.UnixMilli(), id, ackToken()).Int())
}

// ErrInFlight is the cause of the error LockIdempotency returns when another
// request with the same idempotency key (and scope) is being handled; the
// error itself is a *gateway.Error with code CodeInFlight (409 at the edge).
var ErrInFlight = errors.New("redisstore: a request with this idempotency key is in flight")

// CodeInFlight is the gateway.Error code of ErrInFlight.
const CodeInFlight = "in_flight"

// DefaultLockTTL bounds how long an in-flight lock is held when its holder
// dies without releasing it.
const DefaultLockTTL = 10 * time.Second

// LockIdempotency marks the request with idem's key and scope as in flight
// for at most ttl (DefaultLockTTL when <= 0). It returns a function that
// releases the lock (call it when the request is done; it takes its own
// timeout) or ErrInFlight when another request holds the lock. Without a
// key it does nothing.
func (s *Store) LockIdempotency(ctx context.Context, idem Idempotency, ttl time.Duration) (release func(), err error) {
	if idem.Key == "" {
		return func() {}, nil
	}
	if ttl <= 0 {
		ttl = DefaultLockTTL
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	key := s.keys.idemLock(idem.Scope, idem.Key)
	lctx, cancel := s.bound(ctx)
	defer cancel()
	// Lock and release go with the creates of other requests (batch.go):
	// three script calls per submission, one round trip's share each.
	r, _, err := s.batch.call(lctx, false, lockScript, []string{key}, []any{token, ttl.Milliseconds()})
	if err != nil {
		return nil, unavailable(err)
	}
	ok, err := intOf(r)
	if err != nil {
		return nil, unavailable(err)
	}
	if ok != 1 {
		return nil, &gateway.Error{Code: CodeInFlight, Message: gateway.Message{ID: "error.idempotency_in_flight"}, Cause: ErrInFlight}
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.OpTimeout)
		defer cancel()
		// A lock that cannot be released expires on its own.
		_, _, _ = s.batch.call(rctx, false, unlockScript, []string{key}, []any{token})
	}, nil
}
