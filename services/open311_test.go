package services_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/kommun/servicegateway/services"
)

// open311Manifest is goodManifest with channels and an [open311] table.
func open311Manifest(assurance, channels, table string) string {
	m := strings.Replace(goodManifest, `assurance = "none"`, `assurance = "`+assurance+`"`+"\nchannels = "+channels, 1)
	return m + "\n[open311]\n" + table + "\n"
}

func TestOpen311Table(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		m := strings.Replace(open311Manifest("none", `["digital", "api"]`, `location_field = "what"`), `category = "streets-traffic"`, `category = "streets-traffic"`+"\nkeywords = [\"hole\"]", 1)
		loaded, err := services.Load(fsWith(m, goodSV, goodEN), options(t))
		if err != nil {
			t.Fatal(err)
		}
		o := loaded.Services[0].Open311
		if o == nil || o.ServiceCode != "test-service" || o.LocationField != "what" || len(o.Keywords) != 1 || o.Keywords[0] != "hole" {
			t.Fatalf("open311: %+v", o)
		}
	})
	t.Run("street-fault is published", func(t *testing.T) {
		loaded, err := services.Load(services.Builtin, options(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range loaded.Services {
			if s.ID == "street-fault" && (s.Open311 == nil || s.Open311.LocationField != "location" || s.Open311.EmailField != "email") {
				t.Fatalf("street-fault: %+v", s.Open311)
			}
		}
	})
	cases := []struct {
		name, manifest, want string
	}{
		{"needs assurance none", open311Manifest("low", `["api"]`, `location_field = "what"`), "assurance none"},
		{"needs channel api", open311Manifest("none", `["digital"]`, `location_field = "what"`), "channels must list api"},
		{"needs a location field", open311Manifest("none", `["api"]`, `service_code = "x"`), "open311.location_field is required"},
		{"location field must exist", open311Manifest("none", `["api"]`, `location_field = "where"`), `no field "where"`},
		{"location field must be text", open311Manifest("none", `["api"]`, `location_field = "size"`), `field "size" is a select field`},
		{"service code shape", open311Manifest("none", `["api"]`, "location_field = \"what\"\nservice_code = \"a b\""), "open311.service_code must be"},
		{"unknown key", open311Manifest("none", `["api"]`, "location_field = \"what\"\ngroup = \"x\""), `unknown key "open311.group"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := services.Load(fsWith(tc.manifest, goodSV, goodEN), options(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a problem with %q, got %v", tc.want, err)
			}
			if !regexp.MustCompile(`service\.toml:\d+: `).MatchString(err.Error()) {
				t.Fatalf("the problem names no line: %v", err)
			}
		})
	}
}
