package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/auth"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// waitFor polls cond until it holds; the deadline only ends a broken run.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two replicas keep sessions in their caches (15 minutes here, so that
// only being told can end a cached session): a signed-in request is then
// served without a Redis command, and a session ended on one replica
// (sign-out, sign out everywhere, the absolute timeout) is refused by the
// other too, from its cache, not an hour later.
func TestSessionCacheDropsEndedSessionsOnEveryReplica(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	replica := func() *auth.Sessions {
		store := redisstore.New(srv.Client(t), "t")
		m := &auth.Sessions{Store: store, Key: []byte(strings.Repeat("k", 32)), Idle: 30 * time.Minute, Absolute: 2 * time.Hour,
			TokenTTL: 15 * time.Minute, Now: clock, CacheFor: time.Hour, Watch: store}
		go m.WatchEnded(ctx)
		waitFor(t, "the replica listens for ended sessions", m.Caching)
		return m
	}
	a, b := replica(), replica()
	p := &gateway.Principal{Subject: "se-pnr:199001013011", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceHigh}
	phone, _, err := a.Create(ctx, p, "dev")
	if err != nil {
		t.Fatal(err)
	}
	laptop, _, err := a.Create(ctx, p, "dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{phone, laptop} {
		for _, m := range []*auth.Sessions{a, b} {
			if _, _, err := m.Load(ctx, tok); err != nil { // read once: kept
				t.Fatal(err)
			}
		}
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	s, _, err := b.Load(ctx, phone)
	if err != nil || s.Principal.Subject != p.Subject || s.CSRF == "" {
		t.Fatalf("cached session: %+v, %v", s, err)
	}
	s.Principal.Name = "changed by a handler" // each request gets its own copy
	if s2, _, _ := b.Load(ctx, phone); s2.Principal.Name == s.Principal.Name {
		t.Fatal("requests share the cached principal")
	}
	if ps, _, ok := b.Peek(phone); !ok || ps.Principal.Subject != p.Subject {
		t.Fatalf("Peek of a kept session: %v %+v", ok, ps)
	}
	if got := commands(t, rdb); len(got) != 0 {
		t.Fatalf("a cached session still cost commands: %v", got)
	}

	// Sign-out on a: refused at once there, and on b as soon as it is told.
	if err := a.Revoke(ctx, phone); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Load(ctx, phone); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("on the replica that signed out: %v", err)
	}
	waitFor(t, "the other replica refuses the signed-out session", func() bool {
		_, _, err := b.Load(ctx, phone)
		return errors.Is(err, auth.ErrNoSession)
	})
	if _, _, ok := b.Peek(phone); ok {
		t.Fatal("Peek still has the signed-out session")
	}
	if _, _, err := b.Load(ctx, laptop); err != nil {
		t.Fatalf("the other device's session ended too: %v", err)
	}

	// Sign out everywhere, on b this time.
	if _, err := b.RevokeSubject(ctx, p.Subject); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Load(ctx, laptop); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("after sign out everywhere, on that replica: %v", err)
	}
	waitFor(t, "the other replica refuses the session ended everywhere", func() bool {
		_, _, err := a.Load(ctx, laptop)
		return errors.Is(err, auth.ErrNoSession)
	})

	// The absolute timeout holds for a cached session.
	tablet, _, err := a.Create(ctx, p, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Load(ctx, tablet); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2*time.Hour + time.Second)
	mu.Unlock()
	if _, _, err := a.Load(ctx, tablet); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("a cached session past its absolute timeout: %v", err)
	}
}

// Ends told while a replica was not listening are lost: the replica empties
// its cache when it listens again, and reads sessions from Redis until it
// does.
func TestSessionCacheForgetsWhenTheWatchDrops(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := redisstore.New(srv.Client(t), "t")
	m := &auth.Sessions{Store: store, Key: []byte(strings.Repeat("k", 32)), Idle: 30 * time.Minute, Absolute: 2 * time.Hour,
		CacheFor: time.Hour, Watch: store}
	go m.WatchEnded(ctx)
	waitFor(t, "listening", m.Caching)
	p := &gateway.Principal{Subject: "se-pnr:199001013011", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceHigh}
	tok, _, err := m.Create(ctx, p, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Load(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// The Pub/Sub connection drops, and meanwhile the session ends with
	// nobody told (as if the message had been lost).
	if err := rdb.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	keys := rdb.Keys(ctx, "t:sess:*").Val()
	if len(keys) != 1 {
		t.Fatalf("session keys: %v", keys)
	}
	rdb.Del(ctx, keys[0])
	waitFor(t, "the replica no longer serves the lost session from its cache", func() bool {
		_, _, err := m.Load(ctx, tok)
		return errors.Is(err, auth.ErrNoSession)
	})
	waitFor(t, "listening again", m.Caching)
}

// The per-request cost of a signed-in request's session (issue 14, goal
// 6): read with GETEX from a real redis-server and decoded, against kept
// in the process (the cookie's HMAC and a map lookup).
//
//	go test ./gateway/auth -run - -bench SessionLoad -benchmem
func BenchmarkSessionLoad(b *testing.B) {
	srv := redistest.Start(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, bc := range []struct {
		name string
		keep time.Duration
	}{{"redis", 0}, {"kept", 5 * time.Second}} {
		b.Run(bc.name, func(b *testing.B) {
			store := redisstore.New(srv.Client(b), "b"+bc.name)
			m := &auth.Sessions{Store: store, Key: []byte(strings.Repeat("k", 32)), CacheFor: bc.keep, Watch: store}
			if bc.keep > 0 {
				go m.WatchEnded(ctx)
				for !m.Caching() {
					time.Sleep(time.Millisecond)
				}
			}
			p := &gateway.Principal{Subject: "se-pnr:199001013011", Name: "Bertil Berg", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceSubstantial}
			tok, _, err := m.Create(ctx, p, "dev")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s, _, ok := m.Peek(tok)
				if !ok {
					if s, _, err = m.Load(ctx, tok); err != nil {
						b.Fatal(err)
					}
				}
				if s.Principal.Subject != p.Subject {
					b.Fatal("wrong session")
				}
			}
		})
	}
}
