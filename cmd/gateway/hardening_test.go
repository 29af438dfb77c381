package main

import (
	"bufio"
	"context"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Issue 9 (hardening), items 7, 10 and 16, on the real binary.

// status GETs path and returns the status, or 0 when nothing answers.
func status(url string) int {
	res, err := client.Get(url)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// rawStatus opens a TCP connection, sends what, and returns the status
// line's code (0 when the connection closes without one).
func rawStatus(t *testing.T, addr, what string) (int, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte(what)); err != nil {
		return 0, c
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, c
	}
	var code int
	if f := strings.Fields(line); len(f) > 1 {
		code = atoiOr0(f[1])
	}
	return code, c
}

func atoiOr0(s string) int {
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0
		}
		n = n*10 + int(r-'0')
	}
	return n
}

// Item 7: a client address holds at most GATEWAY_MAX_CONNS_PER_IP
// connections; the others get 429 until connections close.
func TestConnLimitPerAddress(t *testing.T) {
	_, _, gw := startStack(t, map[string]string{"GATEWAY_MAX_CONNS_PER_IP": "3"})
	addr := strings.TrimPrefix(gw.URL, "http://")

	// Slow senders: three connections announce a body and send one byte.
	slow := "POST /api/v1/services/street-fault/submissions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 262000\r\n\r\n{"
	var held []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if _, err := c.Write([]byte(slow)); err != nil {
			t.Fatal(err)
		}
	}
	if code, c := rawStatus(t, addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); code != 429 {
		t.Fatalf("a 4th connection from one address: %d, want 429", code)
	} else {
		c.Close()
	}
	for _, c := range held {
		c.Close()
	}
	eventually(t, 10*time.Second, "connections freed", func() bool { return status(gw.URL+"/healthz") == 200 })
	gw.Stop()
}

// Item 16: Redis out of memory makes /readyz 503; at SIGTERM /readyz
// answers 503 while requests are still served, until the drain delay ends
// (here: a second SIGTERM), then the process exits cleanly.
func TestDrainAndOOMReadiness(t *testing.T) {
	rs, _, gw := startStack(t, map[string]string{"GATEWAY_DRAIN_DELAY": "10m"})
	eventually(t, 10*time.Second, "readyz 200", func() bool { return status(gw.URL+"/readyz") == 200 })
	// Redis out of memory: PING still answers, writes fail.
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	if st := status(gw.URL + "/readyz"); st != 503 {
		t.Fatalf("readyz with Redis out of memory: %d, want 503", st)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if st := status(gw.URL + "/readyz"); st != 200 {
		t.Fatalf("readyz after memory came back: %d", st)
	}

	// Drain.
	_ = gw.Cmd.Process.Signal(syscall.SIGTERM)
	eventually(t, 30*time.Second, "readyz 503 while draining", func() bool { return status(gw.URL+"/readyz") == 503 })
	if st := status(gw.URL + "/healthz"); st != 200 {
		t.Fatalf("requests while draining: %d", st)
	}
	if st := status(gw.URL + "/"); st != 200 {
		t.Fatalf("pages while draining: %d", st)
	}
	gw.Stop() // the second SIGTERM ends the drain; a clean exit
}

// Item 10: production refuses published demo secrets and secrets shorter
// than 32 bytes.
func TestProductionRefusesDemoSecrets(t *testing.T) {
	good := "Zq8s0d7cM2yQ1n4vLk9xT3pW6bR5eH8jA0uC7fG2"
	base := map[string]string{"GATEWAY_ENV": "production", "REDIS_URL": "redis://127.0.0.1:1/0", "CASESIM_URL": "http://cases.example", "CASESIM_SECRET": good}
	cases := map[string]map[string]string{
		"casesim demo secret":   {"CASESIM_SECRET": "demo-secret-change-me"},
		"short casesim secret":  {"CASESIM_SECRET": "0123456789"},
		"placeholder":           {"CASESIM_SECRET": "please-change-me-please-change-me-xx"},
		"published session key": {"GATEWAY_SESSION_KEY": "0123456789abcdef0123456789abcdef"},
	}
	for name, over := range cases {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range over {
			env[k] = v
		}
		_, err := loadConfig(func(k string) string { return env[k] })
		if err == nil {
			t.Errorf("%s: accepted in production", name)
			continue
		}
		for _, v := range over {
			if strings.Contains(err.Error(), v) {
				t.Errorf("%s: the error shows the secret: %v", name, err)
			}
		}
	}
	if _, err := loadConfig(func(k string) string { return base[k] }); err != nil {
		t.Fatalf("a good production configuration: %v", err)
	}
	// Development keeps the demo secret.
	if _, err := loadConfig(func(k string) string {
		return map[string]string{"CASESIM_SECRET": "demo-secret-change-me"}[k]
	}); err != nil {
		t.Fatalf("development: %v", err)
	}
}
