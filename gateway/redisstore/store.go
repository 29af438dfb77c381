// Package redisstore keeps the gateway's submissions and delivery queue in
// Redis. Every key, script and command the gateway sends to Redis lives in
// this package (see keys.go for the layout and scripts.go for the scripts).
//
// A submission is accepted in one atomic step: the idempotency check, the
// unique reference, the record, the payload, the first history entry and the
// entry in the deliveries stream are written by one Lua script. The receipt
// is shown only after that script returned, so with the append-only file
// fsynced on every write (appendfsync always) a resident who saw a receipt
// has a submission the dispatcher will deliver.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/servicepoint"
)

// DefaultOpTimeout bounds a Redis call whose context has no deadline.
const DefaultOpTimeout = 5 * time.Second

// DefaultWaitTimeout bounds WAIT when WaitReplicas is set and WaitTimeout
// is not.
const DefaultWaitTimeout = 500 * time.Millisecond

// DefaultIdempotencyTTL is how long an idempotency key is remembered when
// Idempotency.TTL is not set.
const DefaultIdempotencyTTL = 24 * time.Hour

// maxReferenceTries is how often Create draws a new reference when the one
// it drew is taken.
const maxReferenceTries = 8

// Metadata hash fields.
const (
	fID             = "id"
	fReference      = "reference"
	fService        = "service"
	fServiceVersion = "service_version"
	fDepartment     = "department"
	fChannel        = "channel"
	fLocale         = "locale"
	fSubject        = "subject"
	fReplyEmail     = "reply_email"
	fStatus         = "status"
	fRank           = "rank"
	fCaseReference  = "case_reference"
	fAttempts       = "attempts"
	fDelayed        = "delayed"
	fCreatedAt      = "created_at"
	fLastError      = "last_error"
	fDeadReason     = "dead_reason"
	// Filed on a resident's behalf at a service point (see gateway.Submission).
	fActor         = "actor"
	fServicePoint  = "service_point"
	fIdentityCheck = "identity_check"
	// The hex SHA-256 of the canonical payload, for the signed receipt.
	fPayloadHash = "payload_sha256"
	// The descriptions of the submission's attachments (JSON list of
	// gateway.Attachment); absent when none.
	fAttachments = "attachments"
)

// Store is the gateway's Redis store. It is safe for concurrent use.
type Store struct {
	rdb  redis.UniversalClient
	keys keys

	// OpTimeout bounds each call whose context has no deadline. Callers
	// should still pass their own timeouts.
	OpTimeout time.Duration

	// IndexKeep bounds how long the department's and a person's index of
	// submissions keep an entry (trimmed by score on every write and
	// list); 0 keeps entries until their record is found gone. Set it to
	// the longest retention of any service plus the time a submission may
	// wait for delivery.
	IndexKeep time.Duration

	// WaitReplicas, when > 0, makes Create wait (WAIT) until that many
	// replicas acknowledged the write, for at most WaitTimeout; fewer is
	// an outcome-unknown error (the client retries with its
	// Idempotency-Key). Only single-node and Sentinel clients: a Cluster
	// cannot route WAIT to the slot's primary (use min-replicas-to-write).
	WaitReplicas int
	WaitTimeout  time.Duration

	// MaxUploadsPerScope bounds the uploads one uploader (browser, person,
	// API client) may have made within the upload TTL
	// (DefaultMaxUploadsPerScope when zero).
	MaxUploadsPerScope int

	// Blobs, when set, holds the bytes of attachments (an S3-compatible
	// object store); nil keeps them as chunks in Redis. Set before use.
	Blobs Blobs

	now    func() time.Time
	newID  func() string
	newRef func(time.Time) string

	// batch sends concurrent creates and completions together (batch.go).
	batch *batcher
}

// New returns a Store using rdb, with keys under prefix ("" means
// DefaultPrefix).
func New(rdb redis.UniversalClient, prefix string) *Store {
	s := &Store{
		rdb:       rdb,
		keys:      newKeys(prefix),
		OpTimeout: DefaultOpTimeout,
		now:       time.Now,
		newID:     gateway.NewID,
		newRef:    gateway.NewReference,
	}
	s.batch = &batcher{s: s}
	return s
}

// Idempotency identifies a request that may be repeated (the domain type):
// Key is the client's Idempotency-Key ("" = none); Scope separates callers;
// BodyHash is a digest of the request body, so a key reused with another
// body is refused; TTL is how long the key is remembered
// (DefaultIdempotencyTTL when zero).
type Idempotency = gateway.Idempotency

// QueueStats describes the delivery queue.
type QueueStats struct {
	Stream    int64         // entries in the deliveries stream (waiting or in flight)
	Pending   int64         // entries handed to a consumer and not yet acknowledged
	Retrying  int64         // submissions waiting for a retry
	Dead      int64         // dead-lettered submissions
	OldestAge time.Duration // age of the oldest stream entry; 0 when empty
}

