package redisstore

import (
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts. Each runs atomically on the node that owns the "{q}"
// slot (see keys.go). They are sent with EVALSHA and fall back to EVAL when
// the server does not know them yet (e.g. after a restart).
//
// Invariant kept by the queue scripts: an undelivered submission has exactly
// one "token" — an entry in the deliveries stream, a member of the retry set,
// or a member of the dead set. Complete, Retry, DeadLetter and Drop start with
// XACK of the job's stream entry and do nothing else when it was already
// acknowledged, so when two consumers end up holding the same job (one was
// slow, the other claimed it), only the first outcome counts.

// createScript accepts a submission.
//
// KEYS: 1 sub, 2 payload, 3 hist, 4 ref, 5 idem, 6 deliveries,
// 7 the department's index, 8 the owner's index (My pages; the same key as
// 7 when the submission has no owner), 9 the audit stream, 10 the service
// point's desk index (only when the submission was filed at a service
// point)
// ARGV: 1 use idem ("1"/"0"), 2 body hash, 3 idem TTL ms, 4 sub key prefix,
// 5 id, 6 payload JSON, 7 history entry JSON, 8 created (ms, the index
// score), 9 the desk index's cutoff, 10 the department's and owner's
// indexes' cutoff (ms; older entries are trimmed, so the indexes stay
// bounded by retention; 0 trims nothing), 11 reference, 12 the audit entry
// (JSON) of a filing on a visitor's behalf or "" (none), 13.. metadata
// field/value pairs
//
// Replies {"ok"}, {"dup", id}, {"mismatch"}, {"ref"} (reference taken) or
// {"id"} (id taken).
//
// Safe to run twice with the same arguments: go-redis sends a script again
// when the connection broke before the reply arrived, and the first run may
// have completed. The caller draws id and reference before the script, so a
// record under this id with this reference can only be this call's own
// earlier run: the script answers "ok" again and writes nothing. (Without
// this check a re-run answered "id", the caller drew a new id and one
// request became two submissions, both delivered.)
//
// A re-run and a replay ("dup") each rewrite one field with the value it
// has: WAIT (GATEWAY_REDIS_WAIT_REPLICAS) counts the replicas that have
// every write made on its own connection, and a receipt shown from a call
// that wrote nothing would wait for nothing (the first run's write may have
// gone out on another connection, of this or another gateway process). The
// rewrite comes after that write in the replication stream, so the WAIT
// that follows covers it.
//
// The script text is wrapped by withReceivedEvent, which in the same step
// writes the submission.received webhook event and the record's "np"
// field (does the owner have notification preferences); its three keys
// and one argument are appended last (appendReceivedEvent). The wrapper
// let two changes land without editing this text at the same time; folding
// it into the script is a possible clean-up, not a behaviour change.
var createScript = redis.NewScript(withReceivedEvent(`
local mine = redis.call('HGET', KEYS[1], 'reference')
if mine then
  if mine == ARGV[11] then
    redis.call('HSET', KEYS[1], 'reference', mine) -- a write for WAIT (above)
    return {'ok'}
  end
  return {'id'}
end
if ARGV[1] == '1' then
  local prev = redis.call('HMGET', KEYS[5], 'id', 'body')
  if prev[1] and redis.call('EXISTS', ARGV[4] .. prev[1]) == 1 then
    if prev[2] == ARGV[2] then
      redis.call('HSET', KEYS[5], 'id', prev[1]) -- a write for WAIT (above)
      return {'dup', prev[1]}
    end
    return {'mismatch'}
  end
  -- no record, or the earlier submission is gone (its retention passed)
end
if not redis.call('SET', KEYS[4], ARGV[5], 'NX') then
  return {'ref'}
end
redis.call('HSET', KEYS[1], unpack(ARGV, 13))
redis.call('SET', KEYS[2], ARGV[6])
redis.call('RPUSH', KEYS[3], ARGV[7])
redis.call('XADD', KEYS[6], '*', 'id', ARGV[5])
redis.call('ZADD', KEYS[7], ARGV[8], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', '(' .. ARGV[10])
if KEYS[8] ~= KEYS[7] then
  redis.call('ZADD', KEYS[8], ARGV[8], ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', '(' .. ARGV[10])
end
if KEYS[10] then
  redis.call('ZADD', KEYS[10], ARGV[8], ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[10], '-inf', '(' .. ARGV[9])
end
if ARGV[12] ~= '' then
  redis.call('XADD', KEYS[9], '*', 'e', ARGV[12])
end
if ARGV[1] == '1' then
  -- both fields are overwritten: no DEL needed
  redis.call('HSET', KEYS[5], 'id', ARGV[5], 'body', ARGV[2])
  redis.call('PEXPIRE', KEYS[5], ARGV[3])
end
return {'ok'}
`))

// updateStatusScript records a status change from a case system.
//
// KEYS: 1 sub, 2 hist, 3 the notification outbox, 4 the departments'
// webhook subscriptions, 5 the update's nonce (optional: a signed update's
// signature, remembered so that a replay does nothing)
// ARGV: 1 status, 2 its rank, 3 history entry JSON, 4 case reference or "",
// 5 time of the change in ms, 6 how long the nonce is remembered (ms),
// 7 the longest history kept (entries), 8 the outbox's approximate length
// limit
//
// When the status moves, or a department asks another question (needs_info
// again), the notification event is written in the same step (see
// notifyEvent), so a status change is never without its notification.
//
// The status moves to a higher rank, or to the same rank when the change is
// not older than the one that set the current status (status_at), so that
// a late needs_info does not undo a newer in_progress. Replies -1 (no such
// submission), 0 (recorded, status not moved), 1 (moved to another status)
// or 2 (a replay: the nonce was seen, or the entry is the last one already,
// e.g. go-redis re-sent the script; nothing done).
//
// The history keeps its first entry (received) and the newest ones up to
// ARGV[7] in all, so replays and chatty back-ends cannot grow it without
// bound.
var updateStatusScript = redis.NewScript(applyStatusLua + `
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if KEYS[5] and not redis.call('SET', KEYS[5], '1', 'NX', 'PX', ARGV[6]) then
  return 2
end
return applyStatus(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[7], ARGV[8])
`)

// applyStatusLua defines applyStatus, the status change of
// updateStatusScript without its checks, shared with adoptUnknownScript:
// sub, hist, out (outbox), hooks are keys; status, rank, entry (history
// JSON), caseRef, at (ms), maxHist, outMax as in updateStatusScript's ARGV.
// Replies 0, 1 or 2 like updateStatusScript.
var applyStatusLua = `
local function applyStatus(sub, hist, out, hooks, status, rank, entry, caseRef, at, maxHist, outMax)
  if redis.call('LINDEX', hist, -1) == entry then
    return 2
  end
  redis.call('RPUSH', hist, entry)
  local max = tonumber(maxHist)
  local n = redis.call('LLEN', hist)
  if max > 1 and n > max then
    local first = redis.call('LINDEX', hist, 0)
    redis.call('LTRIM', hist, n - max + 1, -1)
    redis.call('LPUSH', hist, first)
  end
  local ttl = redis.call('PTTL', sub)
  if ttl > 0 then
    redis.call('PEXPIRE', hist, ttl)
  end
  if caseRef ~= '' then
    redis.call('HSET', sub, 'case_reference', caseRef)
  end
  local cur = tonumber(redis.call('HGET', sub, 'rank') or '0')
  local r = tonumber(rank)
  local t = tonumber(at or '0')
  local curAt = tonumber(redis.call('HGET', sub, 'status_at') or '0')
  if r > cur or (r == cur and t >= curAt) then
    local prev = redis.call('HGET', sub, 'status')
    redis.call('HSET', sub, 'status', status, 'rank', rank, 'status_at', t)
    if prev ~= status then
      ` + notifyEvent("sub", "out", "status", "outMax") + `
      ` + webhookEvent("sub", "out", "hooks", "'status.changed'", "status", "outMax") + `
      return 1
    end
    if status == 'needs_info' then
      -- another question while one is open: the resident is told again
      ` + notifyEvent("sub", "out", "status", "outMax") + `
    end
  end
  return 0
end
`

// adoptUnknownScript applies the status updates kept for a submission the
// store did not have (unknownStatusScript) once the submission is there
// (e.g. restored, or replicated late): each entry goes through applyStatus
// in order, as if it had arrived now, and the kept list and its index entry
// are removed, all in one step. The caller read the list first and passes
// its length and last entry: when the list changed meanwhile (another
// reader adopted it, or an update arrived), nothing is done (0).
//
// KEYS: 1 sub, 2 hist, 3 outbox, 4 hooks, 5 the id's kept list, 6 the index
// ARGV: 1 id, 2 max history, 3 outbox limit, 4 the list's length, 5 its
// last entry, then per entry 5 values: status, rank, history entry JSON,
// case reference, at (ms)
//
// Replies -1 (no such submission), 0 (changed: nothing done) or 1.
var adoptUnknownScript = redis.NewScript(applyStatusLua + `
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('LLEN', KEYS[5]) ~= tonumber(ARGV[4]) or redis.call('LINDEX', KEYS[5], -1) ~= ARGV[5] then
  return 0
end
for i = 6, #ARGV, 5 do
  applyStatus(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[2], ARGV[3])
end
redis.call('DEL', KEYS[5])
redis.call('ZREM', KEYS[6], ARGV[1])
return 1
`)

// unknownStatusScript records a status update for a submission this Redis
// does not have (e.g. lost with a failover to a lagging replica, while the
// back-end holds the case), so that it is not lost: the entry joins the
// id's list and the id the index of such ids. Bounded: the list keeps its
// newest ARGV[4] entries and expires after ARGV[2]; the index drops ids
// older than ARGV[2] and keeps at most ARGV[5], and the lists of the ids it
// drops go with them. A nonce seen (KEYS[4]) or an entry equal to the last
// one is a replay (safe to run twice).
//
// KEYS: 1 sub (must not exist), 2 the id's list, 3 the index, 4 nonce
// (optional)
// ARGV: 1 entry JSON, 2 keep ms, 3 now ms, 4 longest list, 5 most ids,
// 6 id, 7 nonce TTL ms, 8 the lists' key prefix (an id is appended; the
// same slot)
//
// Replies -1 (the submission exists: use updateStatusScript), 0 (replay)
// or 1 (recorded).
var unknownStatusScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  return -1
end
if KEYS[4] and not redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[7]) then
  return 0
