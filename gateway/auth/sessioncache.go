package auth

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// maxCachedSessions bounds the session cache; when full it is emptied.
const maxCachedSessions = 10000

// sessionCache keeps loaded sessions for a moment (Sessions.CacheFor), by
// the store's digest of the session id. It is used only while the store's
// watch is listening: a session ended in the store is dropped here when
// the store tells, and with every (re)start of the watch the cache starts
// empty, since ends told while it was not listening are lost.
type sessionCache struct {
	listening atomic.Bool
	// gen counts ends: a session read from the store is kept only if no
	// session ended while it was being read (it may have been that one).
	gen atomic.Uint64

	mu      sync.Mutex
	entries map[string]cachedSession
}

type cachedSession struct {
	s     *Session
	until time.Time
}

func (c *sessionCache) usable() bool { return c.listening.Load() }

func (c *sessionCache) generation() uint64 { return c.gen.Load() }

// get returns a copy of a kept session (handlers own what they get).
func (c *sessionCache) get(digest string, now time.Time) (*Session, bool) {
	c.mu.Lock()
	e, ok := c.entries[digest]
	c.mu.Unlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	s := *e.s
	p := *e.s.Principal
	s.Principal = &p
	return &s, true
}

func (c *sessionCache) put(digest string, s *Session, until time.Time, gen uint64) {
	cp := *s
	p := *s.Principal
	cp.Principal = &p
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.listening.Load() || c.gen.Load() != gen {
		return
	}
	if c.entries == nil || len(c.entries) >= maxCachedSessions {
		c.entries = make(map[string]cachedSession)
	}
	c.entries[digest] = cachedSession{s: &cp, until: until}
}

// drop forgets a session that ended.
func (c *sessionCache) drop(digest string) {
	c.mu.Lock()
	c.gen.Add(1)
	delete(c.entries, digest)
	c.mu.Unlock()
}

// dropSubject forgets every session of a subject (sign out everywhere).
func (c *sessionCache) dropSubject(subject string) {
	c.mu.Lock()
	c.gen.Add(1)
	for k, e := range c.entries {
		if e.s.Principal.Subject == subject {
			delete(c.entries, k)
		}
	}
	c.mu.Unlock()
}

// setListening switches the cache on (empty) or off (emptied).
func (c *sessionCache) setListening(on bool) {
	c.mu.Lock()
	c.gen.Add(1)
	c.entries = nil
	c.listening.Store(on)
	c.mu.Unlock()
}

// Caching reports whether loaded sessions are kept now: CacheFor is set
// and the watch listens.
func (m *Sessions) Caching() bool { return m.CacheFor > 0 && m.cache.usable() }

// WatchEnded listens to the store for sessions ended by any replica and
// keeps the session cache meanwhile (see CacheFor); it returns when ctx is
// done. Without CacheFor or Watch it returns at once.
func (m *Sessions) WatchEnded(ctx context.Context) {
	if m.CacheFor <= 0 || m.Watch == nil {
		return
	}
	defer m.cache.setListening(false)
	m.Watch.WatchEndedSessions(ctx, m.cache.drop, m.cache.setListening)
}