// CodeOutcomeUnknown is the gateway.Error code of a write whose outcome is
// not known: the request may have been sent and carried out, but no answer
// came (a timeout, a broken connection, or too few replicas acknowledged
// it). The edge answers 503 and tells the client to send the same request
// again with the same Idempotency-Key, which every write script makes safe.
const CodeOutcomeUnknown = "outcome_unknown"

// ErrNotReplicated is the cause of a write that reached the primary but not
// WaitReplicas replicas within WaitTimeout: it may be lost on a failover,
// or delivered.
var ErrNotReplicated = errors.New("redisstore: write not acknowledged by enough replicas")

// writeFailed wraps the error of a write: a definite refusal (Redis
// answered with an error it is not retried on, so nothing ran) is
// EUnavailable ("nothing was saved"); anything else (timeouts, broken
// connections, refused dials that may follow an attempt go-redis retried)
// is CodeOutcomeUnknown.
func writeFailed(err error) error {
	var gerr *gateway.Error
	if errors.As(err, &gerr) {
		return err
	}
	if refused(err) {
		return unavailable(err)
	}
	return &gateway.Error{Code: CodeOutcomeUnknown, Message: gateway.Message{ID: "error.store_outcome_unknown"}, Cause: err}
}

// refused reports whether err is Redis's definite refusal of a command: an
// error reply other than those go-redis retries on (after which an earlier
// attempt may have run).
func refused(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) || errors.Is(err, redis.Nil) {
		return false
	}
	msg := rerr.Error()
	for _, p := range []string{"READONLY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK"} {
		if strings.HasPrefix(msg, p) {
			return false
		}
	}
	return true
}

// unavailable wraps a Redis error for the edge.
func unavailable(err error) error {
	var gerr *gateway.Error
	if errors.As(err, &gerr) {
		return err
	}
	return gateway.Errorf(gateway.EUnavailable, "error.store_unavailable", err)
}

func notFound(id string) error {
	return gateway.Errorf(gateway.ENotFound, "error.submission_not_found", fmt.Errorf("submission %q not found", id))
}

