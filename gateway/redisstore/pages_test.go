package redisstore

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// countHook counts the commands sent and the index entries Redis returned
// for range reads, so a test can see what a page costs.
type countHook struct{ cmds, entries atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.count(cmd)
		return err
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			h.count(c)
		}
		return err
	}
}
func (h *countHook) count(cmd redis.Cmder) {
	h.cmds.Add(1)
	if z, ok := cmd.(*redis.ZSliceCmd); ok {
		h.entries.Add(int64(len(z.Val())))
	}
}

// pagedStore makes n submissions of one person and department, 1 ms
// apart and three in each millisecond (ties the cursor must step over),
// and returns their ids newest first, in index order.
func pagedStore(t *testing.T, s *Store, n int, clock *atomic.Int64) []string {
	t.Helper()
	base := pagedBase
	clock.Store(base)
	s.now = func() time.Time { return time.UnixMilli(clock.Load()) }
	type entry struct {
		ms int64
		id string
	}
	var all []entry
	for i := range n {
		clock.Store(base + int64(i/3))
		sub := mustCreate(t, s)
		all = append(all, entry{base + int64(i/3), sub.ID})
	}
	slices.SortFunc(all, func(a, b entry) int {
		if a.ms != b.ms {
			return int(b.ms - a.ms)
		}
		return strings.Compare(b.id, a.id)
	})
	ids := make([]string, len(all))
	for i, e := range all {
		ids[i] = e.id
	}
	return ids
}

var pagedBase = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC).UnixMilli()

func pageIDs(p Page) []string {
	out := make([]string, len(p.Submissions))
	for i, s := range p.Submissions {
		out[i] = s.ID
	}
	return out
}

// TestPagesWalkAndCost (issue 14, goal 4): 1,000 submissions (200 on
// the slower miniredis), 50 a page: walking older then newer again gives
// every submission once, in order, and each page costs the same commands
// and index entries however deep.
func TestPagesWalkAndCost(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		n := 1000
		if strings.Contains(t.Name(), "miniredis") {
			n = 200
		}
		var clock atomic.Int64
		want := pagedStore(t, s, n, &clock)
		ctx := testCtx(t)
		hook := &countHook{}
		rdb.AddHook(hook)

		var got []string
		var pages []Page
		cursor := ""
		costs := map[[2]int64]int{}
		for range 100 {
			c0, e0 := hook.cmds.Load(), hook.entries.Load()
			p, err := s.SubjectPage(ctx, "199001012384", cursor, 50)
			if err != nil {
				t.Fatal(err)
			}
			costs[[2]int64{hook.cmds.Load() - c0, hook.entries.Load() - e0}]++
			pages = append(pages, p)
			got = append(got, pageIDs(p)...)
			if p.Older == "" {
				break
			}
			cursor = p.Older
		}
		if !slices.Equal(got, want) {
			t.Fatalf("walked %d of %d submissions, in order: %v", len(got), len(want), slices.Equal(got[:min(len(got), len(want))], want[:min(len(got), len(want))]))
		}
		if len(pages) != n/50 || pages[0].Newer != "" {
			t.Errorf("%d pages, first page's newer %q", len(pages), pages[0].Newer)
		}
		// The same cost on every page but the first (no ties to step
		// over) and the last (nothing after it): commands and entries
		// read do not grow with the depth.
		t.Logf("cost per page (commands, index entries read) -> pages: %v", costs)
		if len(costs) > 3 {
			t.Errorf("page cost varies: %v", costs)
		}
		for k, n := range costs {
			if k[1] > 50+1+3 || n > 1 && n < len(pages)-2 {
				t.Errorf("page cost %v on %d pages", k, n)
			}
		}
		// Back again with the newer cursors: the same pages.
		cursor = pages[len(pages)-1].Newer
		for i := len(pages) - 2; i >= 0; i-- {
			p, err := s.SubjectPage(ctx, "199001012384", cursor, 50)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pageIDs(p), pageIDs(pages[i])) {
				t.Fatalf("page %d going back differs", i)
			}
			cursor = p.Newer
		}
		if cursor != "" {
			t.Errorf("first page reached going back has newer %q", cursor)
		}
		// The department's list pages the same way.
		d, err := s.DepartmentPage(ctx, "streets", "", 10)
		if err != nil || !slices.Equal(pageIDs(d), want[:10]) || d.Older == "" {
			t.Errorf("department page: %v %v", err, pageIDs(d))
		}
		for _, bad := range []string{"x", "o12", "o12.", "oabc." + want[0], "o12." + want[0] + "x", "n-1." + want[0]} {
			if _, err := s.SubjectPage(ctx, "199001012384", bad, 10); errCode(err) != "invalid" {
				t.Errorf("cursor %q: %v", bad, err)
			}
		}
	})
}

