// Package locales holds the gateway's own user interface strings, as go-i18n
// message files (one per language), and the translation machinery the rest
// of the gateway uses. Swedish is the default language; English is complete.
//
// The shipped languages are the ones with an active.<tag>.toml here: to add
// a language, translate every <area>.sv.toml into <area>.<tag>.toml and give
// every service a messages.<tag>.toml (or let it declare a fallback). No Go
// code names a language; names, text direction, plural rules and number and
// date formats come from CLDR. The tests fail until every message is there.
package locales

import (
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"

	"github.com/kommun/servicegateway/gateway"
)

//go:embed *.toml
var files embed.FS

// Default is the language used when nothing else is asked for; its files
// are the source every other language is translated from.
var Default = language.Swedish

// Shipped lists the languages the gateway ships, Default first and the rest
// sorted by tag. It is derived from the active.<tag>.toml files present.
var Shipped = shipped(files)

var activeFile = regexp.MustCompile(`^active\.([A-Za-z-]+)\.toml$`)

// shipped lists the tags of the active.<tag>.toml files in fsys.
func shipped(fsys fs.FS) []language.Tag {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		panic(err)
	}
	out := []language.Tag{Default}
	for _, e := range entries {
		m := activeFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		tag, err := language.Parse(m[1])
		if err != nil {
			panic(fmt.Sprintf("locales: %s: %v", e.Name(), err))
		}
		if tag != Default {
			out = append(out, tag)
		}
	}
	sort.Slice(out[1:], func(i, j int) bool { return out[1+i].String() < out[1+j].String() })
	return out
}

// Translations is the message bundle plus an index of which message IDs each
// language has, so that checks can tell a missing translation from a fallback.
type Translations struct {
	bundle *i18n.Bundle
	mu     sync.RWMutex
	ids    map[language.Tag]map[string]bool
	locs   map[language.Tag]*Localizer
}

// New loads the gateway's own message files.
func New() (*Translations, error) {
	t := &Translations{
		bundle: i18n.NewBundle(Default),
		ids:    map[language.Tag]map[string]bool{},
		locs:   map[language.Tag]*Localizer{},
	}
	t.bundle.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		buf, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return nil, err
		}
		mf, err := i18n.ParseMessageFileBytes(buf, path.Join("locales", e.Name()), map[string]i18n.UnmarshalFunc{"toml": toml.Unmarshal})
		if err != nil {
			return nil, fmt.Errorf("locales: %w", err)
		}
		if err := t.Add(mf); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Add adds message files, e.g. the services' translations.
func (t *Translations) Add(mfs ...*i18n.MessageFile) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, mf := range mfs {
		if err := t.bundle.AddMessages(mf.Tag, mf.Messages...); err != nil {
			return fmt.Errorf("%s: %w", mf.Path, err)
		}
		ids := t.ids[mf.Tag]
		if ids == nil {
			ids = map[string]bool{}
			t.ids[mf.Tag] = ids
		}
		for _, m := range mf.Messages {
			ids[m.ID] = true
		}
	}
	return nil
}

// Has reports whether the language has its own translation of the message.
func (t *Translations) Has(lang language.Tag, id string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.ids[lang][id]
}

// IDs returns the message IDs a language has, sorted.
func (t *Translations) IDs(lang language.Tag) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.ids[lang]))
	for id := range t.ids[lang] {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Localizer returns the (cached) localizer for a shipped language.
func (t *Translations) Localizer(lang language.Tag) *Localizer {
	t.mu.RLock()
	l := t.locs[lang]
	t.mu.RUnlock()
	if l != nil {
		return l
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if l = t.locs[lang]; l == nil {
		l = &Localizer{Lang: lang, l: i18n.NewLocalizer(t.bundle, lang.String())}
		t.locs[lang] = l
	}
	return l
}

var matcher = language.NewMatcher(Shipped)

// Match picks the shipped language that best fits the candidates, in order
// of preference: each is a language tag or an Accept-Language header value.
// ok is false when none of them named a shipped language.
func Match(candidates ...string) (tag language.Tag, ok bool) {
	for _, c := range candidates {
		if c == "" {
			continue
		}
		tags, _, err := language.ParseAcceptLanguage(c)
		if err != nil || len(tags) == 0 {
			continue
		}
		if _, idx, conf := matcher.Match(tags...); conf != language.No {
			return Shipped[idx], true
		}
	}
	return Default, false
}

// Parse returns the shipped language with the base of s ("sv", "en-GB").
func Parse(s string) (language.Tag, bool) {
	s = strings.TrimSpace(s)
	for _, t := range Shipped {
		b, _ := t.Base()
		if strings.EqualFold(s, t.String()) || strings.EqualFold(strings.SplitN(s, "-", 2)[0], b.String()) {
			return t, true
		}
	}
	return Default, false
}

// Localizer translates messages into one language.
type Localizer struct {
	Lang language.Tag
	l    *i18n.Localizer
}

// T translates a message. Optional data is either one map[string]any or
// key-value pairs. A missing message yields its ID, which the tests catch.
func (l *Localizer) T(id string, data ...any) string {
	return l.localize(id, nil, data)
}

// N translates a message with plural forms for count; the template sees
// .Count as well as the data.
func (l *Localizer) N(id string, count int, data ...any) string {
	return l.localize(id, count, data)
}

// Message translates a domain message. Template data that is itself a
// message (a level of assurance's name, a channel's) is translated first,
// so domain code can name such words without a localizer.
func (l *Localizer) Message(m gateway.Message) string {
	data, cloned := m.Data, false
	for k, v := range m.Data {
		if inner, ok := v.(gateway.Message); ok {
			if !cloned {
				data, cloned = maps.Clone(m.Data), true
			}
			data[k] = l.Message(inner)
		}
	}
	return l.T(m.ID, data)
}

func (l *Localizer) localize(id string, count any, data []any) string {
	var td map[string]any
	switch {
	case len(data) == 1:
		if m, ok := data[0].(map[string]any); ok {
			td = m
		}
	case len(data) > 1:
		td = make(map[string]any, len(data)/2+1)
		for i := 0; i+1 < len(data); i += 2 {
			if k, ok := data[i].(string); ok {
				td[k] = data[i+1]
			}
		}
	}
	if count != nil {
		if td == nil {
			td = map[string]any{}
		}
		td["Count"] = count
	}
	s, err := l.l.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: td, PluralCount: count})
	if err != nil {
		return id
	}
	return s
}

// Optional translates a message that may be absent (hints, descriptions):
// it returns "" when the message is not translated at all.
func (l *Localizer) Optional(id string) string {
	s, err := l.l.Localize(&i18n.LocalizeConfig{MessageID: id})
	if err != nil {
		return ""
	}
	return s
}

// Strict translates like N (or T, when count is nil) but reports what the
// lenient methods hide: a message missing in this language (go-i18n then
// falls back to Swedish), a plural form missing for the count, a template
// that fails. Tests use it to prove every language is complete.
func (l *Localizer) Strict(id string, count any, data map[string]any) (string, error) {
	s, tag, err := l.l.LocalizeWithTag(&i18n.LocalizeConfig{MessageID: id, TemplateData: data, PluralCount: count})
	if err != nil {
		return s, err
	}
	if tag != l.Lang {
		return s, fmt.Errorf("%s: %q came from %s", l.Lang, id, tag)
	}
	return s, nil
}