// bound gives ctx a deadline of OpTimeout when it has none.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	d := s.OpTimeout
	if d <= 0 {
		d = DefaultOpTimeout
	}
	return context.WithTimeout(ctx, d)
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// validID reports whether id has the shape of gateway.NewID: 32 characters
// of lower-case base32.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Create accepts a submission. sub holds what the resident sent (service,
// version, department, channel, locale, subject, payload); the store fills
// in ID, Reference, Status (received), Attempts, CreatedAt and History.
//
// With an idempotency key, a repeated request with the same body returns the
// submission created first and created=false; the same key with another body
// is an EConflict error. On success with created=true, the returned
// submission is sub itself, filled in.
func (s *Store) Create(ctx context.Context, sub *gateway.Submission, idem Idempotency) (*gateway.Submission, bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()

	payload := sub.Payload
	if payload == nil {
		payload = map[string]any{}
	}
	payloadJSON, err := json.Marshal(payload)
	if err != nil {
		return nil, false, gateway.Errorf(gateway.EInternal, "error.internal", fmt.Errorf("encode payload: %w", err))
	}
	now := s.now().UTC()
	first := gateway.StatusChange{Status: gateway.StatusReceived, At: now}
	histJSON, err := json.Marshal(first)
	if err != nil {
		return nil, false, gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	useIdem, ttl := "0", idem.TTL
	if idem.Key != "" {
		useIdem = "1"
	}
	if ttl <= 0 {
		ttl = DefaultIdempotencyTTL
	}
	// An id the caller drew (validID, on a submission not yet stored: no
	// reference) is used as is: attachments were claimed for it before
	// this call (ClaimAttachments).
	preset := validID(sub.ID) && sub.Reference == ""
	for range maxReferenceTries {
		id, ref := s.newID(), s.newRef(now)
		if preset {
			id = sub.ID
		}
		keys, args := s.createCall(sub, idem, useIdem, ttl, id, ref, now, payloadJSON, histJSON)
		reply, werr, err := s.runCreate(ctx, keys, args)
		if err != nil {
			return nil, false, writeFailed(err)
		}
		if len(reply) == 0 {
			return nil, false, unavailable(errors.New("create: empty reply"))
		}
		switch reply[0] {
		case "ok":
			if werr != nil {
				return nil, false, werr
			}
			sub.ID, sub.Reference = id, ref
			sub.Status = gateway.StatusReceived
			sub.CaseReference = ""
			sub.Attempts = 0
			sub.Delayed = false
			sub.CreatedAt = now
			sub.History = []gateway.StatusChange{first}
			return sub, true, nil
		case "dup":
			if len(reply) < 2 {
				return nil, false, unavailable(errors.New("create: short reply"))
			}
			if werr != nil {
				// A replay shows the receipt the first request could not:
				// it too needs the replicas' WAIT (with none attached, e.g.
				// just after a failover, it was a receipt held by one node).
				return nil, false, werr
			}
			prev, err := s.Get(ctx, reply[1])
			if err != nil {
				return nil, false, err
			}
			return prev, false, nil
		case "mismatch":
			return nil, false, &gateway.Error{
				Code:    gateway.EConflict,
				Message: gateway.Message{ID: "error.idempotency_mismatch"},
				Cause:   errors.New("idempotency key reused with a different request body"),
			}
		case "id":
			if preset {
				return nil, false, unavailable(fmt.Errorf("create: submission id %s taken", sub.ID))
			}
			continue // taken: draw again
		case "ref":
			continue // taken: draw again
		default:
			return nil, false, unavailable(fmt.Errorf("create: unexpected reply %q", reply[0]))
		}
	}
	return nil, false, unavailable(fmt.Errorf("create: no free reference after %d tries", maxReferenceTries))
}

// runCreate runs createScript as part of a batch (batch.go). With
// WaitReplicas set, WAIT follows the batch on the same connection, and werr
// is ErrNotReplicated (as CodeOutcomeUnknown) when fewer replicas than
// asked acknowledged the write within WaitTimeout.
func (s *Store) runCreate(ctx context.Context, keys []string, args []any) (reply []string, werr, err error) {
	r, werr, err := s.batch.call(ctx, true, createScript, keys, args)
	if err != nil {
		return nil, nil, err
	}
	reply, err = stringsOf(r)
	return reply, werr, err
}

// createCall is the keys and arguments of createScript for one try with
// id and ref (drawn by the caller, so that a re-run of the script with the
// same arguments finds its own record; see createScript).
func (s *Store) createCall(sub *gateway.Submission, idem Idempotency, useIdem string, ttl time.Duration, id, ref string, now time.Time, payloadJSON, histJSON []byte) ([]string, []any) {
	indexCutoff := int64(0)
	if s.IndexKeep > 0 {
		indexCutoff = now.Add(-s.IndexKeep).UnixMilli()
	}
	args := []any{useIdem, idem.BodyHash, ttl.Milliseconds(), s.keys.subPrefix(), id, payloadJSON, histJSON, now.UnixMilli(),
		now.Add(-deskKeep).UnixMilli(), indexCutoff, ref, filingAudit(sub, ref, now),
		fID, id,
		fReference, ref,
		fService, sub.Service,
		fServiceVersion, sub.ServiceVersion,
		fDepartment, sub.Department,
		fChannel, string(sub.Channel),
		fLocale, sub.Locale,
		fStatus, string(gateway.StatusReceived),
		fRank, gateway.StatusReceived.Rank(),
		fAttempts, 0,
		fDelayed, "0",
		fCreatedAt, now.Format(time.RFC3339Nano),
	}
	if sub.Subject != "" {
		args = append(args, fSubject, sub.Subject)
	}
	if sub.PayloadHash != "" {
		args = append(args, fPayloadHash, sub.PayloadHash)
	}
	if sub.ReplyEmail != "" {
		args = append(args, fReplyEmail, sub.ReplyEmail)
	}
	if len(sub.Attachments) > 0 {
		b, _ := json.Marshal(sub.Attachments) // strings and numbers only: cannot fail
		args = append(args, fAttachments, b)
	}
	if sub.Actor != "" {
		args = append(args, fActor, sub.Actor, fServicePoint, sub.ServicePoint, fIdentityCheck, sub.IdentityCheck)
	}
	owner := s.keys.dept(sub.Department)
	if sub.Subject != "" {
		owner = s.keys.subject(sub.Subject)
	}
	idemKey := s.keys.idem(idem.Scope, idem.Key) // declared even when unused (Cluster routing)
	keys := []string{s.keys.sub(id), s.keys.payload(id), s.keys.hist(id), s.keys.ref(ref), idemKey, s.keys.deliveries(),
		s.keys.dept(sub.Department), owner, s.keys.audit()}
	if sub.Actor != "" && sub.ServicePoint != "" {
		keys = append(keys, s.keys.deskPoint(sub.ServicePoint)) // filed on a visitor's behalf: the desk's list
	}
	return s.appendReceivedEvent(keys, args, sub.Subject)
}

// appendReceivedEvent adds what withReceivedEvent (the webhook part
// wrapped around createScript) takes off the ends of KEYS and ARGV: the
// outbox, the hooks hash and the owner's notification preferences (for a
// submission without an owner the key of "" stands in: same slot, not
// read), and the outbox's length limit.
func (s *Store) appendReceivedEvent(keys []string, args []any, owner string) ([]string, []any) {
	return append(keys, s.keys.outbox(), s.keys.hooks(), s.keys.notifyPrefs(owner)), append(args, MaxOutbox)
}

// filingAudit is the audit entry (JSON) of a submission filed on a
// visitor's behalf with reference ref, or "" when sub is not one
// (sub.Audit nil).
func filingAudit(sub *gateway.Submission, ref string, now time.Time) string {
	if sub.Audit == nil || sub.Actor == "" {
		return ""
	}
	b, err := json.Marshal(servicepoint.AuditEntry{
		At: now.Format(time.RFC3339Nano), Actor: sub.Actor, ActorName: sub.Audit.ActorName, ServicePoint: sub.ServicePoint,
		Subject: sub.Audit.MaskedSubject, Action: servicepoint.ActionFiled, Service: sub.Service, Reference: ref,
		IdentityCheck: sub.IdentityCheck,
	})
	if err != nil { // strings only: cannot happen
		return ""
	}
	return string(b)
}

// Get returns a submission with its payload (while it is kept) and history.
// A missing submission is an ENotFound error.
func (s *Store) Get(ctx context.Context, id string) (*gateway.Submission, error) {
	return s.read(ctx, id, true)
}

// read is Get, with or without the history (one MULTI either way, so the
// record and its payload are read together).
func (s *Store) read(ctx context.Context, id string, withHistory bool) (*gateway.Submission, error) {
	return s.readAdopting(ctx, id, withHistory, true)
}

// readAdopting is read; with adopt, status updates kept while the
// submission was unknown (RecordUnknownStatus) are applied first when
// there are any (see adoptUnknown), so the status page shows them.
func (s *Store) readAdopting(ctx context.Context, id string, withHistory, adopt bool) (*gateway.Submission, error) {
	if !validID(id) {
		return nil, notFound(id)
	}
	bctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		meta    *redis.MapStringStringCmd
		payload *redis.StringCmd
		hist    *redis.StringSliceCmd
		kept    *redis.IntCmd
	)
	_, err := s.rdb.TxPipelined(bctx, func(p redis.Pipeliner) error {
		meta = p.HGetAll(bctx, s.keys.sub(id))
		payload = p.Get(bctx, s.keys.payload(id))
		if withHistory {
			hist = p.LRange(bctx, s.keys.hist(id), 0, -1)
		}
		kept = p.Exists(bctx, s.keys.unknownStatus(id))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err)
	}
	if adopt && kept.Val() > 0 && len(meta.Val()) > 0 {
		if err := s.adoptUnknown(ctx, id); err != nil {
			return nil, err
		}
		return s.readAdopting(ctx, id, withHistory, true)
	}
	sub, err := decodeRecord(id, meta, payload)
	if err != nil {
		return nil, err
	}
	if hist == nil {
		return sub, nil
	}
	sub.History = make([]gateway.StatusChange, 0, len(hist.Val()))
	for _, h := range hist.Val() {
		var c gateway.StatusChange
		if err := json.Unmarshal([]byte(h), &c); err != nil {
			return nil, unavailable(fmt.Errorf("submission %s: decode history: %w", id, err))
		}
		sub.History = append(sub.History, c)
	}
	return sub, nil
}

