package gateway_test

import (
	"testing"

	"github.com/kommun/servicegateway/gateway"
)

// Text fields refuse characters a resident does not type and a case
// officer cannot see: control characters and bidirectional overrides,
// embeddings and isolates (issue 9, item 11). Line breaks stay allowed in
// multi-line text; the directional marks Arabic and Hebrew keyboards type
// stay allowed everywhere.
func TestValidateHiddenCharacters(t *testing.T) {
	text := gateway.Field{Name: "f", Type: gateway.FieldText}
	area := gateway.Field{Name: "f", Type: gateway.FieldTextarea}
	email := gateway.Field{Name: "f", Type: gateway.FieldEmail}
	cases := []struct {
		name  string
		field gateway.Field
		in    string
		bad   bool
	}{
		{"right-to-left override", text, "Storgatan \u202e1 nagrotS", true},
		{"left-to-right embedding", area, "ett \u202atvå", true},
		{"pop directional formatting", text, "a\u202cb", true},
		{"first strong isolate", area, "a\u2068b\u2069", true},
		{"escape", text, "a\x1b[31mb", true},
		{"bell", area, "a\x07b", true},
		{"DEL", text, "a\x7fb", true},
		{"C1 control", text, "a\u0085b", true},
		{"line break in one-line text", text, "rad 1\nrad 2", true},
		{"tab inside one-line text", text, "a\tb", true},
		{"in an e-mail address", email, "anna\u202e@example.se", true},
		{"line breaks in multi-line text", area, "rad 1\r\nrad 2\tindrag", false},
		{"trailing newline in one-line text is trimmed", text, "Storgatan 1\n", false},
		{"right-to-left mark", text, "שלום\u200f", false},
		{"Arabic letter mark", area, "مرحبا\u061c", false},
		{"zero-width joiner (emoji, Indic scripts)", text, "👩\u200d👩\u200d👧", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := &gateway.Service{ID: "s", Fields: []gateway.Field{tc.field}}
			_, errs := svc.Validate(map[string][]string{"f": {tc.in}}, now)
			m, failed := errs["f"]
			if tc.bad && (!failed || m.ID != gateway.MsgControlChars) {
				t.Fatalf("%q accepted (%v)", tc.in, errs)
			}
			if !tc.bad && failed {
				t.Fatalf("%q refused: %v", tc.in, m)
			}
		})
	}
}
