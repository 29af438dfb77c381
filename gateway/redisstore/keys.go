package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// DefaultPrefix is the key prefix when none is configured.
const DefaultPrefix = "gw"

// Every Redis key the gateway uses is built here and nowhere else.
//
// Layout (prefix "gw"):
//
//	gw:{q}:sub:<id>        hash    submission metadata (status, reference, attempts, ...;
//	                               np: the owner has notification preferences, notifyEvent)
//	gw:{q}:payload:<id>    string  the payload as JSON; expires on its own after delivery
//	gw:{q}:hist:<id>       list    status history, one JSON StatusChange per entry
//	gw:{q}:ref:<reference> string  reference -> id; makes references unique
//	gw:{q}:idem:<digest>   hash    idempotency record {id, body}; digest = sha256(scope, key)
//	gw:{q}:ilock:<digest>  string  a request with that idempotency key is in flight (short TTL)
//	gw:{q}:snonce:<digest> string  a signed status update seen (digest = sha256 of its
//	                               signature), against replay; expires after the window
//	gw:{q}:unknown:<id>    list    status updates for a submission this Redis does not
//	                               have (lost in a failover), JSON entries; 30 days, 10
//	gw:{q}:unknown         zset    ids with such updates, score = last (ms); 30 days, 1,000
//	gw:{q}:deliveries      stream  work for the dispatcher, field "id" = submission id
//	gw:{q}:retry           zset    submission ids waiting for a retry, score = due time (ms)
//	gw:{q}:dead            zset    dead-lettered submission ids, score = time (ms)
//	gw:rl:<digest>         string  rate limit counter; digest = sha256(key); no tag,
//	                               so counters spread over a Cluster
//	gw:{q}:subj:<digest>   zset    a person's submission ids, score = created (ms);
//	                               digest = sha256(subject) (My pages)
//	gw:{q}:dept:<dept>     zset    a department's submission ids, score = created (ms)
//	gw:sess:<digest>       string  a session (JSON); digest = sha256(session id);
//	                               expires after the idle timeout, refreshed on use
//	gw:sessend             channel Pub/Sub: digests of ended sessions (space-separated),
//	                               published on every delete, so replicas drop cached sessions
//	gw:sessidx:<digest>    zset    a person's sessions: member = the session key's digest,
//	                               score = end of its absolute lifetime (µs); digest =
//	                               sha256(subject); at most 50, expires with the newest
//	gw:login:<digest>      string  a sign-in in progress (nonce, PKCE verifier, return
//	                               path); digest = sha256(state); read once, 10 min
//	gw:draft:<digest>      string  form values kept across a step-up sign-in; short TTL
//	gw:jti:<digest>        string  a machine client's assertion id, against replay
//	gw:{d}:draft:<digest>  hash    a saved draft (intake.Drafts): field d = the draft
//	                               (JSON), i = its owner index's key; digest =
//	                               sha256(id or code), so a code is never stored;
//	                               expires with the draft (30 days signed in, 7 by code)
//	gw:{d}:drafts:<digest> zset    an owner's drafts: member = the draft's digest, score
//	                               = its end (ms); digest = sha256(owner: "user:<subject>",
//	                               "browser:<hash>", "desk:<staff>"); bounds the count
//	gw:{u}:usage:<day>     hash    usage counters of a day (gateway/usage): field
//	                               service|department|channel|locale|metric -> count
//	gw:{u}:uopen:<day>     string  a closed day's open-data rows (JSON), computed once
//	                               from the day's counters; expires after 400 days
//	gw:{u}:uv:<day>:<svc>  HLL     distinct visitor hashes of a day; <svc> "" = site;
//	                               expires after 400 days
//	gw:{u}:usecret:<name>  string  usage secrets: "salt:<day>" (visitor salt, TTL 26h,
//	                               never stored elsewhere) and "stamp" (form stamp key)
//	gw:{q}:desk:<point>    zset    submissions filed on a visitor's behalf at a service
//	                               point, score = created (ms); entries older than 8 days
//	                               are trimmed on write (the desk shows this week)
//	gw:{u}:desk:<day>      hash    contacts registered at service points (desk.go):
//	                               field point|service|channel|outcome -> count; kept
//	gw:{u}:once:<token>    string  a contact counted (token per call, 1 min), so a
//	gw:{q}:aonce:<token>           re-sent script counts once; likewise an audit entry
//	gw:{q}:audit           stream  append-only audit of actions on behalf of residents
//	                               (who, when, where, masked subject, what); never trimmed;
//	                               in the submissions' slot, because the entry of a filing
//	                               on behalf is written by the create script
//	gw:{a}:audit           stream  the audit stream of releases before that: read (merged
//	                               by entry id), never written
//	gw:{q}:sat:<id>        string  a submission's satisfaction answer (JSON: score, comment,
//	                               at); SET NX, so one per submission; expires with the
//	                               service's retention (satisfaction.go)
//	gw:{n}:notices         hash    front-door notices: id -> JSON (notices.go); at most 50
//	gw:{n}:notices:end     zset    the notices' ends (ms); expired ones are pruned at each save
//	gw:{q}:ready           string  readiness write probe (Store.Ready); expires in 10 s
//	gw:{q}:nout            stream  notification outbox (notify.go): fields id, status,
//	                               event, department, [attempt, kind, type, at];
//	                               written by the status scripts; ~MaxOutbox
//	gw:{q}:nretry          zset    notification events waiting for a retry (JSON),
//	                               score = due time (ms)
//	gw:{q}:ndead           zset    dead-lettered notification events (JSON), score =
//	                               time (ms); the newest MaxOutboxDead kept
//	gw:{q}:nsent:<event>:<channel> string  a notification sent (so a retry of the
//	                               event does not send it again); 30 days
//	gw:{q}:conv:<id>       list    a submission's completion answers (JSON), at most
//	                               gateway.MaxAnswers; expires with the record
//	gw:{q}:fup             stream  follow-ups (answers) to deliver: fields id, seq
//	gw:{q}:fupdead         zset    dead-lettered follow-ups (JSON FollowUpDead), score =
//	                               time (ms); the newest MaxOutboxDead kept
//	gw:{q}:fupretry        zset    follow-ups waiting for a retry ("id seq"), score =
//	                               due time (ms)
//	gw:{q}:hooks           hash    departments' webhook subscriptions: department ->
//	                               ",type,type," (webhook.go); replaced at start-up from
//	                               GATEWAY_WEBHOOKS_FILE; the outbox (nout) carries
//	                               webhook events as kind "webhook"
//	gw:{q}:nprefs:<digest> string  a signed-in resident's notification preferences
//	                               (JSON, at most 1 KiB); digest = sha256(subject);
//	                               expires PrefsKeep after the last change
//
// Why one hash tag. Accepting a submission must be one atomic step: the
// idempotency check, the unique reference, the record and the stream entry
// the dispatcher works from are written by one Lua script, so a receipt is
// never shown for a submission the dispatcher cannot see, and a crash cannot
// leave half of it. Redis runs a script on one node, and in Cluster every
// key a script touches must be in the same hash slot. The "{q}" tag puts all
// the keys above in one slot. The scripts also build a few keys from ids they
// read (e.g. the record of an earlier submission with the same idempotency
// key); that is allowed because those keys share the tag and so the slot.
//
// What that means for Cluster: it works (MOVED/ASK redirections, failover of
// the slot's primary to a replica), but the gateway's data lives on the one
// shard that owns the slot, so Cluster buys availability, not write
// throughput or memory beyond one shard. A gateway is far from that limit:
// one Redis node takes tens of thousands of these writes a second. Should it
// ever be needed, the way out is N tags ({q0}..{qN-1}) with one stream each,
// the submission id choosing its tag; the key functions below are where that
// change would be made. Sessions and other unrelated data may use other tags.
//
// The idempotency key and its scope, and rate limit keys, come from clients
// and may hold personal data (a scope can be a resident's identity, a rate
// limit key an IP address), so they are hashed into the key name rather than
// stored in clear.
type keys struct {
	base   string // e.g. "gw:"
	prefix string // e.g. "gw:{q}:"
}

