package gateway

import (
	"encoding/json"
	"errors"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kommun/servicegateway/gateway/sniff"
)

// Attachment is a file a resident attached to a form field of kind "file".
// The record keeps only this description; the bytes are held by the store
// until the submission has been delivered (the gateway is a conduit, not an
// archive) and are handed to the department through the service's
// connector.
type Attachment struct {
	ID     string `json:"id"`     // unguessable, drawn at upload
	Field  string `json:"field"`  // the form field it was attached to
	Name   string `json:"name"`   // sanitised file name (SanitizeFilename)
	Type   string `json:"type"`   // media type found by sniffing the content, never the client's claim
	Size   int64  `json:"size"`   // bytes
	SHA256 string `json:"sha256"` // lower-case hex digest of the bytes, also signed in the receipt
	// Scope binds an upload to whoever uploaded it (a signed-in person, a
	// form's token, an API client): only a submission from the same scope
	// may attach it, so an id seen elsewhere cannot be used by someone
	// else. Kept by the store, never in the payload or sent on.
	Scope string `json:"-"`
	// Scanned: the malware scanner found it clean (kept by the store;
	// a file held while the scanner was down is scanned again at submit).
	Scanned bool `json:"-"`
}

// Defaults and upper bounds of a file field's settings (manifest keys
// max_size and max_files).
const (
	DefaultAttachmentMaxSize  = 10_000_000
	DefaultAttachmentMaxFiles = 1
	LimitAttachmentMaxSize    = 50_000_000
	LimitAttachmentMaxFiles   = 10
)

// AttachmentMaxSize is the largest file field f takes.
func (f *Field) AttachmentMaxSize() int64 {
	if f.MaxSize > 0 {
		return f.MaxSize
	}
	return DefaultAttachmentMaxSize
}

// AttachmentMaxFiles is the most files field f takes.
func (f *Field) AttachmentMaxFiles() int {
	if f.MaxFiles > 0 {
		return f.MaxFiles
	}
	return DefaultAttachmentMaxFiles
}

// AcceptsAttachment reports whether field f takes a file of media type m
// (found by sniffing) named name: m must be in accept, and the name's
// extension must not say another supported type ("plan.pdf" holding a
// PNG is refused).
func (f *Field) AcceptsAttachment(m, name string) bool {
	return slices.Contains(f.Accept, m) && sniff.ExtensionFits(name, m)
}

// AcceptedTypes is the accepted types' names for people ("PDF, PNG").
func (f *Field) AcceptedTypes() string {
	names := make([]string, 0, len(f.Accept))
	for _, m := range f.Accept {
		if t, ok := sniff.Lookup(m); ok {
			names = append(names, t.Name)
		}
	}
	return strings.Join(names, ", ")
}

// Errors about an uploaded file that the resident can fix; the edge turns
// them into field messages.
var (
	ErrAttachmentTooLarge  = errors.New("attachment too large")
	ErrAttachmentType      = errors.New("attachment type not allowed")
	ErrAttachmentInfected  = errors.New("attachment refused by the malware scanner")
	ErrAttachmentTooMany   = errors.New("too many attachments")
	ErrAttachmentNotFound  = errors.New("attachment not found or expired")
	ErrAttachmentEmptyFile = errors.New("attachment is empty")
)

// SanitizeFilename makes a client-supplied file name safe to show, store
// and send on: the last path element only (either slash), control, bidi
// and other format characters removed, whitespace folded, at most 100 bytes
// (cut on a rune boundary, the extension kept), and "file" when nothing is
// left.
func SanitizeFilename(name string) string {
	name = strings.ReplaceAll(name, `\`, "/")
	name = path.Base(name)
	var b strings.Builder
	space := false
	for _, r := range name {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r), unicode.Is(unicode.Cf, r):
			continue
		case unicode.IsSpace(r):
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	name = strings.Trim(b.String(), ". ")
	if name == "" || name == "/" {
		return "file"
	}
	const max = 100
	if len(name) > max {
		ext := path.Ext(name)
		if len(ext) > 16 {
			ext = ""
		}
		base := name[:len(name)-len(ext)]
		cut := max - len(ext)
		for cut > 0 && !utf8.RuneStart(base[cut]) {
			cut--
		}
		name = base[:cut] + ext
	}
	return name
}

// ParseSize reads a size in bytes: digits with an optional unit, KB, MB
// and GB in powers of 1000, KiB, MiB and GiB in powers of 1024 ("10MB",
// "512 KiB", "1048576").
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 12 {
		return 0, errors.New("not a size")
	}
	var n int64
	for _, c := range s[:i] {
		n = n*10 + int64(c-'0')
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30}
	m, ok := mult[strings.ToUpper(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, errors.New("unknown unit " + strings.TrimSpace(s[i:]))
	}
	return n * m, nil
}

// FormatSize writes a size for people: "12 MB", "340 kB", "512 B"
// (powers of 1000, whole numbers, rounded down, so a limit is never shown
// larger than it is).
func FormatSize(n int64) string {
	switch {
	case n >= 1e9:
		return strconv.FormatInt(n/1e9, 10) + " GB"
	case n >= 1e6:
		return strconv.FormatInt(n/1e6, 10) + " MB"
	case n >= 1e3:
		return strconv.FormatInt(n/1e3, 10) + " kB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// attachmentValuePrefix marks a file field's value that is a stored
// attachment's description (AttachmentValue), not an id a client sent.
const attachmentValuePrefix = "attachment:"

// AttachmentValue is how the intake hands a stored attachment's
// description to the file kind's Validate: the values of a file field are
// attachment ids as sent, and the intake replaces each with the
// description the store holds (never one a client wrote).
func AttachmentValue(a Attachment) string {
	b, _ := json.Marshal(a) // strings and numbers: cannot fail
	return attachmentValuePrefix + string(b)
}

// ParseAttachmentValue reads an AttachmentValue; ok false for anything
// else (such as an id that was not looked up).
func ParseAttachmentValue(v string) (Attachment, bool) {
	rest, ok := strings.CutPrefix(v, attachmentValuePrefix)
	if !ok {
		return Attachment{}, false
	}
	var a Attachment
	if json.Unmarshal([]byte(rest), &a) != nil || a.ID == "" {
		return Attachment{}, false
	}
	return a, true
}
