package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

// FollowUpJob is one answer waiting for delivery to the case system.
type FollowUpJob struct {
	StreamID     string
	SubmissionID string
	Seq          int
}

// Answer records a resident's answer to the open completion request of
// submission id and queues it for delivery, in one atomic step. token is
// drawn by the caller once per answer, so a re-sent script records it once.
// It returns the answer's seq. atts are the answer's files (claimed for the
// submission by the caller). Errors: ENotFound, EConflict (no completion
// requested), ETooMany (gateway.MaxAnswers reached).
func (s *Store) Answer(ctx context.Context, id, token, question, answer string, atts []gateway.Attachment, at time.Time) (int, error) {
	if !validID(id) {
		return 0, notFound(id)
	}
	entry, err := json.Marshal(gateway.ConversationEntry{Question: question, Answer: answer, At: at.UTC(), Token: token, Attachments: atts})
	if err != nil {
		return 0, gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	hist, err := json.Marshal(gateway.StatusChange{Status: gateway.StatusNeedsInfo, At: at.UTC(), Note: "answered"})
	if err != nil {
		return 0, gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := answerScript.Run(ctx, s.rdb, []string{s.keys.sub(id), s.keys.conv(id), s.keys.hist(id), s.keys.followUps()},
		token, entry, gateway.MaxAnswers, hist, id).Int()
	if err != nil {
		return 0, writeFailed(err)
	}
	switch n {
	case -1:
		return 0, notFound(id)
	case -2:
		return 0, gateway.Errorf(gateway.EConflict, "answer.not_requested", errors.New("no completion requested"))
	case -3:
		return 0, gateway.Errorf(gateway.ETooMany, "answer.too_many", errors.New("too many answers"))
	}
	return n, nil
}

// Conversation returns a submission's answers, oldest first.
func (s *Store) Conversation(ctx context.Context, id string) ([]gateway.ConversationEntry, error) {
	if !validID(id) {
		return nil, notFound(id)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	raw, err := s.rdb.LRange(ctx, s.keys.conv(id), 0, -1).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]gateway.ConversationEntry, 0, len(raw))
	for _, r := range raw {
		var e gateway.ConversationEntry
		if err := json.Unmarshal([]byte(r), &e); err != nil {
			return nil, unavailable(fmt.Errorf("conversation of %s: %w", id, err))
		}
		out = append(out, e)
	}
	return out, nil
}

// EnsureFollowUpGroup creates the dispatchers' consumer group on the
// follow-ups stream.
func (s *Store) EnsureFollowUpGroup(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.rdb.XGroupCreateMkStream(ctx, s.keys.followUps(), followUpGroup, "0").Err()
	if err != nil && !isBusyGroup(err) {
		return unavailable(err)
	}
	return nil
}

func followUpJobs(msgs []redis.XMessage) []FollowUpJob {
	out := make([]FollowUpJob, 0, len(msgs))
	for _, m := range msgs {
		j := FollowUpJob{StreamID: m.ID}
		j.SubmissionID, _ = m.Values["id"].(string)
		seq, _ := m.Values["seq"].(string)
		j.Seq, _ = strconv.Atoi(seq)
		out = append(out, j)
	}
	return out
}

// ReadFollowUps reads new follow-ups for consumer, waiting up to block.
func (s *Store) ReadFollowUps(ctx context.Context, consumer string, count int, block time.Duration) ([]FollowUpJob, error) {
	args := &redis.XReadGroupArgs{Group: followUpGroup, Consumer: consumer, Streams: []string{s.keys.followUps(), ">"}, Count: int64(count), Block: block}
	if block <= 0 {
		args.Block = -1
	}
	bctx, cancel := context.WithTimeout(ctx, max(block, 0)+max(s.OpTimeout, DefaultOpTimeout))
	defer cancel()
	res, err := s.rdb.XReadGroup(bctx, args).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if isNoGroup(err) {
		return nil, s.EnsureFollowUpGroup(ctx)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	var out []FollowUpJob
	for _, st := range res {
		out = append(out, followUpJobs(st.Messages)...)
	}
	return out, nil
}

// ClaimFollowUps takes over follow-ups not finished within minIdle: those
// of a dispatcher that died, and those that failed (a failed follow-up
// stays pending, so minIdle is also the wait before a retry).
func (s *Store) ClaimFollowUps(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]FollowUpJob, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	msgs, _, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: s.keys.followUps(), Group: followUpGroup,
		Consumer: consumer, MinIdle: minIdle, Start: "0", Count: int64(count)}).Result()
	if isNoGroup(err) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return followUpJobs(msgs), nil
}