func newKeys(prefix string) keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return keys{base: prefix + ":", prefix: prefix + ":{q}:"}
}

// subPrefix is the metadata key without the id; scripts append an id to it.
func (k keys) subPrefix() string { return k.prefix + "sub:" }

func (k keys) sub(id string) string     { return k.prefix + "sub:" + id }
func (k keys) payload(id string) string { return k.prefix + "payload:" + id }
func (k keys) hist(id string) string    { return k.prefix + "hist:" + id }
func (k keys) ref(ref string) string    { return k.prefix + "ref:" + ref }
func (k keys) deliveries() string       { return k.prefix + "deliveries" }

func (k keys) unknownStatus(id string) string { return k.prefix + "unknown:" + id }
func (k keys) unknownIndex() string           { return k.prefix + "unknown" }

// statusNonce remembers a signed status update (its signature), in the
// submissions' slot because the status script writes it.
func (k keys) statusNonce(nonce string) string {
	sum := sha256.Sum256([]byte(nonce))
	return k.prefix + "snonce:" + hex.EncodeToString(sum[:16])
}
func (k keys) retry() string { return k.prefix + "retry" }
func (k keys) dead() string  { return k.prefix + "dead" }

// rate is the rate limit counter of key. It stands alone (a single-key
// script), so it carries no hash tag and Cluster spreads the counters.
func (k keys) rate(key string) string {
	sum := sha256.Sum256([]byte(key))
	return k.base + "rl:" + hex.EncodeToString(sum[:16])
}

