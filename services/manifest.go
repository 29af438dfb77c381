// Package services loads the e-services that departments plug into the
// gateway: one folder per service holding a TOML manifest (service.toml) and
// go-i18n translation files (messages.<lang>.toml). Decoding is strict: every
// problem is reported with the file and line it comes from.
package services

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"

	"github.com/kommun/servicegateway/gateway"
)

// ManifestName is the file name of a service manifest.
const ManifestName = "service.toml"

// manifest is the TOML shape of service.toml.
type manifest struct {
	ID            string   `toml:"id"`
	Version       string   `toml:"version"`
	Department    string   `toml:"department"`
	Category      string   `toml:"category"`
	Keywords      []string `toml:"keywords"`
	Assurance     string   `toml:"assurance"`
	Channels      []string `toml:"channels"`
	RetentionDays int      `toml:"retention_days"`
	// FallbackLanguage lets a service ship a subset of the languages: a
	// message missing in a shipped language is shown in this one instead
	// of stopping the gateway. It must be a shipped language the service
	// translates completely.
	FallbackLanguage string `toml:"fallback_language"`
	// NotifyEmailField names the form's e-mail field whose value, when
	// given, is where the resident is told about progress (optional).
	NotifyEmailField string          `toml:"notify_email_field"`
	Fields           []fieldManifest `toml:"fields"`
	Steps            []stepManifest  `toml:"steps"`
	Route            struct {
		Kind     string         `toml:"kind"`
		Settings toml.Primitive `toml:"settings"`
	} `toml:"route"`
	Open311 *open311Manifest `toml:"open311"`
}

type fieldManifest struct {
	Name         string   `toml:"name"`
	Type         string   `toml:"type"`
	Required     bool     `toml:"required"`
	MinLength    int      `toml:"min_length"`
	MaxLength    int      `toml:"max_length"`
	Pattern      string   `toml:"pattern"`
	Min          *float64 `toml:"min"`
	Max          *float64 `toml:"max"`
	MinDate      string   `toml:"min_date"`
	MaxDate      string   `toml:"max_date"`
	Options      []string `toml:"options"`
	Autocomplete string   `toml:"autocomplete"`
	// ShowIf: the field is shown only when these hold (steps.go).
	ShowIf []conditionManifest `toml:"show_if"`
	// Prefill: "personnummer" or "name", taken from the sign-in.
	Prefill string `toml:"prefill"`
	// Require: for a location, "address", "coordinates" or "either".
	Require string `toml:"require"`
	// File fields: accepted media types, the largest file ("10MB",
	// "512KiB" or bytes) and the most files.
	Accept   []string `toml:"accept"`
	MaxSize  string   `toml:"max_size"`
	MaxFiles int      `toml:"max_files"`
}

// Problem is one thing wrong with a service's files.
type Problem struct {
	File string
	Line int // 0 when no line applies
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return p.File + ": " + p.Msg
}

// Problems is every problem found while loading; it is an error.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Options configures Load.
type Options struct {
	// Locales are the shipped languages; every service must be translated
	// into each of them. The first is the default.
	Locales []language.Tag
	// Known reports whether a message ID is translated outside the services
	// (in locales/) for a language, e.g. shared department names.
	Known func(lang language.Tag, id string) bool
}

// Loaded is what Load found: the services, their connector modules and the
// translations to add to the i18n bundle.
type Loaded struct {
	Services     []*gateway.Service // sorted by ID
	Modules      map[string]ConnectorModule
	Translations []*i18n.MessageFile
}

var (
	idPattern    = regexp.MustCompile(`^[a-z][a-z0-9-]{1,62}$`)
	namePattern  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	optPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	verPattern   = regexp.MustCompile(`^\d+\.\d+\.\d+$`)
	transPattern = regexp.MustCompile(`^messages\.([A-Za-z-]+)\.toml$`)
)

