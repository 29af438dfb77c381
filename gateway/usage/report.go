package usage

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// Granularity is the length of a report's periods.
type Granularity string

// Granularities.
const (
	Day   Granularity = "day"
	Week  Granularity = "week" // ISO 8601 weeks, Monday to Sunday
	Month Granularity = "month"
)

// ParseGranularity accepts "", "day", "week" and "month" ("" is day).
func ParseGranularity(s string) (Granularity, error) {
	switch Granularity(s) {
	case "", Day:
		return Day, nil
	case Week, Month:
		return Granularity(s), nil
	}
	return "", fmt.Errorf("granularity: want day, week or month, got %q", s)
}

// MaxDays bounds the length of a query.
const MaxDays = 731

// Query selects usage. From and To are days ("YYYY-MM-DD"), both included.
// Empty filters select everything.
type Query struct {
	From, To    string
	Service     string
	Department  string
	Channel     gateway.Channel
	Locale      string
	Granularity Granularity
}

// Counts are the counters of one cell (a period, service, department and
// channel, or a sum of cells).
type Counts struct {
	Viewed           int64 `json:"viewed"`
	Started          int64 `json:"started"`
	ValidationFailed int64 `json:"validation_failed"`
	Submitted        int64 `json:"submitted"`
	Contacts         int64 `json:"contacts"`
	Delivered        int64 `json:"delivered"`
	DeadLettered     int64 `json:"dead_lettered"`
	StatusChanged    int64 `json:"status_changed"`
	// Satisfaction counts the answers to the satisfaction question by
	// score: [0] is 1 (very dissatisfied) ... [4] is 5 (very satisfied).
	Satisfaction [5]int64 `json:"satisfaction_by_score"`
	// Abandoned is derived for days that ended more than AbandonAfter ago:
	// max(0, started - submitted) of the digital channel, per day, service
	// and locale.
	Abandoned int64 `json:"abandoned"`
}

func (c *Counts) add(o Counts) {
	c.Viewed += o.Viewed
	c.Started += o.Started
	c.ValidationFailed += o.ValidationFailed
	c.Submitted += o.Submitted
	c.Contacts += o.Contacts
	c.Delivered += o.Delivered
	c.DeadLettered += o.DeadLettered
	c.StatusChanged += o.StatusChanged
	c.Abandoned += o.Abandoned
	for i := range c.Satisfaction {
		c.Satisfaction[i] += o.Satisfaction[i]
	}
}

// SatisfactionAnswers is the number of answers to the satisfaction question.
func (c Counts) SatisfactionAnswers() int64 {
	var n int64
	for _, v := range c.Satisfaction {
		n += v
	}
	return n
}

func (c Counts) zero() bool { return c == Counts{} }

// Row is the counts of one period, service, department and channel.
type Row struct {
	Period     string          `json:"period"` // "2026-11-22", "2026-W47" or "2026-11"
	Service    string          `json:"service"`
	Department string          `json:"department"`
	Channel    gateway.Channel `json:"channel"`
	Counts
}

// Histogram counts durations in Buckets (the last entry is unbounded).
type Histogram []int64

func newHistogram() Histogram { return make(Histogram, len(Buckets)+1) }

func (h Histogram) add(o Histogram) {
	for i := range h {
		if i < len(o) {
			h[i] += o[i]
		}
	}
}

// Total is the number of durations counted.
func (h Histogram) Total() int64 {
	var n int64
	for _, v := range h {
		n += v
	}
	return n
}

// Median returns the upper bound of the bucket holding the median duration
// (the ceil(n/2)-th smallest); ok is false with no durations, and the bound
// is the last finite one with "more" set when the median is beyond it.
func (h Histogram) Median() (bound time.Duration, more, ok bool) {
	n := h.Total()
	if n == 0 {
		return 0, false, false
	}
	need := (n + 1) / 2
	var seen int64
	for i, v := range h {
		seen += v
		if seen >= need {
			if i >= len(Buckets) {
				return Buckets[len(Buckets)-1], true, true
			}
			return Buckets[i], false, true
		}
	}
	return Buckets[len(Buckets)-1], true, true
}

