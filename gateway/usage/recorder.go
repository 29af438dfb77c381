package usage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // Europe/Stockholm on machines without a zoneinfo database

	"github.com/kommun/servicegateway/gateway"
)

// Store keeps the usage counters. *redisstore.Store implements it. Days
// are "YYYY-MM-DD" in the Recorder's location; fields are opaque to the
// store.
type Store interface {
	// AddUsage adds counts (day -> field -> n) and visitor hashes (day ->
	// scope -> members; scope "" is the whole site, otherwise a service id)
	// in one round trip.
	AddUsage(ctx context.Context, counts map[string]map[string]int64, visitors map[string]map[string][]string) error
	// UsageCounts returns the counters of each day, in the order given.
	UsageCounts(ctx context.Context, days []string) ([]map[string]int64, error)
	// UsageDayRows returns the stored open-data rows of each day (nil
	// where none), in the order given; PutUsageDayRows stores a day's.
	UsageDayRows(ctx context.Context, days []string) ([][]byte, error)
	PutUsageDayRows(ctx context.Context, day string, rows []byte, ttl time.Duration) error
	// UsageVisitors estimates the distinct visitor hashes of each day in
	// scope ("" for the site, or a service id), in the order given.
	UsageVisitors(ctx context.Context, days []string, scope string) ([]int64, error)
	// UsageSecret returns the random secret with the name, creating it
	// with the TTL (0: none) when it does not exist. Every replica gets the
	// same secret.
	UsageSecret(ctx context.Context, name string, ttl time.Duration) ([]byte, error)
}

// Config configures a Recorder. Zero values take the defaults.
type Config struct {
	// Buffer is how many events may wait for the flusher; more are dropped
	// (and counted). Default 10000.
	Buffer int
	// FlushInterval is how often the flusher writes; default 1s.
	FlushInterval time.Duration
	// Timeout bounds each store call; default 2s.
	Timeout time.Duration
	// AbandonAfter is how long a started form may wait for its submission
	// before it counts as abandoned; default 2h.
	AbandonAfter time.Duration
	// Location decides where a day begins; default Europe/Stockholm.
	Location *time.Location
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultBuffer        = 10000
	DefaultFlushInterval = time.Second
	DefaultTimeout       = 2 * time.Second
	DefaultAbandonAfter  = 2 * time.Hour
)

// maxBatch is how many events the flusher folds before it writes even if
// the interval has not passed.
const maxBatch = 20000

// saltTTL is how long a day's salt is kept: the day, plus slack for
// clocks and for the last requests of the day.
const saltTTL = 26 * time.Hour

// Stockholm is the default location of days.
var Stockholm = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		return time.UTC
	}
	return loc
}()

