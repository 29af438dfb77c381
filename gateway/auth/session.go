package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// ErrNoSession means the token is invalid or expired, or its session was
// revoked or timed out: the request is anonymous.
var ErrNoSession = errors.New("auth: no session")

// SessionStore keeps sessions server-side, by session id. GetSession sets
// the session's remaining life to ttl as it reads it (one round trip);
// it returns nil and TouchSession false for a missing session.
type SessionStore interface {
	PutSession(ctx context.Context, id string, data []byte, ttl time.Duration) error
	GetSession(ctx context.Context, id string, ttl time.Duration) ([]byte, error)
	TouchSession(ctx context.Context, id string, ttl time.Duration) (bool, error)
	DeleteSession(ctx context.Context, id string) error
	// IndexSession adds a session to its subject's index for ttl; the
	// index is bounded (the store ends the oldest sessions beyond its cap).
	IndexSession(ctx context.Context, subject, id string, ttl time.Duration) error
	// RevokeSubjectSessions ends every session of the subject; n is how
	// many were still indexed.
	RevokeSubjectSessions(ctx context.Context, subject string) (n int, err error)
}

// Session is a signed-in person's server-side session.
type Session struct {
	ID        string             `json:"-"`
	Principal *gateway.Principal `json:"principal"`
	// Personnummer is kept apart: Principal does not serialize it.
	Personnummer string    `json:"pnr,omitempty"`
	CSRF         string    `json:"csrf"` // for cookie-authenticated API calls (X-CSRF-Token)
	Provider     string    `json:"provider"`
	Created      time.Time `json:"created"`
	// IDToken is the provider's ID token, sent back as id_token_hint when
	// the person signs out (RP-initiated logout); at most MaxIDToken bytes.
	IDToken string `json:"id_token,omitempty"`
}

// Sessions makes, checks and revokes sessions. The browser holds a short
// token "v1.<session id>.<expiry>.<HMAC>" in a cookie; the session itself
// lives in the store with an idle timeout (refreshed on use) and an
// absolute one. A new session id is drawn at every sign-in.
type Sessions struct {
	Store    SessionStore
	Key      []byte        // HMAC key of the cookie tokens, at least 32 bytes
	Idle     time.Duration // default 30m
	Absolute time.Duration // default 12h
	// Privileged is the absolute lifetime of a session with the staff or
	// admin role (default 1h): roles come from the provider at sign-in, so
	// this bounds how long a role taken away at the provider still works.
	Privileged time.Duration
	TokenTTL   time.Duration // lifetime of a cookie token; default 15m, renewed while in use
	Now        func() time.Time

	// CacheFor keeps a loaded session in the process for this long, so
	// that a signed-in request does not pay a store round trip and a
	// decode each time (0: no cache). The cache is used only while Watch
	// is listening (see WatchEnded): a session ended anywhere is dropped
	// from every process's cache when the store says so, and one ended
	// here at once. The idle timeout is refreshed in the store when an
	// entry is older than CacheFor, so it is kept to within CacheFor.
	CacheFor time.Duration
	// Watch tells of sessions ended in the store (by any replica); needed
	// for the cache.
	Watch SessionWatch

	cache sessionCache
	macs  sync.Pool // *macState: HMAC-SHA256 with Key
}

// SessionWatch tells a process when sessions end in the shared store.
type SessionWatch interface {
	// SessionDigest is the digest by which ended sessions are told.
	SessionDigest(id string) string
	// WatchEndedSessions calls ended with the digest of every session
	// ended from now on, until ctx is done. It calls listening(true) when
	// it starts listening (again) and listening(false) when it may have
	// missed some (the connection dropped).
	WatchEndedSessions(ctx context.Context, ended func(digest string), listening func(bool))
}

func (m *Sessions) defaults() {
	if m.Idle <= 0 {
		m.Idle = 30 * time.Minute
	}
	if m.Absolute <= 0 {
		m.Absolute = 12 * time.Hour
	}
	if m.Privileged <= 0 {
		m.Privileged = time.Hour
	}
	if m.TokenTTL <= 0 {
		m.TokenTTL = 15 * time.Minute
	}
	if m.Now == nil {
		m.Now = time.Now
	}
}