end
if redis.call('LINDEX', KEYS[2], -1) == ARGV[1] then
  return 0
end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[6])
local cutoff = '(' .. (tonumber(ARGV[3]) - tonumber(ARGV[2]))
for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', cutoff)) do
  redis.call('DEL', ARGV[8] .. old)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', cutoff)
local over = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[5])
if over > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[3], 0, over - 1)) do
    redis.call('DEL', ARGV[8] .. old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, over - 1)
end
return 1
`)

// ackJob is the prologue of the scripts that end a job (Complete, Retry,
// DeadLetter, Defer): XACK and XDEL of the job's entry in the deliveries
// stream, KEYS[stream]; ARGV 1 is the group, 2 the stream id, and the last
// ARGV a token the caller drew for this call. The script replies 0 and does
// nothing else when the entry was already acknowledged, and -1 when the
// submission (KEYS[1]) is gone.
//
// The token makes the scripts safe to run twice with the same arguments:
// the first run stores it in the record ("ack"), so a re-run by go-redis
// after a broken connection finds its own token and replies 1 (done),
// where it would have replied 0 (another consumer finished the job).
func ackJob(stream int) string {
	d := "KEYS[" + strconv.Itoa(stream) + "]"
	return `
if redis.call('XACK', ` + d + `, ARGV[1], ARGV[2]) == 0 then
  if redis.call('HGET', KEYS[1], 'ack') == ARGV[#ARGV] then
    return 1
  end
  return 0
end
redis.call('XDEL', ` + d + `, ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
redis.call('HSET', KEYS[1], 'ack', ARGV[#ARGV])`
}

// notifyEvent is the Lua that writes a notification event to the outbox
// (the stream out) when the status of the submission (record sub) moved to
// status: only for a submission with someone to tell (an owner, whose
// preferences the notifier reads, or a reply address). Each event gets a
// stable id, "<submission id>.<n>" with n counted in the record, which the
// notifier turns into the e-mail's Message-ID and the SMS provider's
// idempotency key. The scripts that call it return early on a re-run, so an
// event is written once. The stream is capped at about max entries (MAXLEN
// ~), so a notifier that is down for long cannot make it grow without end.
//
// An owner counts only when they saved preferences (issue 10 "Measured": a
// desk filing belongs to the visitor, and an event for a visitor who never
// saved any cost the notifier two reads to send nothing): the record's
// field "np" is "1" when the owner has preferences (set by the create
// script, and by setPrefsScript on all the owner's records when they save
// them later) and "0" when not. A record without the field (written before
// it existed) keeps the old rule: every owner gets events.
func notifyEvent(sub, out, status, max string) string {
	return `local nc = redis.call('HMGET', ` + sub + `, 'subject', 'reply_email', 'id', 'department', 'np')
    if (nc[1] and nc[1] ~= '' and nc[5] ~= '0') or (nc[2] and nc[2] ~= '') then
      local seq = redis.call('HINCRBY', ` + sub + `, 'nseq', 1)
      redis.call('XADD', ` + out + `, 'MAXLEN', '~', ` + max + `, '*', 'id', nc[3], 'status', ` + status + `, 'event', nc[3] .. '.' .. seq,
        'department', nc[4] or '')
    end`
}

// webhookEvent is the Lua that writes a department webhook event of type
// typ (a Lua string expression) to the same outbox as the residents'
// notifications, when the submission's department subscribed to that type
// in the hooks hash (department -> ",type,type,", written at start-up from
// the webhook configuration; see SetWebhookSubscriptions). The event id is
// "<submission id>.w<n>", n counted in the record, stable through retries
// and replays; the time is the server's (TIME). Scripts that call it return
// early on a re-run, so an event is written once.
func webhookEvent(sub, out, hooks, typ, status, max string) string {
	return `local wd = redis.call('HMGET', ` + sub + `, 'department', 'id')
    local subs = wd[1] and ` + hooks + ` and redis.call('HGET', ` + hooks + `, wd[1])
    if subs and string.find(subs, ',' .. ` + typ + ` .. ',', 1, true) then
      local wseq = redis.call('HINCRBY', ` + sub + `, 'wseq', 1)
      local now = redis.call('TIME')
      redis.call('XADD', ` + out + `, 'MAXLEN', '~', ` + max + `, '*', 'id', wd[2], 'status', ` + status + `,
        'event', wd[2] .. '.w' .. wseq, 'department', wd[1], 'kind', 'webhook', 'type', ` + typ + `,
        'at', tostring(now[1] * 1000 + math.floor(now[2] / 1000)))
    end`
}

// withReceivedEvent wraps the create script (left as it is, see
// createScript) with the submission.received webhook event: the wrapper
// takes the two keys it needs off the end of KEYS (the outbox, then the
// hooks hash, pushed last by appendReceivedEvent) and the outbox length
// limit off the end of ARGV, runs the create script, and writes the event
// only when this run created the record (it did not exist before and the
// reply is "ok"), so a re-run or a duplicate writes nothing.
//
// It also takes the owner's notification preferences key off the end of
// KEYS (pushed last; any key in the slot for a submission without an
// owner) and records in the new record whether the owner has preferences
// (field "np", see notifyEvent), so that status changes of a submission
// whose owner never saved any write no notification event.
func withReceivedEvent(create string) string {
	return `local prefs = table.remove(KEYS)
local hooks = table.remove(KEYS)
local out = table.remove(KEYS)
local omax = table.remove(ARGV)
local existed = redis.call('EXISTS', KEYS[1])
local function create()
` + create + `
end
local r = create()
if existed == 0 and r[1] == 'ok' then
  local owner = redis.call('HGET', KEYS[1], 'subject')
  if owner and owner ~= '' then
    redis.call('HSET', KEYS[1], 'np', tostring(redis.call('EXISTS', prefs)))
  end
  ` + webhookEvent("KEYS[1]", "out", "hooks", "'submission.received'", "'received'", "omax") + `
end
return r
`
}

// setPrefsScript saves a resident's notification preferences and marks
// every submission of theirs as having an owner to tell (field "np" = "1",
// see notifyEvent), in one step, so that a status change after the save
// writes its event even for a submission filed before it.
//
// KEYS: 1 the preferences, 2 the owner's index of submissions (subj),
// 3.. the records of the ids in the index as the caller read it
// ARGV: 1 the preferences (JSON), 2 how long they are kept (ms), 3.. the
// ids, in the index's order
//
// Replies 0 and writes nothing when the index is no longer what the caller
// read (a submission was filed or trimmed meanwhile: read it again and
// retry), else 1. A re-run writes the same values again.
var setPrefsScript = redis.NewScript(`
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
if #ids ~= #ARGV - 2 then
  return 0
end
for i, id in ipairs(ids) do
  if ARGV[i + 2] ~= id then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], 'np', '1')
  end
end
return 1
`)

// completeScript records a successful delivery.
//
// KEYS: 1 sub, 2 payload, 3 hist, 4 ref, 5 deliveries, 6 retry, 7 dead,
// 8 the notification outbox, 9 the departments' webhook subscriptions
// ARGV: 1 group, 2 stream id, 3 history entry JSON, 4 case reference or "",
// 5 retention ms (0 = keep), 6 status "delivered", 7 its rank, 8 id,
// 9 the outbox's approximate length limit, 10 token (see ackJob)
//
// Replies 0 (job already acknowledged: nothing done), -1 (no such
// submission) or 1.
var completeScript = redis.NewScript(ackJob(5) + `
redis.call('ZREM', KEYS[6], ARGV[8])
redis.call('ZREM', KEYS[7], ARGV[8])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'delayed', '0')
redis.call('HDEL', KEYS[1], 'last_error', 'dead_reason')
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'case_reference', ARGV[4])
end
local cur = tonumber(redis.call('HGET', KEYS[1], 'rank') or '0')
if tonumber(ARGV[7]) >= cur then
  local prev = redis.call('HGET', KEYS[1], 'status')
  redis.call('HSET', KEYS[1], 'status', ARGV[6], 'rank', ARGV[7])
  if prev ~= ARGV[6] then
    ` + notifyEvent("KEYS[1]", "KEYS[8]", "ARGV[6]", "ARGV[9]") + `
    ` + webhookEvent("KEYS[1]", "KEYS[8]", "KEYS[9]", "'"+"submission.delivered"+"'", "ARGV[6]", "ARGV[9]") + `
  end
end
redis.call('RPUSH', KEYS[3], ARGV[3])
local ms = tonumber(ARGV[5])
if ms > 0 then
  for i = 1, 4 do
    redis.call('PEXPIRE', KEYS[i], ms)
  end
end
return 1
`)

// retryScript schedules another attempt.
//
// KEYS: 1 sub, 2 deliveries, 3 retry
// ARGV: 1 group, 2 stream id, 3 due ms, 4 id, 5 reason, 6 token
var retryScript = redis.NewScript(ackJob(2) + `
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
`)

// deadLetterScript parks a submission for a person to look at.
//
// KEYS: 1 sub, 2 deliveries, 3 dead
// ARGV: 1 group, 2 stream id, 3 now ms, 4 id, 5 reason, 6 token
var deadLetterScript = redis.NewScript(ackJob(2) + `
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'delayed', '1', 'dead_reason', ARGV[5], 'last_error', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
`)

// dropScript acknowledges and removes a job without an outcome (its
// submission is gone or already delivered).
//
// KEYS: 1 deliveries
// ARGV: 1 group, 2 stream id
var dropScript = redis.NewScript(`
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return n
`)

// promoteScript moves due retries back to the deliveries stream.
//
// KEYS: 1 retry, 2 deliveries
// ARGV: 1 now ms, 2 limit
var promoteScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do
  redis.call('XADD', KEYS[2], '*', 'id', id)
  redis.call('ZREM', KEYS[1], id)
end
return #ids
`)

// redriveScript gives a dead-lettered submission a new round of attempts.
//
// KEYS: 1 sub, 2 deliveries, 3 dead
// ARGV: 1 id, 2 token (a re-run finds it and answers 1, see ackJob)
//
// The submission stays "delayed" until it is delivered. Replies -1 (no such
// submission), 0 (not dead-lettered) or 1.
var redriveScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then
  if redis.call('HGET', KEYS[1], 'ack') == ARGV[2] then
    return 1
  end
  return 0
end
redis.call('HSET', KEYS[1], 'ack', ARGV[2])
redis.call('HSET', KEYS[1], 'attempts', '0')
redis.call('HDEL', KEYS[1], 'dead_reason')
redis.call('XADD', KEYS[2], '*', 'id', ARGV[1])
return 1
`)

// pruneScript removes consumers that have been idle for long and hold no
// pending entries: the names of dispatchers that are gone (every process
// gets a new name). Checking and deleting in one script matters: deleting a
// consumer drops its pending entries, so one that just read a job must not
// be deleted.
//
// KEYS: 1 deliveries
// ARGV: 1 group, 2 idle ms, 3 consumer to keep (the caller)
var pruneScript = redis.NewScript(`
local infos = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(infos) ~= 'table' or infos.err then
  return 0
end
local n = 0
for _, c in ipairs(infos) do
  local f = {}
  for i = 1, #c, 2 do
    f[c[i]] = c[i + 1]
  end
  local idle = tonumber(f['idle']) or -1 -- -1: unknown (miniredis)
  if f['name'] ~= ARGV[3] and tonumber(f['pending']) == 0 and idle >= 0 and idle >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    n = n + 1
  end
end
return n
`)

// hitScript counts a hit in a fixed window.
//
// KEYS: 1 counter
// ARGV: 1 window ms
//
// A re-run after a broken connection counts the hit twice: a rate limit
// one request stricter for that client, accepted.
//
// Replies {count, ms left in the window}.
var hitScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
`)

// deferScript puts a job back for later without counting an attempt: the
// back-end's circuit breaker is open, so nothing was tried.
//
// KEYS: 1 sub, 2 deliveries, 3 retry
// ARGV: 1 group, 2 stream id, 3 due ms, 4 id, 5 token
var deferScript = redis.NewScript(ackJob(2) + `
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
`)

// lockScript takes an in-flight lock for the caller's token. Safe to run
// twice with the same arguments: a re-run (go-redis sends the script again
// when the connection broke before the reply) finds the caller's own token
// and answers 1, where SET NX alone answered "taken" and a request sent
// once got 409.
//
// KEYS: 1 lock
// ARGV: 1 token, 2 TTL ms
//
// Replies 1 (the caller holds the lock) or 0 (another request holds it).
var lockScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  return 1
end
if cur then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// unlockScript releases an in-flight lock only when the caller still holds
// it (the token matches), so a lock that expired and was taken by another
// request is not released by the first.
//
// KEYS: 1 lock
// ARGV: 1 token
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// closeDeadScript ends the hand-over of a dead-lettered submission that a
// person handled another way: it leaves the dead set, the payload is
// deleted at once (it will not be delivered), its status becomes ARGV[2]
// ("failed" or "closed") and the metadata follows the retention.
//
// The status change is applyStatus's, as for a case system's update: the
// history entry (kept within ARGV[8] entries), and, when the status moves,
// the resident's notification event (only for a record with someone to
// tell, see notifyEvent) and the department's status.changed webhook event
// (only when subscribed, see webhookEvent), all in this one step.
//
// KEYS: 1 sub, 2 payload, 3 hist, 4 ref, 5 dead, 6 the notification
// outbox, 7 the departments' webhook subscriptions
// ARGV: 1 id, 2 status, 3 its rank, 4 history entry JSON, 5 retention ms
// (0 = keep), 6 now ms, 7 token, 8 the longest history kept (entries),
// 9 the outbox's approximate length limit
//
// Replies -1 (no such submission), 0 (not dead-lettered), 1 (closed, the
// status moved) or 2 (closed, the status had not moved: e.g. it was that
// status already). The token is stored in the record's "ack", with "=" after
// it when the status had not moved, so that a re-run by go-redis after a
// broken connection finds it and replies the first run's 1 or 2 without
// writing anything (no second event).
var closeDeadScript = redis.NewScript(applyStatusLua + `
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('ZREM', KEYS[5], ARGV[1]) == 0 then
  local ack = redis.call('HGET', KEYS[1], 'ack')
  if ack == ARGV[7] then
    return 1
  end
  if ack == ARGV[7] .. '=' then
    return 2
  end
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'delayed', '0')
redis.call('HDEL', KEYS[1], 'dead_reason')
local r = 2
if applyStatus(KEYS[1], KEYS[3], KEYS[6], KEYS[7], ARGV[2], ARGV[3], ARGV[4], '', ARGV[6], ARGV[8], ARGV[9]) == 1 then
  r = 1
end
if r == 1 then
  redis.call('HSET', KEYS[1], 'ack', ARGV[7])
else
  redis.call('HSET', KEYS[1], 'ack', ARGV[7] .. '=')
end
local ms = tonumber(ARGV[5])
if ms > 0 then
  for i = 1, 4 do
    if i ~= 2 then
      redis.call('PEXPIRE', KEYS[i], ms)
    end
  end
end
return r
`)

// saveNoticeScript stores a front-door notice (notices.go), first pruning
// the expired ones, and refuses a new one when ARGV[5] are stored already.
//
// KEYS: 1 notices (hash id -> JSON), 2 their ends (zset, score = end ms)
// ARGV: 1 now ms, 2 id, 3 notice JSON, 4 its end ms, 5 the most notices
// Replies 1 (stored) or 0 (full).
var saveNoticeScript = redis.NewScript(`
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(gone) do
  redis.call('HDEL', KEYS[1], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
return 1
`)

// onceCountScript adds 1 to a counter once per caller's token: a re-run by
// go-redis after a broken connection finds the token and adds nothing.
//
// KEYS: 1 counter hash, 2 the token's key (same slot)
// ARGV: 1 field, 2 token TTL ms
var onceCountScript = redis.NewScript(`
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then
  redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
end
return 1
`)

// onceAppendScript adds an entry to a stream once per caller's token (see
// onceCountScript).
//
// KEYS: 1 stream, 2 the token's key (same slot)
// ARGV: 1 field, 2 value, 3 token TTL ms
var onceAppendScript = redis.NewScript(`
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then
  redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[2])
end
return 1
`)

// usageAddScript adds usage counters once per caller's token (see
// onceCountScript).
//
// KEYS: 1 the token's key, 2.. day hashes (all in the {u} slot)
// ARGV: 1 token TTL ms, then triplets: index into KEYS, field, increment
var usageAddScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
for i = 2, #ARGV, 3 do
  redis.call('HINCRBY', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
end
return 1
`)

