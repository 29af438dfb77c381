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
// 7 when the submission has no owner), 9 the service point's desk index
// (only when the submission was filed at a service point)
// ARGV: 1 use idem ("1"/"0"), 2 body hash, 3 idem TTL ms, 4 sub key prefix,
// 5 id, 6 payload JSON, 7 history entry JSON, 8 created (ms, the index
// score), 9 the desk index's cutoff (ms; older entries are trimmed),
// 10.. metadata field/value pairs
//
// Replies {"ok"}, {"dup", id}, {"mismatch"}, {"ref"} (reference taken) or
// {"id"} (id taken).
var createScript = redis.NewScript(`
if ARGV[1] == '1' then
  local prev = redis.call('HMGET', KEYS[5], 'id', 'body')
  if prev[1] and redis.call('EXISTS', ARGV[4] .. prev[1]) == 1 then
    if prev[2] == ARGV[2] then
      return {'dup', prev[1]}
    end
    return {'mismatch'}
  end
  -- no record, or the earlier submission is gone (its retention passed)
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'id'}
end
if not redis.call('SET', KEYS[4], ARGV[5], 'NX') then
  return {'ref'}
end
redis.call('HSET', KEYS[1], unpack(ARGV, 10))
redis.call('SET', KEYS[2], ARGV[6])
redis.call('RPUSH', KEYS[3], ARGV[7])
redis.call('XADD', KEYS[6], '*', 'id', ARGV[5])
redis.call('ZADD', KEYS[7], ARGV[8], ARGV[5])
if KEYS[8] ~= KEYS[7] then
  redis.call('ZADD', KEYS[8], ARGV[8], ARGV[5])
end
if KEYS[9] then
  redis.call('ZADD', KEYS[9], ARGV[8], ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', '(' .. ARGV[9])
end
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[5])
  redis.call('HSET', KEYS[5], 'id', ARGV[5], 'body', ARGV[2])
  redis.call('PEXPIRE', KEYS[5], ARGV[3])
end
return {'ok'}
`)

// updateStatusScript records a status change from a case system.
//
// KEYS: 1 sub, 2 hist
// ARGV: 1 status, 2 its rank, 3 history entry JSON, 4 case reference or "",
// 5 time of the change in ms
//
// The status moves to a higher rank, or to the same rank when the change is
// not older than the one that set the current status (status_at), so that
// a late needs_info does not undo a newer in_progress. Replies -1 (no such
// submission), 0 (recorded, status not moved) or 1 (moved).
var updateStatusScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
redis.call('RPUSH', KEYS[2], ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'case_reference', ARGV[4])
end
local cur = tonumber(redis.call('HGET', KEYS[1], 'rank') or '0')
local rank = tonumber(ARGV[2])
local at = tonumber(ARGV[5] or '0')
local curAt = tonumber(redis.call('HGET', KEYS[1], 'status_at') or '0')
if rank > cur or (rank == cur and at >= curAt) then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'rank', ARGV[2], 'status_at', at)
  return 1
end
return 0
`)

// ackJob is the prologue of the scripts that end a job (Complete, Retry,
// DeadLetter, Defer): XACK and XDEL of the job's entry in the deliveries
// stream, KEYS[stream]; ARGV 1 is the group and 2 the stream id. The script
// replies 0 and does nothing else when the entry was already acknowledged,
// and -1 when the submission (KEYS[1]) is gone.
func ackJob(stream int) string {
	d := "KEYS[" + strconv.Itoa(stream) + "]"
	return `
if redis.call('XACK', ` + d + `, ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', ` + d + `, ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end`
}

// completeScript records a successful delivery.
//
// KEYS: 1 sub, 2 payload, 3 hist, 4 ref, 5 deliveries, 6 retry, 7 dead
// ARGV: 1 group, 2 stream id, 3 history entry JSON, 4 case reference or "",
// 5 retention ms (0 = keep), 6 status "delivered", 7 its rank, 8 id
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
  redis.call('HSET', KEYS[1], 'status', ARGV[6], 'rank', ARGV[7])
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
// ARGV: 1 group, 2 stream id, 3 due ms, 4 id, 5 reason
var retryScript = redis.NewScript(ackJob(2) + `
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
`)

// deadLetterScript parks a submission for a person to look at.
//
// KEYS: 1 sub, 2 deliveries, 3 dead
// ARGV: 1 group, 2 stream id, 3 now ms, 4 id, 5 reason
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
// ARGV: 1 id
//
// The submission stays "delayed" until it is delivered. Replies -1 (no such
// submission), 0 (not dead-lettered) or 1.
var redriveScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then
  return 0
end
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
// ARGV: 1 group, 2 stream id, 3 due ms, 4 id
var deferScript = redis.NewScript(ackJob(2) + `
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
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
// person handled another way: it leaves the dead set, its status becomes
// ARGV[2] ("failed" or "closed"), the payload is deleted at once (it will
// not be delivered) and the metadata follows the retention.
//
// KEYS: 1 sub, 2 payload, 3 hist, 4 ref, 5 dead
// ARGV: 1 id, 2 status, 3 its rank, 4 history entry JSON, 5 retention ms
// (0 = keep), 6 now ms
//
// Replies -1 (no such submission), 0 (not dead-lettered) or 1.
var closeDeadScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('ZREM', KEYS[5], ARGV[1]) == 0 then
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'rank', ARGV[3], 'status_at', ARGV[6], 'delayed', '0')
redis.call('HDEL', KEYS[1], 'dead_reason')
redis.call('RPUSH', KEYS[3], ARGV[4])
local ms = tonumber(ARGV[5])
if ms > 0 then
  for i = 1, 4 do
    if i ~= 2 then
      redis.call('PEXPIRE', KEYS[i], ms)
    end
  end
end
return 1
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
