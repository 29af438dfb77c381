// Package failovertest kills the Redis primary under a running gateway:
// real redis-server processes (a primary and a replica, AOF everysec),
// three real Sentinels, the gateway and casesim binaries, and clients
// posting submissions the way the API contract tells them to (retry a 503
// or a broken connection with the same Idempotency-Key). It is its own
// package because one run takes half a minute.
package failovertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/cmd/gateway/internal/proctest"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

const (
	masterName = "gwprimary"
	secret     = "failover-test-secret"
)

// sentinel is one redis-server --sentinel process.
type sentinel struct {
	addr string
	cmd  *exec.Cmd
	out  *proctest.Buffer
	done chan struct{}
}

// startSentinel runs a Sentinel on a free port that monitors primary with
// quorum 2 and calls it down after 1 s without an answer.
func startSentinel(t *testing.T, primary string) *sentinel {
	t.Helper()
	bin, err := exec.LookPath(redistest.Binary)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server not found")
		}
		t.Skip("redis-server not found")
	}
	host, port, _ := net.SplitHostPort(primary)
	dir := t.TempDir()
	for range 5 {
		p := freePort(t)
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n"+
			"sentinel monitor %s %s %s 2\n"+
			"sentinel down-after-milliseconds %[3]s 1000\n"+
			"sentinel failover-timeout %[3]s 4000\n"+
			"sentinel parallel-syncs %[3]s 1\n", p, dir, masterName, host, port)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		s := &sentinel{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), out: &proctest.Buffer{}, done: make(chan struct{})}
		s.cmd = exec.Command(bin, conf, "--sentinel")
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { s.cmd.Wait(); close(s.done) }()
		c := redis.NewSentinelClient(&redis.Options{Addr: s.addr})
		ok := false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if c.Ping(context.Background()).Err() == nil {
				ok = true
				break
			}
			select {
			case <-s.done:
				deadline = time.Time{}
			default:
			}
		}
		c.Close()
		if ok {
			t.Cleanup(s.kill)
			return s
		}
		s.kill()
		t.Logf("sentinel did not start:\n%s", s.out)
	}
	t.Fatal("could not start a sentinel")
	return nil
}

func (s *sentinel) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// masterAddr asks a sentinel where the primary is.
func masterAddr(ctx context.Context, sentinelAddr string) string {
	c := redis.NewSentinelClient(&redis.Options{Addr: sentinelAddr})
	defer c.Close()
	a, err := c.GetMasterAddrByName(ctx, masterName).Result()
	if err != nil || len(a) != 2 {
		return ""
	}
	return net.JoinHostPort(a[0], a[1])
}

