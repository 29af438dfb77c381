package httpapi

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/usage"
	"github.com/kommun/servicegateway/locales"
)

// The dashboard: digital take-up and completion over time, channel mix and
// the fields people stumble on, for staff and administrators. Charts are
// SVG drawn on the server (role="img" with a title and a description), each
// with its numbers in a table beside it; no JavaScript.

type option struct {
	Value, Label string
	Selected     bool
}

type kpiCard struct{ Label, Value, Help string }

type dashRow struct {
	Cells []string
}

type dashTable struct {
	Caption string
	Head    []string
	Rows    []dashRow
}

type svgBar struct {
	X, Y, W, H int
	Class      string
	Tip        string
}

type svgText struct {
	X, Y         int
	Anchor, Text string
}

type svgLine struct{ X1, Y1, X2, Y2 int }

type svgChart struct {
	ID, Title, Desc string
	W, H            int
	Bars            []svgBar
	Texts           []svgText
	Lines           []svgLine
	Legend          []legendItem
	Table           dashTable
}

type legendItem struct{ Class, Label string }

type dashboardContent struct {
	From, To, Service, Department, Granularity string
	Services, Departments, Granularities       []option
	Cards                                      []kpiCard
	Charts                                     []svgChart
	Tables                                     []dashTable
	Empty                                      bool
	APIURL                                     string
}

// dashboardPage: GET /dashboard (staff and administrators).
func (s *Server) dashboardPage(c *fiber.Ctx) error {
	if _, err := requireRole(c, gateway.RoleStaff, gateway.RoleAdmin); err != nil {
		return err
	}
	if s.UsageReports == nil {
		return gateway.Errorf(gateway.ENotFound, "usage.error.off", nil)
	}
	l := s.localizer(c)
	q, err := s.usageQuery(c, 30)
	if err != nil {
		return err
	}
	q.Channel, q.Locale = "", ""
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	rep, err := s.UsageReports.Report(ctx, q)
	if err != nil {
		return usageErr(err)
	}
	dc := dashboardContent{From: q.From, To: q.To, Service: q.Service, Department: q.Department, Granularity: string(q.Granularity),
		Empty: len(rep.Rows) == 0, APIURL: "/api/v1/usage?" + string(c.Request().URI().QueryString())}
	dc.Services = append(dc.Services, option{Value: "", Label: l.T("usage.dash.all_services"), Selected: q.Service == ""})
	depts := map[string]bool{}
	var deptOrder []string
	for _, svc := range s.Catalog.All() {
		dc.Services = append(dc.Services, option{Value: svc.ID, Label: l.T(svc.MsgTitle()), Selected: svc.ID == q.Service})
		if !depts[svc.Department] {
			depts[svc.Department] = true
			deptOrder = append(deptOrder, svc.Department)
		}
	}
	dc.Departments = append(dc.Departments, option{Value: "", Label: l.T("usage.dash.all_departments"), Selected: q.Department == ""})
	for _, d := range deptOrder {
		dc.Departments = append(dc.Departments, option{Value: d, Label: l.T(gateway.MsgDepartment(d)), Selected: d == q.Department})
	}
	for _, g := range []usage.Granularity{usage.Day, usage.Week, usage.Month} {
		dc.Granularities = append(dc.Granularities, option{Value: string(g), Label: l.T("usage.granularity." + string(g)), Selected: g == q.Granularity})
	}

	t := rep.Totals
	dc.Cards = []kpiCard{
		{l.T("usage.kpi.take_up"), pct(l, t.DigitalTakeUp), l.T("usage.kpi.take_up_help")},
		{l.T("usage.kpi.completion"), pct(l, t.CompletionRate), l.T("usage.kpi.completion_help")},
		{l.T("usage.kpi.assisted"), pct(l, t.AssistedShare), l.T("usage.kpi.assisted_help")},
		{l.T("usage.kpi.delivery"), pct(l, t.DeliverySuccess), l.T("usage.kpi.delivery_help")},
		{l.T("usage.kpi.dead"), pct(l, t.DeadLetterRate), l.T("usage.kpi.dead_help")},
		{l.T("usage.kpi.start_to_submit"), dur(l, t.MedianStartToSubmit), l.T("usage.kpi.start_to_submit_help")},
		{l.T("usage.kpi.first_status"), dur(l, t.MedianToFirstStatus), l.T("usage.kpi.first_status_help")},
		{l.T("usage.kpi.contacts"), l.Int(t.AllContacts), l.T("usage.kpi.contacts_help")},
		{l.T("usage.kpi.visitors"), l.Int(rep.Visitors), l.T("usage.kpi.visitors_help")},
	}
	dc.Charts = append(dc.Charts, s.trendChart(l, rep), s.channelChart(l, rep), s.dropOffChart(l, rep))
	dc.Tables = append(dc.Tables, s.groupTable(l, l.T("usage.dash.by_service"), l.T("usage.dash.service"), rep.Services, func(k string) string {
		if svc, ok := s.Catalog.Get(k); ok {
			return l.T(svc.MsgTitle())
		}
		return k
	}), s.groupTable(l, l.T("usage.dash.by_department"), l.T("usage.dash.department"), rep.Departments, func(k string) string {
		return l.T(gateway.MsgDepartment(k))
	}))
	// Service points: contacts by point, channel and outcome; assisted share
	// per service; the services that most often need help (desk_stats.go).
	deskTables, err := s.deskDashboard(c, l, q, rep)
	if err != nil {
		return err
	}
	dc.Tables = append(dc.Tables, deskTables...)
	dc.Tables = append(dc.Tables, s.satisfactionTables(l, rep)...) // satisfaction.go
	c.Set(fiber.HeaderCacheControl, "no-store")
	return s.render(c, fiber.StatusOK, "dashboard", l.T("usage.dash.title"), dc)
}