// Create starts a new session for p and returns the cookie token.
func (m *Sessions) Create(ctx context.Context, p *gateway.Principal, provider string) (string, *Session, error) {
	return m.CreateWithIDToken(ctx, p, provider, "")
}

// CreateWithIDToken starts a new session and keeps the provider's ID token
// for sign-out (dropped when longer than MaxIDToken).
func (m *Sessions) CreateWithIDToken(ctx context.Context, p *gateway.Principal, provider, idToken string) (string, *Session, error) {
	m.defaults()
	if len(m.Key) < 32 {
		return "", nil, errors.New("auth: session key shorter than 32 bytes")
	}
	if len(idToken) > MaxIDToken {
		idToken = ""
	}
	s := &Session{ID: RandomToken(32), Principal: p, Personnummer: p.Personnummer, CSRF: RandomToken(32), Provider: provider, Created: m.Now(), IDToken: idToken}
	b, err := json.Marshal(s)
	if err != nil {
		return "", nil, err
	}
	life := m.lifetime(p)
	if err := m.Store.PutSession(ctx, s.ID, b, min(m.Idle, life)); err != nil {
		return "", nil, err
	}
	if err := m.Store.IndexSession(ctx, p.Subject, s.ID, life); err != nil {
		_ = m.Store.DeleteSession(ctx, s.ID) // a session that cannot be revoked with the others is not begun
		return "", nil, err
	}
	return m.token(s.ID), s, nil
}

// lifetime is a session's absolute lifetime: shorter for staff and
// administrators (see Privileged).
func (m *Sessions) lifetime(p *gateway.Principal) time.Duration {
	if p.HasRole(gateway.RoleStaff) || p.HasRole(gateway.RoleAdmin) {
		return min(m.Absolute, m.Privileged)
	}
	return m.Absolute
}

// RevokeSubject ends every session of a subject (sign out everywhere).
func (m *Sessions) RevokeSubject(ctx context.Context, subject string) (int, error) {
	m.cache.dropSubject(subject) // before and after: no request in between keeps it
	n, err := m.Store.RevokeSubjectSessions(ctx, subject)
	m.cache.dropSubject(subject)
	return n, err
}

// Load checks a cookie token and returns its session. renewed is a fresh
// token when the old one is past half its life ("" otherwise).
func (m *Sessions) Load(ctx context.Context, token string) (s *Session, renewed string, err error) {
	m.defaults()
	id, exp, ok := m.parse(token)
	if !ok {
		return nil, "", ErrNoSession
	}
	now := m.Now()
	if !now.Before(exp) {
		return nil, "", ErrNoSession
	}
	var digest string
	var gen uint64
	if m.cache.usable() {
		digest = m.Watch.SessionDigest(id)
		if c, renewed, ok := m.cached(digest, id, exp, now); ok {
			return c, renewed, nil
		}
		gen = m.cache.generation()
	}
	b, err := m.Store.GetSession(ctx, id, m.Idle) // read and refresh the idle timeout at once
	if err != nil {
		return nil, "", err
	}
	if b == nil {
		return nil, "", ErrNoSession
	}
	s = &Session{}
	if err := json.Unmarshal(b, s); err != nil || s.Principal == nil {
		return nil, "", fmt.Errorf("auth: bad session record: %w", err)
	}
	s.ID = strings.Clone(id) // token may be borrowed from the request
	s.Principal.Personnummer = s.Personnummer
	left := s.Created.Add(m.lifetime(s.Principal)).Sub(now)
	if left <= 0 {
		_ = m.Store.DeleteSession(ctx, id)
		return nil, "", ErrNoSession
	}
	if digest != "" && left >= m.Idle {
		// Kept only if no session ended while it was read (gen).
		m.cache.put(digest, s, now.Add(min(m.CacheFor, m.Idle/2)), gen) // the idle timeout is refreshed in time
	}
	if left < m.Idle {
		// The last stretch before the absolute timeout: the record must
		// not outlive it (a second round trip, only here).
		if alive, err := m.Store.TouchSession(ctx, id, left); err != nil {
			return nil, "", err
		} else if !alive {
			return nil, "", ErrNoSession
		}
	}
	if exp.Sub(now) < m.TokenTTL/2 {
		renewed = m.token(id)
	}
	return s, renewed, nil
}

