package redistest_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

func TestStartKillRestart(t *testing.T) {
	tests := []struct {
		name     string
		opts     []redistest.Option
		survives bool
	}{
		{"no AOF loses data", nil, false},
		{"AOF always keeps data", []redistest.Option{redistest.WithAOF("always")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t, tt.opts...)
			if !strings.HasPrefix(srv.URL(), "redis://127.0.0.1:") || !strings.HasSuffix(srv.URL(), "/0") {
				t.Fatalf("URL() = %q", srv.URL())
			}
			rdb := srv.Client(t)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			srv.Kill()
			if c, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
				c.Close()
				t.Fatal("server still accepts connections after Kill")
			}
			srv.Restart()
			n, err := rdb.Exists(ctx, "k").Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := n == 1; got != tt.survives {
				t.Fatalf("key survived = %v, want %v", got, tt.survives)
			}
			srv.Stop()
			srv.Stop() // idempotent
		})
	}
}
