package usage

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// Open data from daily aggregates. The public usage dataset is read by
// anyone, for any range; computing it from the counters read every counter
// of every day (400 days x 1,000 counters took over 3 s and stalled Redis).
// So each closed day's rows are computed once from its counters and stored
// as one value; a request reads those with one MGET (plus the counters of
// the days not closed yet, at most two or three), and its cost grows with
// the rows it returns, not with the counters behind them.

// OpenMaxDays bounds the range of one open-data request.
const OpenMaxDays = 366

// openDayKeep is how long a day's aggregate is kept (like the visitor
// estimates).
const openDayKeep = 400 * 24 * time.Hour

// openBuildChunk is how many missing days one pass of the counters reads.
const openBuildChunk = 31

// closeMargin is added to AbandonAfter before a day counts as closed: the
// flusher's last writes for the day have landed.
const closeMargin = 5 * time.Minute

// openBuild serialises the computing of missing day aggregates in a
// process, so that parallel requests after a deployment do not all read
// the same counters.
var openBuild sync.Mutex

// closed reports whether day can change no more: it ended, and forms
// started on it have had AbandonAfter to be submitted.
func (r *Reader) closed(day string) bool {
	d, err := time.ParseInLocation(time.DateOnly, day, r.cfg.Location)
	if err != nil {
		return false
	}
	return !r.now().Before(d.AddDate(0, 0, 1).Add(r.cfg.AbandonAfter + closeMargin))
}

// OpenRows returns the rows of the open usage dataset (per day, service,
// department and channel; exact counts, suppression is the caller's) for
// from..to, at most OpenMaxDays. Only the counts of the open columns are
// filled in.
func (r *Reader) OpenRows(ctx context.Context, from, to string) ([]Row, error) {
	days, err := r.Days(from, to)
	if err == nil && len(days) > OpenMaxDays {
		err = fmt.Errorf("at most %d days at a time", OpenMaxDays)
	}
	if err != nil {
		return nil, gateway.Errorf(gateway.EInvalid, "usage.error.query", err)
	}
	var closedDays, liveDays []string
	for _, d := range days {
		if r.closed(d) {
			closedDays = append(closedDays, d)
		} else {
			liveDays = append(liveDays, d)
		}
	}
	byDay, err := r.closedRows(ctx, closedDays)
	if err != nil {
		return nil, err
	}
	if len(liveDays) > 0 {
		rep, err := r.Report(ctx, Query{From: liveDays[0], To: liveDays[len(liveDays)-1], Granularity: Day})
		if err != nil {
			return nil, err
		}
		for _, row := range rep.Rows {
			byDay[row.Period] = append(byDay[row.Period], row)
		}
	}
	out := []Row{}
	for _, d := range days {
		out = append(out, byDay[d]...)
	}
	return out, nil
}

// closedRows reads the stored aggregates of closed days, computing and
// storing those that are missing.
func (r *Reader) closedRows(ctx context.Context, days []string) (map[string][]Row, error) {
	byDay := make(map[string][]Row, len(days))
	missing, err := r.readAggregates(ctx, days, byDay)
	if err != nil || len(missing) == 0 {
		return byDay, err
	}
	openBuild.Lock()
	defer openBuild.Unlock()
	// Another request may have built them while this one waited.
	if missing, err = r.readAggregates(ctx, missing, byDay); err != nil {
		return nil, err
	}
	for len(missing) > 0 {
		n := min(len(missing), openBuildChunk)
		chunk := missing[:n]
		missing = missing[n:]
		rep, err := r.Report(ctx, Query{From: chunk[0], To: chunk[len(chunk)-1], Granularity: Day})
		if err != nil {
			return nil, err
		}
		rows := map[string][]Row{}
		for _, row := range rep.Rows {
			rows[row.Period] = append(rows[row.Period], row)
		}
		for _, d := range chunk {
			if _, want := byDay[d]; want {
				continue
			}
			if err := r.store.PutUsageDayRows(ctx, d, encodeDay(rows[d]), openDayKeep); err != nil {
				return nil, err
			}
			byDay[d] = rows[d]
		}
	}
	return byDay, nil
}

// readAggregates fills byDay with the stored aggregates of days and
// returns the days that have none.
func (r *Reader) readAggregates(ctx context.Context, days []string, byDay map[string][]Row) (missing []string, err error) {
	blobs, err := r.store.UsageDayRows(ctx, days)
	if err != nil {
		return nil, err
	}
	for i, b := range blobs {
		if b == nil {
			missing = append(missing, days[i])
			continue
		}
		rows, err := decodeDay(days[i], b)
		if err != nil {
			missing = append(missing, days[i]) // rebuilt and overwritten
			continue
		}
		byDay[days[i]] = rows
	}
	return missing, nil
}

// A day's aggregate is stored compactly, one line per row (decoding JSON
// took most of a request's time):
//
//	v1
//	service \t department \t channel \t viewed \t started \t validation_failed \t submitted \t contacts \t delivered \t dead_lettered
const dayFormat = "v1"

func encodeDay(rows []Row) []byte {
	var b []byte
	b = append(b, dayFormat...)
	for _, r := range rows {
		b = append(b, '\n')
		b = append(b, r.Service...)
		b = append(b, '\t')
		b = append(b, r.Department...)
		b = append(b, '\t')
		b = append(b, r.Channel...)
		for _, n := range []int64{r.Viewed, r.Started, r.ValidationFailed, r.Submitted, r.Contacts, r.Delivered, r.DeadLettered} {
			b = append(b, '\t')
			b = strconv.AppendInt(b, n, 10)
		}
	}
	return b
}

func decodeDay(day string, b []byte) ([]Row, error) {
	lines := strings.Split(string(b), "\n")
	if lines[0] != dayFormat {
		return nil, fmt.Errorf("day %s: unknown format %q", day, lines[0])
	}
	rows := make([]Row, 0, len(lines)-1)
	for _, line := range lines[1:] {
		f := strings.Split(line, "\t")
		if len(f) != 10 {
			return nil, fmt.Errorf("day %s: %d fields", day, len(f))
		}
		var n [7]int64
		for i := range n {
			v, err := strconv.ParseInt(f[3+i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("day %s: %w", day, err)
			}
			n[i] = v
		}
		rows = append(rows, Row{Period: day, Service: f[0], Department: f[1], Channel: gateway.Channel(f[2]),
			Counts: Counts{Viewed: n[0], Started: n[1], ValidationFailed: n[2], Submitted: n[3], Contacts: n[4], Delivered: n[5], DeadLettered: n[6]}})
	}
	return rows, nil
}
