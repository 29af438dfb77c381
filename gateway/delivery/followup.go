package delivery

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore"
)

// FollowUpJob is one answer to a completion request waiting for delivery.
type FollowUpJob = redisstore.FollowUpJob

// FollowUpQueue is what the follow-up dispatcher needs from the store.
// *redisstore.Store implements it.
type FollowUpQueue interface {
	EnsureFollowUpGroup(ctx context.Context) error
	ReadFollowUps(ctx context.Context, consumer string, count int, block time.Duration) ([]FollowUpJob, error)
	ClaimFollowUps(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]FollowUpJob, error)
	LoadFollowUp(ctx context.Context, job FollowUpJob) (*gateway.FollowUp, error)
	FollowUpDone(ctx context.Context, job FollowUpJob) error
	FollowUpRetry(ctx context.Context, job FollowUpJob, due time.Time) error
	PromoteFollowUps(ctx context.Context, now time.Time, limit int) (int, error)
	FollowUpDeadLetter(ctx context.Context, job FollowUpJob, department, reason string) error
}

// MessageObserver counts messages (notifications, follow-ups, webhooks)
// by kind, channel and outcome ("sent", "retry", "dead_letter"); the
// metrics implement it.
type MessageObserver interface {
	Message(kind, channel, outcome string)
}

// FollowUps delivers residents' answers to completion requests to the case
// system through the service's connector (its gateway.FollowUpConnector
// ability), with the same guarantees as submissions: at least once from a
// consumer group, with an idempotency key per answer so the back-end
// records it once. A failed follow-up leaves the stream for a retry set and
// comes back after a capped exponential backoff with full jitter
// (Backoff(attempt-1, RetryBase, RetryMax)); one whose dispatcher died is
// claimed by another after ClaimIdle. After MaxAttempts, or a permanent
// refusal, or when the connector cannot take follow-ups, it becomes a dead
// letter, which an administrator can replay.
type FollowUps struct {
	Queue       FollowUpQueue
	Routes      func(service string) (Route, bool)
	Consumer    string
	ClaimIdle   time.Duration // default 1m
	Timeout     time.Duration // one attempt; default 30s
	MaxAttempts int           // default 10
	RetryBase   time.Duration // default 2s
	RetryMax    time.Duration // default 10m
	Observer    MessageObserver
	Logger      *slog.Logger
	// Attachments and Links as in Config: the answer's files.
	Attachments Attachments
	Links       *gateway.AttachmentLinks
	Now         func() time.Time
}

func (f *FollowUps) observe(outcome string) {
	if f.Observer != nil {
		f.Observer.Message("followup", "case_system", outcome)
	}
}

// Run delivers follow-ups until ctx ends.
func (f *FollowUps) Run(ctx context.Context) error {
	f.defaults()
	if err := f.Queue.EnsureFollowUpGroup(ctx); err != nil {
		f.Logger.Warn("follow-ups: consumer group", "error", err)
	}
	var lastClaim time.Time
	for ctx.Err() == nil {
		if _, err := f.Queue.PromoteFollowUps(ctx, f.Now(), 100); err != nil && ctx.Err() == nil {
			f.Logger.Warn("follow-ups: promote retries", "error", err)
		}
		var jobs []FollowUpJob
		if time.Since(lastClaim) >= f.ClaimIdle/4 {
			lastClaim = time.Now()
			claimed, err := f.Queue.ClaimFollowUps(ctx, f.Consumer, f.ClaimIdle, 20)
			if err != nil && ctx.Err() == nil {
				f.Logger.Warn("follow-ups: claim", "error", err)
			}
			jobs = append(jobs, claimed...)
		}
		fresh, err := f.Queue.ReadFollowUps(ctx, f.Consumer, 10, time.Second)
		if err != nil && ctx.Err() == nil {
			f.Logger.Warn("follow-ups: read", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		for _, j := range append(jobs, fresh...) {
			f.Handle(ctx, j)
		}
	}
	return ctx.Err()
}

// defaults fills in the zero settings.
func (f *FollowUps) defaults() {
	if f.ClaimIdle <= 0 {
		f.ClaimIdle = time.Minute
	}
	if f.Timeout <= 0 {
		f.Timeout = 30 * time.Second
	}
	if f.MaxAttempts <= 0 {
		f.MaxAttempts = 10
	}
	if f.Logger == nil {
		f.Logger = slog.New(slog.DiscardHandler)
	}
	if f.RetryBase <= 0 {
		f.RetryBase = 2 * time.Second
	}
	if f.RetryMax <= 0 {
		f.RetryMax = 10 * time.Minute
	}
	if f.Now == nil {
		f.Now = time.Now
	}
}

// Handle makes one attempt at a follow-up and records the outcome.
func (f *FollowUps) Handle(ctx context.Context, job FollowUpJob) {
	f.defaults()
	log := f.Logger.With("seq", job.Seq)
	fu, err := f.Queue.LoadFollowUp(ctx, job)
	var gerr *gateway.Error
	if errors.As(err, &gerr) && gerr.Code == gateway.ENotFound {
		_ = f.Queue.FollowUpDone(ctx, job) // the submission is gone (retention)
		return
	}
	if err != nil {
		log.Warn("follow-up: load", "error", err) // stays pending; claimed again
		return
	}
	log = log.With("reference", fu.Reference, "service", fu.Service, "attempt", fu.Attempt)
	route, ok := f.Routes(fu.Service)
	fc, can := route.Connector.(gateway.FollowUpConnector) // a connector's optional ability
	if !ok || !can {
		log.Error("follow-up dead-lettered: the service's connector cannot deliver follow-ups")
		if f.Queue.FollowUpDeadLetter(ctx, job, fu.Department, "connector cannot deliver follow-ups") == nil {
			f.observe("dead_letter")
		}
		return
	}
	fu.Files = filesFor(fu.Attachments, f.Attachments, f.Links)
	actx, cancel := context.WithTimeout(ctx, f.Timeout)
	err = fc.DeliverFollowUp(actx, fu)
	cancel()
	var derr *gateway.DeliveryError
	switch {
	case err == nil:
		log.Info("follow-up delivered", "case_reference", fu.CaseReference)
		f.observe("sent")
		if err := f.Queue.FollowUpDone(ctx, job); err != nil {
			log.Warn("follow-up delivered but not acknowledged; the back-end deduplicates the repeat", "error", err)
			return
		}
		releaseAttachments(ctx, log, f.Attachments, f.Links, fu.Attachments)
	case errors.As(err, &derr) && derr.Permanent, fu.Attempt >= f.MaxAttempts:
		log.Error("follow-up dead-lettered", "error", err)
		if err := f.Queue.FollowUpDeadLetter(ctx, job, fu.Department, shortReason(err.Error())); err != nil {
			log.Warn("follow-up dead letter not recorded; claimed again", "error", err)
			return
		}
		f.observe("dead_letter")
	default:
		wait := Backoff(fu.Attempt-1, f.RetryBase, f.RetryMax, nil)
		if derr != nil && derr.RetryAfter > wait {
			wait = min(derr.RetryAfter, f.RetryMax)
		}
		log.Warn("follow-up failed; retry scheduled", "error", err, "wait", wait)
		if err := f.Queue.FollowUpRetry(ctx, job, f.Now().Add(wait)); err != nil {
			log.Warn("follow-up retry not recorded; claimed again after the claim wait", "error", err)
			return
		}
		f.observe("retry")
	}
}

func shortReason(s string) string {
	if len(s) > 300 {
		return s[:300]
	}
	return s
}
