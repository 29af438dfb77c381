package gateway

import (
	"errors"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
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