// waitFor polls cond every 50 ms until it holds, or fails the test after
// within. It waits for a state; it does not time anything.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replicationInfo returns INFO replication of the server at addr as fields.
func replicationInfo(ctx context.Context, addr string) map[string]string {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	out := map[string]string{}
	for _, line := range strings.Split(c.Info(ctx, "replication").Val(), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// load is the clients: workers posting submissions, each with its own
// Idempotency-Key, retrying a key until it gets its receipt.
type load struct {
	gw      string
	hc      *http.Client
	stop    atomic.Bool
	killed  atomic.Int64 // unix nanoseconds of the kill, 0 before
	resumed atomic.Int64 // unix nanoseconds of the first receipt for a request sent after the kill
	// Between promoted and restarted (unix nanoseconds) the new primary
	// has no replica: alone counts the receipts for requests sent and
	// answered in that window, failedAlone the failures.
	promoted, restarted atomic.Int64
	alone, failedAlone  atomic.Int64

	mu        sync.Mutex
	receipts  map[string]string // idempotency key -> submission id of its 202
	retried   map[string]bool   // keys that needed more than one request
	outcomes  map[string]int    // "202", "503 outcome_unknown", "conn error", ...
	lastFail  time.Time
	firstFail time.Time
	gaveUp    []string
}

func (l *load) run(worker int, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; !l.stop.Load(); i++ {
		key := fmt.Sprintf("w%d-%d", worker, i)
		body := fmt.Sprintf(`{"kind":"pothole","description":"Hål i cykelbanan, nummer %s","location":"Skolgatan %d"}`, key, i%90+1)
		deadline := time.Now().Add(60 * time.Second)
		for try := 0; ; try++ {
			sent := time.Now()
			code, id, outcome := l.post(key, body)
			if p, r := l.promoted.Load(), l.restarted.Load(); p != 0 && sent.UnixNano() > p && r == 0 {
				if code == http.StatusAccepted {
					l.alone.Add(1)
				} else {
					l.failedAlone.Add(1)
				}
			}
			l.mu.Lock()
			l.outcomes[outcome]++
			if try > 0 {
				l.retried[key] = true
			}
			if code == http.StatusAccepted {
				l.receipts[key] = id
				if k := l.killed.Load(); k != 0 && sent.UnixNano() > k {
					l.resumed.CompareAndSwap(0, time.Now().UnixNano())
				}
				l.mu.Unlock()
				break
			}
			if l.firstFail.IsZero() {
				l.firstFail = time.Now()
			}
			l.lastFail = time.Now()
			if time.Now().After(deadline) {
				l.gaveUp = append(l.gaveUp, key+": "+outcome)
				l.mu.Unlock()
				break
			}
			l.mu.Unlock()
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (l *load) post(key, body string) (int, string, string) {
	req, err := http.NewRequest(http.MethodPost, l.gw+"/api/v1/services/street-fault/submissions", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := l.hc.Do(req)
	if err != nil {
		return 0, "", "conn error"
	}
	defer res.Body.Close()
	var m struct {
		ID   string `json:"id"`
		Code string `json:"code"`
	}
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m.ID, strings.TrimSpace(strconv.Itoa(res.StatusCode) + " " + m.Code)
}

type caseRecord struct {
	SubmissionID string `json:"submission_id"`
	Deliveries   int    `json:"deliveries"`
}

func casesByID(t *testing.T, hc *http.Client, casesimURL string) map[string][]caseRecord {
	t.Helper()
	res, err := hc.Get(casesimURL + "/cases")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var list []caseRecord
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	by := map[string][]caseRecord{}
	for _, c := range list {
		by[c.SubmissionID] = append(by[c.SubmissionID], c)
	}
	return by
}

func statusOf(t *testing.T, hc *http.Client, gw, id string) int {
	t.Helper()
	res, err := hc.Get(gw + "/api/v1/submissions/" + id)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// failoverResult is what one run saw.
type failoverResult struct {
	receipts    map[string]string
	missing     []string // receipted ids the new primary does not know
	orphans     int      // cases for a submission id no client got a receipt for
	redelivered int      // cases delivered more than once (casesim deduplicated)
}

// runFailover starts the whole stack with GATEWAY_REDIS_WAIT_REPLICAS=wait,
// SIGKILLs the primary under load, lets Sentinel promote the replica,
// restarts the old primary (Sentinel makes it a replica of the new one),
// and collects what the clients and the case system saw.
func runFailover(t *testing.T, wait int) failoverResult {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	primary := redistest.Start(t, redistest.WithAOF("everysec"))
	_, pport, _ := net.SplitHostPort(primary.Addr())
	replica := redistest.Start(t, redistest.WithAOF("everysec"), redistest.WithArgs("--replicaof", "127.0.0.1", pport))
	waitFor(t, 15*time.Second, "replica in sync", func() bool {
		return replicationInfo(ctx, replica.Addr())["master_link_status"] == "up"
	})
	var sentinels []*sentinel
	var addrs []string
	for range 3 {
		s := startSentinel(t, primary.Addr())
		sentinels = append(sentinels, s)
		addrs = append(addrs, s.addr)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range sentinels {
				t.Logf("sentinel %s:\n%s", s.addr, s.out)
			}
		}
	})
	// Every sentinel must know the replica and the two other sentinels
	// (they find each other through the primary) before the kill.
	waitFor(t, 30*time.Second, "sentinels know each other and the replica", func() bool {
		for _, a := range addrs {
			c := redis.NewSentinelClient(&redis.Options{Addr: a})
			m, err := c.Master(ctx, masterName).Result()
			c.Close()
			if err != nil || m["num-other-sentinels"] != "2" || m["num-slaves"] != "1" {
				return false
			}
		}
		return true
	})

	gwBin, csBin := binaries(t)
	cs := start(t, csBin, map[string]string{"CASESIM_ADDR": "127.0.0.1:0", "CASESIM_SECRET": secret})
	gw := start(t, gwBin, map[string]string{
		"GATEWAY_ADDR": "127.0.0.1:0", "REDIS_ADDRS": strings.Join(addrs, ","), "REDIS_MASTER_NAME": masterName,
		"GATEWAY_REDIS_WAIT_REPLICAS": strconv.Itoa(wait),
		"CASESIM_URL":                 cs.URL, "CASESIM_SECRET": secret,
		"GATEWAY_RETRY_BASE": "100ms", "GATEWAY_RETRY_MAX": "500ms", "GATEWAY_CLAIM_IDLE": "2s",
		"GATEWAY_RATELIMIT": "off", "GATEWAY_SHUTDOWN_TIMEOUT": "10s", "GATEWAY_LOG_LEVEL": "warn",
		"GATEWAY_DRAIN_DELAY": "0s",
	})

	l := &load{gw: gw.URL, hc: &http.Client{Timeout: 10 * time.Second},
		receipts: map[string]string{}, retried: map[string]bool{}, outcomes: map[string]int{}}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go l.run(w, &wg)
	}
	waitFor(t, 30*time.Second, "receipts before the kill", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.receipts) >= 200
	})

	// probe checks that the gateway follows the new primary: from when it
	// can (promoted; with WAIT, a replica attached again) a new submission
	// gets its receipt within 20 tries 100 ms apart. Counted in tries, not
	// timed.
	probeTries := 0
	probe := func(since string) {
		for {
			probeTries++
			key := fmt.Sprintf("probe-%d", probeTries)
			code, id, outcome := l.post(key, `{"kind":"pothole","description":"Prov efter failover","location":"Skolgatan 1"}`)
			if code == http.StatusAccepted {
				l.mu.Lock()
				l.receipts[key] = id
				l.mu.Unlock()
				return
			}
			if probeTries == 20 {
				t.Fatalf("the gateway still fails %d tries after %s: %s", probeTries, since, outcome)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	old := primary.Addr()
	killedAt := time.Now()
	l.killed.Store(killedAt.UnixNano())
	primary.Kill()
	waitFor(t, 30*time.Second, "Sentinel promotes the replica", func() bool {
		return masterAddr(ctx, addrs[0]) == replica.Addr()
	})
	promoted := time.Since(killedAt)
	l.promoted.Store(time.Now().UnixNano())
	if wait == 0 {
		probe("Sentinel promoted the replica")
	}
	if wait > 0 {
		// The new primary has no replica: no receipt may be shown now,
		// not even the replay of a key whose first request got a 503.
		// Leave it alone until the clients have retried a while.
		waitFor(t, 30*time.Second, "clients retrying against the lone new primary", func() bool {
			return l.failedAlone.Load() >= 16
		})
	}
	l.restarted.Store(time.Now().UnixNano())
	// The old primary comes back with its AOF (whatever it had, including
	// writes the replica never got) and is made a replica of the new one,
	// as an operator would (Sentinel would too, but only after several
	// of its INFO periods).
	primary.Restart()
	oc := redis.NewClient(&redis.Options{Addr: old})
	if err := oc.SlaveOf(ctx, "127.0.0.1", port(replica.Addr())).Err(); err != nil {
		t.Fatalf("REPLICAOF on the old primary: %v", err)
	}
	oc.Close()
	restarted := time.Since(killedAt)
	waitFor(t, 30*time.Second, "the old primary replicates the new one", func() bool {
		info := replicationInfo(ctx, old)
		return info["role"] == "slave" && info["master_link_status"] == "up" && info["master_port"] == port(replica.Addr())
	})
	rejoined := time.Since(killedAt)
	if wait > 0 {
		probe("the old primary rejoined as a replica")
	}
	// Let the load run on the new primary for a while, then stop it.
	waitFor(t, 30*time.Second, "receipts after the failover", func() bool {
		return l.resumed.Load() != 0
	})
	time.Sleep(2 * time.Second)
	l.stop.Store(true)
	wg.Wait()

	l.mu.Lock()
	defer l.mu.Unlock()
	resumed := time.Duration(l.resumed.Load() - killedAt.UnixNano())
	t.Logf("WAIT %d: %d receipts; promoted %.1fs after the kill, old primary restarted at %.1fs and replicating at %.1fs; "+
		"first receipt for a request sent after the kill at %.1fs; probe accepted on try %d; requests failed from %.1fs to %.1fs after the kill; outcomes %v; %d keys needed a retry",
		wait, len(l.receipts), promoted.Seconds(), restarted.Seconds(), rejoined.Seconds(), resumed.Seconds(), probeTries,
		l.firstFail.Sub(killedAt).Seconds(), l.lastFail.Sub(killedAt).Seconds(), l.outcomes, len(l.retried))
	t.Logf("WAIT %d: while the new primary had no replica: %d receipts, %d failed requests", wait, l.alone.Load(), l.failedAlone.Load())
	if wait > 0 && l.alone.Load() > 0 {
		t.Errorf("%d receipts shown while the new primary had no replica to WAIT for", l.alone.Load())
	}
	for _, g := range l.gaveUp {
		t.Errorf("a client never got its receipt: %s", g)
	}

	r := failoverResult{receipts: l.receipts}
	ids := map[string]bool{}
	for _, id := range l.receipts {
		if ids[id] {
			t.Errorf("two keys got the same submission %s", id)
		}
		ids[id] = true
		if code := statusOf(t, l.hc, gw.URL, id); code != http.StatusOK {
			r.missing = append(r.missing, id)
		}
	}
	// Wait for the back-end to hold a case for every submission the new
	// primary knows, then count.
	waitFor(t, 60*time.Second, "every known submission delivered", func() bool {
		by := casesByID(t, l.hc, cs.URL)
		for _, id := range l.receipts {
			if len(by[id]) == 0 && !contains(r.missing, id) {
				return false
			}
		}
		return true
	})
	by := casesByID(t, l.hc, cs.URL)
	for id, cases := range by {
		if !ids[id] {
			r.orphans++
		}
		if len(cases) > 1 {
			t.Errorf("submission %s became %d cases", id, len(cases))
		}
		for _, c := range cases {
			if c.Deliveries > 1 {
				r.redelivered++
			}
		}
	}
	missingDelivered := 0
	for _, id := range r.missing {
		if len(by[id]) > 0 {
			missingDelivered++
		}
	}
	t.Logf("WAIT %d: %d of %d receipted submissions missing on the new primary (%d of them delivered before the loss); "+
		"%d cases for submissions without a receipt; %d cases delivered more than once (one case each, casesim deduplicated)",
		wait, len(r.missing), len(l.receipts), missingDelivered, r.orphans, r.redelivered)
	// The old primary, now a replica, did not bring back what the new one
	// lacks: what is missing stays missing.
	for _, id := range r.missing {
		if code := statusOf(t, l.hc, gw.URL, id); code != http.StatusNotFound {
			t.Errorf("submission %s missing after the failover answers %d after the old primary rejoined", id, code)
		}
	}
	if info := replicationInfo(ctx, old); info["role"] != "slave" {
		t.Errorf("old primary is %s after rejoining", info["role"])
	}
	return r
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// With GATEWAY_REDIS_WAIT_REPLICAS=1 a receipt is shown only once the
// replica holds the submission, so the primary SIGKILLed under load loses
// none: every receipt is on the new primary and becomes one case, and
// every 503 retried with its key ended as one submission (no case for a
// submission that no client holds a receipt for).
func TestSentinelFailoverWaitKeepsEveryReceipt(t *testing.T) {
	r := runFailover(t, 1)
	if len(r.missing) > 0 {
		t.Errorf("%d submissions with a receipt are gone after the failover: %v", len(r.missing), r.missing)
	}
	if r.orphans > 0 {
		t.Errorf("%d cases for submissions no client got a receipt for (a retried 503 became two submissions)", r.orphans)
	}
}

// Without WAIT, replication is asynchronous: a receipt can be shown for a
// write the replica never got. Whether the kill catches one is timing, so
// this logs the loss instead of asserting it; it still requires every
// receipt that survived to be delivered once.
func TestSentinelFailoverWithoutWait(t *testing.T) {
	r := runFailover(t, 0)
	t.Logf("without WAIT: %d of %d acknowledged submissions lost", len(r.missing), len(r.receipts))
}
