// Package delivery hands accepted submissions to the departments' case
// systems: a dispatcher reads work from the queue's consumer group, delivers
// through the service's connector, retries temporary failures with capped
// exponential backoff and full jitter, and dead-letters what cannot be
// delivered without help.
//
// Delivery is at-least-once: a job is acknowledged only after its outcome is
// written, and a job whose dispatcher died is claimed by another after
// Config.ClaimIdle. The back-end deduplicates on the idempotency key (the
// submission id), so each submission becomes exactly one case. Run as many
// dispatchers as there are gateway replicas; the consumer group spreads the
// work over them.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sony/gobreaker/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore"
)

// Job is one unit of delivery work (the domain type).
type Job = gateway.Job

// Queue is what the dispatcher needs from the store. *redisstore.Store
// implements it. Complete, Retry and DeadLetter return
// gateway.ErrNotPending when another consumer recorded the job's outcome
// first.
type Queue interface {
	EnsureGroup(ctx context.Context) error
	ReadNew(ctx context.Context, consumer string, count int, block time.Duration) ([]Job, error)
	Claim(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]Job, error)
	// Load reads the submissions of a batch of jobs at once: subs[i] for
	// jobs[i], or errs[i] (ENotFound when it is gone).
	Load(ctx context.Context, jobs []Job) (subs []*gateway.Submission, errs []error)
	Complete(ctx context.Context, job Job, caseRef string, retention time.Duration) error
	Retry(ctx context.Context, job Job, due time.Time, reason string) error
	PromoteDue(ctx context.Context, now time.Time, limit int) (int, error)
	DeadLetter(ctx context.Context, job Job, reason string) error
	Drop(ctx context.Context, job Job) error
	// Defer puts a job back until due without counting an attempt (the
	// back-end's circuit breaker is open).
	Defer(ctx context.Context, job Job, due time.Time) error
}

// The store is the queue.
var (
	_ Queue          = (*redisstore.Store)(nil)
	_ consumerPruner = (*redisstore.Store)(nil)
)

// Route is where a service's submissions go, and how long the gateway keeps
// a submission after delivering it (0 = the store keeps it).
type Route struct {
	Connector gateway.Connector
	Retention time.Duration
}

// Config configures a Dispatcher. Zero values take the defaults.
type Config struct {
	Workers int // concurrent deliveries; default 128
	// BackendLimit is the most deliveries in flight to one back-end (see
	// backendOf) in this process; default half of Workers; negative: no
	// limit. A job over it waits up to a second for a slot, then is put
	// back for about a second without counting an attempt.
	BackendLimit int
	Consumer     string        // name in the consumer group, unique per process; default hostname-pid
	RetryBase    time.Duration // first retry within this; default 2s
	RetryMax     time.Duration // longest wait between attempts; default 10m
	MaxAttempts  int           // attempts before dead-lettering; default 10
	ClaimIdle    time.Duration // take over work unacknowledged this long; default 1m, keep above Timeout
	Timeout      time.Duration // per delivery; default 30s
	PollInterval time.Duration // how often due retries are promoted and idle work claimed; default 1s
	ReadBlock    time.Duration // how long a worker waits for new work per read; default 2s
	Logger       *slog.Logger  // default slog.Default()

	// BreakerFailures consecutive failures open a back-end's circuit
	// breaker; default 5; negative switches breakers off.
	BreakerFailures int
	// BreakerOpen is how long an open breaker refuses deliveries before it
	// lets probes through (half-open); default 30s.
	BreakerOpen time.Duration
	// BreakerProbes is how many deliveries a half-open breaker lets
	// through; default 1.
	BreakerProbes uint32

	// Observer receives outcomes for metrics; default none.
	Observer Observer

	// AfterDeliver, when set, is called after a back-end accepted a
	// delivery and before the outcome is recorded. For fault-injection
	// tests only (the gateway refuses it in production).
	AfterDeliver func()

	// Usage is told of delivered and dead-lettered submissions (usage
	// statistics); default none.
	Usage UsageTracker

	// Attachments is the attachment store: connectors read the bytes
	// through it, and it is told when a submission with attachments was
	// delivered, so the bytes go (attachments.go). nil: deliveries carry
	// the descriptions only.
	Attachments Attachments
	// Links signs the download links connectors hand to back-ends; nil: no
	// links.
	Links *gateway.AttachmentLinks
}