// TestPagesRetentionAndInserts: a cursor keeps working when retention
// removed its own entry and older ones, and while new submissions come in.
func TestPagesRetentionAndInserts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		var clock atomic.Int64
		want := pagedStore(t, s, 300, &clock)
		p1, err := s.SubjectPage(ctx, "199001012384", "", 20)
		if err != nil || p1.Older == "" {
			t.Fatal(err)
		}
		// The record the cursor names is gone (its retention ended) and
		// its index entry too: the next page starts right after it.
		last := want[19]
		rdb.Del(ctx, s.keys.sub(last))
		rdb.ZRem(ctx, s.keys.subject("199001012384"), last)
		p2, err := s.SubjectPage(ctx, "199001012384", p1.Older, 20)
		if err != nil || !slices.Equal(pageIDs(p2), want[20:40]) {
			t.Fatalf("after the cursor's entry went: %v %v", err, pageIDs(p2))
		}
		// Records past retention whose index entry is still there are left
		// out and removed from the index.
		for _, id := range want[40:45] {
			rdb.Del(ctx, s.keys.sub(id))
		}
		p3, err := s.SubjectPage(ctx, "199001012384", p2.Older, 20)
		if err != nil || !slices.Equal(pageIDs(p3), want[45:60]) {
			t.Fatalf("records gone: %v %v", err, pageIDs(p3))
		}
		if n := rdb.ZCard(ctx, s.keys.subject("199001012384")).Val(); n != 300-6 {
			t.Errorf("index holds %d entries", n)
		}
		// Index retention (IndexKeep) removes everything older than the
		// cursor and the cursor's own time: the walk ends cleanly, and
		// going back still works.
		s.IndexKeep = time.Hour
		clock.Store(pagedBase + time.Hour.Milliseconds() + 60) // entries older than base+60 ms go
		var rest []string
		cursor := p3.Older
		for cursor != "" {
			p, err := s.SubjectPage(ctx, "199001012384", cursor, 20)
			if err != nil {
				t.Fatal(err)
			}
			rest = append(rest, pageIDs(p)...)
			cursor = p.Older
			if len(p.Submissions) == 0 {
				if p.Newer == "" {
					t.Error("an empty page past the end has no way back")
				}
				break
			}
		}
		// Indices 60.. are created at base+(299-i)/3 ms; kept are those
		// at >= base+60 ms, i.e. i <= 119.
		if !slices.Equal(rest, want[60:120]) {
			t.Errorf("after index retention: %d entries, want %d", len(rest), 60)
		}
		s.IndexKeep = 0

		// Concurrent inserts: new submissions arrive while a walk goes on;
		// the walk still shows each older submission once, in order.
		clock.Add(1000)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				clock.Add(1)
				if _, _, err := s.Create(context.Background(), newSubmission(), Idempotency{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
		first, err := s.SubjectPage(ctx, "199001012384", "", 5)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		var old []string
		for _, id := range pageIDs(first) {
			seen[id] = true
			if slices.Contains(want, id) {
				old = append(old, id)
			}
		}
		cursor = first.Older
		for cursor != "" {
			p, err := s.SubjectPage(ctx, "199001012384", cursor, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range pageIDs(p) {
				if seen[id] {
					t.Fatalf("%s shown twice", id)
				}
				seen[id] = true
				if slices.Contains(want, id) {
					old = append(old, id)
				}
			}
			cursor = p.Older
		}
		close(stop)
		wg.Wait()
		var kept []string
		for _, id := range want {
			if rdb.Exists(ctx, s.keys.sub(id)).Val() == 1 && rdb.ZScore(ctx, s.keys.subject("199001012384"), id).Err() == nil {
				kept = append(kept, id)
			}
		}
		if !slices.Equal(old, kept) {
			for i, id := range kept {
				if !slices.Contains(old, id) {
					t.Logf("missing kept[%d] = want[%d]", i, slices.Index(want, id))
				}
			}
			t.Errorf("walk during inserts showed %d of the %d older submissions", len(old), len(kept))
		}
	})
}