// decodeRecord turns a read record and payload into a Submission (an
// ENotFound error when the record is gone).
func decodeRecord(id string, meta *redis.MapStringStringCmd, payload *redis.StringCmd) (*gateway.Submission, error) {
	m := meta.Val()
	if len(m) == 0 {
		return nil, notFound(id)
	}
	sub, err := decodeMeta(m)
	if err != nil {
		return nil, unavailable(fmt.Errorf("submission %s: %w", id, err))
	}
	if p, err := payload.Result(); err == nil {
		if err := json.Unmarshal([]byte(p), &sub.Payload); err != nil {
			return nil, unavailable(fmt.Errorf("submission %s: decode payload: %w", id, err))
		}
	}
	return sub, nil
}

// decodeMeta turns the metadata hash into a Submission.
func decodeMeta(m map[string]string) (*gateway.Submission, error) {
	sub := &gateway.Submission{
		ID:             m[fID],
		Reference:      m[fReference],
		Service:        m[fService],
		ServiceVersion: m[fServiceVersion],
		Department:     m[fDepartment],
		Channel:        gateway.Channel(m[fChannel]),
		Locale:         m[fLocale],
		Subject:        m[fSubject],
		ReplyEmail:     m[fReplyEmail],
		Status:         gateway.Status(m[fStatus]),
		CaseReference:  m[fCaseReference],
		Delayed:        m[fDelayed] == "1",
		Actor:          m[fActor],
		ServicePoint:   m[fServicePoint],
		IdentityCheck:  m[fIdentityCheck],
		PayloadHash:    m[fPayloadHash],
	}
	if v := m[fAttachments]; v != "" {
		if err := json.Unmarshal([]byte(v), &sub.Attachments); err != nil {
			return nil, fmt.Errorf("attachments: %w", err)
		}
	}
	if v := m[fAttempts]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("attempts %q: %w", v, err)
		}
		sub.Attempts = n
	}
	if v := m[fCreatedAt]; v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, fmt.Errorf("created_at %q: %w", v, err)
		}
		sub.CreatedAt = t
	}
	return sub, nil
}

