package auth_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/auth"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// commands returns the calls per command the server counted since the last
// CONFIG RESETSTAT, without the INFO and CONFIG of the test itself.
func commands(t *testing.T, rdb *redis.Client) map[string]int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		name = strings.TrimPrefix(name, "cmdstat_")
		if name == "info" || strings.HasPrefix(name, "config") {
			continue
		}
		n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		out[name] = n
	}
	return out
}

// A signed-in request costs one Redis command: the session is read and its
// idle timeout refreshed by one GETEX. Only in the last stretch before the
// absolute timeout does a second command cut the record's life to it.
func TestSessionLoadIsOneRoundTrip(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store := redisstore.New(rdb, "t")
	now := time.Now()
	m := &auth.Sessions{Store: store, Key: []byte(strings.Repeat("k", 32)), Idle: 30 * time.Minute, Absolute: 2 * time.Hour,
		TokenTTL: 15 * time.Minute, Now: func() time.Time { return now }}
	ctx := context.Background()
	p := &gateway.Principal{Subject: "se-pnr:199001013011", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceHigh}
	tok, _, err := m.Create(ctx, p, "dev")
	if err != nil {
		t.Fatal(err)
	}
	key := rdb.Keys(ctx, "t:sess:*").Val()[0]
	rdb.PExpire(ctx, key, time.Minute) // as if idle for 29 minutes
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Load(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if got := commands(t, rdb); len(got) != 1 || got["getex"] != 1 {
		t.Fatalf("commands for one signed-in request: %v, want one getex", got)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl < 29*time.Minute || ttl > 30*time.Minute {
		t.Fatalf("idle timeout not refreshed: %v", ttl)
	}
	// In use every 14 minutes: at 112 minutes, 8 before the absolute
	// timeout, the record lives at most 8 minutes.
	for i := 0; i < 8; i++ {
		now = now.Add(14 * time.Minute)
		_, renewed, err := m.Load(ctx, tok)
		if err != nil {
			t.Fatalf("after %d minutes: %v", 14*(i+1), err)
		}
		if renewed != "" {
			tok = renewed
		}
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl <= 0 || ttl > 8*time.Minute {
		t.Fatalf("near the absolute timeout the record lives %v", ttl)
	}
}