// notifyMoveScript takes a notification event out of the outbox into a
// sorted set (retry or dead letters).
//
// KEYS: 1 outbox, 2 the set
// ARGV: 1 group, 2 stream id, 3 score, 4 member (the event as JSON),
// 5 how many members the set keeps (0: no limit)
//
// Only the consumer that still holds the event moves it: XACK answers 0 on
// a re-run or when another notifier finished the event, and then nothing
// is done. Replies 1 (moved) or 0.
var notifyMoveScript = redis.NewScript(`
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
local keep = tonumber(ARGV[5])
if keep > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(keep + 1))
end
return 1
`)

// notifyPromoteScript moves due retries back into the outbox.
//
// KEYS: 1 retry set, 2 outbox
// ARGV: 1 now (ms), 2 at most this many, 3 the outbox's length limit
//
// Replies how many were moved. Members are removed as they are added, so a
// re-run finds nothing more to move.
var notifyPromoteScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  local ev = cjson.decode(m)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'id', ev.id, 'status', ev.status,
    'event', ev.event, 'attempt', tostring(ev.attempt), 'department', ev.department or '',
    'kind', ev.kind or '', 'type', ev.type or '', 'at', tostring(ev.at_ms or 0))
end
return #due
`)

// answerScript records a resident's answer to a completion request and
// queues its delivery to the case system, in one step.
//
// KEYS: 1 sub, 2 conv, 3 hist, 4 follow-ups stream
// ARGV: 1 token (drawn by the caller per answer), 2 entry JSON (without
// seq), 3 most answers kept, 4 history entry JSON, 5 id
//
// Replies the answer's seq (>= 1), or -1 (no such submission), -2 (no
// completion requested: the status is not needs_info), -3 (too many
// answers). A re-run with the same token finds its entry and replies its
// seq again without writing anything.
var answerScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local d = cjson.decode(e)
  if d.token == ARGV[1] then
    return d.seq
  end
end
if redis.call('HGET', KEYS[1], 'status') ~= 'needs_info' then
  return -2
end
local n = redis.call('LLEN', KEYS[2])
if n >= tonumber(ARGV[3]) then
  return -3
end
local entry = cjson.decode(ARGV[2])
entry.seq = n + 1
redis.call('RPUSH', KEYS[2], cjson.encode(entry))
redis.call('RPUSH', KEYS[3], ARGV[4])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call('XADD', KEYS[4], '*', 'id', ARGV[5], 'seq', tostring(n + 1))
return n + 1
`)