// LoadFollowUp builds the follow-up of a job and counts the attempt.
func (s *Store) LoadFollowUp(ctx context.Context, job FollowUpJob) (*gateway.FollowUp, error) {
	sub, err := s.Get(ctx, job.SubmissionID)
	if err != nil {
		return nil, err
	}
	conv, err := s.Conversation(ctx, job.SubmissionID)
	if err != nil {
		return nil, err
	}
	if job.Seq < 1 || job.Seq > len(conv) {
		return nil, notFound(job.SubmissionID)
	}
	e := conv[job.Seq-1]
	ctx, cancel := s.bound(ctx)
	defer cancel()
	attempt, err := s.rdb.HIncrBy(ctx, s.keys.sub(job.SubmissionID), "fup_attempts:"+strconv.Itoa(job.Seq), 1).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	return &gateway.FollowUp{SubmissionID: sub.ID, Reference: sub.Reference, Service: sub.Service, Department: sub.Department,
		CaseReference: sub.CaseReference, Seq: e.Seq, Question: e.Question, Answer: e.Answer, AnsweredAt: e.At, Attachments: e.Attachments,
		Attempt: int(attempt)}, nil
}

// FollowUpDone removes a delivered (or dropped) follow-up.
func (s *Store) FollowUpDone(ctx context.Context, job FollowUpJob) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, s.keys.followUps(), followUpGroup, job.StreamID)
		p.XDel(ctx, s.keys.followUps(), job.StreamID)
		return nil
	})
	return storeErr(err)
}

// FollowUpRetry moves a failed follow-up out of the stream into the retry
// set, due at due. Only the dispatcher that still holds it moves it (XACK
// first, see notifyMoveScript).
func (s *Store) FollowUpRetry(ctx context.Context, job FollowUpJob, due time.Time) error {
	member := job.SubmissionID + " " + strconv.Itoa(job.Seq)
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return storeErr(notifyMoveScript.Run(ctx, s.rdb, []string{s.keys.followUps(), s.keys.followUpRetry()},
		followUpGroup, job.StreamID, due.UnixMilli(), member, 0).Err())
}

// PromoteFollowUps puts follow-up retries that are due back into the
// stream.
func (s *Store) PromoteFollowUps(ctx context.Context, now time.Time, limit int) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := followUpPromoteScript.Run(ctx, s.rdb, []string{s.keys.followUpRetry(), s.keys.followUps()},
		now.UnixMilli(), limit).Int()
	if err != nil {
		return 0, writeFailed(err)
	}
	return n, nil
}

// FollowUpDeadLetter gives up on a follow-up; administrators see it in
// FollowUpDeadLetters. department scopes it to that department's
// administrators.
func (s *Store) FollowUpDeadLetter(ctx context.Context, job FollowUpJob, department, reason string) error {
	member, _ := json.Marshal(gateway.FollowUpDead{SubmissionID: job.SubmissionID, Seq: job.Seq, Department: department,
		Reason: strings.ReplaceAll(reason, "\n", " "), AtMs: s.now().UnixMilli()})
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return storeErr(notifyMoveScript.Run(ctx, s.rdb, []string{s.keys.followUps(), s.keys.followUpDead()},
		followUpGroup, job.StreamID, s.now().UnixMilli(), member, MaxOutboxDead).Err())
}

// followUpDead decodes a dead-letter member: JSON, or the older
// "id seq reason".
func followUpDead(m string) (gateway.FollowUpDead, bool) {
	var d gateway.FollowUpDead
	if strings.HasPrefix(m, "{") {
		return d, json.Unmarshal([]byte(m), &d) == nil
	}
	parts := strings.SplitN(m, " ", 3)
	if len(parts) < 2 {
		return d, false
	}
	d.SubmissionID = parts[0]
	d.Seq, _ = strconv.Atoi(parts[1])
	if len(parts) == 3 {
		d.Reason = parts[2]
	}
	return d, true
}

// FollowUpDeadLetters lists the newest dead-lettered follow-ups.
func (s *Store) FollowUpDeadLetters(ctx context.Context, limit int) ([]gateway.FollowUpDead, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	raw, err := s.rdb.ZRevRange(ctx, s.keys.followUpDead(), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]gateway.FollowUpDead, 0, len(raw))
	for _, m := range raw {
		if d, ok := followUpDead(m); ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// ReplayFollowUp gives the dead-lettered follow-up (id, seq) a new round
// of attempts. found is false when there is no such dead letter (never,
// or replayed already), so replaying twice queues it once; the case
// system deduplicates on the answer's idempotency key in any case.
func (s *Store) ReplayFollowUp(ctx context.Context, id string, seq int) (d gateway.FollowUpDead, found bool, err error) {
	rctx, cancel := s.bound(ctx)
	raw, err := s.rdb.ZRevRange(rctx, s.keys.followUpDead(), 0, MaxOutboxDead-1).Result()
	cancel()
	if err != nil {
		return d, false, unavailable(err)
	}
	for _, m := range raw {
		fd, ok := followUpDead(m)
		if !ok || fd.SubmissionID != id || fd.Seq != seq {
			continue
		}
		if !validID(id) {
			return fd, false, nil
		}
		cctx, cancel := s.bound(ctx)
		n, err := followUpReplayScript.Run(cctx, s.rdb, []string{s.keys.followUpDead(), s.keys.followUps(), s.keys.sub(id)},
			m, id, seq).Int()
		cancel()
		if err != nil {
			return fd, false, writeFailed(err)
		}
		if n == -1 {
			return fd, false, notFound(id)
		}
		return fd, n == 1, nil
	}
	return d, false, nil
}