// Defaults.
const (
	DefaultWorkers      = 128
	DefaultRetryBase    = 2 * time.Second
	DefaultRetryMax     = 10 * time.Minute
	DefaultMaxAttempts  = 10
	DefaultClaimIdle    = time.Minute
	DefaultTimeout      = 30 * time.Second
	DefaultPollInterval = time.Second
	DefaultReadBlock    = 2 * time.Second
)

// storeTimeout bounds each store call of the dispatcher (blocking reads get
// their block time on top).
const storeTimeout = 5 * time.Second

// promoteBatch is how many due retries one PromoteDue call moves.
const promoteBatch = 100

// Consumers idle this long with nothing pending are removed from the group,
// checked this often (see consumerPruner).
const (
	pruneIdle  = time.Hour
	pruneEvery = 10 * time.Minute
)

// consumerPruner is implemented by queues that can forget the consumer
// names of dispatchers that are gone (*redisstore.Store does). Optional.
type consumerPruner interface {
	PruneConsumers(ctx context.Context, keep string, idle time.Duration) (int, error)
}

// Reasons recorded with retries and dead letters, and logged as error_class.
const (
	ReasonTemporary      = "temporary"
	ReasonTimeout        = "timeout"
	ReasonPermanent      = "permanent"
	ReasonMaxAttempts    = "max_attempts"
	ReasonUnknownService = "unknown_service"
	ReasonRedelivered    = "redelivered" // handed out too often without an outcome (e.g. it crashes the process)
)

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.BackendLimit == 0 {
		c.BackendLimit = max(c.Workers/2, 1)
	}
	if c.Consumer == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "gateway"
		}
		c.Consumer = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.ClaimIdle <= 0 {
		c.ClaimIdle = DefaultClaimIdle
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ReadBlock <= 0 {
		c.ReadBlock = DefaultReadBlock
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = DefaultBreakerFailures
	}
	if c.BreakerOpen <= 0 {
		c.BreakerOpen = DefaultBreakerOpen
	}
	if c.BreakerProbes == 0 {
		c.BreakerProbes = DefaultBreakerProbes
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	return c
}

// Dispatcher delivers queued submissions. Create it with New and start it
// with Run.
type Dispatcher struct {
	q      Queue
	routes func(serviceID string) (Route, bool)
	cfg    Config
	log    *slog.Logger
	obs    Observer

	breakers *breakers
	busy     slots // deliveries in flight per back-end

	now     func() time.Time
	rnd     func(int64) int64
	claimed chan task // work taken over from dead consumers, for the workers

	// inFlight holds the stream ids this process is delivering right now.
	// XAUTOCLAIM also returns the process's own pending entries once they
	// have been idle for ClaimIdle, e.g. a delivery slower than that; they
	// are not handed out a second time.
	inFlight sync.Map
}

// New returns a dispatcher taking work from q and finding each service's
// route with routes.
func New(q Queue, routes func(serviceID string) (Route, bool), cfg Config) *Dispatcher {
	cfg = cfg.withDefaults()
	d := &Dispatcher{
		q:       q,
		routes:  routes,
		cfg:     cfg,
		log:     cfg.Logger.With("component", "delivery", "consumer", cfg.Consumer),
		obs:     cfg.Observer,
		now:     time.Now,
		rnd:     rand.Int64N,
		claimed: make(chan task, cfg.Workers),
	}
	d.breakers = &breakers{d: d, m: map[string]*gobreaker.CircuitBreaker[string]{}}
	return d
}

// Config returns the configuration in effect, defaults filled in.
func (d *Dispatcher) Config() Config { return d.cfg }

// Run delivers until ctx is cancelled. Then it stops taking work, lets the
// deliveries in flight finish (each bounded by Config.Timeout), and returns
// nil once all its goroutines have returned. Work it had taken but not
// started stays pending and is claimed by another dispatcher after
// Config.ClaimIdle.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.q == nil || d.routes == nil {
		return errors.New("delivery: dispatcher needs a queue and routes")
	}
	if d.cfg.ClaimIdle <= d.cfg.Timeout {
		d.log.Warn("claim idle time is not above the delivery timeout: slow deliveries may be delivered twice",
			"claim_idle", d.cfg.ClaimIdle, "timeout", d.cfg.Timeout)
	}
	gctx, cancel := context.WithTimeout(ctx, storeTimeout)
	if err := d.q.EnsureGroup(gctx); err != nil {
		// Not fatal: reads create the group when they find it missing.
		d.log.Warn("cannot create consumer group yet", "error", err)
	}
	cancel()
	d.log.Info("dispatcher started", "workers", d.cfg.Workers)

	var wg sync.WaitGroup
	work := make(chan task)
	wg.Go(func() { d.reader(ctx, work) })
	for range d.cfg.Workers {
		wg.Go(func() { d.worker(ctx, work) })
	}
	wg.Go(func() { d.janitor(ctx) })
	wg.Wait()
	d.log.Info("dispatcher stopped")
	return nil
}

