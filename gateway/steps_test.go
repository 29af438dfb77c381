package gateway_test

import (
	"reflect"
	"sort"
	"testing"

	"github.com/kommun/servicegateway/gateway"
)

// conditional is a small multi-step service: the second step only for
// representatives; on the third, a field for some projects only, one for
// demolition only, one for a checked box, one for any chosen help.
func conditional() *gateway.Service {
	return &gateway.Service{ID: "c", Fields: []gateway.Field{
		{Name: "project", Type: gateway.FieldSelect, Required: true, Options: []string{"house", "garage", "demolition"}},
		{Name: "as", Type: gateway.FieldSelect, Required: true, Options: []string{"owner", "representative"}},
		{Name: "owner", Type: gateway.FieldText, Required: true},
		{Name: "area", Type: gateway.FieldNumber, Required: true, ShowIf: []gateway.Condition{{Field: "project", OneOf: []string{"house", "garage"}}}},
		{Name: "reason", Type: gateway.FieldTextarea, Required: true, ShowIf: []gateway.Condition{{Field: "project", Equals: "demolition"}}},
		{Name: "agree", Type: gateway.FieldCheckbox},
		{Name: "why", Type: gateway.FieldText, Required: true, ShowIf: []gateway.Condition{{Field: "agree", Equals: "true"}}},
		{Name: "help", Type: gateway.FieldMultiSelect, Options: []string{"a", "b"}},
		{Name: "which", Type: gateway.FieldText, Required: true, ShowIf: []gateway.Condition{{Field: "help", IsSet: true}, {Field: "owner", IsSet: true}}},
	}, Steps: []gateway.Step{
		{ID: "one", Fields: []string{"project", "as"}},
		{ID: "two", Fields: []string{"owner"}, ShowIf: []gateway.Condition{{Field: "as", Equals: "representative"}}},
		{ID: "three", Fields: []string{"area", "reason", "agree", "why", "help", "which"}},
	}}
}

func shownNames(svc *gateway.Service, v map[string][]string) []string {
	var out []string
	for name, ok := range svc.Shown(v) {
		if ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func TestConditionsDecideWhatIsShown(t *testing.T) {
	svc := conditional()
	cases := []struct {
		name   string
		values map[string][]string
		want   []string
	}{
		{"nothing answered", nil, []string{"agree", "as", "help", "project"}},
		{"owner building a house", map[string][]string{"project": {"house"}, "as": {"owner"}}, []string{"agree", "area", "as", "help", "project"}},
		{"demolition", map[string][]string{"project": {"demolition"}}, []string{"agree", "as", "help", "project", "reason"}},
		{"representative: step two", map[string][]string{"as": {"representative"}}, []string{"agree", "as", "help", "owner", "project"}},
		{"checked box", map[string][]string{"agree": {"on"}}, []string{"agree", "as", "help", "project", "why"}},
		{"unchecked box", map[string][]string{"agree": {"false"}}, []string{"agree", "as", "help", "project"}},
		// Both conditions must hold; owner is on a hidden step, so
		// "is set" does not hold even though a value was sent for it.
		{"all conditions, one on a hidden step", map[string][]string{"help": {"a"}, "owner": {"Olle"}}, []string{"agree", "as", "help", "project"}},
		{"all conditions hold", map[string][]string{"help": {"a"}, "owner": {"Olle"}, "as": {"representative"}}, []string{"agree", "as", "help", "owner", "project", "which"}},
		{"blank answer is not set", map[string][]string{"help": {" "}, "owner": {"Olle"}, "as": {"representative"}}, []string{"agree", "as", "help", "owner", "project"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := shownNames(svc, c.values); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("shown %v, want %v", got, c.want)
			}
		})
	}
}

// A hidden field is neither validated nor stored, even when a value for
// it is sent; a shown one is required as declared.
func TestHiddenFieldsAreDropped(t *testing.T) {
	svc := conditional()
	payload, errs := svc.Validate(map[string][]string{
		"project": {"house"}, "as": {"owner"}, "area": {"120"},
		"owner":  {"Someone else"},      // on the hidden step two
		"reason": {"not for a house!!"}, // for demolition only
		"why":    {"box not checked"},
	}, now)
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	want := map[string]any{"project": "house", "as": "owner", "area": 120.0, "agree": false}
	if !reflect.DeepEqual(payload, want) {
		t.Fatalf("payload %v, want %v", payload, want)
	}
	_, errs = svc.Validate(map[string][]string{"project": {"demolition"}, "as": {"representative"}}, now)
	if _, ok := errs["reason"]; !ok {
		t.Fatalf("a shown required field was not required: %v", errs)
	}
	if _, ok := errs["owner"]; !ok {
		t.Fatalf("a field on a shown step was not required: %v", errs)
	}
	if _, ok := errs["area"]; ok {
		t.Fatalf("a hidden field was validated: %v", errs)
	}
}

func TestValidateFieldsChecksOneStep(t *testing.T) {
	svc := conditional()
	values := map[string][]string{"project": {"garage"}}
	errs := svc.ValidateFields(values, svc.Steps[0].Fields, svc.Shown(values), now)
	if len(errs) != 1 || errs["as"].ID != gateway.MsgRequired {
		t.Fatalf("step one: %v", errs)
	}
	if svc.StepShown(1, values, svc.Shown(values)) {
		t.Fatal("step two shown without a representative")
	}
}
