package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/servicepoint"
)

// Service points: the desk's index of what was filed at each point, the
// counters of contacts registered at the desk, and the append-only audit
// stream of actions on behalf of residents. Keys are in keys.go.

// deskKeep is how long the desk index keeps an entry: the desk shows this
// week (at most 7 days back) and a day of slack. Create adds a submission
// filed at a service point to that point's index and trims older entries,
// in the create script.
const deskKeep = 8 * 24 * time.Hour

// DeskSubmissions lists what was filed at a service point since a time,
// newest first, without payloads.
func (s *Store) DeskSubmissions(ctx context.Context, point string, since time.Time, limit int) ([]*gateway.Submission, error) {
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	key := s.keys.deskPoint(point)
	ids, err := s.rdb.ZRevRangeByScore(ctx, key, &redis.ZRangeBy{
		Min: strconv.FormatInt(since.UnixMilli(), 10), Max: "+inf", Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	out, _, err := s.records(ctx, ids) // those past their retention are left out
	if err != nil {
		return nil, err
	}
	return out, nil
}

var streamID = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// deskSep separates the parts of a contact counter's field; ids, channels
// and outcomes cannot hold it.
const deskSep = "|"

// AddDeskContact counts one contact registered at a service point on a day
// ("YYYY-MM-DD"): HINCRBY of point|service|channel|outcome.
func (s *Store) AddDeskContact(ctx context.Context, day, point, service, channel, outcome string) error {
	for _, p := range []string{point, service, channel, outcome} {
		if p == "" || strings.Contains(p, deskSep) || len(p) > 100 {
			return gateway.Errorf(gateway.EInvalid, "desk.error.contact", errors.New("bad contact field"))
		}
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	f := point + deskSep + service + deskSep + channel + deskSep + outcome
	tok := ackToken() // a re-sent script counts the contact once
	if err := onceCountScript.Run(ctx, s.rdb, []string{s.keys.deskDay(day), s.keys.onceUsage(tok)}, f, onceKeep.Milliseconds()).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// onceKeep is how long the token of a counted write is remembered: longer
// than go-redis takes to re-send a command.
const onceKeep = time.Minute

// DeskContactCount is one counter of contacts registered at the desk (the
// domain type).
type DeskContactCount = gateway.DeskContactCount

// DeskContacts returns the contact counters of the days, summed over the
// days.
func (s *Store) DeskContacts(ctx context.Context, days []string) ([]DeskContactCount, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	cmds := make([]*redis.MapStringStringCmd, len(days))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, d := range days {
			cmds[i] = p.HGetAll(ctx, s.keys.deskDay(d))
		}
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	sum := map[string]int64{}
	var order []string
	for _, c := range cmds {
		for f, v := range c.Val() {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			if _, seen := sum[f]; !seen {
				order = append(order, f)
			}
			sum[f] += n
		}
	}
	out := make([]DeskContactCount, 0, len(order))
	for _, f := range order {
		parts := strings.Split(f, deskSep)
		if len(parts) != 4 {
			continue
		}
		out = append(out, DeskContactCount{Point: parts[0], Service: parts[1], Channel: parts[2], Outcome: parts[3], Count: sum[f]})
	}
	return out, nil
}

// AppendAudit adds an entry to the audit stream (XADD; the stream is never
// trimmed or edited by the gateway).
func (s *Store) AppendAudit(ctx context.Context, e servicepoint.AuditEntry) error {
	e.ID = ""
	b, err := json.Marshal(e)
	if err != nil {
		return gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tok := ackToken() // a re-sent script appends the entry once
	if err := onceAppendScript.Run(ctx, s.rdb, []string{s.keys.audit(), s.keys.onceAudit(tok)}, "e", string(b), onceKeep.Milliseconds()).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// Audit reads the audit stream newest first: up to limit entries older than
// the entry id before ("" = from the newest). It returns the entries and
// the total length of the stream. before must be a stream entry id
// ("<ms>-<seq>") or "". The stream of earlier releases (keys.auditLegacy,
// no longer written) is read alongside and merged by entry id, so the
// audit stays one list across the move of the stream into the
// submissions' slot.
func (s *Store) Audit(ctx context.Context, before string, limit int) ([]servicepoint.AuditEntry, int64, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	if before != "" && !streamID.MatchString(before) {
		return nil, 0, gateway.Errorf(gateway.EInvalid, "desk.error.audit_cursor", errors.New("bad cursor"))
	}
	max := "+"
	if before != "" {
		max = "(" + before
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		rng, old *redis.XMessageSliceCmd
		n, oldN  *redis.IntCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		rng = p.XRevRangeN(ctx, s.keys.audit(), max, "-", int64(limit))
		n = p.XLen(ctx, s.keys.audit())
		old = p.XRevRangeN(ctx, s.keys.auditLegacy(), max, "-", int64(limit))
		oldN = p.XLen(ctx, s.keys.auditLegacy())
		return nil
	})
	if err != nil {
		return nil, 0, unavailable(err)
	}
	msgs := mergeNewestFirst(rng.Val(), old.Val(), limit)
	out := make([]servicepoint.AuditEntry, 0, len(msgs))
	for _, m := range msgs {
		var e servicepoint.AuditEntry
		raw, _ := m.Values["e"].(string)
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, 0, unavailable(err)
		}
		e.ID = m.ID
		out = append(out, e)
	}
	return out, n.Val() + oldN.Val(), nil
}

// mergeNewestFirst merges two lists of stream entries, each newest first,
// into one of at most limit entries, newest first.
func mergeNewestFirst(a, b []redis.XMessage, limit int) []redis.XMessage {
	if len(b) == 0 {
		return a
	}
	out := make([]redis.XMessage, 0, min(len(a)+len(b), limit))
	for len(out) < limit && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && streamIDAfter(a[0].ID, b[0].ID)) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}

// streamIDAfter reports whether stream entry id x is after y.
func streamIDAfter(x, y string) bool {
	xm, xs, _ := strings.Cut(x, "-")
	ym, ys, _ := strings.Cut(y, "-")
	xmi, _ := strconv.ParseUint(xm, 10, 64)
	ymi, _ := strconv.ParseUint(ym, 10, 64)
	if xmi != ymi {
		return xmi > ymi
	}
	xsi, _ := strconv.ParseUint(xs, 10, 64)
	ysi, _ := strconv.ParseUint(ys, 10, 64)
	return xsi > ysi
}
