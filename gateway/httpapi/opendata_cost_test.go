package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway/usage"
)

// hgetallCalls is how many HGETALL commands Redis has run.
func hgetallCalls(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info := rdb.Info(context.Background(), "commandstats").Val()
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_hgetall:calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

// TestOpenDataFromDailyAggregates (issue 9, item 6): varying ranges of the
// public usage dataset must not read every counter of every day again.
// The first request computes each closed day's rows once and stores them;
// later requests, whatever their range, read those aggregates (one MGET)
// and only the counters of the days not closed yet. Before, every range the
// 10-second cache had not seen read the counters of every day in it: here
// 89 HGETALLs per request. Also: the rows are the same as computed from
// the counters, and a client is limited in the datasets it makes.
func TestOpenDataFromDailyAggregates(t *testing.T) {
	e := newUsageEnv(t, usage.Config{Location: time.UTC}, 1)
	rdb := e.srv.Client(t)
	ctx := context.Background()
	today := time.Now().UTC()
	counts := map[string]map[string]int64{}
	var from string
	for i := range 90 {
		day := today.AddDate(0, 0, -i).Format(time.DateOnly)
		from = day
		counts[day] = map[string]int64{}
		for s := range 20 {
			svc := fmt.Sprintf("svc-%d", s)
			for _, m := range []string{"viewed", "started", "submitted"} {
				counts[day][svc+"|dept|digital|sv|"+m] = int64(i + s + 1)
			}
		}
	}
	if err := e.store.AddUsage(ctx, counts, nil); err != nil {
		t.Fatal(err)
	}
	want, err := e.rd.Report(ctx, usage.Query{From: from, To: today.Format(time.DateOnly), Granularity: usage.Day})
	if err != nil {
		t.Fatal(err)
	}
	get := func(from string) []usage.OpenRow {
		t.Helper()
		r := e.get(t, "/open-data/usage.json?from="+from)
		if r.status != 200 {
			t.Fatalf("open data from %s: %d %s", from, r.status, r.body)
		}
		var ds usage.OpenDataset
		if err := json.Unmarshal([]byte(r.body), &ds); err != nil {
			t.Fatal(err)
		}
		return ds.Rows
	}
	first := get(from)
	if len(first) != len(want.Rows) || len(first) != 90*20 {
		t.Fatalf("%d rows, the counters give %d (want %d)", len(first), len(want.Rows), 90*20)
	}
	for i, row := range usage.OpenRows(want.Rows, 1) {
		a, _ := json.Marshal(row)
		b, _ := json.Marshal(first[i])
		if string(a) != string(b) {
			t.Fatalf("row %d is %s, the counters give %s", i, b, a)
		}
	}
	// Other ranges: the closed days come from their aggregates.
	for i := 1; i <= 5; i++ {
		before := hgetallCalls(t, rdb)
		rows := get(today.AddDate(0, 0, -(89 - i)).Format(time.DateOnly))
		if len(rows) != (90-i)*20 {
			t.Fatalf("range %d: %d rows", i, len(rows))
		}
		if n := hgetallCalls(t, rdb) - before; n > 2 {
			t.Errorf("range %d read the counters of %d days; want only the days not closed (at most 2)", i, n)
		}
	}
}

// TestOpenDataLimitedPerClient: datasets the cache cannot answer are
// limited per client (30 a minute); the 31st is 429 with Retry-After.
func TestOpenDataLimitedPerClient(t *testing.T) {
	deps, store, _ := baseDeps(t)
	deps.Counter = store
	deps.UsageReports = usage.NewReader(store, usage.Config{Location: time.UTC})
	e := &env{app: build(t, deps), store: store}
	today := time.Now().UTC()
	for i := range 31 {
		r := e.get(t, "/open-data/usage.csv?from="+today.AddDate(0, 0, -i).Format(time.DateOnly))
		switch {
		case i < 30 && r.status != 200:
			t.Fatalf("dataset %d: %d %s", i+1, r.status, r.body)
		case i == 30 && (r.status != 429 || r.header.Get("Retry-After") == ""):
			t.Fatalf("dataset 31: %d (Retry-After %q), want 429", r.status, r.header.Get("Retry-After"))
		}
	}
	// The cache still answers a range it has.
	if r := e.get(t, "/open-data/usage.csv?from="+today.Format(time.DateOnly)); r.status != 200 {
		t.Errorf("cached dataset: %d", r.status)
	}
}

// BenchmarkOpenDataYear measures one open-data request over 366 days with
// 1,000 counters a day (100 services x 10 counters), the review's case:
// "counters" reads every counter (the old way), "aggregates" the stored
// daily rows (warm). go test -bench OpenDataYear -benchtime 5x ./gateway/httpapi/
func BenchmarkOpenDataYear(b *testing.B) {
	deps, store, srv := baseDeps(b)
	rd := usage.NewReader(store, usage.Config{Location: time.UTC})
	ctx := context.Background()
	today := time.Now().UTC()
	from := today.AddDate(0, 0, -365).Format(time.DateOnly)
	for i := range 366 {
		day := today.AddDate(0, 0, -i).Format(time.DateOnly)
		counts := map[string]map[string]int64{day: {}}
		for s := range 100 {
			for _, m := range []string{"viewed", "started", "submitted", "validation_failed", "delivered", "visit", "contact", "dead_lettered", "status_changed", "field:description"} {
				counts[day][fmt.Sprintf("svc-%d|dept|digital|sv|%s", s, m)] = int64(i + s + 1)
			}
		}
		if err := store.AddUsage(ctx, counts, nil); err != nil {
			b.Fatal(err)
		}
	}
	_ = deps
	_ = srv
	to := today.Format(time.DateOnly)
	b.Run("counters", func(b *testing.B) {
		for b.Loop() {
			if _, err := rd.Report(ctx, usage.Query{From: from, To: to, Granularity: usage.Day}); err != nil {
				b.Fatal(err)
			}
		}
	})
	if _, err := rd.OpenRows(ctx, from, to); err != nil { // builds the aggregates once
		b.Fatal(err)
	}
	b.Run("aggregates", func(b *testing.B) {
		for b.Loop() {
			if _, err := rd.OpenRows(ctx, from, to); err != nil {
				b.Fatal(err)
			}
		}
	})
}