// task is a job with its submission as the reader (or the janitor) loaded
// it, together with the other jobs of its read.
type task struct {
	job Job
	sub *gateway.Submission
	err error // loading failed
}

// load reads the submissions of jobs in one round trip.
func (d *Dispatcher) load(ctx context.Context, jobs []Job) []task {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	subs, errs := d.q.Load(lctx, jobs)
	cancel()
	tasks := make([]task, len(jobs))
	for i, j := range jobs {
		tasks[i] = task{job: j}
		if i < len(subs) {
			tasks[i].sub = subs[i]
		}
		if i < len(errs) {
			tasks[i].err = errs[i]
		}
		if tasks[i].sub == nil && tasks[i].err == nil {
			tasks[i].err = errors.New("delivery: queue loaded nothing")
		}
	}
	return tasks
}

// worker takes claimed work first, then new work from the reader, one job
// at a time.
func (d *Dispatcher) worker(ctx context.Context, work <-chan task) {
	for {
		select {
		case t := <-d.claimed:
			d.handle(ctx, t)
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return
		case t := <-d.claimed:
			d.handle(ctx, t)
		case t, ok := <-work:
			if !ok {
				return
			}
			d.handle(ctx, t)
		}
	}
}

// reader takes new work from the queue for all workers: one XREADGROUP of
// up to Workers entries instead of one read per job, and one read of their
// submissions (Queue.Load) instead of one per job. It hands the jobs to
// the workers one by one (work is unbuffered, so a job waits at most until
// a worker is free, which is within Config.Timeout, below ClaimIdle) and
// reads again once they are all taken. Jobs it holds are marked in flight
// so the janitor does not claim them back. On shutdown the jobs not handed
// out stay pending and are claimed by another dispatcher after ClaimIdle.
func (d *Dispatcher) reader(ctx context.Context, work chan<- task) {
	defer close(work)
	for ctx.Err() == nil {
		// The read is not cancelled with ctx: a read cut off after Redis
		// handed out entries would leave them pending until ClaimIdle. The
		// block time bounds how long shutdown waits for it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ReadBlock+storeTimeout)
		jobs, err := d.q.ReadNew(rctx, d.cfg.Consumer, d.cfg.Workers, d.cfg.ReadBlock)
		cancel()
		if err != nil {
			d.log.Warn("reading the delivery queue failed", "error", err)
			sleep(ctx, d.cfg.PollInterval)
			continue
		}
		if len(jobs) == 0 {
			continue
		}
		for _, job := range jobs {
			d.inFlight.Store(job.StreamID, struct{}{})
		}
		tasks := d.load(ctx, jobs)
		for i, t := range tasks {
			select {
			case work <- t:
			case <-ctx.Done():
				for _, j := range jobs[i:] {
					d.inFlight.Delete(j.StreamID)
				}
				return
			}
		}
	}
}

