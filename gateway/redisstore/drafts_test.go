package redisstore

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Saved drafts: bounded per owner (saving one again always fits), listed,
// taken once under a race, and no id or code in any key. On the real and
// the embedded Redis (the demo).
func TestSavedDraftsBoundedAndTakenOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		for i, id := range []string{"a", "b"} {
			if ok, err := s.SaveDraft(ctx, "user:x", id, []byte(`{"n":`+string(rune('1'+i))+`}`), time.Hour, 2); err != nil || !ok {
				t.Fatalf("save %s: %v %v", id, ok, err)
			}
		}
		if ok, err := s.SaveDraft(ctx, "user:x", "c", []byte(`{}`), time.Hour, 2); err != nil || ok {
			t.Fatalf("third draft: %v %v", ok, err)
		}
		if ok, err := s.SaveDraft(ctx, "user:x", "a", []byte(`{"n":9}`), time.Hour, 2); err != nil || !ok {
			t.Fatalf("saving a again: %v %v", ok, err)
		}
		if ok, err := s.SaveDraft(ctx, "user:y", "code:SECRET-CODE", []byte(`{}`), time.Hour, 2); err != nil || !ok {
			t.Fatalf("another owner: %v %v", ok, err)
		}
		list, err := s.ListDrafts(ctx, "user:x", 10)
		if err != nil || len(list) != 2 || !strings.Contains(string(list[0])+string(list[1]), `{"n":9}`) {
			t.Fatalf("list: %v %q", err, list)
		}
		keys, _ := rdb.Keys(ctx, "*").Result()
		for _, k := range keys {
			if strings.Contains(k, "SECRET") || strings.Contains(k, "user:") {
				t.Errorf("key %s names the code or the owner", k)
			}
		}
		// Two takers at once: one gets it.
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b, err := s.TakeDraft(ctx, "b")
				if err != nil {
					t.Error(err)
				}
				if b != nil {
					mu.Lock()
					got++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if got != 1 {
			t.Fatalf("taken %d times", got)
		}
		// Taken, it leaves the owner's count: a new one fits.
		if ok, err := s.SaveDraft(ctx, "user:x", "c", []byte(`{}`), time.Hour, 2); err != nil || !ok {
			t.Fatalf("after a take: %v %v", ok, err)
		}
		if b, err := s.LoadDraft(ctx, "b"); err != nil || b != nil {
			t.Fatalf("load a taken draft: %q %v", b, err)
		}
	})
}
