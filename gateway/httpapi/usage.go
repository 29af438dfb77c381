package httpapi

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/usage"
)

// Tracker receives usage events; *usage.Recorder implements it. Nothing in
// it may block a request: Track hands the event to a bounded buffer.
type Tracker interface {
	Track(e usage.Event)
	// Visitor is the day's salted hash of a visitor (0: not counted).
	Visitor(ip, userAgent string, at time.Time) uint64
	// Stamp and Elapsed sign and check the time a form was first drawn.
	Stamp(service string, at time.Time) string
	Elapsed(service, stamp string, now time.Time) (time.Duration, bool)
}

// UsageReader answers usage queries with exact figures; *usage.Reader
// implements it.
type UsageReader interface {
	Report(ctx context.Context, q usage.Query) (*usage.Report, error)
	Today() string
	// OpenRows is the open dataset's rows for from..to, from daily
	// aggregates (see opendata.go).
	OpenRows(ctx context.Context, from, to string) ([]usage.Row, error)
}

// stampField is the hidden form field with the signed time the form was
// first drawn (for the median time from start to submit).
const stampField = "_started"

// track records a usage event about svc (nil for pages about no one
// service, such as the catalog). Everything in the event is owned: ids
// come from the catalog, not from the request.
func (s *Server) track(c *fiber.Ctx, kind usage.Kind, svc *gateway.Service, ch gateway.Channel) {
	if s.Usage == nil || c.Method() == fiber.MethodHead { // HEAD: monitors and link checkers, not visits
		return
	}
	now := s.Config.Now()
	e := usage.Event{Kind: kind, Channel: ch, Locale: lang(c).String(), At: now}
	if svc != nil {
		e.Service, e.Department = svc.ID, svc.Department
	}
	if kind == usage.Visit || kind == usage.Viewed {
		e.Visitor = s.Usage.Visitor(clientIP(c), c.Get(fiber.HeaderUserAgent), now)
	}
	s.Usage.Track(e)
}

// trackVisit records a view of a page about no one service (the catalog).
func (s *Server) trackVisit(c *fiber.Ctx) { s.track(c, usage.Visit, nil, gateway.ChannelDigital) }

// trackViewed records a view of a service in a channel.
func (s *Server) trackViewed(c *fiber.Ctx, svc *gateway.Service, ch gateway.Channel) {
	s.track(c, usage.Viewed, svc, ch)
}

// trackStart records the view and start of a form drawn fresh.
func (s *Server) trackStart(c *fiber.Ctx, svc *gateway.Service) {
	s.track(c, usage.Viewed, svc, gateway.ChannelDigital)
	s.track(c, usage.Started, svc, gateway.ChannelDigital)
}

// formStamp returns the stamp to carry in the form: the one posted back
// (values[stampField]) when it is valid, or a new one.
func (s *Server) formStamp(svc *gateway.Service, values map[string][]string) string {
	if s.Usage == nil {
		return ""
	}
	posted := firstValue(values[stampField])
	now := s.Config.Now()
	if _, ok := s.Usage.Elapsed(svc.ID, posted, now); ok {
		return posted
	}
	return s.Usage.Stamp(svc.ID, now)
}

func firstValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// trackStatusChanged records a status change posted for a submission.
func (s *Server) trackStatusChanged(sub *gateway.Submission) {
	if s.Usage == nil || sub == nil {
		return
	}
	s.Usage.Track(usage.Event{Kind: usage.StatusChanged, Service: sub.Service, Department: sub.Department,
		Channel: sub.Channel, Locale: sub.Locale, At: s.Config.Now()})
}

// usageQuery reads from, to, service, department, channel, locale and
// granularity from the query string. The default period is the last 30
// days up to today.
func (s *Server) usageQuery(c *fiber.Ctx, defaultDays int) (usage.Query, error) {
	today := s.UsageReports.Today()
	q := usage.Query{
		From: c.Query("from"), To: c.Query("to"), Service: c.Query("service"), Department: c.Query("department"),
		Channel: gateway.Channel(c.Query("channel")), Locale: c.Query("locale"),
	}
	if q.To == "" {
		q.To = today
	}
	if q.From == "" {
		t, err := time.Parse(time.DateOnly, q.To)
		if err != nil {
			return q, gateway.Errorf(gateway.EInvalid, "usage.error.query", err)
		}
		q.From = t.AddDate(0, 0, -(defaultDays - 1)).Format(time.DateOnly)
	}
	g, err := usage.ParseGranularity(c.Query("granularity"))
	if err != nil {
		return q, gateway.Errorf(gateway.EInvalid, "usage.error.query", err)
	}
	q.Granularity = g
	if q.Channel != "" && !q.Channel.Valid() {
		return q, gateway.Errorf(gateway.EInvalid, "usage.error.query", nil)
	}
	// Copy what came from the request: the query outlives nothing, but
	// the report echoes the filters.
	q.From, q.To, q.Service, q.Department, q.Locale = clone(q.From), clone(q.To), clone(q.Service), clone(q.Department), clone(q.Locale)
	q.Channel = gateway.Channel(clone(string(q.Channel)))
	return q, nil
}

func clone(s string) string { return string(append([]byte(nil), s...)) }

// apiUsage: GET /api/v1/usage?from=&to=&service=&department=&channel=&locale=&granularity=
// for staff and administrators: exact figures, no suppression.
func (s *Server) apiUsage(c *fiber.Ctx) error {
	if _, err := requireRole(c, gateway.RoleStaff, gateway.RoleAdmin); err != nil {
		return err
	}
	if s.UsageReports == nil {
		return gateway.Errorf(gateway.EUnavailable, "usage.error.off", nil)
	}
	q, err := s.usageQuery(c, 30)
	if err != nil {
		return err
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	rep, err := s.UsageReports.Report(ctx, q)
	if err != nil {
		return usageErr(err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(rep)
}