// Peek returns the session of a cookie token when this process keeps it
// (see CacheFor), without the store; ok false: call Load.
func (m *Sessions) Peek(token string) (s *Session, renewed string, ok bool) {
	if !m.cache.usable() {
		return nil, "", false
	}
	m.defaults()
	id, exp, valid := m.parse(token)
	now := m.Now()
	if !valid || !now.Before(exp) {
		return nil, "", false
	}
	return m.cached(m.Watch.SessionDigest(id), id, exp, now)
}

// cached is a kept session still within its absolute lifetime.
func (m *Sessions) cached(digest, id string, exp, now time.Time) (*Session, string, bool) {
	c, ok := m.cache.get(digest, now)
	if !ok {
		return nil, "", false
	}
	if !c.Created.Add(m.lifetime(c.Principal)).After(now) {
		m.cache.drop(digest)
		return nil, "", false
	}
	renewed := ""
	if exp.Sub(now) < m.TokenTTL/2 {
		renewed = m.token(id)
	}
	return c, renewed, true
}

// Revoke ends the session the token refers to, at once.
func (m *Sessions) Revoke(ctx context.Context, token string) error {
	id, _, ok := m.parse(token)
	if !ok {
		return nil
	}
	return m.RevokeID(ctx, id)
}

// RevokeID ends a session by id.
func (m *Sessions) RevokeID(ctx context.Context, id string) error {
	if m.Watch != nil {
		m.cache.drop(m.Watch.SessionDigest(id))
	}
	err := m.Store.DeleteSession(ctx, id)
	if m.Watch != nil {
		m.cache.drop(m.Watch.SessionDigest(id))
	}
	return err
}

func (m *Sessions) token(id string) string {
	exp := strconv.FormatInt(m.Now().Add(m.TokenTTL).Unix(), 10)
	body := "v1." + id + "." + exp
	return body + "." + m.mac(body)
}

// macState is a pooled HMAC with the buffers it writes to and from: an
// HMAC is made for every signed-in request, with no allocation.
type macState struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
	out [43]byte // base64 (raw URL) of sum
}

// macOf computes the HMAC of body into st.out.
func (m *Sessions) macOf(body string) *macState {
	st, _ := m.macs.Get().(*macState)
	if st == nil {
		st = &macState{h: hmac.New(sha256.New, m.Key)}
	}
	st.h.Reset()
	st.in = append(st.in[:0], body...)
	st.h.Write(st.in)
	base64.RawURLEncoding.Encode(st.out[:], st.h.Sum(st.sum[:0]))
	return st
}

func (m *Sessions) mac(body string) string {
	st := m.macOf(body)
	out := string(st.out[:])
	m.macs.Put(st)
	return out
}

// parse checks a cookie token, v1.<id>.<expiry>.<HMAC>, and returns its
// session id and expiry. It allocates nothing (it runs on every
// signed-in request).
func (m *Sessions) parse(token string) (id string, exp time.Time, ok bool) {
	if len(token) > 200 || len(m.Key) < 32 {
		return "", time.Time{}, false
	}
	rest, v1 := strings.CutPrefix(token, "v1.")
	id, rest, ok1 := strings.Cut(rest, ".")
	expiry, sent, ok2 := strings.Cut(rest, ".")
	if !v1 || !ok1 || !ok2 || len(id) != 43 || strings.Contains(sent, ".") {
		return "", time.Time{}, false
	}
	st := m.macOf(token[:len(token)-len(sent)-1])
	good := constantTimeEqual(st.out[:], sent)
	m.macs.Put(st)
	if !good {
		return "", time.Time{}, false
	}
	secs, err := strconv.ParseInt(expiry, 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return id, time.Unix(secs, 0), true
}

// constantTimeEqual is subtle.ConstantTimeCompare of a and b, without
// converting b (the conversion of a string longer than 32 bytes
// allocates).
func constantTimeEqual(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := range a {
		v |= a[i] ^ b[i]
	}
	return v == 0
}
