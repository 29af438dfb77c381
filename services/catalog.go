package services

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"strings"
	"unicode"

	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"

	"github.com/kommun/servicegateway/gateway"
)

// Search limits: a query is a few words typed by a person; longer input is
// cut, so that one request cannot make the index do unbounded work.
const (
	MaxQueryBytes = 200
	MaxQueryWords = 10
)

// Catalog is the set of services the gateway offers, with a search index
// over their texts in every shipped language. It never changes after
// NewCatalog; Version names its content.
type Catalog struct {
	services []*gateway.Service
	byID     map[string]*gateway.Service
	version  string

	// The search index, built once: every distinct folded word of the
	// services' texts (tokens), which services each token occurs in
	// (postings, ascending indexes into services), and every suffix of
	// every token, sorted, so that "the query word occurs inside a token"
	// is a binary search for the suffixes that start with the word.
	tokens   []string
	postings [][]int32
	suffixes []suffix
}

type suffix struct {
	text  string // a suffix of tokens[token]
	token int32
}

// NewCatalog builds the catalog. text returns a message in a language ("" if
// absent); every language's title, summary, keywords, department and
// category are indexed, so that a search in either language finds a service.
func NewCatalog(svcs []*gateway.Service, langs []language.Tag, text func(lang language.Tag, id string) string) *Catalog {
	c := &Catalog{services: svcs, byID: map[string]*gateway.Service{}}
	h := sha256.New()
	tokenID := map[string]int32{}
	for i, s := range svcs {
		c.byID[s.ID] = s
		parts := []string{s.ID, strings.Join(s.Keywords, " ")}
		for _, l := range langs {
			for _, id := range []string{s.MsgTitle(), s.MsgSummary(), s.MsgKeywords(), gateway.MsgDepartment(s.Department), gateway.MsgCategory(s.Category)} {
				parts = append(parts, text(l, id))
			}
		}
		all := strings.Join(parts, " | ")
		h.Write([]byte(s.Version + " " + all))
		h.Write([]byte{0})
		for _, tok := range strings.Fields(Fold(all)) {
			id, ok := tokenID[tok]
			if !ok {
				id = int32(len(c.tokens))
				tokenID[tok] = id
				c.tokens = append(c.tokens, tok)
				c.postings = append(c.postings, nil)
			}
			if p := c.postings[id]; len(p) == 0 || p[len(p)-1] != int32(i) {
				c.postings[id] = append(p, int32(i))
			}
		}
	}
	for id, tok := range c.tokens {
		for j := range tok {
			c.suffixes = append(c.suffixes, suffix{text: tok[j:], token: int32(id)})
		}
	}
	sort.Slice(c.suffixes, func(i, j int) bool { return c.suffixes[i].text < c.suffixes[j].text })
	c.version = hex.EncodeToString(h.Sum(nil)[:12])
	return c
}

// All returns every service, sorted by id.
func (c *Catalog) All() []*gateway.Service { return c.services }

// Version is a hash of every service's id, version and indexed texts: two
// catalogs with the same version show the same thing.
func (c *Catalog) Version() string { return c.version }

// Get returns the service with the id.
func (c *Catalog) Get(id string) (*gateway.Service, bool) {
	s, ok := c.byID[id]
	return s, ok
}

// Search returns the services whose texts contain every word of the query,
// ignoring case and diacritics ("forskola" finds "Förskola"); a word may be
// any part of a word of the texts ("belysning" finds "gatubelysning"). An
// empty query returns every service. Only the first MaxQueryBytes bytes and
// MaxQueryWords words of the query count. The cost grows with the number
// of matching words of the index, not with the size of the catalog.
func (c *Catalog) Search(query string) []*gateway.Service {
	words := QueryWords(query)
	if len(words) == 0 {
		return c.services
	}
	var hits []int32 // services matching every word so far, ascending
	for i, w := range words {
		m := c.matching(w)
		if i == 0 {
			hits = m
		} else {
			hits = intersect(hits, m)
		}
		if len(hits) == 0 {
			return nil
		}
	}
	out := make([]*gateway.Service, len(hits))
	for i, idx := range hits {
		out[i] = c.services[idx]
	}
	return out
}

// QueryWords folds a search query and splits it into words, within the
// limits MaxQueryBytes and MaxQueryWords.
func QueryWords(query string) []string {
	if len(query) > MaxQueryBytes {
		query = query[:MaxQueryBytes] // a cut rune folds to a space
	}
	words := strings.Fields(Fold(query))
	if len(words) > MaxQueryWords {
		words = words[:MaxQueryWords]
	}
	return words
}

// matching returns the services (ascending) with a token containing w.
func (c *Catalog) matching(w string) []int32 {
	lo := sort.Search(len(c.suffixes), func(i int) bool { return c.suffixes[i].text >= w })
	var tokens []int32
	for i := lo; i < len(c.suffixes) && strings.HasPrefix(c.suffixes[i].text, w); i++ {
		tokens = append(tokens, c.suffixes[i].token)
	}
	switch len(tokens) {
	case 0:
		return nil
	case 1:
		return c.postings[tokens[0]]
	}
	seen := make([]bool, len(c.services))
	n := 0
	for _, t := range tokens {
		for _, s := range c.postings[t] {
			if !seen[s] {
				seen[s] = true
				n++
			}
		}
	}
	out := make([]int32, 0, n)
	for i, ok := range seen {
		if ok {
			out = append(out, int32(i))
		}
	}
	return out
}

// intersect returns the elements of both ascending lists.
func intersect(a, b []int32) []int32 {
	out := make([]int32, 0, min(len(a), len(b)))
	for len(a) > 0 && len(b) > 0 {
		switch {
		case a[0] == b[0]:
			out = append(out, a[0])
			a, b = a[1:], b[1:]
		case a[0] < b[0]:
			a = a[1:]
		default:
			b = b[1:]
		}
	}
	return slices.Clip(out)
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