func (c Config) withDefaults() Config {
	if c.Buffer <= 0 {
		c.Buffer = DefaultBuffer
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.AbandonAfter <= 0 {
		c.AbandonAfter = DefaultAbandonAfter
	}
	if c.Location == nil {
		c.Location = Stockholm
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Stats are the Recorder's own figures, for operations metrics.
type Stats struct {
	Tracked    uint64 // events accepted into the buffer
	Dropped    uint64 // events dropped because the buffer was full
	Lost       uint64 // events lost because the store did not take them
	Flushed    uint64 // events written to the store
	Buffered   int    // events waiting now
	FlushFails uint64 // failed writes
}

// Recorder takes usage events from requests and writes them to the store in
// the background. Its methods are safe for concurrent use, and a nil
// *Recorder ignores every event.
type Recorder struct {
	store Store
	cfg   Config
	log   *slog.Logger
	ch    chan Event

	tracked, dropped, lost, flushed, fails atomic.Uint64

	salt     atomic.Pointer[daySalt]
	stampKey atomic.Pointer[[]byte]

	startOnce, stopOnce sync.Once
	stop, done          chan struct{}
	now                 func() time.Time
}

type daySalt struct {
	day  string
	salt []byte
}

// New returns a Recorder writing to store. Call Start, and Stop at the end.
func New(store Store, cfg Config) *Recorder {
	cfg = cfg.withDefaults()
	return &Recorder{
		store: store, cfg: cfg, log: cfg.Logger.With("component", "usage"),
		ch: make(chan Event, cfg.Buffer), stop: make(chan struct{}), done: make(chan struct{}),
		now: time.Now,
	}
}

// Config returns the configuration in effect.
func (r *Recorder) Config() Config { return r.cfg }

// Start loads the day's salt and the stamp key (bounded by Config.Timeout;
// on failure the flusher keeps trying) and starts the flusher.
func (r *Recorder) Start(ctx context.Context) {
	r.startOnce.Do(func() {
		r.refreshSecrets(ctx)
		go r.run()
	})
}

// Stop stops the flusher after it has written what was tracked before the
// call. It waits until ctx is done at most.
func (r *Recorder) Stop(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.startOnce.Do(func() { go r.run() }) // a never-started recorder still flushes
	r.stopOnce.Do(func() { close(r.stop) })
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Track hands an event to the flusher without waiting. When the buffer is
// full the event is dropped and counted.
func (r *Recorder) Track(e Event) {
	if r == nil {
		return
	}
	select {
	case r.ch <- e:
		r.tracked.Add(1)
	default:
		r.dropped.Add(1)
	}
}

// Stats returns the Recorder's figures.
func (r *Recorder) Stats() Stats {
	if r == nil {
		return Stats{}
	}
	return Stats{Tracked: r.tracked.Load(), Dropped: r.dropped.Load(), Lost: r.lost.Load(),
		Flushed: r.flushed.Load(), Buffered: len(r.ch), FlushFails: r.fails.Load()}
}

// Day is the day of t in the Recorder's location, "YYYY-MM-DD".
func (r *Recorder) Day(t time.Time) string { return t.In(r.cfg.Location).Format(time.DateOnly) }

// Visitor returns the salted hash of a visitor for the day of at, for
// Event.Visitor: SHA-256 over the day's salt, the IP address and the
// User-Agent. It returns 0 (not counted) while the day's salt is not
// loaded. Neither the address nor the agent is kept.
func (r *Recorder) Visitor(ip, userAgent string, at time.Time) uint64 {
	if r == nil {
		return 0
	}
	s := r.salt.Load()
	if s == nil || s.day != r.Day(at) {
		return 0
	}
	h := sha256.New()
	h.Write(s.salt)
	h.Write([]byte(ip))
	h.Write([]byte{0})
	h.Write([]byte(userAgent))
	var sum [sha256.Size]byte
	v := binary.BigEndian.Uint64(h.Sum(sum[:0]))
	if v == 0 {
		v = 1
	}
	return v
}

// Stamp returns a signed stamp of the time a service's form was first
// drawn, for a hidden field; "" while the key is not loaded.
func (r *Recorder) Stamp(service string, at time.Time) string {
	if r == nil {
		return ""
	}
	key := r.stampKey.Load()
	if key == nil {
		return ""
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	return ts + "." + r.sign(*key, service, ts)
}

func (r *Recorder) sign(key []byte, service, ts string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(service + sep + ts))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// maxStampAge bounds the stamps Elapsed accepts.
const maxStampAge = 7 * 24 * time.Hour

// Elapsed returns the time since the stamp was made for the service. ok is
// false for a missing, forged or implausible stamp.
func (r *Recorder) Elapsed(service, stamp string, now time.Time) (time.Duration, bool) {
	if r == nil || stamp == "" || len(stamp) > 64 {
		return 0, false
	}
	key := r.stampKey.Load()
	if key == nil {
		return 0, false
	}
	ts, sig, ok := strings.Cut(stamp, ".")
	if !ok {
		return 0, false
	}
	if !hmac.Equal([]byte(sig), []byte(r.sign(*key, service, ts))) {
		return 0, false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, false
	}
	d := now.Sub(time.Unix(sec, 0))
	if d < 0 || d > maxStampAge {
		return 0, false
	}
	return d, true
}

// RecordContact registers a contact about a service that did not come
// through the gateway (by phone, on paper, by e-mail, or with help at a
// service point without a submission through the gateway), so that digital
// take-up has its full denominator. The channel must not be digital or api:
// those are counted by the gateway itself.
func (r *Recorder) RecordContact(service, department string, ch gateway.Channel, locale string, at time.Time) error {
	switch {
	case !ch.Valid():
		return gateway.Errorf(gateway.EInvalid, "usage.error.channel", errors.New("unknown channel "+string(ch)))
	case ch == gateway.ChannelDigital || ch == gateway.ChannelAPI:
		return gateway.Errorf(gateway.EInvalid, "usage.error.channel", errors.New("contacts are for non-digital channels"))
	case service == "" || !clean(service, department, locale):
		return gateway.Errorf(gateway.EInvalid, "usage.error.service", errors.New("bad service or department"))
	}
	r.Track(Event{Kind: Contact, Service: service, Department: department, Channel: ch, Locale: locale, At: at})
	return nil
}

// Delivered records a delivered submission: delivered, a status change, and
// the time from submission to this first status.
func (r *Recorder) Delivered(sub *gateway.Submission, at time.Time) {
	if r == nil || sub == nil {
		return
	}
	r.Track(Event{Kind: Delivered, Service: sub.Service, Department: sub.Department, Channel: sub.Channel,
		Locale: sub.Locale, At: at, Duration: at.Sub(sub.CreatedAt)})
}

// DeadLettered records a submission the gateway gave up delivering.
func (r *Recorder) DeadLettered(sub *gateway.Submission, at time.Time) {
	if r == nil || sub == nil {
		return
	}
	r.Track(Event{Kind: DeadLettered, Service: sub.Service, Department: sub.Department, Channel: sub.Channel,
		Locale: sub.Locale, At: at})
}

// StatusChanged records a change of a submission's status (other than to
// delivered, which Delivered counts).
func (r *Recorder) StatusChanged(sub *gateway.Submission, at time.Time) {
	if r == nil || sub == nil {
		return
	}
	r.Track(Event{Kind: StatusChanged, Service: sub.Service, Department: sub.Department, Channel: sub.Channel,
		Locale: sub.Locale, At: at})
}

// drainEvery is how often the flusher empties the buffer into its batch.
// The flusher sleeps in between rather than waking for every event: a
// goroutine woken per request would cost the requests more CPU than the
// tracking itself.
const drainEvery = 100 * time.Millisecond

// run is the flusher: it drains the buffer every drainEvery (or sooner
// when FlushInterval is shorter) and writes the batch every FlushInterval,
// when the batch is large, and when stopped.
func (r *Recorder) run() {
	defer close(r.done)
	t := time.NewTicker(min(drainEvery, r.cfg.FlushInterval))
	defer t.Stop()
	b := newBatch()
	last := time.Now()
	for {
		select {
		case <-t.C:
			r.drain(b)
			if b.events >= maxBatch || time.Since(last) >= r.cfg.FlushInterval {
				r.write(b)
				b = newBatch()
				last = time.Now()
				r.refreshSecrets(context.Background())
			}
		case <-r.stop:
			r.drain(b)
			r.write(b)
			return
		}
	}
}

// drain moves every waiting event into the batch.
func (r *Recorder) drain(b *batch) {
	for {
		select {
		case e := <-r.ch:
			r.add(b, e)
		default:
			return
		}
	}
}

// refreshSecrets makes sure the day's salt and the stamp key are loaded.
func (r *Recorder) refreshSecrets(ctx context.Context) {
	if r.stampKey.Load() == nil {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		key, err := r.store.UsageSecret(cctx, "stamp", 0)
		cancel()
		if err != nil {
			r.log.Warn("usage: cannot load the form stamp key", "error", err)
		} else {
			r.stampKey.Store(&key)
		}
	}
	day := r.Day(r.now())
	if s := r.salt.Load(); s != nil && s.day == day {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	salt, err := r.store.UsageSecret(cctx, "salt:"+day, saltTTL)
	cancel()
	if err != nil {
		r.log.Warn("usage: cannot load the day's visitor salt; visitors are not counted meanwhile", "error", err)
		return
	}
	r.salt.Store(&daySalt{day: day, salt: salt})
}

// batch is events folded into counters, waiting to be written.
type batch struct {
	events   int
	counts   map[string]map[string]int64           // day -> field -> n
	visitors map[string]map[string]map[uint64]bool // day -> scope -> hashes
}

func newBatch() *batch {
	return &batch{counts: map[string]map[string]int64{}, visitors: map[string]map[string]map[uint64]bool{}}
}

func (b *batch) inc(day, f string, n int64) {
	m := b.counts[day]
	if m == nil {
		m = map[string]int64{}
		b.counts[day] = m
	}
	m[f] += n
}

func (b *batch) visit(day, scope string, v uint64) {
	m := b.visitors[day]
	if m == nil {
		m = map[string]map[uint64]bool{}
		b.visitors[day] = m
	}
	s := m[scope]
	if s == nil {
		s = map[uint64]bool{}
		m[scope] = s
	}
	s[v] = true
}

// add folds one event into the batch.
func (r *Recorder) add(b *batch, e Event) {
	metric, ok := kindMetric[e.Kind]
	if e.Kind == Satisfaction && (e.Score < 1 || e.Score > 5) {
		ok = false
	}
	if !ok || !clean(e.Service, e.Department, string(e.Channel), e.Locale, e.Field) {
		r.lost.Add(1)
		return
	}
	if e.At.IsZero() {
		e.At = r.now()
	}
	day := r.Day(e.At)
	b.events++
	cell := func(m string) string { return field(e.Service, e.Department, e.Channel, e.Locale, m) }
	b.inc(day, cell(metric), 1)
	switch e.Kind {
	case ValidationFailed:
		if e.Field != "" {
			b.inc(day, cell(mFieldPfx+e.Field), 1)
		}
	case Submitted:
		if e.Duration > 0 {
			b.inc(day, cell(mStartPfx+strconv.Itoa(bucket(e.Duration))), 1)
		}
	case Satisfaction:
		b.inc(day, cell(mSatPfx+strconv.Itoa(e.Score)), 1)
	case Delivered:
		b.inc(day, cell(mStatus), 1)
		if e.Duration >= 0 {
			b.inc(day, cell(mFirstPfx+strconv.Itoa(bucket(e.Duration))), 1)
		}
	}
	if e.Visitor != 0 {
		b.visit(day, "", e.Visitor)
		if e.Service != "" {
			b.visit(day, e.Service, e.Visitor)
		}
	}
}

// write sends the batch to the store in one round trip. On failure the
// batch is lost and counted: usage statistics must never hold up requests
// or grow without bound while the store is away.
func (r *Recorder) write(b *batch) {
	if b.events == 0 {
		return
	}
	visitors := make(map[string]map[string][]string, len(b.visitors))
	for day, scopes := range b.visitors {
		out := make(map[string][]string, len(scopes))
		for scope, set := range scopes {
			members := make([]string, 0, len(set))
			for v := range set {
				members = append(members, strconv.FormatUint(v, 36))
			}
			out[scope] = members
		}
		visitors[day] = out
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.Timeout)
	err := r.store.AddUsage(ctx, b.counts, visitors)
	cancel()
	if err != nil {
		r.fails.Add(1)
		r.lost.Add(uint64(b.events))
		r.log.Warn("usage: writing counters failed; events dropped", "events", b.events, "error", err)
		return
	}
	r.flushed.Add(uint64(b.events))
}