// KPIs are the key figures of a set of cells. Rates are fractions from 0 to
// 1, nil when their denominator is 0. See the README for the definitions.
type KPIs struct {
	Counts
	SubmittedBy map[gateway.Channel]int64 `json:"submitted_by_channel"`
	ContactsBy  map[gateway.Channel]int64 `json:"contacts_by_channel"`
	// AllContacts = every submission (all channels) + registered contacts.
	AllContacts int64 `json:"all_contacts"`
	// DigitalTakeUp = digital submissions / AllContacts.
	DigitalTakeUp *float64 `json:"digital_take_up"`
	// CompletionRate = digital submissions / digital starts.
	CompletionRate *float64 `json:"completion_rate"`
	// AssistedShare = (assisted submissions + assisted contacts) / AllContacts.
	AssistedShare *float64 `json:"assisted_share"`
	// DeliverySuccess = delivered / (delivered + dead-lettered); DeadLetterRate = 1 - it.
	DeliverySuccess *float64 `json:"delivery_success_rate"`
	DeadLetterRate  *float64 `json:"dead_letter_rate"`
	// Medians, in seconds: the upper bound of the histogram bucket holding
	// the median (see Buckets); nil without data.
	MedianStartToSubmit *float64 `json:"median_start_to_submit_seconds"`
	MedianToFirstStatus *float64 `json:"median_submit_to_first_status_seconds"`
	// SatisfactionMean is the mean answer (1 to 5) to the satisfaction
	// question; nil without answers.
	SatisfactionMean        *float64 `json:"satisfaction_mean"`
	SatisfactionCount       int64    `json:"satisfaction_answers"`
	StartToSubmitMeasured   int64    `json:"start_to_submit_measured"`
	FirstStatusMeasured     int64    `json:"first_status_measured"`
	startHist, firstHist    Histogram
	submittedDigital, start int64
}

// FieldFailures is how often a field failed validation.
type FieldFailures struct {
	Service  string `json:"service"`
	Field    string `json:"field"`
	Failures int64  `json:"failures"`
	// Share is failures / digital starts of the service (nil without starts).
	Share *float64 `json:"share_of_started"`
}

// Period is one period of a report with its key figures.
type Period struct {
	Period string `json:"period"`
	From   string `json:"from"`
	To     string `json:"to"`
	KPIs
	Visitors int64 `json:"visitors"`
}

// Group is the key figures of one service, department or channel over the
// whole report.
type Group struct {
	Key string `json:"key"`
	KPIs
}

// Report is the answer to a Query.
type Report struct {
	From        string      `json:"from"`
	To          string      `json:"to"`
	Granularity Granularity `json:"granularity"`
	Service     string      `json:"service,omitempty"`
	Department  string      `json:"department,omitempty"`
	Totals      KPIs        `json:"totals"`
	// Visitors estimates distinct visitors per day, summed over the days
	// (visitor-days: the salt changes every day, by design).
	Visitors    int64           `json:"visitor_days"`
	Periods     []Period        `json:"periods"`
	Services    []Group         `json:"by_service"`
	Departments []Group         `json:"by_department"`
	Channels    []Group         `json:"by_channel"`
	DropOff     []FieldFailures `json:"drop_off"`
	// CatalogViews counts views of the catalog (pages about no one service).
	CatalogViews int64 `json:"catalog_views"`
	Rows         []Row `json:"rows"`
}

// cell is what the store holds for one day, service, department, channel
// and locale.
type cell struct {
	day, service, dept string
	ch                 gateway.Channel
	locale             string
	counts             Counts
	visits             int64
	fields             map[string]int64
	startHist          Histogram
	firstHist          Histogram
}

// Reader answers queries from the store.
type Reader struct {
	store Store
	cfg   Config
	now   func() time.Time
}

// NewReader returns a Reader over store; cfg gives the location of days and
// AbandonAfter.
func NewReader(store Store, cfg Config) *Reader {
	return &Reader{store: store, cfg: cfg.withDefaults(), now: time.Now}
}