// janitor promotes due retries and claims work of dead consumers every
// PollInterval, and now and then forgets consumers that are gone.
func (d *Dispatcher) janitor(ctx context.Context) {
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	lastPrune := d.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.promote(ctx)
		d.claim(ctx)
		if d.now().Sub(lastPrune) >= pruneEvery {
			lastPrune = d.now()
			d.prune(ctx)
		}
	}
}

func (d *Dispatcher) prune(ctx context.Context) {
	p, ok := d.q.(consumerPruner)
	if !ok {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, storeTimeout)
	n, err := p.PruneConsumers(pctx, d.cfg.Consumer, pruneIdle)
	cancel()
	switch {
	case err != nil && ctx.Err() == nil:
		d.log.Warn("pruning gone consumers failed", "error", err)
	case n > 0:
		d.log.Info("pruned gone consumers", "count", n)
	}
}

func (d *Dispatcher) promote(ctx context.Context) {
	// Bounded: a large backlog is moved over several ticks.
	for range 10 {
		pctx, cancel := context.WithTimeout(ctx, storeTimeout)
		n, err := d.q.PromoteDue(pctx, d.now(), promoteBatch)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("promoting due retries failed", "error", err)
			}
			return
		}
		if n < promoteBatch {
			return
		}
	}
}

func (d *Dispatcher) claim(ctx context.Context) {
	free := cap(d.claimed) - len(d.claimed)
	if free <= 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, storeTimeout)
	jobs, err := d.q.Claim(cctx, d.cfg.Consumer, d.cfg.ClaimIdle, free)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("claiming idle work failed", "error", err)
		}
		return
	}
	var mine []Job
	for _, job := range jobs {
		if _, busy := d.inFlight.Load(job.StreamID); busy {
			continue // our own delivery, still running
		}
		d.log.Info("claimed idle work", "job", job.StreamID, "deliveries", job.Deliveries)
		mine = append(mine, job)
	}
	if len(mine) == 0 {
		return
	}
	for _, t := range d.load(ctx, mine) {
		// Only the janitor sends and it claimed no more than the free
		// capacity, so this does not block.
		d.claimed <- t
	}
}

