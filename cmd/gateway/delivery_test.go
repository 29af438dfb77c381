package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

// The delivery guarantee under faults, with real processes: gateway
// binaries, redis-server with AOF "always", casesim, and a proxy in front
// of casesim that misbehaves on demand. No test asserts a duration; the
// figures are measured and logged.

const streetFault = `{"kind":"pothole","description":"Djupt hål i cykelbanan vid skolan","location":"Skolgatan 4"}`

// fastBreaker makes circuit breakers pause for one second rather than
// thirty, so that tests which make a back-end fail do not wait for the
// production pause.
var fastBreaker = map[string]string{"GATEWAY_BREAKER_OPEN": "1s"}

// deliveryEnv is gatewayEnv with fastBreaker.
func deliveryEnv(redisURL, casesimURL string) map[string]string {
	env := gatewayEnv(redisURL, casesimURL)
	maps.Copy(env, fastBreaker)
	return env
}

// proxiedCasesim runs redis-server (AOF always) and casesim behind a fault
// proxy in mode; env is deliveryEnv for a gateway that delivers through
// the proxy.
func proxiedCasesim(t *testing.T, mode string) (rs *redistest.Server, cs *proc, px *faultProxy, env map[string]string) {
	t.Helper()
	rs = redistest.Start(t, redistest.WithAOF("always"))
	cs = casesimProc(t)
	px = newFaultProxy(t, cs.URL)
	px.setMode(mode)
	return rs, cs, px, deliveryEnv(rs.URL(), px.URL())
}

func streetFaultN(i int) string {
	return fmt.Sprintf(`{"kind":"pothole","description":"Hål nummer %d i cykelbanan","location":"Skolgatan %d"}`, i, i%100+1)
}

func mustSubmit(t *testing.T, gw, service, body string) string {
	t.Helper()
	code, id, err := submitTo(client, gw, service, body, "")
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("submit: %d %v", code, err)
	}
	return id
}

// The back-end is down for a while, then back: every submission is
// delivered exactly once.
func TestDeliveryBackendDownThenBack(t *testing.T) {
	_, csBin := binaries(t)
	rs := redistest.Start(t, redistest.WithAOF("always"))
	csAddr := freeAddr(t) // nothing listens there yet
	gw := gatewayProc(t, deliveryEnv(rs.URL(), "http://"+csAddr))
	var ids []string
	for i := range 20 {
		ids = append(ids, mustSubmit(t, gw.URL, "street-fault", streetFaultN(i)))
	}
	// Let some attempts fail against the closed port.
	eventually(t, 30*time.Second, "failed attempts", func() bool {
		return metric(t, gw.URL, `gateway_delivery_retries_total{reason="temporary"}`) >= 5
	})
	cs := start(t, csBin, map[string]string{"CASESIM_ADDR": csAddr, "CASESIM_SECRET": demoSecret})
	back := time.Now()
	waitDelivered(t, 60*time.Second, "delivery after the back-end came back", gw.URL, ids...)
	t.Logf("all %d delivered %v after the back-end came back", len(ids), time.Since(back).Round(time.Millisecond))
	got := caseRecords(t, cs.URL)
	if len(got) != len(ids) {
		t.Fatalf("want %d cases, got %d", len(ids), len(got))
	}
	exactlyOnce(t, got, ids)
	noPayloadInLogs(t, gw, "cykelbanan")
}

