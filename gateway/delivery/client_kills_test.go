package delivery_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// TestSubmitAndDeliverUnderClientKills (issue 9, item 12) is a load run
// with Redis client connections cut all the time: one client kills every
// other client's connection (CLIENT KILL TYPE normal) every 3 ms, at most
// 1,500 times, while 400 submissions are made and a dispatcher delivers
// them; go-redis re-sends every script whose answer was lost. No call may
// leave two submissions (each call's payload names it), every receipt must
// be delivered, and the back-end must see exactly one case per stored
// submission.
func TestSubmitAndDeliverUnderClientKills(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv)
	cs := newCaseSystem(t, nil)
	cfg := fastConfig(t, "a")
	cfg.Timeout, cfg.ClaimIdle = time.Second, 2*time.Second // entries read before a cut are claimed soon
	start(t, s, routeTo(httpConnector{cs.srv.URL}), cfg)

	admin := srv.Client(t)
	stop := make(chan struct{})
	killerDone := make(chan struct{})
	var kills atomic.Int64
	go func() {
		defer close(killerDone)
		for range 1500 {
			select {
			case <-stop:
				return
			default:
			}
			if admin.Do(context.Background(), "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").Err() == nil {
				kills.Add(1)
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()
	const calls = 400
	var (
		mu       sync.Mutex
		receipts []string
		failed   int
	)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < calls; i += 4 {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				sub, _, err := s.Create(ctx, &gateway.Submission{
					Service: service, ServiceVersion: "1", Department: "streets", Channel: gateway.ChannelDigital,
					Locale: "sv", Payload: map[string]any{"description": fmt.Sprintf("call-%d", i)},
				}, redisstore.Idempotency{})
				cancel()
				mu.Lock()
				if err != nil {
					failed++
				} else {
					receipts = append(receipts, sub.ID)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	<-killerDone

	// Every stored submission, by the call that made it.
	ctx := ctxFor(t)
	check := srv.Client(t)
	byCall := map[string]int{}
	var stored []string
	iter := check.Scan(ctx, 0, "gw:{q}:sub:*", 1000).Iterator()
	for iter.Next(ctx) {
		id := iter.Val()[len("gw:{q}:sub:"):]
		sub := get(t, s, id)
		byCall[fmt.Sprint(sub.Payload["description"])]++
		stored = append(stored, id)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	for call, n := range byCall {
		if n > 1 {
			t.Errorf("%s made %d submissions", call, n)
		}
	}
	for _, id := range receipts {
		waitFor(t, "every receipt delivered", isDelivered(t, s, id))
	}
	for _, id := range stored {
		waitFor(t, "every stored submission delivered", isDelivered(t, s, id))
	}
	if n := cs.distinct(); n != len(stored) {
		t.Errorf("the back-end has %d cases for %d stored submissions", n, len(stored))
	}
	if st := stats(t, s); st.Dead != 0 {
		t.Errorf("dead letters: %+v", st)
	}
	t.Logf("%d calls: %d receipts, %d errors (outcome unknown), %d stored, %d cases, %d client kills",
		calls, len(receipts), failed, len(stored), cs.distinct(), kills.Load())
	if kills.Load() == 0 {
		t.Fatal("no connection was killed: the test proves nothing")
	}
}
