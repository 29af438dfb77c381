package open311

import (
	"encoding/xml"
	"mime"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/intake"
)

type postedJSON struct {
	XMLName          xml.Name `json:"-" xml:"request"`
	ServiceRequestID string   `json:"service_request_id" xml:"service_request_id"`
	Token            string   `json:"token" xml:"token"`
	ServiceNotice    string   `json:"service_notice" xml:"service_notice"`
	AccountID        *string  `json:"account_id" xml:"account_id"`
}

// maxUnknown bounds the unknown attributes one answer names.
const maxUnknown = 20

var attributeArg = regexp.MustCompile(`^attribute\[([^\[\]]+)\](\[\])?$`)

// PostRequests: POST requests.{format}, form-encoded. The arguments become
// the service's field values and go through the intake (channel api), so
// every rule of a submission applies: the manifest's channels, validation,
// one atomic write, delivery to the department.
func (h *Handler) PostRequests(c *fiber.Ctx) error {
	f := format(c)
	if f == "" {
		return h.NotFound(c)
	}
	if mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType)); err != nil || mt != fiber.MIMEApplicationForm {
		return h.fail(c, fiber.StatusBadRequest, gateway.Message{ID: "open311.form_required"})
	}
	args := map[string][]string{}
	c.Request().PostArgs().VisitAll(func(k, v []byte) {
		args[string(k)] = append(args[string(k)], string(v)) // copied: fasthttp reuses the buffers
	})
	one := func(name string) string {
		if v := args[name]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	client, ok := h.client(one("api_key"))
	if !ok {
		return h.fail(c, fiber.StatusForbidden, gateway.Message{ID: "open311.api_key"})
	}
	if err := h.jurisdiction(c, one("jurisdiction_id")); err != nil {
		return err
	}
	code := one("service_code")
	if code == "" {
		return h.fail(c, fiber.StatusBadRequest, gateway.Message{ID: "open311.service_code_required"})
	}
	svc, ok := h.byCode[code]
	if !ok {
		return h.fail(c, fiber.StatusNotFound, gateway.Message{ID: "open311.service_code_unknown"})
	}
	o := svc.Open311
	values := map[string][]string{}
	errs := gateway.FieldErrors{}
	allowed := map[string]bool{}
	for _, fld := range attributeFields(svc) {
		allowed[fld.Name] = true
	}
	for k, vs := range args {
		m := attributeArg.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		if !allowed[m[1]] {
			if len(errs) < maxUnknown { // a bounded answer to a body full of them
				errs["attribute["+m[1]+"]"] = gateway.Message{ID: "open311.attribute_unknown"}
			}
			continue
		}
		values[m[1]] = append(values[m[1]], vs...)
	}
	loc, err := location(one("address_string"), one("lat"), one("long"))
	if err != nil {
		return h.fail(c, fiber.StatusBadRequest, *err)
	}
	values[o.LocationField] = []string{loc}
	if f := svc.Field(o.LocationField); f != nil && f.Type == gateway.FieldLocation {
		// A location field takes the address and the coordinates apart.
		values[o.LocationField] = []string{one("address_string"), one("lat"), one("long")}
	}
	if o.DescriptionField != "" {
		if d := one("description"); d != "" {
			values[o.DescriptionField] = []string{d}
		}
	}
	if o.EmailField != "" {
		if e := one("email"); e != "" {
			values[o.EmailField] = []string{e}
		}
	}
	res, serr := h.intake.Submit(c.UserContext(), intake.Request{
		Service: svc, Channel: gateway.ChannelAPI, Values: values, Errors: errs, Strict: true,
		Principal: &gateway.Principal{Subject: "open311:" + client, Name: client, Machine: true},
		Locale:    h.lang(c),
	})
	if serr != nil {
		return serr
	}
	sub := res.Submission
	return write(c, fiber.StatusOK, f, "service_requests", []postedJSON{{ServiceRequestID: sub.Reference, Token: sub.ID}})
}

