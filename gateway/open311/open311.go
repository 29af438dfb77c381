// Package open311 is an Open311 GeoReport v2 facade over the catalog and
// the intake: a street-fault app that speaks Open311 lists the services a
// manifest publishes ([open311]), posts service requests (which go through
// the one intake, channel api, like any other submission) and follows their
// status. Every resource answers in JSON and XML, chosen by the path's
// .json or .xml suffix; errors are the spec's [{code, description}] list.
// Its routes are registered in gateway/httpapi/routes.go.
//
// Identifiers: a request's service_request_id is the submission's receipt
// reference (short, shown to people); the token POST requests also returns
// is the submission id, which GET tokens/{token} turns into the
// service_request_id. A token is not an id and an id is not a token.
//
// Published services' requests are public here (description, address,
// status and the department's latest message), as Open311 intends; an
// e-mail address and every other field are never shown.
package open311

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/intake"
)

// Specification is the URL of the GeoReport v2 specification, as discovery
// names it.
const Specification = "http://wiki.open311.org/GeoReport_v2"

// Limits of GET requests (the spec's defaults).
const (
	// Window is the default and the longest span of start_date..end_date.
	Window = 90 * 24 * time.Hour
	// MaxResults is the most requests one GET requests returns.
	MaxResults = 1000
	// MaxIDs is the most service_request_id values one GET requests takes.
	MaxIDs = 100
	// scanLimit bounds how many of a department's submissions one GET
	// requests reads to find its published services' requests.
	scanLimit = 10 * MaxResults
)

// Submitter is the intake's submit use case.
type Submitter interface {
	Submit(ctx context.Context, r intake.Request) (intake.Result, error)
}

// Store reads submissions. The Redis store implements it.
type Store interface {
	Get(ctx context.Context, id string) (*gateway.Submission, error)
	LookupReference(ctx context.Context, reference string) (string, error)
	DepartmentSubmissionsBetween(ctx context.Context, department string, from, to time.Time, offset, count int) ([]*gateway.Submission, error)
}

// Localizer translates into one language (*locales.Localizer).
type Localizer interface {
	T(id string, data ...any) string
	Optional(id string) string
	Message(m gateway.Message) string
}

// Deps is what the facade needs.
type Deps struct {
	// Services is the catalog; those with Open311 set are published.
	Services []*gateway.Service
	Intake   Submitter
	Store    Store
	// Localizer picks the language for the candidates (the locale query
	// parameter, then Accept-Language) and returns its translations and
	// its tag.
	Localizer func(candidates ...string) (Localizer, string)
	Config    Config
}

// Config holds the facade's settings.
type Config struct {
	// BaseURL is the endpoint's external URL, e.g.
	// https://e-tjanster.example.se/open311/v2, for discovery.
	BaseURL string
	// Jurisdiction is the jurisdiction_id this endpoint serves; when set,
	// a request naming another one is answered 404. Empty: the argument
	// is ignored (one jurisdiction).
	Jurisdiction string
	// Keys maps an api_key to the client it belongs to. Without keys,
	// POST requests answers 403 to everyone.
	Keys map[string]string
	// Contact and KeyService are discovery's contact and key_service texts.
	Contact, KeyService string
	// Test marks the endpoint as type "test" in discovery.
	Test bool
	// StoreTimeout bounds every store call; default 3s.
	StoreTimeout time.Duration
	// Location is the time zone of datetimes; default Europe/Stockholm.
	Location *time.Location
	// Now is the clock; tests may set it.
	Now func() time.Time
}

// Handler serves the Open311 resources; its methods are fiber handlers.
type Handler struct {
	services  []*gateway.Service          // published, by service code
	byCode    map[string]*gateway.Service // service code -> service
	byID      map[string]*gateway.Service // service id -> published service
	intake    Submitter
	store     Store
	localizer func(...string) (Localizer, string)
	keys      map[[32]byte]string // sha256(api_key) -> client
	cfg       Config
	changeset time.Time
}

// New returns the handler; it fails when a dependency is missing.
func New(d Deps) (*Handler, error) {
	if d.Intake == nil || d.Store == nil || d.Localizer == nil {
		return nil, errors.New("open311: Intake, Store and Localizer are required")
	}
	c := d.Config
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 3 * time.Second
	}
	if c.Location == nil {
		loc, err := time.LoadLocation("Europe/Stockholm")
		if err != nil {
			loc = time.UTC
		}
		c.Location = loc
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	h := &Handler{byCode: map[string]*gateway.Service{}, byID: map[string]*gateway.Service{}, intake: d.Intake,
		store: d.Store, localizer: d.Localizer, keys: map[[32]byte]string{}, cfg: c, changeset: c.Now()}
	for _, svc := range d.Services {
		if svc.Open311 == nil {
			continue
		}
		if other, dup := h.byCode[svc.Open311.ServiceCode]; dup {
			return nil, errors.New("open311: service_code " + svc.Open311.ServiceCode + " is used by " + other.ID + " and " + svc.ID)
		}
		h.byCode[svc.Open311.ServiceCode] = svc
		h.byID[svc.ID] = svc
		h.services = append(h.services, svc)
	}
	sort.Slice(h.services, func(i, j int) bool { return h.services[i].Open311.ServiceCode < h.services[j].Open311.ServiceCode })
	for key, client := range c.Keys {
		if key == "" || client == "" {
			return nil, errors.New("open311: an api_key and its client must not be empty")
		}
		h.keys[sha256.Sum256([]byte(key))] = client
	}
	return h, nil
}

// client returns the client an api_key belongs to. Keys are compared by
// their hashes, in constant time.
func (h *Handler) client(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	sum := sha256.Sum256([]byte(key))
	for k, client := range h.keys {
		if subtle.ConstantTimeCompare(k[:], sum[:]) == 1 {
			return client, true
		}
	}
	return "", false
}

// published returns the published service of a submission, or nil.
func (h *Handler) published(sub *gateway.Submission) *gateway.Service {
	return h.byID[sub.Service]
}

func (h *Handler) localize(c *fiber.Ctx) Localizer {
	l, _ := h.localizer(c.Query("locale"), c.Get(fiber.HeaderAcceptLanguage))
	return l
}

// lang is the request's language tag, for the receipt's locale.
func (h *Handler) lang(c *fiber.Ctx) string {
	_, tag := h.localizer(c.Query("locale"), c.Get(fiber.HeaderAcceptLanguage))
	return tag
}

func (h *Handler) ctx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), h.cfg.StoreTimeout)
}

// datetime formats t as a W3C datetime with the zone's offset.
func (h *Handler) datetime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(h.cfg.Location).Format(time.RFC3339)
}
