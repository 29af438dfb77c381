package usage_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/gateway/usage"
)

const (
	day1 = "2026-01-05" // a Monday
	day2 = "2026-01-06"
)

func at(day string, hour int) time.Time {
	d, _ := time.ParseInLocation(time.DateOnly, day, usage.Stockholm)
	return d.Add(time.Duration(hour) * time.Hour)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// fixture sends a fixed set of events through a real Recorder (buffer and
// flusher) into a real redis-server and returns a Reader over it.
func fixture(t *testing.T) (*usage.Reader, *usage.Recorder) {
	t.Helper()
	srv := redistest.Start(t)
	store := redisstore.New(srv.Client(t), "ut")
	rec := usage.New(store, usage.Config{FlushInterval: time.Hour}) // only Stop flushes: no timing in the test
	rec.Start(ctx(t))

	const a, da = "street-fault", "streets-parks"
	const b, db = "preschool-place", "education"
	ev := func(k usage.Kind, svc, dept string, ch gateway.Channel, when time.Time) usage.Event {
		return usage.Event{Kind: k, Service: svc, Department: dept, Channel: ch, Locale: "sv", At: when}
	}
	t1 := at(day1, 10)
	for range 10 {
		rec.Track(ev(usage.Viewed, a, da, gateway.ChannelDigital, t1))
		rec.Track(ev(usage.Started, a, da, gateway.ChannelDigital, t1))
	}
	// Six digital submissions: start to submit 20s, 20s, 50s, 50s, 50s, 200s
	// (buckets 30s, 30s, 1m, 1m, 1m, 5m: the median is in the 1m bucket).
	for _, s := range []int{20, 20, 50, 50, 50, 200} {
		e := ev(usage.Submitted, a, da, gateway.ChannelDigital, t1)
		e.Duration = time.Duration(s) * time.Second
		rec.Track(e)
	}
	rec.Track(ev(usage.Submitted, a, da, gateway.ChannelAPI, t1))
	rec.Track(ev(usage.Submitted, a, da, gateway.ChannelAPI, t1))
	rec.Track(ev(usage.Submitted, a, da, gateway.ChannelAssisted, t1))
	for _, ch := range []gateway.Channel{gateway.ChannelPhone, gateway.ChannelPhone, gateway.ChannelPhone, gateway.ChannelPaper, gateway.ChannelAssisted} {
		if err := rec.RecordContact(a, da, ch, "sv", t1); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"description", "description", "description", "description", "location"} {
		e := ev(usage.ValidationFailed, a, da, gateway.ChannelDigital, t1)
		e.Field = f
		rec.Track(e)
	}
	for range 7 {
		rec.Delivered(&gateway.Submission{Service: a, Department: da, Channel: gateway.ChannelDigital, Locale: "sv", CreatedAt: t1}, t1.Add(5*time.Second))
	}
	rec.DeadLettered(&gateway.Submission{Service: a, Department: da, Channel: gateway.ChannelAPI, Locale: "sv", CreatedAt: t1}, t1.Add(time.Hour))

	t2 := at(day2, 9)
	for range 4 {
		rec.Track(ev(usage.Started, b, db, gateway.ChannelDigital, t2))
	}
	rec.Track(ev(usage.Submitted, b, db, gateway.ChannelDigital, t2)) // no stamp: not timed
	for range 2 {
		if err := rec.RecordContact(b, db, gateway.ChannelEmail, "en", t2); err != nil {
			t.Fatal(err)
		}
	}
	rec.Track(ev(usage.Visit, "", "", gateway.ChannelDigital, t2))

	if err := rec.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	st := rec.Stats()
	if st.Dropped != 0 || st.Lost != 0 || st.Flushed != st.Tracked {
		t.Fatalf("stats %+v", st)
	}
	return usage.NewReader(store, usage.Config{}), rec
}

func f(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func same(a, b float64) bool {
	return (math.IsNaN(a) && math.IsNaN(b)) || math.Abs(a-b) < 1e-12
}

var nan = math.NaN()

func TestKPIs(t *testing.T) {
	rd, _ := fixture(t)
	cases := []struct {
		name                                 string
		q                                    usage.Query
		started, submitted, contacts, all    int64
		takeUp, completion, assisted         float64
		success, deadRate, s2s, firstStatus  float64
		abandoned, validation, periods, rows int
	}{
		{"service a", usage.Query{From: day1, To: day2, Service: "street-fault"},
			10, 9, 5, 14, 6.0 / 14, 6.0 / 10, 2.0 / 14, 7.0 / 8, 1.0 / 8, 60, 10, 4, 5, 2, 5},
		{"service b (email contacts in the denominator)", usage.Query{From: day1, To: day2, Service: "preschool-place"},
			4, 1, 2, 3, 1.0 / 3, 1.0 / 4, 0, nan, nan, nan, nan, 3, 0, 2, 2},
		{"department", usage.Query{From: day1, To: day2, Department: "education"},
			4, 1, 2, 3, 1.0 / 3, 1.0 / 4, 0, nan, nan, nan, nan, 3, 0, 2, 2},
		{"everything, by day", usage.Query{From: day1, To: day2},
			14, 10, 7, 17, 7.0 / 17, 7.0 / 14, 2.0 / 17, 7.0 / 8, 1.0 / 8, 60, 10, 7, 5, 2, 7},
		{"everything, by week", usage.Query{From: day1, To: day2, Granularity: usage.Week},
			14, 10, 7, 17, 7.0 / 17, 7.0 / 14, 2.0 / 17, 7.0 / 8, 1.0 / 8, 60, 10, 7, 5, 1, 7},
		{"digital channel only", usage.Query{From: day1, To: day2, Channel: gateway.ChannelDigital},
			14, 7, 0, 7, 1, 7.0 / 14, 0, 1, 0, 60, 10, 7, 5, 2, 2},
		{"a day without data", usage.Query{From: "2026-01-07", To: "2026-01-07"},
			0, 0, 0, 0, nan, nan, nan, nan, nan, nan, nan, 0, 0, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := rd.Report(ctx(t), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			k := rep.Totals
			if k.Started != tc.started || k.Submitted != tc.submitted || k.Contacts != tc.contacts || k.AllContacts != tc.all {
				t.Errorf("counts: started %d submitted %d contacts %d all %d", k.Started, k.Submitted, k.Contacts, k.AllContacts)
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{
				{"take-up", f(k.DigitalTakeUp), tc.takeUp}, {"completion", f(k.CompletionRate), tc.completion},
				{"assisted share", f(k.AssistedShare), tc.assisted}, {"delivery success", f(k.DeliverySuccess), tc.success},
				{"dead-letter rate", f(k.DeadLetterRate), tc.deadRate}, {"median start to submit", f(k.MedianStartToSubmit), tc.s2s},
				{"median to first status", f(k.MedianToFirstStatus), tc.firstStatus},
			} {
				if !same(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			if k.Abandoned != int64(tc.abandoned) || k.ValidationFailed != int64(tc.validation) {
				t.Errorf("abandoned %d validation failed %d", k.Abandoned, k.ValidationFailed)
			}
			if len(rep.Periods) != tc.periods || len(rep.Rows) != tc.rows {
				t.Errorf("periods %d rows %d", len(rep.Periods), len(rep.Rows))
			}
		})
	}
}

func TestReportBreakdowns(t *testing.T) {
	rd, _ := fixture(t)
	rep, err := rd.Report(ctx(t), usage.Query{From: day1, To: day2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.DropOff) != 2 || rep.DropOff[0].Field != "description" || rep.DropOff[0].Failures != 4 || f(rep.DropOff[0].Share) != 0.4 ||
		rep.DropOff[1].Field != "location" || rep.DropOff[1].Failures != 1 {
		t.Fatalf("drop-off %+v", rep.DropOff)
	}
	if rep.CatalogViews != 1 {
		t.Fatalf("catalog views %d", rep.CatalogViews)
	}
	var phone int64
	for _, g := range rep.Channels {
		if g.Key == "phone" {
			phone = g.Contacts
		}
	}
	if phone != 3 || len(rep.Services) != 2 || len(rep.Departments) != 2 {
		t.Fatalf("channels %+v services %d departments %d", rep.Channels, len(rep.Services), len(rep.Departments))
	}
	if got := rep.Totals.SubmittedBy[gateway.ChannelAPI]; got != 2 {
		t.Fatalf("api submissions %d", got)
	}
	if _, err := rd.Report(ctx(t), usage.Query{From: day2, To: day1}); err == nil {
		t.Fatal("to before from accepted")
	}
}

// Open data: counts from 1 to min-1 are suppressed, zero stays zero, and
// CSV and JSON say the same.
func TestOpenDataSuppression(t *testing.T) {
	rd, _ := fixture(t)
	rows, err := rd.Rows(ctx(t), usage.Query{From: day1, To: day2})
	if err != nil {
		t.Fatal(err)
	}
	open := usage.OpenRows(rows, 5)
	find := func(date, svc, ch string) usage.OpenRow {
		for _, r := range open {
			if r.Date == date && r.Service == svc && r.Channel == ch {
				return r
			}
		}
		t.Fatalf("no row %s %s %s", date, svc, ch)
		return usage.OpenRow{}
	}
	num := func(p *int64) string {
		if p == nil {
			return "suppressed"
		}
		return strconv.FormatInt(*p, 10)
	}
	cases := []struct {
		name, date, svc, ch string
		cell                func(usage.OpenRow) *int64
		want                string
	}{
		{"10 shown", day1, "street-fault", "digital", func(r usage.OpenRow) *int64 { return r.Viewed }, "10"},
		{"6 shown", day1, "street-fault", "digital", func(r usage.OpenRow) *int64 { return r.Submitted }, "6"},
		{"5 shown (threshold)", day1, "street-fault", "digital", func(r usage.OpenRow) *int64 { return r.ValidationFailed }, "5"},
		{"3 suppressed", day1, "street-fault", "phone", func(r usage.OpenRow) *int64 { return r.Contacts }, "suppressed"},
		{"zero stays zero", day1, "street-fault", "phone", func(r usage.OpenRow) *int64 { return r.Submitted }, "0"},
		{"4 suppressed", day2, "preschool-place", "digital", func(r usage.OpenRow) *int64 { return r.Started }, "suppressed"},
		{"1 suppressed", day2, "preschool-place", "digital", func(r usage.OpenRow) *int64 { return r.Submitted }, "suppressed"},
		{"7 shown", day1, "street-fault", "digital", func(r usage.OpenRow) *int64 { return r.Delivered }, "7"},
	}
	for _, tc := range cases {
		if got := num(tc.cell(find(tc.date, tc.svc, tc.ch))); got != tc.want {
			t.Errorf("%s: got %s", tc.name, got)
		}
	}
	var cbuf, jbuf bytes.Buffer
	if err := usage.WriteCSV(&cbuf, open); err != nil {
		t.Fatal(err)
	}
	if err := usage.WriteJSON(&jbuf, usage.OpenDataset{Rows: open}); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&cbuf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(jbuf.Bytes(), &ds); err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(ds.Rows)+1 || len(ds.Rows) != len(open) {
		t.Fatalf("csv %d lines, json %d rows", len(recs), len(ds.Rows))
	}
	for i, rec := range recs[1:] {
		for j, col := range recs[0] {
			v := ds.Rows[i][col]
			want := ""
			switch x := v.(type) {
			case string:
				want = x
			case float64:
				want = strconv.FormatFloat(x, 'f', -1, 64)
			}
			if rec[j] != want {
				t.Errorf("row %d %s: csv %q json %v", i, col, rec[j], v)
			}
		}
	}
}

// Events carry no visitor beyond the day's salted hash; the same visitor
// twice is one, and the salt is the same for every recorder on the store.
func TestVisitors(t *testing.T) {
	srv := redistest.Start(t)
	store := redisstore.New(srv.Client(t), "ut")
	r1 := usage.New(store, usage.Config{FlushInterval: time.Hour})
	r2 := usage.New(store, usage.Config{FlushInterval: time.Hour})
	r1.Start(ctx(t))
	r2.Start(ctx(t))
	now := time.Now()
	v := r1.Visitor("203.0.113.7", "Firefox", now)
	if v == 0 || v != r2.Visitor("203.0.113.7", "Firefox", now) {
		t.Fatal("replicas hash the same visitor differently")
	}
	if r1.Visitor("203.0.113.7", "Firefox", now.AddDate(0, 0, -2)) != 0 {
		t.Fatal("a visitor counted for a day whose salt is not loaded")
	}
	for _, who := range [][2]string{{"203.0.113.7", "Firefox"}, {"203.0.113.7", "Firefox"}, {"203.0.113.8", "Firefox"}, {"203.0.113.7", "Chrome"}} {
		r1.Track(usage.Event{Kind: usage.Viewed, Service: "street-fault", Department: "streets-parks", Channel: gateway.ChannelDigital,
			Locale: "sv", At: now, Visitor: r1.Visitor(who[0], who[1], now)})
	}
	if err := r1.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	rd := usage.NewReader(store, usage.Config{})
	rep, err := rd.Report(ctx(t), usage.Query{From: rd.Today(), To: rd.Today(), Service: "street-fault"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Visitors != 3 {
		t.Fatalf("visitors %d, want 3", rep.Visitors)
	}
	// The stamp of a form: verified, and refused for another service or when forged.
	stamp := r2.Stamp("street-fault", now.Add(-90*time.Second))
	if d, ok := r1.Elapsed("street-fault", stamp, now); !ok || d < 89*time.Second || d > 91*time.Second {
		t.Fatalf("elapsed %v %v", d, ok)
	}
	if _, ok := r1.Elapsed("preschool-place", stamp, now); ok {
		t.Fatal("stamp accepted for another service")
	}
	if _, ok := r1.Elapsed("street-fault", stamp[:len(stamp)-1]+"x", now); ok {
		t.Fatal("forged stamp accepted")
	}
}

// A full buffer drops events without blocking and counts them; a store
// that fails loses the batch and counts it.
func TestDropsAreCounted(t *testing.T) {
	rec := usage.New(failing{}, usage.Config{Buffer: 2, FlushInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	for range 5 {
		rec.Track(usage.Event{Kind: usage.Viewed, Service: "s", Channel: gateway.ChannelDigital})
	}
	if st := rec.Stats(); st.Tracked != 2 || st.Dropped != 3 {
		t.Fatalf("stats %+v", st)
	}
	if err := rec.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if st := rec.Stats(); st.Lost != 2 || st.FlushFails != 1 || st.Flushed != 0 {
		t.Fatalf("stats after stop %+v", st)
	}
	var nilRec *usage.Recorder
	nilRec.Track(usage.Event{Kind: usage.Viewed}) // a nil recorder ignores events
	if err := rec.RecordContact("s", "d", gateway.ChannelDigital, "sv", time.Now()); err == nil {
		t.Fatal("a digital contact accepted: digital is counted by the gateway itself")
	}
	if err := rec.RecordContact("s", "d", "fax", "sv", time.Now()); err == nil {
		t.Fatal("unknown channel accepted")
	}
}

type failing struct{}

var errDown = errors.New("store down")

func (failing) AddUsage(context.Context, map[string]map[string]int64, map[string]map[string][]string) error {
	return errDown
}
func (failing) UsageCounts(context.Context, []string) ([]map[string]int64, error) {
	return nil, errDown
}
func (failing) UsageVisitors(context.Context, []string, string) ([]int64, error) { return nil, errDown }
func (failing) UsageDayRows(context.Context, []string) ([][]byte, error)         { return nil, errDown }
func (failing) PutUsageDayRows(context.Context, string, []byte, time.Duration) error {
	return errDown
}
func (failing) UsageSecret(context.Context, string, time.Duration) ([]byte, error) {
	return nil, errDown
}