// Today is the current day in the reader's location.
func (r *Reader) Today() string { return r.now().In(r.cfg.Location).Format(time.DateOnly) }

// Days lists the days from..to, both included.
func (r *Reader) Days(from, to string) ([]string, error) {
	f, err := time.ParseInLocation(time.DateOnly, from, time.UTC)
	if err != nil {
		return nil, fmt.Errorf("from: want YYYY-MM-DD, got %q", from)
	}
	t, err := time.ParseInLocation(time.DateOnly, to, time.UTC)
	if err != nil {
		return nil, fmt.Errorf("to: want YYYY-MM-DD, got %q", to)
	}
	if t.Before(f) {
		return nil, errors.New("to is before from")
	}
	n := int(t.Sub(f).Hours()/24) + 1
	if n > MaxDays {
		return nil, fmt.Errorf("at most %d days at a time", MaxDays)
	}
	days := make([]string, 0, n)
	for d := f; !d.After(t); d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format(time.DateOnly))
	}
	return days, nil
}

// cells reads and parses the counters of the days, filtered by q.
func (r *Reader) cells(ctx context.Context, days []string, q Query) ([]*cell, error) {
	raw, err := r.store.UsageCounts(ctx, days)
	if err != nil {
		return nil, err
	}
	now := r.now()
	idx := map[string]*cell{}
	var out []*cell
	for i, m := range raw {
		day := days[i]
		for f, n := range m {
			parts := strings.SplitN(f, sep, 5)
			if len(parts) != 5 {
				continue
			}
			svc, dept, ch, loc, metric := parts[0], parts[1], gateway.Channel(parts[2]), parts[3], parts[4]
			if (q.Service != "" && svc != q.Service) || (q.Department != "" && dept != q.Department) ||
				(q.Channel != "" && ch != q.Channel) || (q.Locale != "" && loc != q.Locale) {
				continue
			}
			k := day + sep + svc + sep + dept + sep + string(ch) + sep + loc
			c := idx[k]
			if c == nil {
				c = &cell{day: day, service: svc, dept: dept, ch: ch, locale: loc, fields: map[string]int64{},
					startHist: newHistogram(), firstHist: newHistogram()}
				idx[k] = c
				out = append(out, c)
			}
			switch {
			case metric == mVisit:
				c.visits += n
			case metric == mViewed:
				c.counts.Viewed += n
			case metric == mStarted:
				c.counts.Started += n
			case metric == mValidation:
				c.counts.ValidationFailed += n
			case metric == mSubmitted:
				c.counts.Submitted += n
			case metric == mContact:
				c.counts.Contacts += n
			case metric == mDelivered:
				c.counts.Delivered += n
			case metric == mDead:
				c.counts.DeadLettered += n
			case metric == mStatus:
				c.counts.StatusChanged += n
			case strings.HasPrefix(metric, mSatPfx):
				if sc, err := strconv.Atoi(metric[len(mSatPfx):]); err == nil && sc >= 1 && sc <= 5 {
					c.counts.Satisfaction[sc-1] += n
				}
			case strings.HasPrefix(metric, mFieldPfx):
				c.fields[metric[len(mFieldPfx):]] += n
			case strings.HasPrefix(metric, mStartPfx):
				if b, err := strconv.Atoi(metric[len(mStartPfx):]); err == nil && b >= 0 && b < len(c.startHist) {
					c.startHist[b] += n
				}
			case strings.HasPrefix(metric, mFirstPfx):
				if b, err := strconv.Atoi(metric[len(mFirstPfx):]); err == nil && b >= 0 && b < len(c.firstHist) {
					c.firstHist[b] += n
				}
			}
		}
	}
	// Abandoned forms, for days that ended more than AbandonAfter ago.
	for _, c := range out {
		if c.ch != gateway.ChannelDigital || c.service == "" {
			continue
		}
		d, _ := time.ParseInLocation(time.DateOnly, c.day, r.cfg.Location)
		if now.Before(d.AddDate(0, 0, 1).Add(r.cfg.AbandonAfter)) {
			continue
		}
		c.counts.Abandoned = max(0, c.counts.Started-c.counts.Submitted)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.day != b.day {
			return a.day < b.day
		}
		if a.service != b.service {
			return a.service < b.service
		}
		if a.ch != b.ch {
			return channelOrder(a.ch) < channelOrder(b.ch)
		}
		return a.locale < b.locale
	})
	return out, nil
}