// location is the text the location field receives: the address, the
// coordinates, or the address followed by the coordinates in brackets.
// lat and long come together, as WGS84 degrees in range.
func location(address, lat, long string) (string, *gateway.Message) {
	if (lat == "") != (long == "") {
		return "", &gateway.Message{ID: "open311.lat_long_pair"}
	}
	if lat == "" {
		if address == "" {
			return "", &gateway.Message{ID: "open311.location_required"}
		}
		return address, nil
	}
	la, err1 := strconv.ParseFloat(lat, 64)
	lo, err2 := strconv.ParseFloat(long, 64)
	if err1 != nil || err2 != nil || la < -90 || la > 90 || lo < -180 || lo > 180 || la != la || lo != lo {
		return "", &gateway.Message{ID: "open311.lat_long_range"}
	}
	coords := formatFloat(la) + ", " + formatFloat(lo)
	if address == "" {
		return coords, nil
	}
	return address + " (" + coords + ")", nil
}

var (
	coordsOnly = regexp.MustCompile(`^(-?\d{1,2}\.\d{6}), (-?\d{1,3}\.\d{6})$`)
	withCoords = regexp.MustCompile(`^(.*) \((-?\d{1,2}\.\d{6}), (-?\d{1,3}\.\d{6})\)$`)
)

// parseLocation reads back what location wrote (or what a resident typed).
func parseLocation(s string) (address string, lat, long *float64) {
	num := func(v string) *float64 {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil
		}
		return &f
	}
	if m := coordsOnly.FindStringSubmatch(s); m != nil {
		return "", num(m[1]), num(m[2])
	}
	if m := withCoords.FindStringSubmatch(s); m != nil {
		return m[1], num(m[2]), num(m[3])
	}
	return s, nil, nil
}

type requestJSON struct {
	XMLName           xml.Name `json:"-" xml:"request"`
	ServiceRequestID  string   `json:"service_request_id" xml:"service_request_id"`
	Status            string   `json:"status" xml:"status"`
	StatusNotes       string   `json:"status_notes" xml:"status_notes"`
	ServiceName       string   `json:"service_name" xml:"service_name"`
	ServiceCode       string   `json:"service_code" xml:"service_code"`
	Description       string   `json:"description" xml:"description"`
	AgencyResponsible string   `json:"agency_responsible" xml:"agency_responsible"`
	ServiceNotice     string   `json:"service_notice" xml:"service_notice"`
	RequestedDatetime string   `json:"requested_datetime" xml:"requested_datetime"`
	UpdatedDatetime   string   `json:"updated_datetime" xml:"updated_datetime"`
	ExpectedDatetime  string   `json:"expected_datetime" xml:"expected_datetime"`
	Address           string   `json:"address" xml:"address"`
	AddressID         string   `json:"address_id" xml:"address_id"`
	Zipcode           string   `json:"zipcode" xml:"zipcode"`
	Lat               *float64 `json:"lat" xml:"lat,omitempty"`
	Long              *float64 `json:"long" xml:"long,omitempty"`
	MediaURL          string   `json:"media_url" xml:"media_url"`
}

// Status maps our status vocabulary to Open311's: a case still being
// handled is open; decided, closed and failed (it could not be delivered,
// and a person has closed it or will) are closed.
func Status(s gateway.Status) string {
	switch s {
	case gateway.StatusDecided, gateway.StatusClosed, gateway.StatusFailed:
		return "closed"
	}
	return "open"
}