// Load reads every service folder below root in fsys. It returns all
// problems together, so that a department sees every mistake at once.
func Load(fsys fs.FS, opts Options) (*Loaded, error) {
	var manifests []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == ManifestName {
			manifests = append(manifests, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(manifests) == 0 {
		return nil, Problems{{File: ".", Msg: "no " + ManifestName + " found"}}
	}
	sort.Strings(manifests)
	out := &Loaded{Modules: map[string]ConnectorModule{}}
	var problems Problems
	seen := map[string]string{}
	for _, p := range manifests {
		svc, mod, files, ps := loadOne(fsys, p, opts)
		problems = append(problems, ps...)
		if svc == nil {
			continue
		}
		if other, dup := seen[svc.ID]; dup {
			problems = append(problems, Problem{File: p, Line: 1, Msg: fmt.Sprintf("service id %q is already used by %s", svc.ID, other)})
			continue
		}
		seen[svc.ID] = p
		if svc.Prefix != "" {
			if other, dup := seen["prefix "+svc.Prefix]; dup {
				problems = append(problems, Problem{File: p, Line: 1, Msg: fmt.Sprintf("prefix %q is already served by %s", svc.Prefix, other)})
				continue
			}
			seen["prefix "+svc.Prefix] = p
		}
		if len(ps) == 0 {
			out.Services = append(out.Services, svc)
			out.Modules[svc.ID] = mod
			out.Translations = append(out.Translations, files...)
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	sort.Slice(out.Services, func(i, j int) bool { return out.Services[i].ID < out.Services[j].ID })
	return out, nil
}

func loadOne(fsys fs.FS, file string, opts Options) (*gateway.Service, ConnectorModule, []*i18n.MessageFile, Problems) {
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, nil, nil, Problems{{File: file, Msg: err.Error()}}
	}
	var m manifest
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&m)
	if err != nil {
		return nil, nil, nil, Problems{tomlProblem(file, err)}
	}
	lines := indexKeys(data)
	v := &validator{file: file, lines: lines}

	svc := &gateway.Service{
		ID: m.ID, Version: m.Version, Department: m.Department, Category: m.Category,
		Keywords: m.Keywords, Retention: time.Duration(m.RetentionDays) * 24 * time.Hour,
		Route: gateway.Route{Kind: m.Route.Kind}, Source: file,
	}
	v.check(idPattern.MatchString(m.ID), "id", "id must be lower-case letters, digits and '-' (2 to 63 characters), got %q", m.ID)
	v.check(verPattern.MatchString(m.Version), "version", "version must look like 1.0.0, got %q", m.Version)
	v.check(idPattern.MatchString(m.Department), "department", "department must be an id of lower-case letters, digits and '-', got %q", m.Department)
	v.check(idPattern.MatchString(m.Category), "category", "category must be an id of lower-case letters, digits and '-', got %q", m.Category)
	a, err := gateway.ParseAssurance(m.Assurance)
	v.check(err == nil, "assurance", "assurance must be none, low, substantial or high, got %q", m.Assurance)
	svc.Assurance = a
	if len(m.Channels) == 0 {
		m.Channels = []string{string(gateway.ChannelDigital), string(gateway.ChannelAssisted)}
	}
	for _, c := range m.Channels {
		ch := gateway.Channel(c)
		v.check(ch.Valid(), "channels", "unknown channel %q (want one of %s)", c, joinChannels())
		svc.Channels = append(svc.Channels, ch)
	}
	v.check(m.RetentionDays >= 1 && m.RetentionDays <= 3650, "retention_days", "retention_days must be between 1 and 3650, got %d", m.RetentionDays)
	var fallback language.Tag
	if m.FallbackLanguage != "" {
		tag, err := language.Parse(m.FallbackLanguage)
		ok := err == nil && containsTag(opts.Locales, tag)
		v.check(ok, "fallback_language", "fallback_language must be a shipped language (%s), got %q", joinTags(opts.Locales), m.FallbackLanguage)
		if ok {
			fallback = tag
		}
	}

	names := map[string]bool{}
	for i, fm := range m.Fields {
		f := v.field(i, fm, names)
		svc.Fields = append(svc.Fields, f)
	}
	v.steps(svc, m.Steps, m.Fields)
	svc.Open311 = v.open311(svc, m.Open311)
	if m.NotifyEmailField != "" {
		f := svc.Field(m.NotifyEmailField)
		v.check(f != nil && f.Type == gateway.FieldEmail, "notify_email_field", "notify_email_field must name a field of type email, got %q", m.NotifyEmailField)
		svc.NotifyEmailField = m.NotifyEmailField
	}

	// The route: a registered connector kind, its settings decoded strictly.
	var mod ConnectorModule
	decoded := false
	if info, ok := lookupConnector(m.Route.Kind); !ok {
		v.check(false, "route.kind", "unknown connector kind %q (known: %s)", m.Route.Kind, strings.Join(ConnectorKinds(), ", "))
	} else {
		mod = info.New()
		if err := md.PrimitiveDecode(m.Route.Settings, mod); err != nil {
			v.problems = append(v.problems, tomlProblem(file, err))
		} else {
			decoded = true
			if err := mod.Validate(); err != nil {
				v.check(false, "route.settings", "route.settings: %v", err)
			}
		}
	}
	// A module that serves an existing e-service takes no form; any
	// other needs one.
	if fe, ok := mod.(Frontend); ok && decoded {
		svc.Prefix = fe.ServePrefix()
		v.check(len(m.Fields) == 0 && len(m.Steps) == 0, "route.kind", "a service routed to %q serves an existing e-service and has no [[fields]] or [[steps]]", m.Route.Kind)
	} else {
		v.check(len(m.Fields) > 0, "id", "a service needs at least one [[fields]] entry")
	}
	for _, k := range md.Undecoded() {
		// Settings that could not be decoded were never looked at; the
		// reason is said above.
		if !decoded && strings.HasPrefix(k.String(), "route.settings") {
			continue
		}
		v.problems = append(v.problems, Problem{File: file, Line: lines.take(k.String()), Msg: fmt.Sprintf("unknown key %q", k.String())})
	}
	if len(v.problems) > 0 {
		sort.SliceStable(v.problems, func(i, j int) bool { return v.problems[i].Line < v.problems[j].Line })
		return svc, nil, nil, v.problems
	}
	files, ps := loadTranslations(fsys, file, svc, fallback, opts, lines)
	return svc, mod, files, ps
}

var tomlLineErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// tomlProblem turns a TOML decoding error into a Problem with its line.
func tomlProblem(file string, err error) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.LastKey != "" && !strings.Contains(msg, pe.LastKey) {
			msg = pe.LastKey + ": " + msg
		}
		return Problem{File: file, Line: pe.Position.Line, Msg: msg}
	}
	if m := tomlLineErr.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: line, Msg: m[2] + ": " + m[3]}
	}
	return Problem{File: file, Msg: err.Error()}
}