// One department's back-end answers 503 and then hangs: its circuit
// breaker opens, its jobs wait without using workers or attempts, and the
// other department's deliveries keep their latency. Latency is measured
// (casesim's arrival time minus the submission's creation time) and
// compared with a generous factor; the figures are logged.
func TestDeliveryBreakerIsolatesDepartments(t *testing.T) {
	rs := redistest.Start(t, redistest.WithAOF("always"))
	cs := casesimProc(t)
	bad := newFaultProxy(t, cs.URL) // department A's back-end
	env := deliveryEnv(rs.URL(), cs.URL)
	env["GATEWAY_SERVICES_DIR"] = twoDepartments(t)
	env["BACKEND_A_URL"] = bad.URL()
	env["GATEWAY_WORKERS"] = "4"
	env["GATEWAY_BREAKER_FAILURES"] = "3"
	env["GATEWAY_BREAKER_OPEN"] = "1s"
	env["GATEWAY_RETRY_ATTEMPTS"] = "1000"
	env["GATEWAY_CLAIM_IDLE"] = "30s"
	gw := gatewayProc(t, env)

	latencies := func(ids []string) []time.Duration {
		var ds []time.Duration
		byID := map[string]caseRecord{}
		for _, c := range caseRecords(t, cs.URL) {
			byID[c.SubmissionID] = c
		}
		for _, id := range ids {
			var s struct {
				CreatedAt time.Time `json:"created_at"`
			}
			getJSON(t, gw.URL+"/api/v1/submissions/"+id, &s)
			ds = append(ds, byID[id].ReceivedAt.Sub(s.CreatedAt))
		}
		return ds
	}
	submitB := func(n int) []string {
		var ids []string
		for i := range n {
			ids = append(ids, mustSubmit(t, gw.URL, "fault-b", fmt.Sprintf(`{"where":"Torget %d"}`, i)))
			time.Sleep(100 * time.Millisecond)
		}
		waitDelivered(t, 60*time.Second, "delivery for department B", gw.URL, ids...)
		return ids
	}

	// 1. Baseline: department B alone.
	base := latencies(submitB(30))

	// 2. Department A's back-end answers 503 until its breaker opens,
	// then hangs (each attempt takes the 2s connector timeout).
	bad.setMode(mode503)
	var aIDs []string
	for i := range 30 {
		aIDs = append(aIDs, mustSubmit(t, gw.URL, "fault-a", fmt.Sprintf(`{"where":"Parken %d"}`, i)))
	}
	backend := fmt.Sprintf(`gateway_breaker_state{backend=%q}`, bad.URL())
	eventually(t, 30*time.Second, "department A's breaker opens", func() bool { return metric(t, gw.URL, backend) == 2 })
	bad.setMode(modeHang)
	requestsWhenOpen := bad.total()
	during := latencies(submitB(30))
	requestsWhileOpen := bad.total() - requestsWhenOpen
	deferred := metric(t, gw.URL, `gateway_deliveries_total{outcome="deferred"}`)

	mb, md := median(base), median(during)
	t.Logf("department B delivery latency: median %v alone, %v while department A's back-end failed (breaker open; %d requests reached A meanwhile, %v jobs deferred)",
		mb, md, requestsWhileOpen, deferred)
	if limit := max(10*mb, mb+time.Second); md > limit {
		t.Errorf("department B's median latency %v while A failed, over %v (10× the baseline %v)", md, limit, mb)
	}
	if deferred <= 0 {
		t.Errorf("no job was deferred by the open breaker")
	}
	// Without a breaker, 30 jobs would have hammered A during the 30 B
	// submissions (3 s); with it, only the half-open probes get through.
	if requestsWhileOpen > 10 {
		t.Errorf("%d requests reached the failing back-end while its breaker should be open", requestsWhileOpen)
	}

	// 3. A recovers: a half-open probe succeeds, the breaker closes and
	// every A submission is delivered, once.
	bad.setMode(modePass)
	waitDelivered(t, 90*time.Second, "department A delivers after recovery", gw.URL, aIDs...)
	if v := metric(t, gw.URL, backend); v != 0 {
		t.Errorf("breaker state %v after recovery, want 0 (closed)", v)
	}
	exactlyOnce(t, caseRecords(t, cs.URL), append(aIDs, base2ids(t, cs.URL, "fault-b")...))
	// Attempts were not burned while the breaker was open: nothing was
	// dead-lettered and no submission used anywhere near 1000 attempts.
	if st, err := storeOf(t, rs).Stats(bg(t)); err != nil || st.Dead != 0 {
		t.Errorf("stats %+v %v: want no dead letters", st, err)
	}
}

func base2ids(t *testing.T, casesimURL, service string) []string {
	var ids []string
	for _, c := range caseRecords(t, casesimURL) {
		if c.Service == service {
			ids = append(ids, c.SubmissionID)
		}
	}
	return ids
}