// request is a submission as Open311 shows it: no e-mail, no other field.
func (h *Handler) request(l Localizer, svc *gateway.Service, sub *gateway.Submission) requestJSON {
	o := svc.Open311
	r := requestJSON{
		ServiceRequestID: sub.Reference, Status: Status(sub.Status), ServiceName: l.T(svc.MsgTitle()),
		ServiceCode: o.ServiceCode, AgencyResponsible: l.T(gateway.MsgDepartment(svc.Department)),
		RequestedDatetime: h.datetime(sub.CreatedAt), UpdatedDatetime: h.datetime(sub.CreatedAt),
	}
	for _, ch := range sub.History {
		if ch.At.After(sub.CreatedAt) {
			r.UpdatedDatetime = h.datetime(ch.At)
		}
		if ch.Message != "" {
			r.StatusNotes = ch.Message // the department's latest message
		}
	}
	if o.DescriptionField != "" {
		r.Description, _ = sub.Payload[o.DescriptionField].(string)
	}
	switch loc := sub.Payload[o.LocationField].(type) {
	case string:
		r.Address, r.Lat, r.Long = parseLocation(loc)
	case map[string]any: // a location field: {address, lat, lon}
		r.Address, _ = loc["address"].(string)
		lat, okLat := loc["lat"].(float64)
		long, okLong := loc["lon"].(float64)
		if okLat && okLong {
			r.Lat, r.Long = &lat, &long
		}
	}
	return r
}

// GetRequest: GET requests/{service_request_id}.{format}.
func (h *Handler) GetRequest(c *fiber.Ctx) error {
	f := format(c)
	if f == "" {
		return h.NotFound(c)
	}
	if err := h.jurisdiction(c, c.Query("jurisdiction_id")); err != nil {
		return err
	}
	sub, svc, err := h.byReference(c, c.Params("id"))
	if err != nil {
		return err
	}
	if sub == nil {
		return h.fail(c, fiber.StatusNotFound, gateway.Message{ID: "open311.request_unknown"})
	}
	return write(c, fiber.StatusOK, f, "service_requests", []requestJSON{h.request(h.localize(c), svc, sub)})
}

// byReference returns a published service's submission by its reference;
// nil when there is none.
func (h *Handler) byReference(c *fiber.Ctx, ref string) (*gateway.Submission, *gateway.Service, error) {
	ctx, cancel := h.ctx(c)
	defer cancel()
	id, err := h.store.LookupReference(ctx, ref)
	if err == nil {
		var sub *gateway.Submission
		if sub, err = h.store.Get(ctx, id); err == nil {
			if svc := h.published(sub); svc != nil {
				return sub, svc, nil
			}
			return nil, nil, nil
		}
	}
	if isNotFound(err) {
		return nil, nil, nil
	}
	return nil, nil, err
}