const (
	chartW     = 640
	chartH     = 240
	chartLeft  = 48
	chartBase  = 200 // y of the 0 % line
	chartTop   = 20  // y of the 100 % line
	chartRight = 12
)

// trendChart draws digital take-up and completion per period as grouped bars.
func (s *Server) trendChart(l *locales.Localizer, rep *usage.Report) svgChart {
	ch := svgChart{ID: "chart-trend", Title: l.T("usage.chart.trend_title"), W: chartW, H: chartH + 20,
		Legend: []legendItem{{"bar-a", l.T("usage.kpi.take_up")}, {"bar-b", l.T("usage.kpi.completion")}}}
	ch.Table = dashTable{Caption: ch.Title, Head: []string{l.T("usage.dash.period"), l.T("usage.kpi.take_up"), l.T("usage.kpi.completion"),
		l.T("usage.head.submitted"), l.T("usage.kpi.contacts"), l.T("usage.head.started")}}
	for _, v := range []int{0, 25, 50, 75, 100} {
		y := chartBase - (chartBase-chartTop)*v/100
		ch.Lines = append(ch.Lines, svgLine{chartLeft, y, chartW - chartRight, y})
		ch.Texts = append(ch.Texts, svgText{X: chartLeft - 6, Y: y + 4, Anchor: "end", Text: l.T("usage.percent", "Value", l.Int(int64(v)))})
	}
	n := len(rep.Periods)
	if n == 0 {
		ch.Desc = l.T("usage.chart.no_data")
		return ch
	}
	slot := (chartW - chartLeft - chartRight) / n
	barW := min(max(1, slot*2/5), 32)
	bar := func(x int, v *float64, class, tip string) {
		if v == nil {
			return
		}
		h := int(float64(chartBase-chartTop) * *v)
		ch.Bars = append(ch.Bars, svgBar{X: x, Y: chartBase - h, W: barW, H: h, Class: class, Tip: tip})
	}
	labelEvery := max(1, (n+11)/12)
	var best, worst string
	var bestV, worstV = -1.0, 2.0
	for i, p := range rep.Periods {
		x := chartLeft + i*slot + slot/10
		bar(x, p.DigitalTakeUp, "bar-a", p.Period+": "+l.T("usage.kpi.take_up")+" "+pct(l, p.DigitalTakeUp))
		bar(x+barW, p.CompletionRate, "bar-b", p.Period+": "+l.T("usage.kpi.completion")+" "+pct(l, p.CompletionRate))
		if i%labelEvery == 0 {
			ch.Texts = append(ch.Texts, svgText{X: x + barW, Y: chartBase + 16, Anchor: "middle", Text: shortPeriod(p.Period)})
		}
		ch.Table.Rows = append(ch.Table.Rows, dashRow{Cells: []string{p.Period, pct(l, p.DigitalTakeUp), pct(l, p.CompletionRate),
			l.Int(p.Submitted), l.Int(p.AllContacts), l.Int(p.Started)}})
		if p.DigitalTakeUp != nil {
			if *p.DigitalTakeUp > bestV {
				bestV, best = *p.DigitalTakeUp, p.Period
			}
			if *p.DigitalTakeUp < worstV {
				worstV, worst = *p.DigitalTakeUp, p.Period
			}
		}
	}
	if best == "" {
		ch.Desc = l.T("usage.chart.trend_desc_empty", "Periods", n)
	} else {
		ch.Desc = l.T("usage.chart.trend_desc", "Periods", n, "Total", pct(l, rep.Totals.DigitalTakeUp),
			"Best", best, "BestValue", pct(l, &bestV), "Worst", worst, "WorstValue", pct(l, &worstV))
	}
	return ch
}

