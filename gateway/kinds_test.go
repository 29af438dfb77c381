package gateway_test

import (
	"slices"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	// The built-in field kinds, as cmd/gateway registers them.
	_ "github.com/kommun/servicegateway/services/fields/all"
)

// Every built-in kind registers itself through services/fields/all.
func TestFieldKindsRegistered(t *testing.T) {
	want := []string{"checkbox", "date", "email", "multi-select", "number", "personnummer", "phone", "select", "text", "textarea"}
	for _, name := range want {
		if _, ok := gateway.LookupFieldKind(name); !ok {
			t.Errorf("field kind %q is not registered", name)
		}
	}
	if _, ok := gateway.LookupFieldKind("colour"); ok {
		t.Error("an unregistered kind was found")
	}
	for _, name := range want {
		if !slices.Contains(gateway.FieldKindNames(), name) {
			t.Errorf("FieldKindNames lacks %q", name)
		}
	}
}

func TestRegisterFieldKindTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("registering a kind twice did not panic")
		}
	}()
	gateway.RegisterFieldKind("text", testKind{})
}

// A kind registered from outside the built-in ones is what Validate uses:
// adding a kind needs no change in the gateway package.
func init() { gateway.RegisterFieldKind("test-upper", testKind{}) }

func TestValidateUsesRegisteredKind(t *testing.T) {
	svc := &gateway.Service{ID: "s", Fields: []gateway.Field{{Name: "f", Type: "test-upper", Required: true}}}
	got, errs := svc.Validate(map[string][]string{"f": {"abc"}}, time.Now())
	if errs != nil || got["f"] != "ABC" {
		t.Fatalf("got %v, %v; want f = ABC", got, errs)
	}
	_, errs = svc.Validate(map[string][]string{"f": {"a\x00"}}, time.Now())
	if errs["f"].ID != gateway.MsgInvalidEncoding {
		t.Fatalf("got %v, want %s", errs, gateway.MsgInvalidEncoding)
	}
	unknown := &gateway.Service{ID: "s", Fields: []gateway.Field{{Name: "f", Type: "no-such-kind"}}}
	if _, errs := unknown.Validate(map[string][]string{"f": {"x"}}, time.Now()); errs["f"].ID != gateway.MsgType {
		t.Fatalf("unknown kind: got %v, want %s", errs, gateway.MsgType)
	}
}

func TestCheckSettings(t *testing.T) {
	one := 1.0
	f := &gateway.Field{Name: "f", Type: "test-upper", Options: []string{"a"}, Min: &one, MinDate: "today", Pattern: "x"}
	var keys []string
	for _, p := range gateway.CheckSettings(f, 0) {
		keys = append(keys, p.Key)
	}
	if want := []string{"options", "min", "min_date", "pattern"}; !slices.Equal(keys, want) {
		t.Fatalf("problems for %v, want %v", keys, want)
	}
	if p := gateway.CheckSettings(f, gateway.SettingOptions|gateway.SettingRange|gateway.SettingDates|gateway.SettingPattern); len(p) != 0 {
		t.Fatalf("all allowed: got %v", p)
	}
	if p := gateway.CheckSettings(&gateway.Field{Name: "f", Type: "select"}, gateway.SettingOptions); len(p) != 1 || p[0].Key != "type" {
		t.Fatalf("options missing: got %v", p)
	}
}

type testKind struct{}

func (testKind) Check(f *gateway.Field) []gateway.FieldProblem { return gateway.CheckSettings(f, 0) }

func (testKind) Validate(_ *gateway.Service, f *gateway.Field, in []string, _ time.Time) (any, *gateway.Message) {
	v, m := gateway.TextValue(f, in, false, 10)
	if m != nil || v == "" {
		return nil, m
	}
	out := []byte(v)
	for i, c := range out {
		if c >= 'a' && c <= 'z' {
			out[i] = c - 'a' + 'A'
		}
	}
	return string(out), nil
}

func (testKind) Schema(*gateway.Field) map[string]any { return map[string]any{"type": "string"} }

func (testKind) View(*gateway.Field, []string) gateway.FieldView { return gateway.FieldView{} }

func (testKind) Members() []string { return nil }

func (testKind) Example(*gateway.Field) any { return "EXAMPLE" }
