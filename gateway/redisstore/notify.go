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

// Bounds of the notification data.
const (
	// MaxOutbox is the outbox stream's approximate length limit. Events are
	// removed once sent, so it is reached only when the notifier is down
	// for long; then the oldest events are dropped (a notification is not
	// worth unbounded memory).
	MaxOutbox = 100_000
	// MaxOutboxDead is how many dead-lettered notification events are kept
	// (the newest).
	MaxOutboxDead = 10_000
	// SentKeep is how long a sent marker is kept: longer than any retry
	// schedule.
	SentKeep = 30 * 24 * time.Hour
	// PrefsKeep is how long notification preferences are kept after the
	// resident last saved them.
	PrefsKeep = 400 * 24 * time.Hour
	// maxPrefsBytes bounds one resident's preferences.
	maxPrefsBytes = 1024
)

// EnsureNotifyGroup creates the notifiers' consumer group on the outbox.
func (s *Store) EnsureNotifyGroup(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.rdb.XGroupCreateMkStream(ctx, s.keys.outbox(), notifyGroup, "0").Err()
	if err != nil && !isBusyGroup(err) {
		return unavailable(err)
	}
	return nil
}

func isBusyGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP") }

// storeErr is writeFailed for a call that may have succeeded (nil stays nil).
func storeErr(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	return writeFailed(err)
}

func notifyEvents(msgs []redis.XMessage) []gateway.NotifyEvent {
	out := make([]gateway.NotifyEvent, 0, len(msgs))
	for _, m := range msgs {
		ev := gateway.NotifyEvent{StreamID: m.ID, Attempt: 1}
		ev.SubmissionID, _ = m.Values["id"].(string)
		st, _ := m.Values["status"].(string)
		ev.Status = gateway.Status(st)
		ev.Event, _ = m.Values["event"].(string)
		if a, _ := m.Values["attempt"].(string); a != "" {
			ev.Attempt, _ = strconv.Atoi(a)
		}
		ev.Department, _ = m.Values["department"].(string)
		ev.Kind, _ = m.Values["kind"].(string)
		ev.Type, _ = m.Values["type"].(string)
		if a, _ := m.Values["at"].(string); a != "" {
			ev.AtMs, _ = strconv.ParseInt(a, 10, 64)
		}
		out = append(out, ev)
	}
	return out
}

// ReadNotifications reads new outbox events for consumer, waiting up to
// block (0: do not wait).
func (s *Store) ReadNotifications(ctx context.Context, consumer string, count int, block time.Duration) ([]gateway.NotifyEvent, error) {
	args := &redis.XReadGroupArgs{Group: notifyGroup, Consumer: consumer, Streams: []string{s.keys.outbox(), ">"}, Count: int64(count), Block: block}
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
		if err := s.EnsureNotifyGroup(ctx); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	var out []gateway.NotifyEvent
	for _, st := range res {
		out = append(out, notifyEvents(st.Messages)...)
	}
	return out, nil
}

// ClaimNotifications takes over events another notifier read but did not
// finish within minIdle (it crashed or was killed).
func (s *Store) ClaimNotifications(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]gateway.NotifyEvent, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	msgs, _, err := s.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: s.keys.outbox(), Group: notifyGroup,
		Consumer: consumer, MinIdle: minIdle, Start: "0", Count: int64(count)}).Result()
	if isNoGroup(err) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return notifyEvents(msgs), nil
}

// NotificationDone removes a handled event from the outbox.
func (s *Store) NotificationDone(ctx context.Context, ev gateway.NotifyEvent) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, s.keys.outbox(), notifyGroup, ev.StreamID)
		p.XDel(ctx, s.keys.outbox(), ev.StreamID)
		return nil
	})
	return storeErr(err)
}

// RetryNotification moves an event from the outbox to the retry set, due at
// due, with one more attempt. Only the consumer that still holds the event
// moves it (XACK first), so two notifiers never both schedule it.
func (s *Store) RetryNotification(ctx context.Context, ev gateway.NotifyEvent, due time.Time) error {
	next := ev
	next.Attempt++
	member, _ := json.Marshal(next)
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return storeErr(notifyMoveScript.Run(ctx, s.rdb, []string{s.keys.outbox(), s.keys.outboxRetry()},
		notifyGroup, ev.StreamID, due.UnixMilli(), member, 0).Err())
}

// DeadLetterNotification gives up on an event: it joins the dead letters
// (the newest MaxOutboxDead are kept) with the reason.
func (s *Store) DeadLetterNotification(ctx context.Context, ev gateway.NotifyEvent, reason string) error {
	ev.Reason = reason
	member, _ := json.Marshal(ev)
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return storeErr(notifyMoveScript.Run(ctx, s.rdb, []string{s.keys.outbox(), s.keys.outboxDead()},
		notifyGroup, ev.StreamID, s.now().UnixMilli(), member, MaxOutboxDead).Err())
}

