package gateway_test

import (
	"strings"
	"testing"

	"github.com/kommun/servicegateway/gateway"
	_ "github.com/kommun/servicegateway/services/fields/all"
)

// Codes: the grouped shape, only the alphabet, no repeats in many draws,
// and typed the way people type them.
func TestDraftCodes(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		c := gateway.NewDraftCode()
		if len(c) != 19 || c[4] != '-' || c[9] != '-' || c[14] != '-' {
			t.Fatalf("shape %q", c)
		}
		for _, r := range strings.ReplaceAll(c, "-", "") {
			if !strings.ContainsRune(gateway.DraftCodeAlphabet, r) {
				t.Fatalf("%q outside the alphabet in %q", r, c)
			}
		}
		if seen[c] {
			t.Fatalf("repeat %q", c)
		}
		seen[c] = true
		for _, typed := range []string{c, strings.ToLower(c), strings.ReplaceAll(c, "-", ""), strings.ReplaceAll(c, "-", " ")} {
			if got, ok := gateway.NormalizeDraftCode(typed); !ok || got != c {
				t.Fatalf("%q read as %q %v, want %q", typed, got, ok, c)
			}
		}
	}
	for _, bad := range []string{"", "ABCD-EFGH-JKMN-PQR", "ABCD-EFGH-JKMN-PQRSS", "ABCD-EFGH-JKMN-PQR0", "ABCD-EFGH-JKMN-PQRO", "ABCD-EFGH-JKMN-PQRÅ", "ABCD/EFGH/JKMN/PQRS"} {
		if got, ok := gateway.NormalizeDraftCode(bad); ok {
			t.Errorf("%q accepted as %q", bad, got)
		}
	}
}

// A draft keeps only the service's fields, bounded.
func TestDraftValues(t *testing.T) {
	svc := &gateway.Service{ID: "s", Fields: []gateway.Field{
		{Name: "a", Type: gateway.FieldText, MaxLength: 5},
		{Name: "b", Type: gateway.FieldText},
		{Name: "c", Type: gateway.FieldSelect, Options: []string{"x", "y"}},
	}}
	got := gateway.DraftValues(svc, map[string][]string{
		"a": {"åäöåäöåäö"}, "b": {"1", "2", strings.Repeat("z", 20000)}, "c": {"x", "y", "x"}, "evil": {"no"}, "_csrf": {"no"},
	})
	if len(got) != 3 || got["a"][0] != "åäöåä" || len(got["b"]) != 1 || len([]rune(got["b"][0])) != gateway.MaxDraftValueRunes || len(got["c"]) != 2 {
		t.Fatalf("%v", got)
	}
}

// A value of several inputs (a location: address, latitude, longitude) is
// kept whole: a browser posts all three under the field's name.
func TestDraftValuesKeepAValueOfSeveralInputs(t *testing.T) {
	svc := &gateway.Service{ID: "s", Fields: []gateway.Field{{Name: "where", Type: "location", MaxLength: 200}}}
	got := gateway.DraftValues(svc, map[string][]string{"where": {"Kungsgatan 12", "59.86", "17.64"}})
	if len(got["where"]) != 3 || got["where"][0] != "Kungsgatan 12" || got["where"][2] != "17.64" {
		t.Fatalf("%v", got)
	}
}
