package servicepoint_test

import (
	"strings"
	"testing"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/servicepoint"
)

func TestDefaultHasTheDemoPoint(t *testing.T) {
	d := servicepoint.Default()
	p, ok := d.Get("sp-centrum")
	if !ok || p.Name == "" || p.Address == "" || p.OpeningHours == "" || len(p.Languages) == 0 {
		t.Fatalf("sp-centrum: %+v %v", p, ok)
	}
	if _, ok := d.Get("sp-nowhere"); ok {
		t.Fatal("found a point that is not configured")
	}
}

func TestParseIsStrict(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"unknown key", "[[points]]\nid = \"a\"\nname = \"A\"\nphone = \"1\"\n", "unknown keys: points.phone"},
		{"bad id", "[[points]]\nid = \"A B\"\nname = \"A\"\n", "id must be"},
		{"duplicate", "[[points]]\nid = \"a\"\nname = \"A\"\n[[points]]\nid = \"a\"\nname = \"B\"\n", "appears twice"},
		{"no name", "[[points]]\nid = \"a\"\n", "name is required"},
		{"bad language", "[[points]]\nid = \"a\"\nname = \"A\"\nlanguages = [\"not a tag\"]\n", "BCP 47"},
		{"empty", "", "no service points"},
		{"not TOML", "[[points]\n", "points.toml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := servicepoint.Parse([]byte(tc.file), "points.toml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	d, err := servicepoint.Parse([]byte("[[points]]\nid = \"sp-x\"\nname = \"X\"\nlanguages = [\"sv\", \"so\"]\n"), "points.toml")
	if err != nil || len(d.All()) != 1 {
		t.Fatalf("good file: %v", err)
	}
}

func TestIdentityChecksAndContacts(t *testing.T) {
	levels := map[servicepoint.IdentityCheck]gateway.Assurance{
		servicepoint.CheckIDDocument: gateway.AssuranceSubstantial,
		servicepoint.CheckEID:        gateway.AssuranceSubstantial,
		servicepoint.CheckKnown:      gateway.AssuranceLow,
		"looked_honest":              gateway.AssuranceNone,
	}
	for c, want := range levels {
		if got := c.Assurance(); got != want {
			t.Errorf("%s supports %s, want %s", c, got, want)
		}
		if got := c.Assurance(); got >= gateway.AssuranceHigh {
			t.Errorf("%s supports high", c)
		}
	}
	channels := map[servicepoint.ContactChannel]gateway.Channel{"visit": "assisted", "phone": "phone", "paper": "paper", "email": "email"}
	for c, want := range channels {
		if !c.Valid() || c.UsageChannel() != want {
			t.Errorf("%s -> %s, want %s", c, c.UsageChannel(), want)
		}
	}
	for _, o := range servicepoint.Outcomes {
		if o.CountsInUsage() == (o == servicepoint.OutcomeFiledWithHelp) {
			t.Errorf("%s counts in usage: %v", o, o.CountsInUsage())
		}
	}
}