// replayNotifyScript puts a dead-lettered notification event back into the
// outbox with attempt 1 (an administrator's replay).
//
// KEYS: 1 dead letters, 2 outbox
// ARGV: 1 the member (the event as JSON), 2 the outbox's length limit
//
// Replies 1, or 0 when the member is not a dead letter (any more): a
// re-run or a second replay queues nothing.
var replayNotifyScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local ev = cjson.decode(ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'id', ev.id, 'status', ev.status,
  'event', ev.event, 'attempt', '1', 'department', ev.department or '',
  'kind', ev.kind or '', 'type', ev.type or '', 'at', tostring(ev.at_ms or 0))
return 1
`)

// followUpPromoteScript moves due follow-up retries back into the
// follow-ups stream.
//
// KEYS: 1 retry set (members "id seq"), 2 follow-ups stream
// ARGV: 1 now (ms), 2 at most this many
//
// Replies how many were moved; a re-run finds nothing more to move.
var followUpPromoteScript = redis.NewScript(`
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  local sp = string.find(m, ' ', 1, true)
  if sp then
    redis.call('XADD', KEYS[2], '*', 'id', string.sub(m, 1, sp - 1), 'seq', string.sub(m, sp + 1))
  end
end
return #due
`)

// followUpReplayScript puts a dead-lettered follow-up back into the
// follow-ups stream with a fresh count of attempts (an administrator's
// replay).
//
// KEYS: 1 dead letters, 2 follow-ups stream, 3 the submission's record
// ARGV: 1 the member (JSON), 2 id, 3 seq
//
// Replies 1, or 0 when the member is not a dead letter (any more), so a
// second replay queues nothing; -1 when the submission is gone (the dead
// letter is removed).
var followUpReplayScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  return -1
end
redis.call('HSET', KEYS[3], 'fup_attempts:' .. ARGV[3], '0')
redis.call('XADD', KEYS[2], '*', 'id', ARGV[2], 'seq', ARGV[3])
return 1
`)