func channelOrder(ch gateway.Channel) int {
	for i, c := range gateway.Channels {
		if c == ch {
			return i
		}
	}
	return len(gateway.Channels)
}

// period returns the period a day belongs to, with its first and last day.
func period(day string, g Granularity) (name, from, to string) {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return day, day, day
	}
	switch g {
	case Week:
		y, w := d.ISOWeek()
		start := d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
		return fmt.Sprintf("%04d-W%02d", y, w), start.Format(time.DateOnly), start.AddDate(0, 0, 6).Format(time.DateOnly)
	case Month:
		start := time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC)
		return d.Format("2006-01"), start.Format(time.DateOnly), start.AddDate(0, 1, -1).Format(time.DateOnly)
	}
	return day, day, day
}

// Rows returns the counts per day, service, department and channel
// (locales summed), for the open data. Rows with only zeros are left out,
// as are views of the catalog.
func (r *Reader) Rows(ctx context.Context, q Query) ([]Row, error) {
	q.Granularity = Day
	rep, err := r.Report(ctx, q)
	if err != nil {
		return nil, err
	}
	return rep.Rows, nil
}

// Report answers q with exact figures.
func (r *Reader) Report(ctx context.Context, q Query) (*Report, error) {
	if q.Granularity == "" {
		q.Granularity = Day
	}
	days, err := r.Days(q.From, q.To)
	if err != nil {
		return nil, gateway.Errorf(gateway.EInvalid, "usage.error.query", err)
	}
	cells, err := r.cells(ctx, days, q)
	if err != nil {
		return nil, err
	}
	rep := &Report{From: q.From, To: q.To, Granularity: q.Granularity, Service: q.Service, Department: q.Department,
		Periods: []Period{}, Services: []Group{}, Departments: []Group{}, Channels: []Group{}, DropOff: []FieldFailures{}, Rows: []Row{}}
	total := newKPIs()
	periods := map[string]*Period{}
	var order []string
	services := map[string]*KPIs{}
	depts := map[string]*KPIs{}
	channels := map[string]*KPIs{}
	rows := map[string]*Row{}
	var rowOrder []string
	fields := map[[2]string]int64{}
	startedBySvc := map[string]int64{}
	// Every period of the range, with or without data, in order.
	for _, d := range days {
		name, from, to := period(d, q.Granularity)
		if periods[name] == nil {
			periods[name] = &Period{Period: name, From: from, To: to, KPIs: newKPIs()}
			order = append(order, name)
		}
	}
	for _, c := range cells {
		if c.service == "" {
			rep.CatalogViews += c.visits
			continue
		}
		name, _, _ := period(c.day, q.Granularity)
		p := periods[name]
		for _, k := range []*KPIs{&total, &p.KPIs, group(services, c.service), group(depts, c.dept), group(channels, string(c.ch))} {
			k.addCell(c)
		}
		rk := name + sep + c.service + sep + c.dept + sep + string(c.ch)
		row := rows[rk]
		if row == nil {
			row = &Row{Period: name, Service: c.service, Department: c.dept, Channel: c.ch}
			rows[rk] = row
			rowOrder = append(rowOrder, rk)
		}
		row.Counts.add(c.counts)
		for f, n := range c.fields {
			fields[[2]string{c.service, f}] += n
		}
		if c.ch == gateway.ChannelDigital {
			startedBySvc[c.service] += c.counts.Started
		}
	}
	total.finish()
	rep.Totals = total
	// Visitor-days: each day's distinct visitors, summed.
	visitors, err := r.store.UsageVisitors(ctx, days, q.Service)
	if err != nil {
		return nil, err
	}
	perPeriod := map[string]int64{}
	for i, d := range days {
		name, _, _ := period(d, q.Granularity)
		perPeriod[name] += visitors[i]
		rep.Visitors += visitors[i]
	}
	for _, name := range order {
		p := periods[name]
		p.finish()
		p.Visitors = perPeriod[name]
		rep.Periods = append(rep.Periods, *p)
	}
	rep.Services = groups(services, nil)
	rep.Departments = groups(depts, nil)
	rep.Channels = groups(channels, channelOrder)
	for _, k := range rowOrder {
		if !rows[k].Counts.zero() {
			rep.Rows = append(rep.Rows, *rows[k])
		}
	}
	for k, n := range fields {
		ff := FieldFailures{Service: k[0], Field: k[1], Failures: n, Share: ratio(n, startedBySvc[k[0]])}
		rep.DropOff = append(rep.DropOff, ff)
	}
	sort.Slice(rep.DropOff, func(i, j int) bool {
		a, b := rep.DropOff[i], rep.DropOff[j]
		if a.Failures != b.Failures {
			return a.Failures > b.Failures
		}
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		return a.Field < b.Field
	})
	return rep, nil
}