func joinChannels() string {
	s := make([]string, len(gateway.Channels))
	for i, c := range gateway.Channels {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

type validator struct {
	file     string
	lines    *keyLines
	problems Problems
	fieldIdx int
}

func (v *validator) check(ok bool, key, format string, args ...any) {
	if !ok {
		v.problems = append(v.problems, Problem{File: v.file, Line: v.lines.line(key, v.fieldIdx), Msg: fmt.Sprintf(format, args...)})
	}
}

func (v *validator) field(i int, fm fieldManifest, names map[string]bool) gateway.Field {
	v.fieldIdx = i
	defer func() { v.fieldIdx = 0 }()
	f := gateway.Field{
		Name: fm.Name, Type: gateway.FieldType(fm.Type), Required: fm.Required,
		MinLength: fm.MinLength, MaxLength: fm.MaxLength, Pattern: fm.Pattern,
		Min: fm.Min, Max: fm.Max, MinDate: fm.MinDate, MaxDate: fm.MaxDate,
		Options: fm.Options, Autocomplete: fm.Autocomplete, Prefill: fm.Prefill, Require: fm.Require,
		Accept: fm.Accept, MaxFiles: fm.MaxFiles,
	}
	if fm.MaxSize != "" {
		n, err := gateway.ParseSize(fm.MaxSize)
		v.check(err == nil && n > 0, "fields.max_size", "field %q: max_size must be a size such as \"10MB\" or \"512KiB\": %v", fm.Name, err)
		f.MaxSize = n
	}
	switch fm.Prefill {
	case "":
	case gateway.PrefillPersonnummer:
		v.check(f.Type == gateway.FieldPersonnummer, "fields.prefill", "field %q: prefill = \"personnummer\" needs type personnummer", fm.Name)
	case gateway.PrefillName:
		v.check(f.Type == gateway.FieldText, "fields.prefill", "field %q: prefill = \"name\" needs type text", fm.Name)
	default:
		v.check(false, "fields.prefill", "field %q: prefill must be personnummer or name, got %q", fm.Name, fm.Prefill)
	}
	v.check(namePattern.MatchString(fm.Name), "fields.name", "field name must be lower-case letters, digits and '_', got %q", fm.Name)
	v.check(!names[fm.Name], "fields.name", "field name %q is used twice", fm.Name)
	names[fm.Name] = true
	kind, known := f.Kind()
	v.check(known, "fields.type", "field %q: unknown type %q", fm.Name, fm.Type)
	v.check(fm.MinLength >= 0 && fm.MaxLength >= 0, "fields.min_length", "field %q: lengths cannot be negative", fm.Name)
	v.check(fm.MaxLength == 0 || fm.MinLength <= fm.MaxLength, "fields.min_length", "field %q: min_length is greater than max_length", fm.Name)
	// Which settings apply is the kind's to say (services/fields/<kind>);
	// an unknown kind takes none but a pattern.
	var kindProblems []gateway.FieldProblem
	if known {
		kindProblems = kind.Check(&f)
	} else {
		kindProblems = gateway.CheckSettings(&f, gateway.SettingPattern)
	}
	for _, p := range kindProblems {
		v.check(false, "fields."+p.Key, "field %q: %s", fm.Name, p.Msg)
	}
	seen := map[string]bool{}
	for _, o := range fm.Options {
		v.check(optPattern.MatchString(o), "fields.options", "field %q: option %q must be lower-case letters, digits, '_' and '-'", fm.Name, o)
		v.check(!seen[o], "fields.options", "field %q: option %q is listed twice", fm.Name, o)
		seen[o] = true
	}
	v.check(fm.Min == nil || fm.Max == nil || *fm.Min <= *fm.Max, "fields.min", "field %q: min is greater than max", fm.Name)
	v.check(fm.MinDate == "" || gateway.ValidDateSpec(fm.MinDate), "fields.min_date", "field %q: min_date must be YYYY-MM-DD or today, today+N, today-N", fm.Name)
	v.check(fm.MaxDate == "" || gateway.ValidDateSpec(fm.MaxDate), "fields.max_date", "field %q: max_date must be YYYY-MM-DD or today, today+N, today-N", fm.Name)
	if fm.Pattern != "" {
		re, err := regexp.Compile(`^(?:` + fm.Pattern + `)$`)
		v.check(err == nil, "fields.pattern", "field %q: invalid pattern: %v", fm.Name, err)
		f.Regexp = re
	}
	return f
}

func containsTag(tags []language.Tag, t language.Tag) bool {
	for _, x := range tags {
		if x == t {
			return true
		}
	}
	return false
}

func joinTags(tags []language.Tag) string {
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t.String()
	}
	return strings.Join(out, ", ")
}

// loadTranslations reads messages.<lang>.toml next to the manifest and
// checks that every shipped locale has every message the service needs.
// With a fallback language (not und), a locale may lack messages or the
// whole file: the fallback's text is added under that locale instead.
func loadTranslations(fsys fs.FS, file string, svc *gateway.Service, fallback language.Tag, opts Options, lines *keyLines) ([]*i18n.MessageFile, Problems) {
	dir := path.Dir(file)
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, Problems{{File: dir, Msg: err.Error()}}
	}
	var problems Problems
	var files []*i18n.MessageFile
	have := map[language.Tag]map[string]bool{}
	byTag := map[language.Tag]*i18n.MessageFile{}
	for _, e := range entries {
		m := transPattern.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		p := path.Join(dir, e.Name())
		buf, err := fs.ReadFile(fsys, p)
		if err != nil {
			problems = append(problems, Problem{File: p, Msg: err.Error()})
			continue
		}
		mf, err := i18n.ParseMessageFileBytes(buf, p, map[string]i18n.UnmarshalFunc{"toml": toml.Unmarshal})
		if err != nil {
			problems = append(problems, Problem{File: p, Msg: err.Error()})
			continue
		}
		ids := map[string]bool{}
		for _, msg := range mf.Messages {
			if !strings.HasPrefix(msg.ID, svc.ID+".") && !strings.HasPrefix(msg.ID, "department.") && !strings.HasPrefix(msg.ID, "category.") {
				problems = append(problems, Problem{File: p, Line: indexKeys(buf).take(msg.ID), Msg: fmt.Sprintf("message %q must start with %q (or be a department. or category. name)", msg.ID, svc.ID+".")})
			}
			ids[msg.ID] = true
		}
		have[mf.Tag] = ids
		byTag[mf.Tag] = mf
		files = append(files, mf)
	}
	hasFallback := fallback != language.Und && have[fallback] != nil
	for _, tag := range opts.Locales {
		ids := have[tag]
		want := path.Join(dir, "messages."+tag.String()+".toml")
		if ids == nil && !(hasFallback && tag != fallback) {
			problems = append(problems, Problem{File: want, Msg: fmt.Sprintf("missing translation file for shipped locale %q", tag)})
			continue
		}
		// With a fallback, whatever this locale lacks (required or optional,
		// such as hints) is taken from the fallback language's file.
		var borrowed []*i18n.Message
		if hasFallback && tag != fallback {
			for _, m := range byTag[fallback].Messages {
				if !ids[m.ID] {
					borrowed = append(borrowed, m)
				}
			}
		}
		for _, id := range svc.RequiredMessages() {
			if ids[id] || findMessage(borrowed, id) != nil || (opts.Known != nil && opts.Known(tag, id)) {
				continue
			}
			problems = append(problems, Problem{File: file, Line: lines.forMessage(svc, id),
				Msg: fmt.Sprintf("missing translation %q in %s", id, want)})
		}
		if len(borrowed) > 0 {
			files = append(files, &i18n.MessageFile{Path: byTag[fallback].Path, Tag: tag, Format: "toml", Messages: borrowed})
		}
	}
	return files, problems
}

func findMessage(msgs []*i18n.Message, id string) *i18n.Message {
	for _, m := range msgs {
		if m.ID == id {
			return m
		}
	}
	return nil
}