// handle delivers one job and records its outcome. It runs to the end even
// when ctx is cancelled: a delivery in flight is finished, bounded by
// Config.Timeout. Logs name the job and the receipt reference, never the
// submission id: that is the secret of the resident's status link.
func (d *Dispatcher) handle(parent context.Context, t task) {
	job, sub, err := t.job, t.sub, t.err
	d.inFlight.Store(job.StreamID, struct{}{})
	defer d.inFlight.Delete(job.StreamID)
	ctx := context.WithoutCancel(parent)
	log := d.log.With("job", job.StreamID)

	if err != nil {
		if code(err) == gateway.ENotFound {
			log.Warn("submission no longer stored; job dropped")
			d.drop(ctx, log, job)
			d.obs.Outcome(OutcomeDropped, 0)
			return
		}
		log.Error("loading submission failed; job stays pending", "error", err)
		d.obs.Outcome(OutcomeError, 0)
		return
	}
	attempt := sub.Attempts + 1
	// Complete needs the reference to name its key; it never changes once
	// written, so the one just read saves a round trip.
	job.Reference = sub.Reference
	log = log.With("reference", sub.Reference, "service", sub.Service, "attempt", attempt)

	if sub.Status.Rank() >= gateway.StatusDelivered.Rank() {
		log.Info("submission already delivered; job dropped", "status", sub.Status)
		d.drop(ctx, log, job)
		d.obs.Outcome(OutcomeDropped, 0)
		return
	}
	if job.Deliveries > int64(d.cfg.MaxAttempts) {
		d.deadLetter(ctx, log, job, ReasonRedelivered, nil, sub)
		return
	}
	route, ok := d.routes(sub.Service)
	if !ok || route.Connector == nil {
		d.deadLetter(ctx, log, job, ReasonUnknownService, nil, sub)
		return
	}
	backend := backendOf(route, sub)

	dctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	start := d.now()
	caseRef, open, err := d.deliver(dctx, route, backend, d.newDelivery(sub, attempt))
	cancel()
	took := d.now().Sub(start)

	if open {
		// Nothing was tried: no attempt is counted, and the worker is free
		// at once for other back-ends.
		wait := d.deferWait(err)
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		err2 := d.q.Defer(sctx, job, d.now().Add(wait))
		cancel()
		switch {
		case errors.Is(err2, gateway.ErrNotPending):
			d.obs.Outcome(OutcomeSuperseded, 0)
		case err2 != nil:
			log.Error("deferring job failed; job stays pending", "error", err2)
			d.obs.Outcome(OutcomeError, 0)
		default:
			log.Debug("back-end paused (circuit breaker open, or at its concurrency limit); job deferred", "backend", backend, "retry_in", wait, "cause", err)
			d.obs.Outcome(OutcomeDeferred, 0)
		}
		return
	}

	if err != nil && accepted(err) {
		// A 2xx with an answer that cannot be read: the back-end has the
		// case. Recorded as delivered, without a case reference.
		log.Warn("back-end accepted the delivery but its answer was unreadable; recorded as delivered without a case reference",
			"error", brief(err))
		err = nil
	}
	if err == nil {
		if d.cfg.AfterDeliver != nil {
			d.cfg.AfterDeliver()
		}
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		err := d.q.Complete(sctx, job, caseRef, route.Retention)
		cancel()
		if errors.Is(err, gateway.ErrNotPending) {
			log.Info("delivered, but another consumer had finished the job first", "duration", took)
			d.obs.Outcome(OutcomeSuperseded, took)
			return
		}
		if err != nil {
			// The back-end has it; the job is redelivered after ClaimIdle
			// and the back-end deduplicates.
			log.Error("recording delivery failed; will be redelivered", "error", err)
			d.obs.Outcome(OutcomeError, took)
			return
		}
		log.Info("delivered", "status", gateway.StatusDelivered, "duration", took)
		d.obs.Outcome(OutcomeDelivered, took)
		d.attachmentsDelivered(ctx, log, sub.Attachments)
		d.usageDelivered(sub)
		return
	}

	class := classify(err)
	var derr *gateway.DeliveryError
	errors.As(err, &derr)
	switch {
	case class == ReasonPermanent:
		d.deadLetter(ctx, log, job, ReasonPermanent, err, sub)
		return
	case attempt >= d.cfg.MaxAttempts:
		d.deadLetter(ctx, log, job, ReasonMaxAttempts, err, sub)
		return
	}
	wait := Backoff(sub.Attempts, d.cfg.RetryBase, d.cfg.RetryMax, d.rnd)
	if derr != nil && derr.RetryAfter > wait {
		wait = derr.RetryAfter
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	err2 := d.q.Retry(sctx, job, d.now().Add(wait), class)
	cancel()
	if errors.Is(err2, gateway.ErrNotPending) {
		log.Info("delivery failed, but another consumer had finished the job first", "error_class", class)
		d.obs.Outcome(OutcomeSuperseded, took)
		return
	}
	if err2 != nil {
		log.Error("scheduling retry failed; job stays pending", "error", err2)
		d.obs.Outcome(OutcomeError, took)
		return
	}
	log.Warn("delivery failed; will retry", "error_class", class, "error", brief(err), "retry_in", wait, "duration", took)
	d.obs.Retry(class)
	d.obs.Outcome(OutcomeRetry, took)
}

func (d *Dispatcher) deadLetter(ctx context.Context, log *slog.Logger, job Job, reason string, cause error, sub *gateway.Submission) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	err := d.q.DeadLetter(sctx, job, reason)
	cancel()
	if errors.Is(err, gateway.ErrNotPending) {
		log.Info("gave up, but another consumer had finished the job first", "error_class", reason)
		d.obs.Outcome(OutcomeSuperseded, 0)
		return
	}
	if err != nil {
		log.Error("dead-lettering failed; job stays pending", "error_class", reason, "error", err)
		d.obs.Outcome(OutcomeError, 0)
		return
	}
	args := []any{"error_class", reason}
	if cause != nil {
		args = append(args, "error", brief(cause))
	}
	log.Error("delivery given up; dead-lettered for a person to handle", args...)
	d.obs.DeadLetter(reason)
	d.obs.Outcome(OutcomeDeadLetter, 0)
	d.usageDeadLettered(sub)
}

