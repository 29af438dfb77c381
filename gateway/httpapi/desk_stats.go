package httpapi

import (
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/servicepoint"
	"github.com/kommun/servicegateway/gateway/usage"
	"github.com/kommun/servicegateway/locales"
)

// Service-point statistics on the dashboard: contacts per point by channel
// and outcome (the desk's own counters), assisted share per service and the
// services that most often need help (from the usage report), the list
// departments should improve first.

// days lists the days from..to ("YYYY-MM-DD"), both included, at most
// usage.MaxDays.
func days(from, to string) []string {
	f, err1 := time.Parse(time.DateOnly, from)
	t, err2 := time.Parse(time.DateOnly, to)
	if err1 != nil || err2 != nil || t.Before(f) {
		return nil
	}
	var out []string
	for d := f; !d.After(t) && len(out) < usage.MaxDays; d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(time.DateOnly))
	}
	return out
}

// deskTables are the dashboard's service-point tables; none when there is
// no desk.
func (s *Server) deskTables(l *locales.Localizer, q usage.Query, rep *usage.Report, counts []gateway.DeskContactCount) []dashTable {
	svcName := func(id string) string {
		if svc, ok := s.Catalog.Get(id); ok {
			return l.T(svc.MsgTitle())
		}
		return id
	}
	// 1. Contacts per service point by channel and outcome.
	type key struct{ point, channel, outcome string }
	sum := map[key]int64{}
	for _, n := range counts {
		svc, ok := s.Catalog.Get(n.Service)
		if q.Service != "" && n.Service != q.Service || q.Department != "" && (!ok || svc.Department != q.Department) {
			continue
		}
		sum[key{n.Point, n.Channel, n.Outcome}] += n.Count
	}
	keys := make([]key, 0, len(sum))
	for k := range sum {
		keys = append(keys, k)
	}
	rank := func(list []string, v string) int {
		for i, x := range list {
			if x == v {
				return i
			}
		}
		return len(list)
	}
	var chans, outs []string
	for _, c := range servicepoint.ContactChannels {
		chans = append(chans, string(c))
	}
	for _, o := range servicepoint.Outcomes {
		outs = append(outs, string(o))
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.point != b.point {
			return a.point < b.point
		}
		if a.channel != b.channel {
			return rank(chans, a.channel) < rank(chans, b.channel)
		}
		return rank(outs, a.outcome) < rank(outs, b.outcome)
	})
	points := dashTable{Caption: l.T("desk.stats.by_point"), Head: []string{l.T("desk.point.label"), l.T("desk.contact.channel"), l.T("desk.contact.outcome"), l.T("desk.work.count")}}
	for _, k := range keys {
		name := k.point
		if pt, ok := s.ServicePoints.Get(k.point); ok {
			name = pt.Name
		}
		points.Rows = append(points.Rows, dashRow{Cells: []string{name, l.T("desk.channel." + k.channel), l.T("desk.outcome." + k.outcome), num(sum[k])}})
	}
	// 2. Assisted share per service, and 3. the services that most often
	// need help: assisted submissions plus every registered contact (each
	// is someone who needed a person), largest first.
	share := dashTable{Caption: l.T("desk.stats.assisted_share"), Head: []string{l.T("usage.dash.service"), l.T("desk.stats.assisted"), l.T("usage.kpi.contacts"), l.T("usage.kpi.assisted")}}
	type need struct {
		id    string
		help  int64
		share *float64
	}
	var needs []need
	for _, g := range rep.Services {
		assisted := g.SubmittedBy[gateway.ChannelAssisted] + g.ContactsBy[gateway.ChannelAssisted]
		share.Rows = append(share.Rows, dashRow{Cells: []string{svcName(g.Key), num(assisted), num(g.AllContacts), pct(l, g.AssistedShare)}})
		help := g.SubmittedBy[gateway.ChannelAssisted] + g.Contacts
		if help > 0 {
			needs = append(needs, need{g.Key, help, ratioOf(help, g.AllContacts)})
		}
	}
	sort.SliceStable(needs, func(i, j int) bool {
		if needs[i].help != needs[j].help {
			return needs[i].help > needs[j].help
		}
		return needs[i].id < needs[j].id
	})
	if len(needs) > 10 {
		needs = needs[:10]
	}
	top := dashTable{Caption: l.T("desk.stats.need_help"), Head: []string{l.T("desk.stats.rank"), l.T("usage.dash.service"), l.T("desk.stats.help"), l.T("desk.stats.help_share")}}
	for i, n := range needs {
		top.Rows = append(top.Rows, dashRow{Cells: []string{num(int64(i + 1)), svcName(n.id), num(n.help), pct(l, n.share)}})
	}
	return []dashTable{points, share, top}
}

// deskDashboard reads the desk's contact counters of the report's period
// and returns the service-point tables; none when there is no desk.
func (s *Server) deskDashboard(c *fiber.Ctx, l *locales.Localizer, q usage.Query, rep *usage.Report) ([]dashTable, error) {
	st, err := s.desk()
	if err != nil {
		return nil, nil // no desk configured: no service-point tables
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	counts, err := st.DeskContacts(ctx, days(q.From, q.To))
	if err != nil {
		return nil, err
	}
	return s.deskTables(l, q, rep, counts), nil
}