// The back-end commits the case, then the connection is cut before the
// answer: the gateway retries with the same Idempotency-Key and the
// back-end answers with the same case: one case.
func TestDeliveryConnectionCutAfterCommit(t *testing.T) {
	// The first request for each key is cut after the commit.
	_, cs, _, env := proxiedCasesim(t, modeCutFirst)
	gw := gatewayProc(t, env)
	var ids []string
	for i := range 5 {
		ids = append(ids, mustSubmit(t, gw.URL, "street-fault", streetFaultN(i)))
	}
	waitDelivered(t, 60*time.Second, "delivery after the cut", gw.URL, ids...)
	got := exactlyOnce(t, caseRecords(t, cs.URL), ids)
	if len(got) != len(ids) {
		t.Fatalf("want %d cases, got %d", len(ids), len(got))
	}
	for _, id := range ids {
		c := got[id]
		if c.Deliveries < 2 {
			t.Errorf("case %s was delivered %d times, want the cut one and its retry", c.CaseReference, c.Deliveries)
		}
		if s := submission(t, gw.URL, id); s.CaseReference != c.CaseReference {
			t.Errorf("gateway shows case %q, casesim has %q", s.CaseReference, c.CaseReference)
		}
	}
}

// A gateway is SIGKILLed between the back-end's 2xx and the
// acknowledgement (GATEWAY_FAULT=exit-after-deliver): another replica
// completes the job, and the back-end's deduplication keeps it one case.
func TestDeliveryKillBetweenDeliverAndAck(t *testing.T) {
	// The back-end refuses until the receipt is in hand, so that the
	// process does not kill itself while answering the submission.
	rs, cs, px, env := proxiedCasesim(t, mode503)
	env["GATEWAY_FAULT"] = "exit-after-deliver"
	a := gatewayProc(t, env)
	id := mustSubmit(t, a.URL, "street-fault", streetFault)
	px.setMode(modePass)
	select {
	case <-a.Done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the faulty gateway did not kill itself:\n%s", a.Out)
	}
	if got := caseRecords(t, cs.URL); len(got) != 1 || got[0].Deliveries != 1 {
		t.Fatalf("before the takeover: %+v, want one case delivered once", got)
	}
	store := storeOf(t, rs)
	if sub, err := store.Get(bg(t), id); err != nil || sub.Status != gateway.StatusReceived {
		t.Fatalf("the killed gateway recorded the delivery? %+v %v", sub, err)
	}
	if st, _ := store.Stats(bg(t)); st.Pending != 1 {
		t.Fatalf("stats %+v: want the job pending with the dead consumer", st)
	}
	b := gatewayProc(t, deliveryEnv(rs.URL(), px.URL()))
	waitDelivered(t, 60*time.Second, "the other replica completes it", b.URL, id)
	got := caseRecords(t, cs.URL)
	if len(got) != 1 || got[0].Deliveries != 2 {
		t.Fatalf("after the takeover: %+v, want one case delivered twice", got)
	}
	if s := submission(t, b.URL, id); s.CaseReference != got[0].CaseReference {
		t.Errorf("case reference %q, casesim has %q", s.CaseReference, got[0].CaseReference)
	}
}

// A gateway holding claimed work (deliveries in flight to a back-end that
// does not answer) is SIGKILLed: another replica claims the work after
// GATEWAY_CLAIM_IDLE and delivers each submission once.
func TestDeliveryKillWhileHoldingClaimedWork(t *testing.T) {
	_, cs, px, env := proxiedCasesim(t, modeHang)
	env["GATEWAY_WORKERS"] = "4"
	env["GATEWAY_BACKEND_LIMIT"] = "4" // all three in flight to the one back-end at once
	a := gatewayProc(t, env)
	var ids []string
	for i := range 3 {
		ids = append(ids, mustSubmit(t, a.URL, "street-fault", streetFaultN(i)))
	}
	eventually(t, 30*time.Second, "replica A holds all three", func() bool { return px.hangingNow() == 3 })
	b := gatewayProc(t, env)
	a.Kill()
	px.setMode(modePass)
	waitDelivered(t, 60*time.Second, "replica B completes A's work", b.URL, ids...)
	got := caseRecords(t, cs.URL)
	if len(got) != len(ids) {
		t.Fatalf("want %d cases, got %d", len(ids), len(got))
	}
	exactlyOnce(t, got, ids)
}