// idem is the idempotency record of key within scope.
func (k keys) idem(scope, key string) string {
	return k.prefix + "idem:" + idemDigest(scope, key)
}

// idemLock marks a request with key within scope as in flight. It shares
// the digest of idem, so a lock and its record name the same request.
func (k keys) idemLock(scope, key string) string {
	return k.prefix + "ilock:" + idemDigest(scope, key)
}

// idemDigest names an idempotency key within its scope: sha256(scope, 0, key).
// A submission without a key still declares one (Cluster routing): that
// name, the same for every such submission, is computed once.
func idemDigest(scope, key string) string {
	if scope == "" && key == "" {
		return noIdemDigest
	}
	return idemDigestOf(scope, key)
}

var noIdemDigest = idemDigestOf("", "")

func idemDigestOf(scope, key string) string {
	h := sha256.New()
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return hex.EncodeToString(h.Sum(nil))
}

// Identity keys (see auth.go). Session, sign-in, draft and replay keys
// stand alone (single-key commands), so they carry no hash tag; the
// indexes share the submissions' tag. Session ids, states and draft keys
// are secrets, and subjects hold personnummer, so all are hashed.
func (k keys) hashed(kind, v string) string { return k.base + kind + ":" + digest16(v) }

func digest16(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:16])
}

func (k keys) session(id string) string           { return k.hashed("sess", id) }
func (k keys) sessionDigest(digest string) string { return k.base + "sess:" + digest }
func (k keys) sessionIndex(subject string) string { return k.hashed("sessidx", subject) }
func (k keys) sessionEnded() string               { return k.base + "sessend" }
func (k keys) login(state string) string          { return k.hashed("login", state) }
func (k keys) draft(key string) string            { return k.hashed("draft", key) }
func (k keys) jti(key string) string              { return k.hashed("jti", key) }
func (k keys) dept(department string) string      { return k.prefix + "dept:" + department }
func (k keys) subject(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return k.prefix + "subj:" + hex.EncodeToString(sum[:16])
}

// Draft keys (see drafts.go) share their own tag {d}: a draft and its
// owner's index are written together by one script.
func (k keys) draftDigest(id string) string    { return digest16("draft\x00" + id) }
func (k keys) savedDraftPrefix() string        { return k.base + "{d}:draft:" }
func (k keys) savedDraft(digest string) string { return k.savedDraftPrefix() + digest }
func (k keys) draftIndex(owner string) string  { return k.base + "{d}:drafts:" + digest16(owner) }

// Usage keys (see usage.go) share their own tag {u}: unrelated to the
// submissions, and PFCOUNT over several days needs one slot.
func (k keys) usageDay(day string) string { return k.base + "{u}:usage:" + day }
func (k keys) usageVisitors(day, scope string) string {
	return k.base + "{u}:uv:" + day + ":" + scope
}
func (k keys) usageSecret(name string) string { return k.base + "{u}:usecret:" + name }
func (k keys) usageOpenDay(day string) string { return k.base + "{u}:uopen:" + day }