// PromoteNotifications puts retries that are due back into the outbox.
func (s *Store) PromoteNotifications(ctx context.Context, now time.Time, limit int) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := notifyPromoteScript.Run(ctx, s.rdb, []string{s.keys.outboxRetry(), s.keys.outbox()},
		now.UnixMilli(), limit, MaxOutbox).Int()
	if err != nil {
		return 0, writeFailed(err)
	}
	return n, nil
}

// NotificationDeadLetters lists the newest dead-lettered events.
func (s *Store) NotificationDeadLetters(ctx context.Context, limit int) ([]gateway.NotifyEvent, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	members, err := s.rdb.ZRevRange(ctx, s.keys.outboxDead(), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make([]gateway.NotifyEvent, 0, len(members))
	for _, m := range members {
		var ev gateway.NotifyEvent
		if json.Unmarshal([]byte(m), &ev) == nil {
			out = append(out, ev)
		}
	}
	return out, nil
}

// NotificationSent reports whether the event was already sent on channel
// ("email", "sms").
func (s *Store) NotificationSent(ctx context.Context, event, channel string) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := s.rdb.Exists(ctx, s.keys.notifySent(event, channel)).Result()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// MarkNotificationSent records that the event was sent on channel.
func (s *Store) MarkNotificationSent(ctx context.Context, event, channel string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return storeErr(s.rdb.Set(ctx, s.keys.notifySent(event, channel), "1", SentKeep).Err())
}

// NotifyPrefs returns a resident's notification preferences (the zero
// value when they have none).
func (s *Store) NotifyPrefs(ctx context.Context, subject string) (gateway.NotifyPrefs, error) {
	var p gateway.NotifyPrefs
	ctx, cancel := s.bound(ctx)
	defer cancel()
	v, err := s.rdb.Get(ctx, s.keys.notifyPrefs(subject)).Bytes()
	if errors.Is(err, redis.Nil) {
		return p, nil
	}
	if err != nil {
		return p, unavailable(err)
	}
	if err := json.Unmarshal(v, &p); err != nil {
		return p, unavailable(fmt.Errorf("notification preferences: %w", err))
	}
	return p, nil
}

// SetNotifyPrefs stores a resident's notification preferences for
// PrefsKeep. The caller validates them; the store refuses more than 1 KiB.
func (s *Store) SetNotifyPrefs(ctx context.Context, subject string, p gateway.NotifyPrefs) error {
	b, err := json.Marshal(p)
	if err != nil {
		return gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	if len(b) > maxPrefsBytes {
		return gateway.Errorf(gateway.EInvalid, "error.validation", errors.New("notification preferences too large"))
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// The owner's submissions are marked in the same step (setPrefsScript),
	// so that their next status change writes a notification event; the
	// index is read first and the script refuses when it changed meanwhile.
	idx := s.keys.subject(subject)
	for range 5 {
		ids, err := s.rdb.ZRange(ctx, idx, 0, -1).Result()
		if err != nil {
			return unavailable(err)
		}
		keys := make([]string, 0, len(ids)+2)
		args := make([]any, 0, len(ids)+2)
		keys = append(keys, s.keys.notifyPrefs(subject), idx)
		args = append(args, b, PrefsKeep.Milliseconds())
		for _, id := range ids {
			keys = append(keys, s.keys.sub(id))
			args = append(args, id)
		}
		n, err := setPrefsScript.Run(ctx, s.rdb, keys, args...).Int()
		if err != nil {
			return storeErr(err)
		}
		if n == 1 {
			return nil
		}
	}
	return unavailable(errors.New("notification preferences: the submissions index kept changing"))
}

// ReplayNotification gives a dead-lettered event (named by its event id) a
// new round of attempts: it leaves the dead letters and joins the outbox
// again with attempt 1, under the same event id, so what was sent already
// (the per-channel sent markers) is not sent again. found is false when no
// dead letter has that id (never, or replayed already): replaying twice
// queues it once.
func (s *Store) ReplayNotification(ctx context.Context, event string) (ev gateway.NotifyEvent, found bool, err error) {
	rctx, cancel := s.bound(ctx)
	members, err := s.rdb.ZRevRange(rctx, s.keys.outboxDead(), 0, MaxOutboxDead-1).Result()
	cancel()
	if err != nil {
		return ev, false, unavailable(err)
	}
	for _, m := range members {
		var d gateway.NotifyEvent
		if json.Unmarshal([]byte(m), &d) != nil || d.Event != event {
			continue
		}
		cctx, cancel := s.bound(ctx)
		n, err := replayNotifyScript.Run(cctx, s.rdb, []string{s.keys.outboxDead(), s.keys.outbox()}, m, MaxOutbox).Int()
		cancel()
		if err != nil {
			return ev, false, writeFailed(err)
		}
		return d, n == 1, nil
	}
	return ev, false, nil
}

// SetWebhookSubscriptions replaces the departments' webhook subscriptions
// the event scripts read (department -> event types), in one step.
func (s *Store) SetWebhookSubscriptions(ctx context.Context, subs map[string][]string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.keys.hooks())
		for dept, types := range subs {
			if len(types) > 0 {
				p.HSet(ctx, s.keys.hooks(), dept, ","+strings.Join(types, ",")+",")
			}
		}
		return nil
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}
