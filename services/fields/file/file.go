// Package file is the "file" field kind: files attached to the form, each
// stored by the gateway's attachment store until the submission has been
// delivered. The manifest declares per field:
//
//	accept    = ["application/pdf", "image/png"]  # media types (gateway/sniff.Types)
//	max_size  = "10MB"                             # per file (default gateway.DefaultAttachmentMaxSize)
//	max_files = 3                                  # files (default gateway.DefaultAttachmentMaxFiles)
//
// A file's type is what its bytes say (gateway/sniff), never its name or
// the browser's claim; a name whose extension names another supported
// type is refused too. The values the kind validates are descriptions of
// stored attachments that the intake looked up by the ids sent
// (gateway.AttachmentValue); the payload value is the list of those
// descriptions (id, field, name, type, size, sha256). The JSON API sends a
// file field as an array of attachment ids (POST /api/v1/uploads returns
// them), or uploads the files in a multipart/form-data submission.
package file

import (
	"slices"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/sniff"
)

// Name is the kind's name in manifests.
const Name = string(gateway.FieldFile)

func init() { gateway.RegisterFieldKind(Name, kind{}) }

type kind struct{}

func (kind) Check(f *gateway.Field) []gateway.FieldProblem {
	out := gateway.CheckSettings(f, gateway.SettingFile)
	if len(f.Accept) == 0 {
		out = append(out, gateway.FieldProblem{Key: "accept", Msg: "a file field needs accept, the media types it takes"})
	}
	for _, m := range f.Accept {
		if _, ok := sniff.Lookup(m); !ok {
			var known []string
			for _, t := range sniff.Types {
				known = append(known, t.Media)
			}
			out = append(out, gateway.FieldProblem{Key: "accept", Msg: "unsupported media type " + m + " (supported: " + strings.Join(known, ", ") + ")"})
		}
	}
	if f.MaxSize < 0 || f.MaxSize > gateway.LimitAttachmentMaxSize {
		out = append(out, gateway.FieldProblem{Key: "max_size", Msg: "max_size must be at most " + gateway.FormatSize(gateway.LimitAttachmentMaxSize)})
	}
	if f.MaxFiles < 0 || f.MaxFiles > gateway.LimitAttachmentMaxFiles {
		out = append(out, gateway.FieldProblem{Key: "max_files", Msg: "max_files must be between 1 and 10"})
	}
	return out
}

func (kind) Members() []string { return nil }

// Validate checks the stored attachments' descriptions against the
// field: count, type, size, and that each was uploaded for this field.
func (kind) Validate(_ *gateway.Service, f *gateway.Field, in []string, _ time.Time) (any, *gateway.Message) {
	var out []gateway.Attachment
	for _, v := range in {
		if strings.TrimSpace(v) == "" {
			continue // an empty file input, or an empty form value
		}
		a, ok := gateway.ParseAttachmentValue(v)
		if !ok || a.Field != f.Name {
			return nil, gateway.NewMessage(gateway.MsgAttachmentNotFound)
		}
		if !f.AcceptsAttachment(a.Type, a.Name) {
			return nil, gateway.NewMessage(gateway.MsgAttachmentType, "Name", a.Name, "Allowed", f.AcceptedTypes())
		}
		if a.Size > f.AttachmentMaxSize() {
			return nil, gateway.NewMessage(gateway.MsgAttachmentTooLarge, "Name", a.Name, "Max", gateway.FormatSize(f.AttachmentMaxSize()))
		}
		if a.Size <= 0 {
			return nil, gateway.NewMessage(gateway.MsgAttachmentEmpty, "Name", a.Name)
		}
		if !slices.ContainsFunc(out, func(b gateway.Attachment) bool { return b.ID == a.ID }) {
			out = append(out, a)
		}
	}
	if len(out) > f.AttachmentMaxFiles() {
		return nil, gateway.NewMessage(gateway.MsgAttachmentTooMany, "Max", f.AttachmentMaxFiles())
	}
	if len(out) == 0 {
		if f.Required {
			return nil, gateway.NewMessage(gateway.MsgRequired)
		}
		return nil, nil
	}
	return out, nil
}

// IDPattern is the shape of an attachment id (gateway.NewID).
const IDPattern = "^[a-z2-7]{32}$"

// Schema: an array of attachment ids.
func (kind) Schema(f *gateway.Field) map[string]any {
	p := map[string]any{
		"type":     "array",
		"items":    map[string]any{"type": "string", "pattern": IDPattern},
		"maxItems": f.AttachmentMaxFiles(),
		"description": "Ids of files uploaded with POST /api/v1/uploads (or file parts of a multipart/form-data " +
			"submission). Accepted types: " + strings.Join(f.Accept, ", ") + "; at most " + gateway.FormatSize(f.AttachmentMaxSize()) + " each.",
	}
	if f.Required {
		p["minItems"] = 1
	}
	return p
}

// View: a file input, the accepted types as its accept attribute, and the
// files already attached (kept across a redrawn form or a step).
func (kind) View(f *gateway.Field, vals []string) gateway.FieldView {
	v := gateway.FieldView{InputType: "file", Note: "file.note",
		NoteData: map[string]any{"Allowed": f.AcceptedTypes(), "Max": gateway.FormatSize(f.AttachmentMaxSize()), "Count": f.AttachmentMaxFiles()}}
	var accept []string
	for _, m := range f.Accept {
		accept = append(accept, m)
		if t, ok := sniff.Lookup(m); ok {
			accept = append(accept, t.Extensions...)
		}
	}
	v.Accept = strings.Join(accept, ",")
	for _, s := range vals {
		if a, ok := gateway.ParseAttachmentValue(s); ok {
			v.Files = append(v.Files, gateway.AttachedFile{ID: a.ID, Name: a.Name, Size: gateway.FormatSize(a.Size)})
		}
	}
	return v
}

// Example: one attachment id.
func (kind) Example(*gateway.Field) any { return []string{"abcdefghijklmnopqrstuvwxyz234567"} }