func shortPeriod(p string) string {
	if len(p) == 10 { // a day: "11-22"
		return p[5:]
	}
	return p
}

// hbarChart draws labelled horizontal bars, values relative to the largest.
func hbarChart(id, title, desc string, labels []string, values []float64, tips []string) svgChart {
	const rowH, labelW = 28, 200
	ch := svgChart{ID: id, Title: title, Desc: desc, W: chartW, H: max(rowH, rowH*len(labels)+8)}
	top := 0.0
	for _, v := range values {
		top = max(top, v)
	}
	for i, lab := range labels {
		y := 4 + i*rowH
		ch.Texts = append(ch.Texts, svgText{X: labelW - 8, Y: y + 17, Anchor: "end", Text: truncate(lab, 28)})
		w := 0
		if top > 0 {
			w = int(float64(chartW-labelW-chartRight-110) * values[i] / top)
		}
		ch.Bars = append(ch.Bars, svgBar{X: labelW, Y: y + 4, W: w, H: rowH - 10, Class: "bar-a", Tip: tips[i]})
		ch.Texts = append(ch.Texts, svgText{X: labelW + w + 6, Y: y + 17, Anchor: "start", Text: tips[i]})
	}
	return ch
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// channelChart draws the channel mix: each channel's share of all contacts.
func (s *Server) channelChart(l *locales.Localizer, rep *usage.Report) svgChart {
	t := rep.Totals
	var labels, tips []string
	var values []float64
	table := dashTable{Caption: l.T("usage.chart.channels_title"), Head: []string{l.T("usage.head.channel"),
		l.T("usage.head.submitted"), l.T("usage.head.contacts"), l.T("usage.dash.share")}}
	var parts []string
	for _, chn := range gateway.Channels {
		n := t.SubmittedBy[chn] + t.ContactsBy[chn]
		share := ratioOf(n, t.AllContacts)
		name := l.T("usage.channel." + string(chn))
		labels, values = append(labels, name), append(values, float64(n))
		tips = append(tips, l.Int(n)+" ("+pct(l, share)+")")
		table.Rows = append(table.Rows, dashRow{Cells: []string{name, l.Int(t.SubmittedBy[chn]), l.Int(t.ContactsBy[chn]), pct(l, share)}})
		if n > 0 {
			parts = append(parts, name+" "+pct(l, share))
		}
	}
	desc := l.T("usage.chart.no_data")
	if len(parts) > 0 {
		desc = l.T("usage.chart.channels_desc", "Total", l.Int(t.AllContacts), "Parts", strings.Join(parts, ", "))
	}
	ch := hbarChart("chart-channels", table.Caption, desc, labels, values, tips)
	ch.Table = table
	return ch
}

// dropOffChart draws the ten fields that fail validation most often.
func (s *Server) dropOffChart(l *locales.Localizer, rep *usage.Report) svgChart {
	table := dashTable{Caption: l.T("usage.chart.dropoff_title"), Head: []string{l.T("usage.dash.service"), l.T("usage.dash.field"),
		l.T("usage.dash.failures"), l.T("usage.dash.share_of_started")}}
	var labels, tips []string
	var values []float64
	for i, f := range rep.DropOff {
		if i == 10 {
			break
		}
		svcName, label := f.Service, f.Field
		if svc, ok := s.Catalog.Get(f.Service); ok {
			svcName = l.T(svc.MsgTitle())
			if fld := svc.Field(f.Field); fld != nil {
				label = l.T(svc.MsgLabel(fld))
			}
		}
		labels, values = append(labels, label), append(values, float64(f.Failures))
		tips = append(tips, l.Int(f.Failures))
		table.Rows = append(table.Rows, dashRow{Cells: []string{svcName, label, l.Int(f.Failures), pct(l, f.Share)}})
	}
	desc := l.T("usage.chart.dropoff_none")
	if len(labels) > 0 {
		desc = l.T("usage.chart.dropoff_desc", "Field", labels[0], "Failures", tips[0])
	}
	ch := hbarChart("chart-dropoff", table.Caption, desc, labels, values, tips)
	ch.Table = table
	return ch
}

func (s *Server) groupTable(l *locales.Localizer, caption, keyHead string, groups []usage.Group, name func(string) string) dashTable {
	t := dashTable{Caption: caption, Head: []string{keyHead, l.T("usage.kpi.take_up"), l.T("usage.kpi.completion"), l.T("usage.kpi.assisted"),
		l.T("usage.head.started"), l.T("usage.head.submitted"), l.T("usage.kpi.contacts"), l.T("usage.head.abandoned")}}
	for _, g := range groups {
		t.Rows = append(t.Rows, dashRow{Cells: []string{name(g.Key), pct(l, g.DigitalTakeUp), pct(l, g.CompletionRate), pct(l, g.AssistedShare),
			l.Int(g.Started), l.Int(g.Submitted), l.Int(g.AllContacts), l.Int(g.Abandoned)}})
	}
	return t
}

func ratioOf(n, d int64) *float64 {
	if d == 0 {
		return nil
	}
	v := float64(n) / float64(d)
	return &v
}

// num formats a count without grouping; pages in a language use l.Int.
func num(n int64) string { return strconv.FormatInt(n, 10) }

// pct formats a fraction as a percentage with one decimal, in the
// language's style; "–" when there is nothing to divide.
func pct(l *locales.Localizer, v *float64) string {
	if v == nil {
		return "–"
	}
	return l.T("usage.percent", "Value", l.Decimal(*v*100, 1))
}

// dur formats a median given as a bucket bound in seconds.
func dur(l *locales.Localizer, secs *float64) string {
	if secs == nil {
		return "–"
	}
	v := int64(*secs)
	var s string
	switch {
	case v < 120:
		s = l.T("usage.unit.seconds", "Value", l.Int(v))
	case v < 2*3600:
		s = l.T("usage.unit.minutes", "Value", l.Int(v/60))
	default:
		s = l.T("usage.unit.hours", "Value", l.Int(v/3600))
	}
	return l.T("usage.at_most", "Value", s)
}