// saveDraftScript writes a saved draft and indexes it under its owner,
// after pruning the owner's expired drafts; it refuses a new draft (not one
// being saved again) when the owner has ARGV[5] already.
//
// KEYS: 1 the draft (hash), 2 the owner's index (zset; same slot)
// ARGV: 1 the draft's digest (index member), 2 the draft JSON, 3 TTL ms,
// 4 now ms, 5 the most drafts per owner
// Replies 1 (stored) or 0 (over the count).
var saveDraftScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'i', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) + tonumber(ARGV[3]), ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 1
`)

// takeDraftScript reads and deletes a saved draft and removes it from its
// owner's index (named in the draft; same slot): a code opens it once.
//
// KEYS: 1 the draft (hash)
// ARGV: 1 the draft's digest
// Replies the draft JSON, or nil when there is none.
var takeDraftScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'd', 'i')
if not v[1] then
  return false
end
redis.call('DEL', KEYS[1])
if v[2] then
  redis.call('ZREM', v[2], ARGV[1])
end
return v[1]
`)

// listDraftsScript returns an owner's live drafts (at most ARGV[3], the
// soonest to expire first), pruning expired and deleted ones from the index.
//
// KEYS: 1 the owner's index
// ARGV: 1 now ms, 2 the drafts' key prefix (same slot), 3 the most to return
var listDraftsScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)) do
  local d = redis.call('HGET', ARGV[2] .. m, 'd')
  if d then
    table.insert(out, d)
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return out
`)

// claimAttachmentScript marks one uploaded attachment as a submission's and
// extends the life of its metadata and chunks. All its keys share the
// attachment's hash tag {f:<id>} (see keys.go), so the chunk keys it builds
// from ARGV[3] are in the slot of KEYS[1].
//
// KEYS: 1 the attachment's metadata hash
// ARGV: 1 submission id, 2 TTL (ms), 3 chunk key prefix
//
// Replies "ok" (claimed now or already by this submission: safe to run
// twice), "missing" (no metadata, or a chunk expired) or "taken" (claimed
// by another submission). Nothing is changed unless the reply is "ok".
var claimAttachmentScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'chunks', 'sub')
if not m[1] then
  return 'missing'
end
if m[2] and m[2] ~= ARGV[1] then
  return 'taken'
end
local n = tonumber(m[1])
for i = 0, n - 1 do
  if redis.call('EXISTS', ARGV[3] .. i) == 0 then
    return 'missing'
  end
end
redis.call('HSET', KEYS[1], 'sub', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
for i = 0, n - 1 do
  redis.call('PEXPIRE', ARGV[3] .. i, ARGV[2])
end
return 'ok'
`)