func newKPIs() KPIs {
	return KPIs{SubmittedBy: map[gateway.Channel]int64{}, ContactsBy: map[gateway.Channel]int64{},
		startHist: newHistogram(), firstHist: newHistogram()}
}

func group(m map[string]*KPIs, key string) *KPIs {
	k := m[key]
	if k == nil {
		n := newKPIs()
		k = &n
		m[key] = k
	}
	return k
}

func groups(m map[string]*KPIs, order func(gateway.Channel) int) []Group {
	out := make([]Group, 0, len(m))
	for key, k := range m {
		k.finish()
		out = append(out, Group{Key: key, KPIs: *k})
	}
	sort.Slice(out, func(i, j int) bool {
		if order != nil {
			return order(gateway.Channel(out[i].Key)) < order(gateway.Channel(out[j].Key))
		}
		return out[i].Key < out[j].Key
	})
	return out
}

func (k *KPIs) addCell(c *cell) {
	k.Counts.add(c.counts)
	if c.counts.Submitted != 0 {
		k.SubmittedBy[c.ch] += c.counts.Submitted
	}
	if c.counts.Contacts != 0 {
		k.ContactsBy[c.ch] += c.counts.Contacts
	}
	if c.ch == gateway.ChannelDigital {
		k.submittedDigital += c.counts.Submitted
		k.start += c.counts.Started
	}
	k.startHist.add(c.startHist)
	k.firstHist.add(c.firstHist)
}

// finish computes the rates from the counts.
func (k *KPIs) finish() {
	k.AllContacts = k.Submitted + k.Contacts
	k.DigitalTakeUp = ratio(k.SubmittedBy[gateway.ChannelDigital], k.AllContacts)
	k.CompletionRate = ratio(k.submittedDigital, k.start)
	k.AssistedShare = ratio(k.SubmittedBy[gateway.ChannelAssisted]+k.ContactsBy[gateway.ChannelAssisted], k.AllContacts)
	k.DeliverySuccess = ratio(k.Delivered, k.Delivered+k.DeadLettered)
	k.DeadLetterRate = ratio(k.DeadLettered, k.Delivered+k.DeadLettered)
	k.StartToSubmitMeasured = k.startHist.Total()
	k.FirstStatusMeasured = k.firstHist.Total()
	k.MedianStartToSubmit = median(k.startHist)
	k.MedianToFirstStatus = median(k.firstHist)
	k.SatisfactionCount = k.SatisfactionAnswers()
	var sum int64
	for i, v := range k.Satisfaction {
		sum += int64(i+1) * v
	}
	k.SatisfactionMean = ratio(sum, k.SatisfactionCount)
}

func median(h Histogram) *float64 {
	b, _, ok := h.Median()
	if !ok {
		return nil
	}
	s := b.Seconds()
	return &s
}

func ratio(n, d int64) *float64 {
	if d == 0 {
		return nil
	}
	v := float64(n) / float64(d)
	return &v
}
