package gateway_test

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

func fp(x float64) *float64 { return &x }

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// A table of valid and invalid values for every field type. The wanted
// message is the go-i18n ID; locales tests check each ID reads well in
// every language.
func TestValidateFieldTypes(t *testing.T) {
	cases := []struct {
		name  string
		field gateway.Field
		in    []string
		want  any    // typed payload value; nil = left out
		err   string // message ID; "" = valid
	}{
		{"text ok", gateway.Field{Type: gateway.FieldText}, []string{"  Storgatan 1 "}, "Storgatan 1", ""},
		{"text empty optional", gateway.Field{Type: gateway.FieldText}, []string{""}, nil, ""},
		{"text missing optional", gateway.Field{Type: gateway.FieldText}, nil, nil, ""},
		{"text required empty", gateway.Field{Type: gateway.FieldText, Required: true}, []string{"   "}, nil, gateway.MsgRequired},
		{"text required missing", gateway.Field{Type: gateway.FieldText, Required: true}, nil, nil, gateway.MsgRequired},
		{"text too short", gateway.Field{Type: gateway.FieldText, MinLength: 3}, []string{"ab"}, nil, gateway.MsgMinLength},
		{"text min counts runes", gateway.Field{Type: gateway.FieldText, MinLength: 3}, []string{"åäö"}, "åäö", ""},
		{"text too long", gateway.Field{Type: gateway.FieldText, MaxLength: 5}, []string{"abcdef"}, nil, gateway.MsgMaxLength},
		{"text default max", gateway.Field{Type: gateway.FieldText}, []string{strings.Repeat("a", 201)}, nil, gateway.MsgMaxLength},
		{"text two values", gateway.Field{Type: gateway.FieldText}, []string{"a", "b"}, nil, gateway.MsgSingleValue},
		{"text invalid utf8", gateway.Field{Type: gateway.FieldText}, []string{"a\xffb"}, nil, gateway.MsgInvalidEncoding},
		{"text NUL", gateway.Field{Type: gateway.FieldText}, []string{"a\x00b"}, nil, gateway.MsgInvalidEncoding},
		{"pattern ok", gateway.Field{Name: "org", Type: gateway.FieldText, Regexp: regexp.MustCompile(`^(?:\d{6}-\d{4})$`)}, []string{"556677-8899"}, "556677-8899", ""},
		{"pattern bad", gateway.Field{Name: "org", Type: gateway.FieldText, Regexp: regexp.MustCompile(`^(?:\d{6}-\d{4})$`)}, []string{"5566778899"}, nil, "svc.field.org.pattern_error"},
		{"textarea keeps lines", gateway.Field{Type: gateway.FieldTextarea}, []string{"rad 1\r\nrad 2"}, "rad 1\nrad 2", ""},
		{"textarea default max", gateway.Field{Type: gateway.FieldTextarea}, []string{strings.Repeat("a", 5001)}, nil, gateway.MsgMaxLength},
		{"number int", gateway.Field{Type: gateway.FieldNumber}, []string{"12"}, 12.0, ""},
		{"number swedish decimal", gateway.Field{Type: gateway.FieldNumber}, []string{"3,5"}, 3.5, ""},
		{"number dot decimal", gateway.Field{Type: gateway.FieldNumber}, []string{"3.5"}, 3.5, ""},
		{"number not a number", gateway.Field{Type: gateway.FieldNumber}, []string{"tolv"}, nil, gateway.MsgNumber},
		{"number NaN", gateway.Field{Type: gateway.FieldNumber}, []string{"NaN"}, nil, gateway.MsgNumber},
		{"number Inf", gateway.Field{Type: gateway.FieldNumber}, []string{"Inf"}, nil, gateway.MsgNumber},
		{"number below min", gateway.Field{Type: gateway.FieldNumber, Min: fp(1)}, []string{"0"}, nil, gateway.MsgMin},
		{"number above max", gateway.Field{Type: gateway.FieldNumber, Max: fp(50)}, []string{"51"}, nil, gateway.MsgMax},
		{"number at max", gateway.Field{Type: gateway.FieldNumber, Max: fp(50)}, []string{"50"}, 50.0, ""},
		{"date ok", gateway.Field{Type: gateway.FieldDate}, []string{"2026-12-24"}, "2026-12-24", ""},
		{"date 30 Feb", gateway.Field{Type: gateway.FieldDate}, []string{"2026-02-30"}, nil, gateway.MsgDate},
		{"date swedish format", gateway.Field{Type: gateway.FieldDate}, []string{"24/12/2026"}, nil, gateway.MsgDate},
		{"date before today", gateway.Field{Type: gateway.FieldDate, MinDate: "today"}, []string{"2026-11-21"}, nil, gateway.MsgMinDate},
		{"date today ok", gateway.Field{Type: gateway.FieldDate, MinDate: "today"}, []string{"2026-11-22"}, "2026-11-22", ""},
		{"date after max", gateway.Field{Type: gateway.FieldDate, MaxDate: "today+30"}, []string{"2026-12-23"}, nil, gateway.MsgMaxDate},
		{"date fixed min", gateway.Field{Type: gateway.FieldDate, MinDate: "2027-01-01"}, []string{"2026-12-31"}, nil, gateway.MsgMinDate},
		{"email ok", gateway.Field{Type: gateway.FieldEmail}, []string{"anna.svensson@example.se"}, "anna.svensson@example.se", ""},
		{"email no at", gateway.Field{Type: gateway.FieldEmail}, []string{"anna.example.se"}, nil, gateway.MsgEmail},
		{"email no dot in domain", gateway.Field{Type: gateway.FieldEmail}, []string{"anna@localhost"}, nil, gateway.MsgEmail},
		{"email display name", gateway.Field{Type: gateway.FieldEmail}, []string{"Anna <anna@example.se>"}, nil, gateway.MsgEmail},
		{"phone ok", gateway.Field{Type: gateway.FieldPhone}, []string{"018-727 00 00"}, "018-727 00 00", ""},
		{"phone intl", gateway.Field{Type: gateway.FieldPhone}, []string{"+46 70 123 45 67"}, "+46 70 123 45 67", ""},
		{"phone letters", gateway.Field{Type: gateway.FieldPhone}, []string{"ring mig"}, nil, gateway.MsgPhone},
		{"phone too short", gateway.Field{Type: gateway.FieldPhone}, []string{"12 34"}, nil, gateway.MsgPhone},
		{"phone plus inside", gateway.Field{Type: gateway.FieldPhone}, []string{"070+1234567"}, nil, gateway.MsgPhone},
		{"select ok", gateway.Field{Type: gateway.FieldSelect, Options: []string{"a", "b"}}, []string{"b"}, "b", ""},
		{"select unknown", gateway.Field{Type: gateway.FieldSelect, Options: []string{"a", "b"}}, []string{"c"}, nil, gateway.MsgOption},
		{"select required", gateway.Field{Type: gateway.FieldSelect, Options: []string{"a"}, Required: true}, []string{""}, nil, gateway.MsgRequired},
		{"multi ok", gateway.Field{Type: gateway.FieldMultiSelect, Options: []string{"a", "b", "c"}}, []string{"c", "a", "c"}, []string{"c", "a"}, ""},
		{"multi unknown", gateway.Field{Type: gateway.FieldMultiSelect, Options: []string{"a"}}, []string{"a", "x"}, nil, gateway.MsgOption},
		{"multi required none", gateway.Field{Type: gateway.FieldMultiSelect, Options: []string{"a"}, Required: true}, nil, nil, gateway.MsgRequired},
		{"multi optional none", gateway.Field{Type: gateway.FieldMultiSelect, Options: []string{"a"}}, nil, nil, ""},
		{"checkbox on", gateway.Field{Type: gateway.FieldCheckbox}, []string{"on"}, true, ""},
		{"checkbox json true", gateway.Field{Type: gateway.FieldCheckbox}, []string{"true"}, true, ""},
		{"checkbox off", gateway.Field{Type: gateway.FieldCheckbox}, nil, false, ""},
		{"checkbox required off", gateway.Field{Type: gateway.FieldCheckbox, Required: true}, []string{"false"}, nil, gateway.MsgCheckbox},
		{"personnummer ok", gateway.Field{Type: gateway.FieldPersonnummer}, []string{"19121212-1212"}, "191212121212", ""},
		{"personnummer 10 digits", gateway.Field{Type: gateway.FieldPersonnummer}, []string{"121212-1212"}, "201212121212", ""},
		{"personnummer bad check digit", gateway.Field{Type: gateway.FieldPersonnummer}, []string{"19121212-1213"}, nil, gateway.MsgPnrChecksum},
		{"personnummer letters", gateway.Field{Type: gateway.FieldPersonnummer}, []string{"abc"}, nil, gateway.MsgPersonnummer},
		{"personnummer required", gateway.Field{Type: gateway.FieldPersonnummer, Required: true}, nil, nil, gateway.MsgRequired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.field
			if f.Name == "" {
				f.Name = "x"
			}
			svc := &gateway.Service{ID: "svc", Fields: []gateway.Field{f}}
			payload, errs := svc.Validate(map[string][]string{f.Name: tc.in}, now)
			if tc.err != "" {
				if got := errs[f.Name].ID; got != tc.err {
					t.Fatalf("error = %q, want %q (payload %v)", got, tc.err, payload)
				}
				if payload != nil {
					t.Fatalf("payload on error: %v", payload)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("unexpected errors: %v", errs)
			}
			got, present := payload[f.Name]
			if tc.want == nil {
				if present {
					t.Fatalf("want field left out, got %#v", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("payload = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// Every error in one go: a resident sees all that is wrong, not one at a time.
func TestValidateReportsAllFields(t *testing.T) {
	svc := &gateway.Service{ID: "svc", Fields: []gateway.Field{
		{Name: "a", Type: gateway.FieldText, Required: true},
		{Name: "b", Type: gateway.FieldEmail},
		{Name: "c", Type: gateway.FieldNumber},
	}}
	_, errs := svc.Validate(map[string][]string{"b": {"nope"}, "c": {"x"}}, now)
	if len(errs) != 3 {
		t.Fatalf("want 3 errors, got %v", errs)
	}
	if unk := svc.UnknownFields([]string{"a", "zz"}); len(unk) != 1 || unk["zz"].ID != gateway.MsgUnknownField {
		t.Fatalf("UnknownFields: %v", unk)
	}
}

func TestIDsAndReferences(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := gateway.NewID()
		if len(id) != 32 || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	ref := gateway.NewReference(now)
	if !regexp.MustCompile(`^2026-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`).MatchString(ref) {
		t.Fatalf("reference %q", ref)
	}
}

func TestStatusRankNeverBackwards(t *testing.T) {
	order := []gateway.Status{gateway.StatusReceived, gateway.StatusDelivered, gateway.StatusInProgress, gateway.StatusDecided, gateway.StatusClosed}
	for i := 1; i < len(order); i++ {
		if order[i].Rank() <= order[i-1].Rank() {
			t.Errorf("%s should rank above %s", order[i], order[i-1])
		}
	}
	if gateway.StatusNeedsInfo.Rank() != gateway.StatusInProgress.Rank() {
		t.Error("needs_info and in_progress should share a rank")
	}
	if gateway.Status("bogus").Valid() {
		t.Error("bogus status valid")
	}
}