// deleteAttachmentScript deletes one attachment: its metadata and the
// chunks it names (same slot, see claimAttachmentScript). Replies the
// number of keys deleted.
//
// KEYS: 1 the attachment's metadata hash
// ARGV: 1 chunk key prefix
var deleteAttachmentScript = redis.NewScript(`
local n = tonumber(redis.call('HGET', KEYS[1], 'chunks') or '0')
local d = redis.call('DEL', KEYS[1])
for i = 0, n - 1 do
  d = d + redis.call('DEL', ARGV[1] .. i)
end
return d
`)

// attachmentFetchedScript records that a back-end fetched every byte of an
// attachment through its link. When the submission (or answer) it came
// with was already delivered ("released"), the attachment is deleted at
// once; else the mark tells the release to delete it. Same slot as
// claimAttachmentScript.
//
// KEYS: 1 the attachment's metadata hash
// ARGV: 1 chunk key prefix
//
// Replies "missing", "deleted" or "marked".
var attachmentFetchedScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'chunks', 'released')
if not m[1] then
  return 'missing'
end
if m[2] then
  local n = tonumber(m[1])
  redis.call('DEL', KEYS[1])
  for i = 0, n - 1 do
    redis.call('DEL', ARGV[1] .. i)
  end
  return 'deleted'
