package file_test

import (
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	_ "github.com/kommun/servicegateway/services/fields/file"
)

func val(a gateway.Attachment) string { return gateway.AttachmentValue(a) }

// Validate takes only stored descriptions (the intake's lookup), for this
// field, of an accepted type whose name does not say another type, within
// max_size and max_files; the value is the list of descriptions.
func TestValidate(t *testing.T) {
	f := &gateway.Field{Name: "drawings", Type: gateway.FieldFile, Required: true, Accept: []string{"application/pdf", "image/png"},
		MaxSize: 1000, MaxFiles: 2}
	k, ok := f.Kind()
	if !ok {
		t.Fatal("file kind not registered")
	}
	ok1 := gateway.Attachment{ID: "a", Field: "drawings", Name: "plan.pdf", Type: "application/pdf", Size: 10, SHA256: "x"}
	ok2 := gateway.Attachment{ID: "b", Field: "drawings", Name: "karta.png", Type: "image/png", Size: 1000, SHA256: "y"}
	cases := []struct {
		name string
		in   []string
		want string
	}{
		{"two files", []string{val(ok1), val(ok2)}, ""},
		{"an id not looked up", []string{"abcdefghijklmnopqrstuvwxyz234567"}, gateway.MsgAttachmentNotFound},
		{"a description a client wrote is still just text", []string{`{"id":"a"}`}, gateway.MsgAttachmentNotFound},
		{"another field's", []string{val(gateway.Attachment{ID: "c", Field: "other", Name: "a.pdf", Type: "application/pdf", Size: 1})}, gateway.MsgAttachmentNotFound},
		{"type not accepted", []string{val(gateway.Attachment{ID: "c", Field: "drawings", Name: "a.jpg", Type: "image/jpeg", Size: 1})}, gateway.MsgAttachmentType},
		{"png named pdf", []string{val(gateway.Attachment{ID: "c", Field: "drawings", Name: "a.pdf", Type: "image/png", Size: 1})}, gateway.MsgAttachmentType},
		{"too large", []string{val(gateway.Attachment{ID: "c", Field: "drawings", Name: "a.pdf", Type: "application/pdf", Size: 1001})}, gateway.MsgAttachmentTooLarge},
		{"too many", []string{val(ok1), val(ok2), val(gateway.Attachment{ID: "c", Field: "drawings", Name: "c.pdf", Type: "application/pdf", Size: 1})}, gateway.MsgAttachmentTooMany},
		{"required", []string{""}, gateway.MsgRequired},
	}
	for _, c := range cases {
		v, m := k.Validate(nil, f, c.in, time.Now())
		got := ""
		if m != nil {
			got = m.ID
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if c.want == "" {
			if list, ok := v.([]gateway.Attachment); !ok || len(list) != 2 || list[0] != ok1 {
				t.Errorf("%s: value %#v", c.name, v)
			}
		}
	}
	// Declarations: accept needed and from the supported set; limits bounded.
	for _, bad := range []gateway.Field{
		{Name: "x", Type: gateway.FieldFile},
		{Name: "x", Type: gateway.FieldFile, Accept: []string{"text/html"}},
		{Name: "x", Type: gateway.FieldFile, Accept: []string{"application/pdf"}, MaxSize: 1 << 40},
		{Name: "x", Type: gateway.FieldFile, Accept: []string{"application/pdf"}, MaxFiles: 11},
		{Name: "x", Type: gateway.FieldFile, Accept: []string{"application/pdf"}, Pattern: "a"},
	} {
		if len(k.Check(&bad)) == 0 {
			t.Errorf("%+v: no problem found", bad)
		}
	}
	text := gateway.Field{Name: "t", Type: gateway.FieldText, Accept: []string{"application/pdf"}}
	if len(gateway.CheckSettings(&text, gateway.SettingPattern)) == 0 {
		t.Error("accept on a text field: no problem found")
	}
}
