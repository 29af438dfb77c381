// Package notice holds front-door notices: what administrators publish on
// the gateway's pages about a disruption, a crisis or planned maintenance.
// A notice has a text in every shipped language, a severity, a start and
// an end, and may be limited to some services or departments. It is shown
// from its start to its end on every page it concerns, and in the API; an
// expired notice is gone (readers filter by the clock, writers prune).
package notice

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kommun/servicegateway/gateway"
)

// Severity is how serious a notice is. Crisis information is announced to
// screen readers at once (role="alert"); the others are a region with a
// heading.
type Severity string

const (
	Maintenance Severity = "maintenance"
	Disruption  Severity = "disruption"
	Crisis      Severity = "crisis"
)

// Severities lists them, least serious first.
var Severities = []Severity{Maintenance, Disruption, Crisis}

// Limits on what is stored (every store of client data is bounded).
const (
	MaxActive   = 50                   // notices stored at once (not yet expired)
	MaxTitle    = 120                  // characters
	MaxBody     = 1000                 // characters
	MaxTargets  = 50                   // services plus departments
	MaxDuration = 366 * 24 * time.Hour // from start to end
	MaxJSON     = 64 * 1024            // a notice as stored, bytes
)

// Text is a notice in one language.
type Text struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// Notice is one front-door notice.
type Notice struct {
	ID          string          `json:"id"`
	Severity    Severity        `json:"severity"`
	Texts       map[string]Text `json:"texts"` // language tag -> text, every shipped language
	Start       time.Time       `json:"start"`
	End         time.Time       `json:"end"`
	Services    []string        `json:"services,omitempty"`    // limited to these services
	Departments []string        `json:"departments,omitempty"` // or these departments; both empty: everywhere
	CreatedAt   time.Time       `json:"created_at"`
	CreatedBy   string          `json:"created_by,omitempty"` // the administrator's subject
}

// NewID returns a random notice id.
func NewID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// ValidID: ids are 16 lower-case base32 characters.
func ValidID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Validate checks a notice before it is stored: langs are the shipped
// language tags (each needs a title and a body), known reports whether a
// service or department exists. Problems are field errors keyed by form
// field name (severity, start, end, title_<lang>, body_<lang>, services,
// departments).
func (n *Notice) Validate(langs []string, knownService, knownDepartment func(string) bool, now time.Time) gateway.FieldErrors {
	errs := gateway.FieldErrors{}
	if !slices.Contains(Severities, n.Severity) {
		errs["severity"] = gateway.Message{ID: "notice.error.severity"}
	}
	for _, l := range langs {
		t := n.Texts[l]
		t.Title, t.Body = strings.TrimSpace(t.Title), strings.TrimSpace(t.Body)
		n.Texts[l] = t
		if t.Title == "" || utf8.RuneCountInString(t.Title) > MaxTitle {
			errs["title_"+l] = gateway.Message{ID: "notice.error.title", Data: map[string]any{"Max": MaxTitle}}
		}
		if t.Body == "" || utf8.RuneCountInString(t.Body) > MaxBody {
			errs["body_"+l] = gateway.Message{ID: "notice.error.body", Data: map[string]any{"Max": MaxBody}}
		}
	}
	for l := range n.Texts {
		if !slices.Contains(langs, l) {
			delete(n.Texts, l)
		}
	}
	switch {
	case n.Start.IsZero():
		errs["start"] = gateway.Message{ID: "notice.error.time"}
	case n.End.IsZero() || !n.End.After(n.Start) || n.End.Sub(n.Start) > MaxDuration || !n.End.After(now):
		errs["end"] = gateway.Message{ID: "notice.error.end"}
	}
	if len(n.Services)+len(n.Departments) > MaxTargets {
		errs["services"] = gateway.Message{ID: "notice.error.targets"}
	}
	for _, s := range n.Services {
		if !knownService(s) {
			errs["services"] = gateway.Message{ID: "notice.error.targets"}
		}
	}
	for _, d := range n.Departments {
		if !knownDepartment(d) {
			errs["departments"] = gateway.Message{ID: "notice.error.targets"}
		}
	}
	return errs
}

// ActiveAt reports whether the notice is shown at t.
func (n *Notice) ActiveAt(t time.Time) bool { return !t.Before(n.Start) && t.Before(n.End) }

// Concerns reports whether the notice belongs on a page about service (of
// department); service "" is a page about no service (the catalog), where
// only notices for everything are shown.
func (n *Notice) Concerns(service, department string) bool {
	if len(n.Services) == 0 && len(n.Departments) == 0 {
		return true
	}
	if service == "" {
		return false
	}
	return slices.Contains(n.Services, service) || slices.Contains(n.Departments, department)
}

// Text returns the text in lang, or in fallback.
func (n *Notice) Text(lang, fallback string) Text {
	if t, ok := n.Texts[lang]; ok {
		return t
	}
	return n.Texts[fallback]
}

// Select returns the notices active at now that concern the page, most
// serious first, then newest start first.
func Select(all []Notice, now time.Time, service, department string) []Notice {
	var out []Notice
	for _, n := range all {
		if n.ActiveAt(now) && n.Concerns(service, department) {
			out = append(out, n)
		}
	}
	slices.SortStableFunc(out, func(a, b Notice) int {
		if d := slices.Index(Severities, b.Severity) - slices.Index(Severities, a.Severity); d != 0 {
			return d
		}
		return b.Start.Compare(a.Start)
	})
	return out
}

// ErrFull is the cause when MaxActive notices are stored already.
var ErrFull = fmt.Errorf("notice: at most %d notices at once", MaxActive)