// LookupReference returns the id of the submission with a receipt
// reference (case-insensitive), or an ENotFound error.
func (s *Store) LookupReference(ctx context.Context, reference string) (string, error) {
	ref := strings.ToUpper(strings.TrimSpace(reference))
	if ref == "" || len(ref) > 32 {
		return "", gateway.Errorf(gateway.ENotFound, "error.submission_not_found", errors.New("bad reference"))
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	id, err := s.rdb.Get(ctx, s.keys.ref(ref)).Result()
	if errors.Is(err, redis.Nil) {
		return "", gateway.Errorf(gateway.ENotFound, "error.submission_not_found", errors.New("unknown reference"))
	}
	if err != nil {
		return "", unavailable(err)
	}
	return id, nil
}

// MaxHistory is the longest status history kept: the first entry
// (received) and the newest ones.
const MaxHistory = 50

// UpdateStatus records a status change reported by a case system. The
// history entry is added (unless it repeats the last one); the status
// moves only forwards (change.Status.Rank() >= the current rank). caseRef,
// when not empty, sets the case reference. moved reports whether the status
// changed to another one.
func (s *Store) UpdateStatus(ctx context.Context, id string, change gateway.StatusChange, caseRef string) (bool, error) {
	moved, _, err := s.UpdateStatusOnce(ctx, id, change, caseRef, "", 0)
	return moved, err
}

// UpdateStatusOnce is UpdateStatus for an update that carries a nonce
// (e.g. its signature): the nonce is remembered for window, and the same
// nonce again within it does nothing (replayed). With nonce "" it is
// UpdateStatus. A repeat of the last history entry is a replay too, so the
// script is safe to run twice. moved reports whether the status changed to
// another one.
func (s *Store) UpdateStatusOnce(ctx context.Context, id string, change gateway.StatusChange, caseRef, nonce string, window time.Duration) (moved, replayed bool, err error) {
	if !validID(id) {
		return false, false, notFound(id)
	}
	if !change.Status.Valid() {
		return false, false, gateway.Errorf(gateway.EInvalid, "error.status_invalid", fmt.Errorf("unknown status %q", change.Status))
	}
	if change.At.IsZero() {
		change.At = s.now().UTC()
	}
	entry, err := json.Marshal(change)
	if err != nil {
		return false, false, gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	keys := []string{s.keys.sub(id), s.keys.hist(id), s.keys.outbox(), s.keys.hooks()}
	if nonce != "" {
		keys = append(keys, s.keys.statusNonce(nonce))
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := updateStatusScript.Run(ctx, s.rdb, keys,
		string(change.Status), change.Status.Rank(), entry, caseRef, change.At.UnixMilli(),
		max(window.Milliseconds(), 1), MaxHistory, MaxOutbox).Int()
	if err != nil {
		return false, false, writeFailed(err)
	}
	if n == -1 {
		return false, false, notFound(id)
	}
	return n == 1, n == 2, nil
}

// Bounds of the status updates kept for unknown submissions: for
// UnknownStatusKeep, maxUnknownEntries per id (the newest), maxUnknownIDs
// ids (the newest); with messages of at most 2,000 characters that is at
// most about 80 MB in the worst case, and the callers are authenticated
// back-ends.
const (
	UnknownStatusKeep = 30 * 24 * time.Hour
	maxUnknownIDs     = 1000
	maxUnknownEntries = 10
)

// RecordUnknownStatus keeps a status update for a submission id this Redis
// does not have, so that it is not lost (a failover to a lagging replica can
// lose a submission the back-end already holds). service names the
// back-end's service (may be ""). Updates are kept for UnknownStatusKeep,
// at most maxUnknownEntries per id and maxUnknownIDs ids. replayed is true when
// the nonce was seen within window or the entry repeats the last one. It
// returns an EConflict error when the submission exists after all.
func (s *Store) RecordUnknownStatus(ctx context.Context, id, service string, change gateway.StatusChange, caseRef, nonce string, window time.Duration) (replayed bool, err error) {
	if !validID(id) {
		return false, notFound(id)
	}
	if change.At.IsZero() {
		change.At = s.now().UTC()
	}
	entry, err := json.Marshal(unknownEntry{change, service, caseRef})
	if err != nil {
		return false, gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	keys := []string{s.keys.sub(id), s.keys.unknownStatus(id), s.keys.unknownIndex()}
	if nonce != "" {
		keys = append(keys, s.keys.statusNonce(nonce))
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := unknownStatusScript.Run(ctx, s.rdb, keys, entry, UnknownStatusKeep.Milliseconds(), s.now().UnixMilli(),
		maxUnknownEntries, maxUnknownIDs, id, max(window.Milliseconds(), 1), s.keys.unknownStatus("")).Int()
	if err != nil {
		return false, writeFailed(err)
	}
	if n == -1 {
		return false, gateway.Errorf(gateway.EConflict, "error.bad_request", fmt.Errorf("submission %s exists after all; send the update again", id))
	}
	return n == 0, nil
}

// unknownEntry is one update kept by RecordUnknownStatus.
type unknownEntry struct {
	gateway.StatusChange
	Service       string `json:"service,omitempty"`
	CaseReference string `json:"case_reference,omitempty"`
}

// adoptUnknown applies the status updates kept for id while the store did
// not have it, now that it has (adoptUnknownScript): in the order they
// came, as status updates, then forgets them. A list that changes between
// the read and the script (another reader adopted it) is left alone.
func (s *Store) adoptUnknown(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	raw, err := s.rdb.LRange(ctx, s.keys.unknownStatus(id), 0, -1).Result()
	if err != nil {
		return unavailable(err)
	}
	if len(raw) == 0 {
		return nil
	}
	owner, err := s.rdb.HMGet(ctx, s.keys.sub(id), fService, fDepartment).Result()
	if err != nil {
		return unavailable(err)
	}
	service, _ := owner[0].(string)
	dept, _ := owner[1].(string)
	args := []any{id, MaxHistory, MaxOutbox, len(raw), raw[len(raw)-1]}
	for _, r := range raw {
		var e unknownEntry
		if err := json.Unmarshal([]byte(r), &e); err != nil || !e.Status.Valid() {
			continue // not an update: skipped, and forgotten with the list
		}
		// Only what the submission's own back-end sent: signed with its
		// service's secret, or from its department's client.
		if e.Service != service && e.Service != "department:"+dept {
			continue
		}
		entry, err := json.Marshal(e.StatusChange)
		if err != nil {
			continue
		}
		args = append(args, string(e.Status), e.Status.Rank(), entry, e.CaseReference, e.At.UnixMilli())
	}
	err = adoptUnknownScript.Run(ctx, s.rdb, []string{s.keys.sub(id), s.keys.hist(id), s.keys.outbox(), s.keys.hooks(),
		s.keys.unknownStatus(id), s.keys.unknownIndex()}, args...).Err()
	if err != nil {
		return writeFailed(err)
	}
	return nil
}

// UnknownStatuses returns the status updates kept for an unknown
// submission id (JSON entries, oldest first), for operators.
func (s *Store) UnknownStatuses(ctx context.Context, id string) ([]string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	v, err := s.rdb.LRange(ctx, s.keys.unknownStatus(id), 0, -1).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	return v, nil
}

// EnsureGroup creates the deliveries stream and the dispatcher's consumer
// group if they do not exist. The group starts at the beginning of the
// stream, so submissions accepted before any dispatcher ran are delivered.
func (s *Store) EnsureGroup(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.rdb.XGroupCreateMkStream(ctx, s.keys.deliveries(), group, "0").Err()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		return unavailable(err)
	}
	return nil
}

// isNoGroup reports whether err says the stream or group is missing (e.g.
// after a restart of a Redis without persistence).
func isNoGroup(err error) bool { return err != nil && strings.Contains(err.Error(), "NOGROUP") }

// ReadNew reads up to count new jobs for consumer, waiting up to block when
// there are none (block <= 0: do not wait). It returns no jobs and no error
// when the wait ran out.
func (s *Store) ReadNew(ctx context.Context, consumer string, count int, block time.Duration) ([]gateway.Job, error) {
	if count <= 0 {
		count = 1
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max(block, 0)+s.OpTimeout)
		defer cancel()
	}
	args := &redis.XReadGroupArgs{
		Group:    group,
		Consumer: consumer,
		Streams:  []string{s.keys.deliveries(), ">"},
		Count:    int64(count),
		Block:    -1, // go-redis: negative means no BLOCK argument
	}
	if block > 0 {
		args.Block = block
	}
	res, err := s.rdb.XReadGroup(ctx, args).Result()
	if isNoGroup(err) {
		if err := s.EnsureGroup(ctx); err != nil {
			return nil, err
		}
		res, err = s.rdb.XReadGroup(ctx, args).Result()
	}
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	var jobs []gateway.Job
	for _, st := range res {
		for _, msg := range st.Messages {
			jobs = append(jobs, gateway.Job{StreamID: msg.ID, SubmissionID: messageID(msg), Deliveries: 1})
		}
	}
	return s.dropMalformed(ctx, jobs)
}

// messageID is the submission id in a stream entry, or "".
func messageID(msg redis.XMessage) string {
	id, _ := msg.Values["id"].(string)
	return id
}

// dropMalformed acknowledges entries that name no submission (they cannot
// be delivered) and returns the others.
func (s *Store) dropMalformed(ctx context.Context, jobs []gateway.Job) ([]gateway.Job, error) {
	out := jobs[:0]
	for _, j := range jobs {
		if j.SubmissionID == "" {
			if err := s.Drop(ctx, j); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, j)
	}
	return out, nil
}

// Claim takes over up to count jobs that other consumers (or this one, in
// an earlier life) read but have not acknowledged for at least minIdle: the
// work of dispatchers that died. Entries deleted meanwhile are skipped.
func (s *Store) Claim(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]gateway.Job, error) {
	if count <= 0 {
		count = 1
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	msgs, _, _, err := s.rdb.XAutoClaimWithDeleted(ctx, &redis.XAutoClaimArgs{
		Stream:   s.keys.deliveries(),
		Group:    group,
		Consumer: consumer,
		MinIdle:  minIdle,
		Start:    "0-0",
		Count:    int64(count),
	}).Result()
	if isNoGroup(err) {
		return nil, s.EnsureGroup(ctx)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	jobs := make([]gateway.Job, 0, len(msgs))
	for _, msg := range msgs {
		if msg.ID == "" {
			continue // deleted entry (Redis 6.2 reports it as nil)
		}
		jobs = append(jobs, gateway.Job{StreamID: msg.ID, SubmissionID: messageID(msg), Deliveries: 1})
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	// How often each entry was delivered: XAUTOCLAIM does not say, XPENDING does.
	pend, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream:   s.keys.deliveries(),
		Group:    group,
		Start:    jobs[0].StreamID,
		End:      jobs[len(jobs)-1].StreamID,
		Count:    int64(len(jobs)),
		Consumer: consumer,
	}).Result()
	if err == nil {
		counts := make(map[string]int64, len(pend))
		for _, p := range pend {
			counts[p.ID] = p.RetryCount
		}
		for i := range jobs {
			if n, ok := counts[jobs[i].StreamID]; ok {
				jobs[i].Deliveries = n
			}
		}
	}
	return s.dropMalformed(ctx, jobs)
}

// Load returns the submissions the jobs name, as Get does but without
// their history, which delivery does not need: subs[i] for jobs[i], or
// errs[i] (an ENotFound error when it is gone). One MULTI reads every
// record with its payload, so a batch of jobs costs one round trip.
func (s *Store) Load(ctx context.Context, jobs []gateway.Job) (subs []*gateway.Submission, errs []error) {
	subs, errs = make([]*gateway.Submission, len(jobs)), make([]error, len(jobs))
	type read struct {
		meta    *redis.MapStringStringCmd
		payload *redis.StringCmd
	}
	reads := make([]read, len(jobs))
	some := false
	for i, j := range jobs {
		if !validID(j.SubmissionID) {
			errs[i] = notFound(j.SubmissionID)
			continue
		}
		some = true
	}
	if !some {
		return subs, errs
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, j := range jobs {
			if errs[i] == nil {
				reads[i] = read{p.HGetAll(ctx, s.keys.sub(j.SubmissionID)), p.Get(ctx, s.keys.payload(j.SubmissionID))}
			}
		}
		return nil
	})
	for i, j := range jobs {
		if errs[i] != nil {
			continue
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			errs[i] = unavailable(err)
			continue
		}
		subs[i], errs[i] = decodeRecord(j.SubmissionID, reads[i].meta, reads[i].payload)
	}
	return subs, errs
}

// Complete records a successful delivery: status delivered (unless the case
// system already moved it further), the case reference, a history entry,
// one more attempt; the job is acknowledged and removed from the stream.
// With retention > 0, the payload, record, history and reference expire
// after retention; with 0 they are kept.
//
// When the job was already acknowledged (another consumer finished it
// first), Complete does nothing and returns gateway.ErrNotPending.
func (s *Store) Complete(ctx context.Context, job gateway.Job, caseRef string, retention time.Duration) error {
	entry, err := json.Marshal(gateway.StatusChange{Status: gateway.StatusDelivered, At: s.now().UTC()})
	if err != nil {
		return gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// The reference key is only known from the record; the script needs it
	// declared, so read it first. It never changes once written.
	id := job.SubmissionID
	ref := job.Reference
	if ref == "" {
		ref, err = s.rdb.HGet(ctx, s.keys.sub(id), fReference).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return unavailable(err)
		}
	}
	k := s.keys
	r, _, err := s.batch.call(ctx, false, completeScript,
		[]string{k.sub(id), k.payload(id), k.hist(id), k.ref(ref), k.deliveries(), k.retry(), k.dead(), k.outbox(), k.hooks()},
		[]any{group, job.StreamID, entry, caseRef, max(retention.Milliseconds(), 0),
			string(gateway.StatusDelivered), gateway.StatusDelivered.Rank(), id, MaxOutbox, ackToken()})
	if err != nil {
		return outcome(0, err)
	}
	n, err := intOf(r)
	return outcome(n, err)
}

// ackToken names one call of a script that ends a job (see ackJob).
func ackToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// outcome turns the reply of an outcome script into an error: 0 means the
// job was no longer pending; -1 (the record is gone) is not an error, the
// job was acknowledged all the same.
func outcome(n int, err error) error {
	switch {
	case err != nil:
		return unavailable(err)
	case n == 0:
		return gateway.ErrNotPending
	}
	return nil
}

// Retry schedules another attempt at due: one more attempt is counted,
// last_error is set to reason (a short class, never payload data), the job
// is acknowledged and the submission waits in the retry set until
// PromoteDue moves it back to the stream. It returns gateway.ErrNotPending, doing
// nothing, when the job was already acknowledged.
func (s *Store) Retry(ctx context.Context, job gateway.Job, due time.Time, reason string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	k := s.keys
	id := job.SubmissionID
	return outcome(retryScript.Run(ctx, s.rdb,
		[]string{k.sub(id), k.deliveries(), k.retry()},
		group, job.StreamID, due.UnixMilli(), id, reason, ackToken()).Int())
}

// PromoteDue moves up to limit submissions whose retry is due at now back
// to the deliveries stream, and returns how many it moved.
func (s *Store) PromoteDue(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := promoteScript.Run(ctx, s.rdb, []string{s.keys.retry(), s.keys.deliveries()}, now.UnixMilli(), limit).Int()
	if err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// DeadLetter parks a submission that cannot be delivered without help: it
// joins the dead set, is marked delayed with the reason (a short class),
// and the job is acknowledged. Its status stays as it is: the resident is
// told the delivery is delayed, never that it is lost. Redrive sends it
// again. It returns gateway.ErrNotPending, doing nothing, when the job was already
// acknowledged.
func (s *Store) DeadLetter(ctx context.Context, job gateway.Job, reason string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	k := s.keys
	id := job.SubmissionID
	return outcome(deadLetterScript.Run(ctx, s.rdb,
		[]string{k.sub(id), k.deliveries(), k.dead()},
		group, job.StreamID, s.now().UnixMilli(), id, reason, ackToken()).Int())
}

// Drop acknowledges a job and removes it from the stream without an
// outcome, for jobs whose submission is gone or already delivered.
func (s *Store) Drop(ctx context.Context, job gateway.Job) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := dropScript.Run(ctx, s.rdb, []string{s.keys.deliveries()}, group, job.StreamID).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// Redrive sends a dead-lettered submission to the stream again with a fresh
// count of attempts, e.g. after the department fixed its system. It returns
// an ENotFound error when the submission does not exist and an EConflict
// error when it is not dead-lettered.
func (s *Store) Redrive(ctx context.Context, id string) error {
	if !validID(id) {
		return notFound(id)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	k := s.keys
	n, err := redriveScript.Run(ctx, s.rdb, []string{k.sub(id), k.deliveries(), k.dead()}, id, ackToken()).Int()
	return deadOutcome(id, n, err)
}

// deadOutcome is the error of a script that acts on a dead letter
// (redrive, close): its reply -1 is no such submission, 0 not
// dead-lettered.
func deadOutcome(id string, n int, err error) error {
	if err != nil {
		return unavailable(err)
	}
	switch n {
	case -1:
		return notFound(id)
	case 0:
		return gateway.Errorf(gateway.EConflict, "error.not_dead_lettered", fmt.Errorf("submission %s is not dead-lettered", id))
	}
	return nil
}

// DeadLetters lists up to limit dead-lettered submission ids, oldest first.
func (s *Store) DeadLetters(ctx context.Context, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 100
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ids, err := s.rdb.ZRange(ctx, s.keys.dead(), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	return ids, nil
}

// PruneConsumers removes from the consumer group the consumers, other than
// keep, that have not read for at least idle and hold no pending work, and
// returns how many it removed. Every dispatcher process has its own name, so
// without pruning the group remembers every process that ever ran.
func (s *Store) PruneConsumers(ctx context.Context, keep string, idle time.Duration) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := pruneScript.Run(ctx, s.rdb, []string{s.keys.deliveries()}, group, idle.Milliseconds(), keep).Int()
	if err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// Hit counts one hit on key in a fixed window of the given length and
// returns the count so far in the current window and the time until it
// ends. Every replica shares the count. For rate limits; key is hashed, so
// it may hold an IP address or another identifier.
func (s *Store) Hit(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	if window < time.Millisecond {
		window = time.Millisecond
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res, err := hitScript.Run(ctx, s.rdb, []string{s.keys.rate(key)}, window.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, unavailable(err)
	}
	if len(res) != 2 {
		return 0, 0, unavailable(fmt.Errorf("hit: unexpected reply %v", res))
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

// Stats describes the delivery queue, for metrics and readiness.
func (s *Store) Stats(ctx context.Context) (QueueStats, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	k := s.keys
	var (
		xlen    *redis.IntCmd
		pending *redis.XPendingCmd
		retry   *redis.IntCmd
		dead    *redis.IntCmd
		first   *redis.XMessageSliceCmd
	)
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		xlen = p.XLen(ctx, k.deliveries())
		pending = p.XPending(ctx, k.deliveries(), group)
		retry = p.ZCard(ctx, k.retry())
		dead = p.ZCard(ctx, k.dead())
		first = p.XRangeN(ctx, k.deliveries(), "-", "+", 1)
		return nil
	})
	var st QueueStats
	if err != nil && !isNoGroup(err) && !errors.Is(err, redis.Nil) {
		return st, unavailable(err)
	}
	st.Stream = xlen.Val()
	if pending.Err() == nil {
		st.Pending = pending.Val().Count
	}
	st.Retrying = retry.Val()
	st.Dead = dead.Val()
	if msgs := first.Val(); len(msgs) > 0 {
		if ms, ok := streamIDTime(msgs[0].ID); ok {
			st.OldestAge = max(s.now().Sub(time.UnixMilli(ms)), 0)
		}
	}
	return st, nil
}

// streamIDTime is the millisecond time part of a stream entry ID.
func streamIDTime(id string) (int64, bool) {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	return n, err == nil
}
