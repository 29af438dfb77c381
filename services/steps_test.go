package services_test

import (
	"strings"
	"testing"

	"github.com/kommun/servicegateway/services"
)

// stepsManifest is goodManifest with two steps and a condition.
var stepsManifest = strings.Replace(goodManifest, "[route]", `[[steps]]
id = "first"
fields = ["size"]

[[steps]]
id = "second"
fields = ["what"]
show_if = [{ field = "size", equals = "big" }]

[route]`, 1)

var stepsSV = goodSV + "\"test-service.step.first.title\" = \"Ett\"\n\"test-service.step.second.title\" = \"Två\"\n"
var stepsEN = goodEN + "\"test-service.step.first.title\" = \"One\"\n\"test-service.step.second.title\" = \"Two\"\n"

func TestLoadSteps(t *testing.T) {
	loaded, err := services.Load(fsWith(stepsManifest, stepsSV, stepsEN), options(t))
	if err != nil {
		t.Fatal(err)
	}
	s := loaded.Services[0]
	if len(s.Steps) != 2 || s.Steps[1].ShowIf[0].Equals != "big" {
		t.Fatalf("steps: %+v", s.Steps)
	}
	// The form's order is the steps' order.
	if s.Fields[0].Name != "size" || s.Fields[1].Name != "what" {
		t.Fatalf("field order: %s, %s", s.Fields[0].Name, s.Fields[1].Name)
	}
}

// Each mistake in steps and conditions names the file and line.
func TestLoadStepErrors(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(stepsManifest, old) {
			panic("test manifest lacks " + old)
		}
		return strings.Replace(stepsManifest, old, new, 1)
	}
	cases := []struct {
		name, manifest, sv string
		want               string
	}{
		{"field on no step", replace(`fields = ["what"]`, `fields = []`), stepsSV, `field "what" is on no step`},
		{"unknown field on a step", replace(`fields = ["size"]`, `fields = ["size", "colour"]`), stepsSV, `step "first": no field "colour"`},
		{"field on two steps", replace(`fields = ["what"]`, `fields = ["what", "size"]`), stepsSV, `field "size" is on step "first" and on step "second"`},
		{"duplicate step id", replace(`id = "second"`, `id = "first"`), stepsSV, `step id "first" is used twice`},
		{"condition looks forward", replace(`fields = ["size"]`, `fields = ["size"]
show_if = [{ field = "what", is_set = true }]`), stepsSV, `step "first": show_if refers to "what", which does not come before it`},
		{"value not an option", replace(`equals = "big"`, `equals = "huge"`), stepsSV, `"huge" is not an option of "size"`},
		{"two tests in one condition", replace(`equals = "big"`, `equals = "big", is_set = true`), stepsSV, `needs exactly one of equals, one_of and is_set`},
		{"unknown condition key", replace(`equals = "big"`, `equals = "big", colour = "red"`), stepsSV, `unknown key "steps.show_if.colour"`},
		{"missing step title", stepsManifest, strings.Replace(stepsSV, "\"test-service.step.second.title\" = \"Två\"\n", "", 1), `missing translation "test-service.step.second.title"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := services.Load(fsWith(tc.manifest, tc.sv, stepsEN), options(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "service.toml:") && !strings.Contains(err.Error(), "messages") {
				t.Fatalf("want %q, got %v", tc.want, err)
			}
		})
	}
}