// redis-server is SIGKILLed and restarted (AOF always) during a stream of
// submissions: every submission that got a receipt (202) is delivered,
// once.
func TestDeliveryRedisKilledDuringSubmissions(t *testing.T) {
	rs, cs, gw := startStack(t, fastBreaker)

	var (
		mu       sync.Mutex
		receipts []string
		refused  int
		stop     atomic.Bool
	)
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return len(receipts), refused
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; !stop.Load(); i += 4 {
				code, id, err := submitTo(hc, gw.URL, "street-fault", streetFaultN(i), "")
				mu.Lock()
				if err == nil && code == http.StatusAccepted {
					receipts = append(receipts, id)
				} else {
					refused++
				}
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	eventually(t, 60*time.Second, "100 receipts", func() bool { n, _ := count(); return n >= 100 })
	rs.Kill()
	eventually(t, 60*time.Second, "refusals while Redis is down", func() bool { _, r := count(); return r >= 10 })
	rs.Restart()
	before, _ := count()
	eventually(t, 60*time.Second, "100 more receipts after the restart", func() bool { n, _ := count(); return n >= before+100 })
	stop.Store(true)
	wg.Wait()
	n, r := count()
	t.Logf("%d receipts, %d requests refused while Redis was down", n, r)
	for _, id := range receipts {
		eventually(t, 90*time.Second, "delivery of every receipt", func() bool {
			var s submissionJSON
			return getJSON(t, gw.URL+"/api/v1/submissions/"+id, &s) == 200 && s.Status == "delivered"
		})
	}
	exactlyOnce(t, caseRecords(t, cs.URL), receipts)
}

// A permanent 4xx: the submission is dead-lettered after one attempt (a
// metric and an error-level log line announce it, the resident is told it
// is delayed), replayed by an administrator through
// POST /api/v1/admin/dead-letters/{id}/replay after the back-end is fixed,
// and then delivered once.
func TestDeliveryPermanentErrorDeadLetterReplay(t *testing.T) {
	rs, cs, px, env := proxiedCasesim(t, mode400)
	env["GATEWAY_LOG_LEVEL"] = "info"
	gw := gatewayProc(t, env)
	id := mustSubmit(t, gw.URL, "street-fault", streetFault)
	store := storeOf(t, rs)
	eventually(t, 30*time.Second, "dead letter", func() bool {
		_, dead, err := store.DeadLetterInfo(bg(t), id)
		return err == nil && dead
	})
	dl, _, _ := store.DeadLetterInfo(bg(t), id)
	if dl.Attempts != 1 || dl.Reason != "permanent" || px.keyCount(id) != 1 {
		t.Fatalf("dead letter %+v after %d requests, want one attempt, reason permanent", dl, px.keyCount(id))
	}
	// The dispatcher counts the dead letter after its write returns: the
	// test may see the record first.
	eventually(t, 10*time.Second, "the dead letter counted", func() bool {
		return metric(t, gw.URL, `gateway_dead_letters_total{reason="permanent"}`) >= 1
	})
	if v := metric(t, gw.URL, `gateway_dead_letters_total{reason="permanent"}`); v != 1 {
		t.Errorf("dead letter metric = %v, want 1", v)
	}
	if out := gw.Out.String(); !strings.Contains(out, `"level":"ERROR","msg":"delivery given up; dead-lettered for a person to handle"`) || !strings.Contains(out, dl.Reference) {
		t.Errorf("no error-level log line announces the dead letter:\n%s", out)
	}
	var s struct {
		Status  string `json:"status"`
		Delayed bool   `json:"delayed"`
	}
	getJSON(t, gw.URL+"/api/v1/submissions/"+id, &s)
	if s.Status != "received" || !s.Delayed {
		t.Errorf("resident sees %+v, want received and delayed", s)
	}
	if page := statusPage(t, gw.URL, id); !strings.Contains(page, "försenad") {
		t.Errorf("status page does not say the hand-over is delayed")
	}
	list, total, err := store.DeadLetterPage(bg(t), 0, 10)
	if err != nil || total != 1 || len(list) != 1 || list[0].ID != id {
		t.Fatalf("dead letter list %+v %d %v", list, total, err)
	}

	// The department fixes its system; an administrator, signed in through
	// the development identity provider, replays through the admin API. A
	// resident may not.
	px.setMode(modePass)
	if code := adminReplay(t, gw.URL, "anna", "/my", id); code != 403 {
		t.Fatalf("a resident's replay answered %d, want 403", code)
	}
	if _, dead, _ := store.DeadLetterInfo(bg(t), id); !dead {
		t.Fatal("a refused replay changed the dead letter")
	}
	if code := adminReplay(t, gw.URL, "admin", "/admin/dead-letters", id); code != 202 {
		t.Fatalf("the administrator's replay answered %d, want 202", code)
	}
	waitDelivered(t, 30*time.Second, "delivery after the replay", gw.URL, id)
	got := caseRecords(t, cs.URL)
	if len(got) != 1 || got[0].Deliveries != 1 || px.keyCount(id) != 2 {
		t.Fatalf("cases %+v after %d requests, want one case delivered once after one refusal", got, px.keyCount(id))
	}
	if _, dead, _ := store.DeadLetterInfo(bg(t), id); dead {
		t.Errorf("still dead-lettered after delivery")
	}
	noPayloadInLogs(t, gw, "cykelbanan", "Skolgatan")
	if idInLog.MatchString(gw.Out.String()) {
		t.Errorf("a log line names a submission id (the status link's secret)")
	}
}

// Idempotency-Key on the submission API, against the real binary.
func TestDeliveryIdempotencyTable(t *testing.T) {
	rs, cs, gw := startStack(t, fastBreaker)
	post := func(key, body string) (int, string, http.Header, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, gw.URL+"/api/v1/services/street-fault/submissions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		b, _ := io.ReadAll(res.Body)
		_ = json.Unmarshal(b, &m)
		id, _ := m["id"].(string)
		return res.StatusCode, id, res.Header, m
	}
	other := `{"kind":"litter","description":"Nedskräpat vid återvinningen","location":"Stationen"}`

	_, first, _, _ := post("key-1", streetFault)
	tests := []struct {
		name, key, body string
		want            int
		sameID          bool
	}{
		{"repeat: the same receipt", "key-1", streetFault, http.StatusAccepted, true},
		{"same key, different body", "key-1", other, http.StatusUnprocessableEntity, false},
		{"another key: a new submission", "key-2", streetFault, http.StatusAccepted, false},
		{"no key: a new submission", "", streetFault, http.StatusAccepted, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, id, hdr, m := post(tc.key, tc.body)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %v", code, tc.want, m)
			}
			if tc.sameID != (id == first) {
				t.Errorf("id %q, first %q, want same=%v", id, first, tc.sameID)
			}
			if tc.sameID && hdr.Get("Idempotent-Replayed") != "true" {
				t.Errorf("a replayed receipt lacks Idempotent-Replayed")
			}
		})
	}

	t.Run("in flight: 409", func(t *testing.T) {
		// Another request with the key holds the in-flight lock.
		release, err := storeOf(t, rs).LockIdempotency(bg(t), gateway.Idempotency{Scope: "ip:127.0.0.1", Key: "key-3"}, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		code, _, _, m := post("key-3", streetFault)
		if code != http.StatusConflict || m["code"] != "in_flight" {
			t.Fatalf("status %d %v, want 409 in_flight", code, m)
		}
		release()
		if code, _, _, _ := post("key-3", streetFault); code != http.StatusAccepted {
			t.Fatalf("after release: %d", code)
		}
	})

	t.Run("concurrent duplicates: one submission", func(t *testing.T) {
		var (
			mu    sync.Mutex
			codes = map[int]int{}
			ids   = map[string]bool{}
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		for range 16 {
			wg.Go(func() {
				<-start
				code, id, _, _ := post("key-4", streetFault)
				mu.Lock()
				codes[code]++
				if id != "" {
					ids[id] = true
				}
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		t.Logf("answers to 16 concurrent duplicates: %v", codes)
		if codes[http.StatusAccepted] < 1 || codes[http.StatusAccepted]+codes[http.StatusConflict] != 16 || len(ids) != 1 {
			t.Fatalf("answers %v with %d distinct ids, want 202s and 409s for one submission", codes, len(ids))
		}
		var id string
		for k := range ids {
			id = k
		}
		if code, again, _, _ := post("key-4", streetFault); code != http.StatusAccepted || again != id {
			t.Fatalf("a later repeat: %d %q, want 202 %q", code, again, id)
		}
	})

	// Every submission became exactly one case: key-1, key-2, no key,
	// key-3 and key-4.
	eventually(t, 30*time.Second, "five cases", func() bool { return len(caseRecords(t, cs.URL)) >= 5 })
	time.Sleep(500 * time.Millisecond)
	if got := caseRecords(t, cs.URL); len(got) != 5 {
		t.Fatalf("want 5 cases, got %d", len(got))
	}
}

// Status flows back: casesim moves a case on and tells the gateway with a
// signed update; the resident sees it with the message. An older update is
// recorded but does not move the status back; a bad signature is refused.
func TestDeliveryStatusFlowsBack(t *testing.T) {
	_, csBin := binaries(t)
	rs := redistest.Start(t, redistest.WithAOF("always"))
	gwAddr := freeAddr(t)
	cs := start(t, csBin, map[string]string{"CASESIM_ADDR": "127.0.0.1:0", "CASESIM_SECRET": demoSecret, "CASESIM_GATEWAY_URL": "http://" + gwAddr})
	env := deliveryEnv(rs.URL(), cs.URL)
	env["GATEWAY_ADDR"] = gwAddr
	gw := gatewayProc(t, env)
	id := mustSubmit(t, gw.URL, "street-fault", streetFault)
	waitDelivered(t, 30*time.Second, "delivery", gw.URL, id)
	ref := submission(t, gw.URL, id).CaseReference

	// A case officer starts on it (casesim forwards, signed).
	code, m := postJSON(t, cs.URL+"/cases/"+ref+"/status", `{"status":"in_progress","message":"Vi lagar hålet under vecka 48."}`)
	if code != 200 || m["gateway_status"] != float64(200) {
		t.Fatalf("casesim status: %d %v", code, m)
	}
	if s := submission(t, gw.URL, id); s.Status != "in_progress" {
		t.Fatalf("status %q, want in_progress", s.Status)
	}
	if page := statusPage(t, gw.URL, id); !strings.Contains(page, "Vi lagar hålet under vecka 48.") || !strings.Contains(page, "Handläggs") && !strings.Contains(page, "in_progress") {
		t.Errorf("status page lacks the message")
	}

	signed := func(body string, sig string) int {
		ts := fmt.Sprint(time.Now().Unix())
		if sig == "" {
			sig = httpjson.Sign([]byte(demoSecret), ts, gateway.StatusUpdateSigned(http.MethodPost, id, []byte(body)))
		}
		req, _ := http.NewRequest(http.MethodPost, gw.URL+"/api/v1/submissions/"+id+"/status", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Gateway-Timestamp", ts)
		req.Header.Set("X-Gateway-Signature", sig)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// An older needs_info (same rank) and a delivered (lower rank) arrive
	// late: recorded, status unchanged.
	old := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if c := signed(`{"status":"needs_info","message":"Gammalt besked","at":"`+old+`"}`, ""); c != 200 {
		t.Fatalf("older update: %d", c)
	}
	if c := signed(`{"status":"delivered"}`, ""); c != 200 {
		t.Fatalf("lower update: %d", c)
	}
	s := submission(t, gw.URL, id)
	if s.Status != "in_progress" || len(s.History) != 5 {
		t.Fatalf("after late updates: %q with %d history entries, want in_progress and 5", s.Status, len(s.History))
	}
	if c := signed(`{"status":"closed"}`, "sha256=00"); c != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d, want 401", c)
	}
	if c := signed(`{"status":"decided","message":"Beslut fattat"}`, ""); c != 200 || submission(t, gw.URL, id).Status != "decided" {
		t.Fatalf("decided: %d", c)
	}
}

// GATEWAY_FAULT is for tests only.
func TestFaultInjectionRefusedInProduction(t *testing.T) {
	env := map[string]string{"GATEWAY_ENV": "production", "REDIS_URL": "redis://127.0.0.1:1", "GATEWAY_FAULT": "exit-after-deliver"}
	if _, err := loadConfig(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "GATEWAY_FAULT") {
		t.Fatalf("production accepted GATEWAY_FAULT: %v", err)
	}
	env = map[string]string{"GATEWAY_FAULT": "explode"}
	if _, err := loadConfig(func(k string) string { return env[k] }); err == nil {
		t.Fatalf("unknown fault accepted")
	}
}

// adminReplay signs in as persona and posts a replay of the dead letter
// with the session cookie and its CSRF token; it returns the status.
func adminReplay(t *testing.T, gw, persona, landing, id string) int {
	t.Helper()
	c := signIn(t, gw, persona, landing)
	var me struct {
		CSRF string `json:"csrf_token"`
	}
	res, err := c.Get(gw + "/api/v1/me")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(res.Body).Decode(&me)
	res.Body.Close()
	if err != nil || me.CSRF == "" {
		t.Fatalf("/api/v1/me as %s: %v %+v", persona, err, me)
	}
	req, _ := http.NewRequest("POST", gw+"/api/v1/admin/dead-letters/"+id+"/replay", nil)
	req.Header.Set("X-CSRF-Token", me.CSRF)
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
