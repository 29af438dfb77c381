package gateway

import (
	"crypto/rand"
	"strings"
	"time"
)

// Draft is a form saved to be finished later (intake.Drafts): by a
// signed-in resident (listed on My pages), by an anonymous resident (found
// again with a resume code), or by service-point staff for a visitor who
// finishes it at home after signing in with e-ID (a handover code).
//
// A draft holds only its service's own fields (DraftValues); it is personal
// data: never logged, listed only to its owner, gone when it expires.
type Draft struct {
	// ID names a signed-in resident's draft on My pages; "" for a draft
	// found by a code (the code is its name and is not stored).
	ID      string              `json:"id,omitempty"`
	Service string              `json:"service"`
	Values  map[string][]string `json:"values"`
	// Step is the page of a multi-step form the draft was saved on.
	Step int `json:"step,omitempty"`
	// Owner is the subject of the resident whose draft it is; "" for a
	// draft found by a code.
	Owner string `json:"owner,omitempty"`
	// For is the subject of the only person who may open a handover
	// draft (the visitor's personnummer as the desk recorded it); Point
	// is the service point that started it. Both "" otherwise.
	For   string `json:"for,omitempty"`
	Point string `json:"point,omitempty"`
	// Started is the signed stamp of when the form was first drawn (usage
	// statistics), kept so that the finished form counts from its start.
	Started   string    `json:"started,omitempty"`
	SavedAt   time.Time `json:"saved_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// MaxDraftValueRunes bounds one value of a field without its own maximum
// length in a draft.
const MaxDraftValueRunes = 10000

// DraftValues keeps only svc's fields, each value at most the field's
// maximum length (in characters) and at most as many values as the field
// can take (its options, or the inputs of a value of several: a location's
// address, latitude and longitude). Names that are not fields of the
// service are dropped. This is
// the one rule for every draft: a step-up sign-in's, a language switch's,
// and a saved one's. Values of fields hidden by a condition are kept like
// the others (they are dropped when the form is sent, by the validation).
func DraftValues(svc *Service, values map[string][]string) map[string][]string {
	out := make(map[string][]string, len(svc.Fields))
	for i := range svc.Fields {
		f := &svc.Fields[i]
		vs, ok := values[f.Name]
		if !ok {
			continue
		}
		maxVals := max(1, len(f.Options))
		if k, ok := f.Kind(); ok {
			maxVals = max(maxVals, len(k.Members()))
		}
		if len(vs) > maxVals {
			vs = vs[len(vs)-maxVals:]
		}
		limit := f.MaxLength
		if limit <= 0 || limit > MaxDraftValueRunes {
			limit = MaxDraftValueRunes
		}
		kept := make([]string, 0, len(vs))
		for _, v := range vs {
			if r := []rune(v); len(r) > limit {
				v = string(r[:limit])
			}
			kept = append(kept, strings.Clone(v))
		}
		out[f.Name] = kept
	}
	return out
}

// A draft code (resume or handover) is four groups of four characters from
// an alphabet without look-alikes (no 0/O, 1/I/L, U): 30 symbols, so 16
// characters carry 78 bits, far beyond guessing under the rate limit.
const (
	DraftCodeAlphabet = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
	draftCodeLen      = 16
)

// NewDraftCode returns a new random code, grouped "XXXX-XXXX-XXXX-XXXX".
func NewDraftCode() string {
	n := len(DraftCodeAlphabet)
	limit := 256 - 256%n // rejection sampling: no bias
	out := make([]byte, 0, draftCodeLen+3)
	buf := make([]byte, 32)
	for len(out) < draftCodeLen+3 {
		_, _ = rand.Read(buf) // never fails (crypto/rand)
		for _, b := range buf {
			if int(b) >= limit || len(out) == draftCodeLen+3 {
				continue
			}
			if len(out) == 4 || len(out) == 9 || len(out) == 14 {
				out = append(out, '-')
			}
			out = append(out, DraftCodeAlphabet[int(b)%n])
		}
	}
	return string(out)
}

// NormalizeDraftCode reads a code as people type it: any case, with or
// without spaces and dashes. ok is false when it cannot be a code (wrong
// length, or a character outside the alphabet).
func NormalizeDraftCode(s string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			continue
		case r < 128 && strings.IndexByte(DraftCodeAlphabet, byte(r)) >= 0:
			if b.Len() >= draftCodeLen {
				return "", false
			}
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	c := b.String()
	if len(c) != draftCodeLen {
		return "", false
	}
	return c[:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:], true
}