// Service-point keys (see desk.go). The desk index shares the submissions'
// tag so that it can be read together with their records; the contact
// counters share the usage tag; the audit stream shares the submissions' tag
// too: the create script writes the entry of a filing on behalf (the
// stream of earlier releases, {a}, is only read).
func (k keys) deskPoint(point string) string { return k.prefix + "desk:" + point }
func (k keys) deskDay(day string) string     { return k.base + "{u}:desk:" + day }
func (k keys) audit() string                 { return k.prefix + "audit" }
func (k keys) auditLegacy() string           { return k.base + "{a}:audit" }

// satisfaction is a submission's answer to the satisfaction question
// (satisfaction.go), in the submissions' slot.
func (k keys) satisfaction(id string) string { return k.prefix + "sat:" + id }

// Front-door notices (notices.go) share their own tag {n}: the hash of
// notices and the zset of their ends are written by one script.
func (k keys) notices() string    { return k.base + "{n}:notices" }
func (k keys) noticeEnds() string { return k.base + "{n}:notices:end" }

// ready is the readiness probe's key, in the submissions' slot: the node
// that must take writes.
func (k keys) ready() string { return k.prefix + "ready" }

// onceUsage and onceAudit remember one write by its caller's token, in the
// slot of what it writes (see onceCountScript).
func (k keys) onceUsage(token string) string { return k.base + "{u}:once:" + token }
func (k keys) onceAudit(token string) string { return k.prefix + "aonce:" + token }

// Notification keys (see notify.go), in the submissions' slot: the status
// scripts write the outbox together with the status.
func (k keys) outbox() string      { return k.prefix + "nout" }
func (k keys) outboxRetry() string { return k.prefix + "nretry" }
func (k keys) outboxDead() string  { return k.prefix + "ndead" }
func (k keys) notifySent(event, channel string) string {
	return k.prefix + "nsent:" + event + ":" + channel
}
func (k keys) conv(id string) string             { return k.prefix + "conv:" + id }
func (k keys) followUps() string                 { return k.prefix + "fup" }
func (k keys) followUpDead() string              { return k.prefix + "fupdead" }
func (k keys) notifyPrefs(subject string) string { return k.prefix + "nprefs:" + digest16(subject) }
func (k keys) followUpRetry() string             { return k.prefix + "fupretry" }

// hooks is the departments' webhook subscriptions, in the submissions'
// slot: the scripts that write events read it.
func (k keys) hooks() string { return k.prefix + "hooks" }

// notifyGroup is the notifiers' consumer group on the outbox;
// followUpGroup the dispatchers' on the follow-ups.
const (
	notifyGroup   = "notify"
	followUpGroup = "followup"
)

// group is the dispatcher's consumer group on the deliveries stream. It is
// not a key, but it is part of the stored layout.
const group = "dispatch"

// Attachment keys (attachments.go). Each attachment has its own hash tag
// {f:<id>}, so its metadata and chunks live in one slot (one script can
// claim or delete them all) while a Cluster spreads attachments over its
// shards: the bytes are the bulk of what the gateway holds.
//
//	gw:{f:<id>}:meta   hash    the description (id, field, name, type, size,
//	                           sha256), chunk count, the claiming submission
//	                           ("sub") once claimed; written after the last chunk,
//	                           so an incomplete upload has no metadata
//	gw:{f:<id>}:c:<n>  string  chunk n (0-based) of the bytes, AttachmentChunk
//	                           bytes each except the last
//
// Everything expires: the upload TTL until claimed, the submission's
// keep time once claimed; delivery deletes them (DeleteAttachments).
func (k keys) attachmentMeta(id string) string        { return k.base + "{f:" + id + "}:meta" }
func (k keys) attachmentChunkPrefix(id string) string { return k.base + "{f:" + id + "}:c:" }
func (k keys) attachmentChunk(id string, n int) string {
	return k.attachmentChunkPrefix(id) + strconv.Itoa(n)
}

// uploadScope counts one uploader's uploads (zset: attachment id, score =
// when its upload TTL ends), so that the uploads one browser or client may
// have pending are bounded in number (Store.MaxUploadsPerScope); digest =
// sha256(scope), a scope can hold a person's subject. Stands alone.
//
//	gw:fscope:<digest>  zset  expires with the newest upload's TTL
func (k keys) uploadScope(scope string) string { return k.hashed("fscope", scope) }