func (d *Dispatcher) drop(ctx context.Context, log *slog.Logger, job Job) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := d.q.Drop(sctx, job); err != nil {
		log.Error("dropping job failed", "error", err)
	}
}

// newDelivery builds what the connector sends from the stored submission.
func (d *Dispatcher) newDelivery(sub *gateway.Submission, attempt int) *gateway.Delivery {
	return &gateway.Delivery{
		Attachments:    sub.Attachments,
		Files:          d.files(sub.Attachments),
		SubmissionID:   sub.ID,
		Reference:      sub.Reference,
		Service:        sub.Service,
		ServiceVersion: sub.ServiceVersion,
		Department:     sub.Department,
		Channel:        sub.Channel,
		Locale:         sub.Locale,
		Subject:        sub.Subject,
		SubmittedAt:    sub.CreatedAt,
		Payload:        sub.Payload,
		Attempt:        attempt,
	}
}

// acceptance is implemented by connector errors that report a delivery the
// back-end accepted although the connector could not read its answer (the
// http connector: a 2xx with an unreadable body).
type acceptance interface{ Accepted() bool }

// accepted reports whether err says the back-end accepted the delivery.
func accepted(err error) bool {
	var a acceptance
	return errors.As(err, &a) && a.Accepted()
}

// classify names the kind of a delivery error: permanent, timeout or
// temporary.
func classify(err error) string {
	var derr *gateway.DeliveryError
	switch {
	case errors.As(err, &derr) && derr.Permanent:
		return ReasonPermanent
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	default:
		return ReasonTemporary
	}
}

func code(err error) string {
	var gerr *gateway.Error
	if errors.As(err, &gerr) {
		return gerr.Code
	}
	return ""
}

// brief shortens an error message for the log: one line, at most 200
// bytes. Connectors must not put payload data in their errors.
func brief(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Backoff returns how long to wait before the next attempt after attempt
// earlier failures (0 for the first retry): a uniformly random duration in
// [0, min(maxDelay, base·2^attempt)) ("full jitter"), so that many submissions
// failing together do not retry together. rnd(n) returns a number in [0, n),
// like rand.Int64N, which is used when rnd is nil. A zero or negative base
// or maxDelay gives 0.
func Backoff(attempt int, base, maxDelay time.Duration, rnd func(int64) int64) time.Duration {
	if base <= 0 || maxDelay <= 0 {
		return 0
	}
	if attempt < 0 {
		attempt = 0
	}
	ceil := maxDelay
	if attempt < 62 && base <= maxDelay>>attempt {
		ceil = base << attempt
	}
	if rnd == nil {
		rnd = rand.Int64N
	}
	n := min(max(rnd(int64(ceil)), 0), int64(ceil)-1)
	return time.Duration(n)
}
