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
	FollowUpDeadLetter(ctx context.Context, job FollowUpJob, reason string) error
}

// FollowUps delivers residents' answers to completion requests to the case
// system through the service's connector (its gateway.FollowUpConnector
// ability), with the same guarantees as submissions: at least once from a
// consumer group, with an idempotency key per answer so the back-end
// records it once. A failed follow-up stays pending and is claimed again
// after ClaimIdle (the retry wait); after MaxAttempts, or a permanent
// refusal, or when the connector cannot take follow-ups, it becomes a dead
// letter.
type FollowUps struct {
	Queue       FollowUpQueue
	Routes      func(service string) (Route, bool)
	Consumer    string
	ClaimIdle   time.Duration // default 1m
	Timeout     time.Duration // one attempt; default 30s
	MaxAttempts int           // default 10
	Logger      *slog.Logger
	// Attachments and Links as in Config: the answer's files.
	Attachments Attachments
	Links       *gateway.AttachmentLinks
}

// Run delivers follow-ups until ctx ends.
func (f *FollowUps) Run(ctx context.Context) error {
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
	if err := f.Queue.EnsureFollowUpGroup(ctx); err != nil {
		f.Logger.Warn("follow-ups: consumer group", "error", err)
	}
	var lastClaim time.Time
	for ctx.Err() == nil {
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

// Handle makes one attempt at a follow-up and records the outcome.
func (f *FollowUps) Handle(ctx context.Context, job FollowUpJob) {
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
		_ = f.Queue.FollowUpDeadLetter(ctx, job, "connector cannot deliver follow-ups")
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
		if err := f.Queue.FollowUpDone(ctx, job); err != nil {
			log.Warn("follow-up delivered but not acknowledged; the back-end deduplicates the repeat", "error", err)
			return
		}
		releaseAttachments(ctx, log, f.Attachments, f.Links, fu.Attachments)
	case errors.As(err, &derr) && derr.Permanent, fu.Attempt >= f.MaxAttempts:
		log.Error("follow-up dead-lettered", "error", err)
		_ = f.Queue.FollowUpDeadLetter(ctx, job, err.Error())
	default:
		log.Warn("follow-up failed; retried after the claim wait", "error", err)
	}
}