end
redis.call('HSET', KEYS[1], 'fetched', '1')
return 'marked'
`)

// attachmentReleaseScript is told that what an attachment came with was
// delivered: a fetched attachment is deleted at once; any other is marked
// released (the next complete fetch deletes it) and lives at most ARGV[2]
// ms longer (the lifetime of the last link handed out), never longer than
// it would have.
//
// KEYS: 1 the attachment's metadata hash
// ARGV: 1 chunk key prefix, 2 keep (ms)
//
// Replies "missing", "deleted" or "released".
var attachmentReleaseScript = redis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'chunks', 'fetched')
if not m[1] then
  return 'missing'
end
local n = tonumber(m[1])
local keep = tonumber(ARGV[2])
if m[2] or keep <= 0 then
  redis.call('DEL', KEYS[1])
  for i = 0, n - 1 do
    redis.call('DEL', ARGV[1] .. i)
  end
  return 'deleted'
end
redis.call('HSET', KEYS[1], 'released', '1')
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 or ttl > keep then
  redis.call('PEXPIRE', KEYS[1], keep)
  for i = 0, n - 1 do
    redis.call('PEXPIRE', ARGV[1] .. i, keep)
  end
end
return 'released'
`)

// setAttachmentFieldScript sets a field of an attachment that exists (not
// one that expired meanwhile): its type found inside a zip, its scan.
// KEYS: 1 metadata hash; ARGV: 1 field, 2 value. Replies 1, or 0 when
// missing.
var setAttachmentFieldScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// uploadSlotScript takes a place for one upload among its scope's (the
// uploader's) uploads of the last upload TTL: entries whose time is over
// are dropped first; at max the upload is refused.
//
// KEYS: 1 the scope's zset
// ARGV: 1 now (ms), 2 the upload's end (ms), 3 max, 4 attachment id, 5 TTL (ms)
//
// Replies 1 (taken) or 0 (full).
var uploadSlotScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return 1
`)
