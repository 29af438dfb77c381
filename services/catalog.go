package services

import (
	"strings"
	"unicode"

	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"

	"github.com/kommun/servicegateway/gateway"
)

// Catalog is the set of services the gateway offers, with a search index
// over their texts in every shipped language.
type Catalog struct {
	services []*gateway.Service
	byID     map[string]*gateway.Service
	index    map[string]string // service id -> folded searchable text
}

// NewCatalog builds the catalog. text returns a message in a language ("" if
// absent); every language's title, summary, keywords, department and
// category are indexed, so that a search in either language finds a service.
func NewCatalog(svcs []*gateway.Service, langs []language.Tag, text func(lang language.Tag, id string) string) *Catalog {
	c := &Catalog{services: svcs, byID: map[string]*gateway.Service{}, index: map[string]string{}}
	for _, s := range svcs {
		c.byID[s.ID] = s
		parts := []string{s.ID, strings.Join(s.Keywords, " ")}
		for _, l := range langs {
			for _, id := range []string{s.MsgTitle(), s.MsgSummary(), s.MsgKeywords(), gateway.MsgDepartment(s.Department), gateway.MsgCategory(s.Category)} {
				parts = append(parts, text(l, id))
			}
		}
		c.index[s.ID] = Fold(strings.Join(parts, " | "))
	}
	return c
}

// All returns every service, sorted by id.
func (c *Catalog) All() []*gateway.Service { return c.services }

// Get returns the service with the id.
func (c *Catalog) Get(id string) (*gateway.Service, bool) {
	s, ok := c.byID[id]
	return s, ok
}

// Search returns the services whose texts contain every word of the query,
// ignoring case and diacritics ("forskola" finds "Förskola"). An empty
// query returns every service.
func (c *Catalog) Search(query string) []*gateway.Service {
	words := strings.Fields(Fold(query))
	if len(words) == 0 {
		return c.services
	}
	var out []*gateway.Service
	for _, s := range c.services {
		text := c.index[s.ID]
		match := true
		for _, w := range words {
			if !strings.Contains(text, w) {
				match = false
				break
			}
		}
		if match {
			out = append(out, s)
		}
	}
	return out
}

// Fold lower-cases s and removes diacritics, so that "Förskola", "förskola"
// and "forskola" compare equal. Punctuation becomes space.
func Fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			// a combining mark: the diacritic of the previous letter
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteByte(' ')
		}
	}
	return b.String()
}