// list splits a comma-delimited argument; empty items are dropped.
func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// GetRequests: GET requests.{format}. service_request_id (comma-delimited)
// overrides every other argument. Otherwise service_code and status
// (comma-delimited), start_date and end_date filter; without dates the last
// 90 days are shown, a span may not exceed 90 days, and at most 1000
// requests are returned, newest first. Empty arguments are absent ones.
func (h *Handler) GetRequests(c *fiber.Ctx) error {
	f := format(c)
	if f == "" {
		return h.NotFound(c)
	}
	if err := h.jurisdiction(c, c.Query("jurisdiction_id")); err != nil {
		return err
	}
	l := h.localize(c)
	out := []requestJSON{}
	if ids := list(c.Query("service_request_id")); len(ids) > 0 {
		if len(ids) > MaxIDs {
			return h.fail(c, fiber.StatusBadRequest, gateway.Message{ID: "open311.too_many_ids", Data: map[string]any{"Max": MaxIDs}})
		}
		for _, ref := range ids {
			sub, svc, err := h.byReference(c, ref)
			if err != nil {
				return err
			}
			if sub != nil {
				out = append(out, h.request(l, svc, sub))
			}
		}
		return write(c, fiber.StatusOK, f, "service_requests", out)
	}
	services := h.services
	if codes := list(c.Query("service_code")); len(codes) > 0 {
		services = nil
		for _, code := range codes {
			svc, ok := h.byCode[code]
			if !ok {
				return h.fail(c, fiber.StatusNotFound, gateway.Message{ID: "open311.service_code_unknown"})
			}
			services = append(services, svc)
		}
	}
	want := map[string]bool{}
	for _, s := range list(c.Query("status")) {
		if s != "open" && s != "closed" {
			return h.fail(c, fiber.StatusBadRequest, gateway.Message{ID: "open311.status_unknown"})
		}
		want[s] = true
	}
	from, to, bad := h.window(c.Query("start_date"), c.Query("end_date"))
	if bad != nil {
		return h.fail(c, fiber.StatusBadRequest, *bad)
	}
	byDept := map[string]map[string]*gateway.Service{}
	for _, svc := range services {
		if byDept[svc.Department] == nil {
			byDept[svc.Department] = map[string]*gateway.Service{}
		}
		byDept[svc.Department][svc.ID] = svc
	}
	var subs []*gateway.Submission
	for dept, svcs := range byDept {
		found, err := h.scan(c, dept, from, to, func(sub *gateway.Submission) bool {
			return svcs[sub.Service] != nil && (len(want) == 0 || want[Status(sub.Status)])
		})
		if err != nil {
			return err
		}
		subs = append(subs, found...)
	}
	sort.Slice(subs, func(i, j int) bool { return subs[i].CreatedAt.After(subs[j].CreatedAt) })
	if len(subs) > MaxResults {
		subs = subs[:MaxResults]
	}
	for _, sub := range subs {
		out = append(out, h.request(l, h.byID[sub.Service], sub))
	}
	return write(c, fiber.StatusOK, f, "service_requests", out)
}

// scan reads a department's submissions in [from, to], newest first, in
// pages, keeping those that match, until MaxResults match or scanLimit are
// read.
func (h *Handler) scan(c *fiber.Ctx, dept string, from, to time.Time, match func(*gateway.Submission) bool) ([]*gateway.Submission, error) {
	var out []*gateway.Submission
	for offset := 0; offset < scanLimit && len(out) < MaxResults; offset += MaxResults {
		ctx, cancel := h.ctx(c)
		page, err := h.store.DepartmentSubmissionsBetween(ctx, dept, from, to, offset, MaxResults)
		cancel()
		if err != nil {
			return nil, err
		}
		for _, sub := range page {
			if match(sub) {
				out = append(out, sub)
			}
		}
		if len(page) < MaxResults {
			break
		}
	}
	return out, nil
}

// window is the span GET requests covers: the 90 days up to end_date (or
// now), or the 90 days from start_date; both given, at most 90 days apart.
func (h *Handler) window(start, end string) (from, to time.Time, bad *gateway.Message) {
	parse := func(s string) (time.Time, bool) {
		t, err := time.Parse(time.RFC3339, s)
		return t, err == nil
	}
	var ok bool
	switch {
	case start == "" && end == "":
		to = h.cfg.Now()
		from = to.Add(-Window)
	case end == "":
		if from, ok = parse(start); !ok {
			return from, to, &gateway.Message{ID: "open311.date_invalid", Data: map[string]any{"Name": "start_date"}}
		}
		to = from.Add(Window)
	case start == "":
		if to, ok = parse(end); !ok {
			return from, to, &gateway.Message{ID: "open311.date_invalid", Data: map[string]any{"Name": "end_date"}}
		}
		from = to.Add(-Window)
	default:
		if from, ok = parse(start); !ok {
			return from, to, &gateway.Message{ID: "open311.date_invalid", Data: map[string]any{"Name": "start_date"}}
		}
		if to, ok = parse(end); !ok {
			return from, to, &gateway.Message{ID: "open311.date_invalid", Data: map[string]any{"Name": "end_date"}}
		}
		if to.Before(from) || to.Sub(from) > Window {
			return from, to, &gateway.Message{ID: "open311.date_span"}
		}
	}
	return from, to, nil
}
