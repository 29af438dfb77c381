// Package servicepoint holds the municipality's service points
// (servicepunkter), where staff help visitors who cannot or will not use an
// e-service alone: the configured list of points, how a visitor's identity
// was checked at the desk and the level of assurance that supports, and the
// outcomes of a contact at the desk. It imports no web framework and no
// database client.
package servicepoint

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
	"golang.org/x/text/language"

	"github.com/kommun/servicegateway/gateway"
)

// Point is one service point, as configured.
type Point struct {
	ID           string   `toml:"id" json:"id"`
	Name         string   `toml:"name" json:"name"`
	Address      string   `toml:"address" json:"address"`
	OpeningHours string   `toml:"opening_hours" json:"opening_hours"`
	Languages    []string `toml:"languages" json:"languages"` // BCP 47 tags of the languages spoken
}

// Directory is the configured service points, in file order.
type Directory struct {
	points []Point
}

//go:embed default.toml
var defaultFile []byte

// Default is the demo's built-in list (it includes sp-centrum, the service
// point of the development identity provider's staff persona).
func Default() *Directory {
	d, err := Parse(defaultFile, "servicepoint/default.toml")
	if err != nil {
		panic(err)
	}
	return d
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Parse reads a service points file (TOML, strictly: unknown keys are
// errors). source names the file in messages.
func Parse(data []byte, source string) (*Directory, error) {
	var f struct {
		Points []Point `toml:"points"`
	}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown keys: %s", source, strings.Join(keys, ", "))
	}
	var errs []string
	seen := map[string]bool{}
	for i, p := range f.Points {
		where := fmt.Sprintf("%s: points[%d]", source, i)
		switch {
		case !idPattern.MatchString(p.ID):
			errs = append(errs, where+": id must be lower-case letters, digits and '-'")
		case seen[p.ID]:
			errs = append(errs, where+": id "+p.ID+" appears twice")
		}
		seen[p.ID] = true
		if strings.TrimSpace(p.Name) == "" {
			errs = append(errs, where+": name is required")
		}
		for _, l := range p.Languages {
			if _, err := language.Parse(l); err != nil {
				errs = append(errs, where+": language "+l+" is not a BCP 47 tag")
			}
		}
	}
	if len(f.Points) == 0 {
		errs = append(errs, source+": no service points ([[points]])")
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return &Directory{points: f.Points}, nil
}

// All returns the points in file order.
func (d *Directory) All() []Point {
	if d == nil {
		return nil
	}
	return d.points
}

// Get returns the point with the id.
func (d *Directory) Get(id string) (Point, bool) {
	if d == nil {
		return Point{}, false
	}
	for _, p := range d.points {
		if p.ID == id {
			return p, true
		}
	}
	return Point{}, false
}

// IdentityCheck is how staff checked a visitor's identity before filing on
// their behalf.
type IdentityCheck string

// Identity checks.
const (
	CheckIDDocument IdentityCheck = "id_document" // a valid Swedish ID document shown at the desk
	CheckEID        IdentityCheck = "eid"         // the visitor signed in with e-ID on the desk's device
	CheckKnown      IdentityCheck = "known"       // personally known to the staff member
)

// IdentityChecks lists every identity check.
var IdentityChecks = []IdentityCheck{CheckIDDocument, CheckEID, CheckKnown}

// Valid reports whether c is one of IdentityChecks.
func (c IdentityCheck) Valid() bool { return slices.Contains(IdentityChecks, c) }

// Assurance is the level of assurance an identity check supports when staff
// file on a visitor's behalf:
//
//	id_document -> substantial (an approved ID document, checked in person)
//	eid         -> substantial (e-ID at the desk; the staff member's own
//	               sign-in and the desk setting cap it, so never high)
//	known       -> low (personal knowledge is no verified identification)
//
// No check supports high: a service that needs high must be signed by the
// visitor with their own e-ID.
func (c IdentityCheck) Assurance() gateway.Assurance {
	switch c {
	case CheckIDDocument, CheckEID:
		return gateway.AssuranceSubstantial
	case CheckKnown:
		return gateway.AssuranceLow
	}
	return gateway.AssuranceNone
}

// Outcome is how a contact at a service point ended.
type Outcome string

// Outcomes.
const (
	OutcomeResolved         Outcome = "resolved"           // resolved at the desk
	OutcomeFiledWithHelp    Outcome = "filed_with_help"    // filed with help (the submission counts itself)
	OutcomeShownSelfService Outcome = "shown_self_service" // shown how to use the e-service
	OutcomeReferred         Outcome = "referred"           // referred elsewhere
)

// Outcomes lists every outcome.
var Outcomes = []Outcome{OutcomeResolved, OutcomeFiledWithHelp, OutcomeShownSelfService, OutcomeReferred}

// Valid reports whether o is one of Outcomes.
func (o Outcome) Valid() bool { return slices.Contains(Outcomes, o) }

// ContactChannel is how a contact registered at the desk was made.
type ContactChannel string

// Contact channels.
const (
	ContactVisit ContactChannel = "visit"
	ContactPhone ContactChannel = "phone"
	ContactPaper ContactChannel = "paper"
	ContactEmail ContactChannel = "email"
)

// ContactChannels lists every contact channel.
var ContactChannels = []ContactChannel{ContactVisit, ContactPhone, ContactPaper, ContactEmail}

// Valid reports whether c is one of ContactChannels.
func (c ContactChannel) Valid() bool { return slices.Contains(ContactChannels, c) }

// UsageChannel is the usage model's channel of a contact: a visit to a
// service point is "assisted"; the others keep their name.
func (c ContactChannel) UsageChannel() gateway.Channel {
	if c == ContactVisit {
		return gateway.ChannelAssisted
	}
	return gateway.Channel(c)
}

// CountsInUsage reports whether a contact with this outcome is registered
// with the usage model (usage.Recorder.RecordContact). A contact that was
// filed with help became a submission through the gateway, which the usage
// model already counts by its own "submitted" event; counting the contact
// too would count it twice. It is kept in the service point's statistics
// only.
func (o Outcome) CountsInUsage() bool { return o != OutcomeFiledWithHelp }

// AuditEntry is one action taken on behalf of a resident: who (the staff
// member's subject and name), when, where (service point), which subject
// (masked: the date of birth and four stars), and what.
type AuditEntry struct {
	ID            string `json:"id,omitempty"` // the stream entry id, set when read
	At            string `json:"at"`           // RFC 3339
	Actor         string `json:"actor"`
	ActorName     string `json:"actor_name"`
	ServicePoint  string `json:"service_point"`
	Subject       string `json:"subject"` // masked personnummer, never in full
	Action        string `json:"action"`
	Service       string `json:"service,omitempty"`
	Reference     string `json:"reference,omitempty"` // the receipt reference, never the submission id
	IdentityCheck string `json:"identity_check,omitempty"`
}

// Audit actions.
const (
	ActionFiled          = "filed_on_behalf"   // a submission filed for the visitor
	ActionRefused        = "refused_assurance" // refused: the service needs more than the identity check supports
	ActionReceiptPrinted = "receipt_viewed"    // the printable receipt opened at the desk
	ActionHandedOver     = "handed_over"       // a started form handed to the visitor to finish at home (a one-time code)
)
