package httpapi_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/kommun/servicegateway/gateway/httpapi"
)

// street-fault's location field: an address and coordinates typed in
// three inputs (no JavaScript), checked against the municipality's area,
// kept on an error and stored as {address, lat, lon}.
func TestLocationFormRoundTrip(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	cookie, csrf, token := e.form(t, "/services/street-fault")
	page := e.get(t, "/services/street-fault")
	for _, want := range []string{`id="f-location" name="location"`, `id="f-location-lat" name="location" value="" inputmode="decimal"`,
		`id="f-location-lon" name="location" value="" inputmode="decimal"`, `<legend>Var finns felet?`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("form lacks %q", want)
		}
	}

	// Stockholm is outside Uppsala: 422, the message, everything kept.
	v := url.Values{"_csrf": {csrf}, "_form": {token}, "kind": {"pothole"}, "description": {"Ett stort hål i cykelbanan"},
		"location": {"Drottninggatan 1", "59.3293", "18.0686"}}
	r := e.postForm(t, "/services/street-fault", cookie, v)
	if r.status != 422 {
		t.Fatalf("outside: %d", r.status)
	}
	for _, want := range []string{"Platsen ligger utanför kommunen.", `value="Drottninggatan 1"`, `value="59.3293"`, `value="18.0686"`, `href="#f-location"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("refused form lacks %q", want)
		}
	}
	// Coordinates that are not numbers: the coordinates message.
	v["location"] = []string{"", "norr", "17.6"}
	if r := e.postForm(t, "/services/street-fault", cookie, v); r.status != 422 || !strings.Contains(r.body, "Ange både latitud och longitud") {
		t.Fatalf("malformed: %d", r.status)
	}

	// Inside, with a comma as the decimal point: stored as an object.
	v["location"] = []string{"Storgatan 1", "59,8586", "17,6389"}
	r = e.postForm(t, "/services/street-fault", cookie, v)
	m := regexp.MustCompile(`^/s/([a-z2-7]{32})\?receipt=1$`).FindStringSubmatch(r.header.Get("Location"))
	if r.status != 303 || m == nil {
		t.Fatalf("inside: %d %s", r.status, r.header.Get("Location"))
	}
	sub, err := e.store.Get(t.Context(), m[1])
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"address": "Storgatan 1", "lat": 59.8586, "lon": 17.6389}; !reflect.DeepEqual(sub.Payload["location"], want) {
		t.Fatalf("stored %#v, want %#v", sub.Payload["location"], want)
	}
}

// The JSON API takes the location as an object (through the kind's
// members), or a string that is the address alone.
func TestLocationAPI(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	const path = "/api/v1/services/street-fault/submissions"
	body := func(loc string) string {
		return `{"kind":"streetlight","description":"Lampan lyser inte på natten","location":` + loc + `}`
	}
	cases := []struct {
		name, loc string
		status    int
		msg       string
	}{
		{"inside", `{"address":"Parkvägen 3","lat":59.8586,"lon":17.6389}`, 202, ""},
		{"coordinates only", `{"lat":59.9,"lon":17.7}`, 202, ""},
		{"address as a string", `"Parkvägen 3"`, 202, ""},
		{"outside", `{"lat":59.3293,"lon":18.0686}`, 422, "The place is outside the municipality. Check the coordinates."},
		{"lat without lon", `{"address":"Parkvägen 3","lat":59.8586}`, 422, "Enter both latitude and longitude as decimal numbers, for example 59.8586 and 17.6389."},
		{"lat not a number", `{"lat":"north","lon":17.6}`, 422, "Enter both latitude and longitude as decimal numbers, for example 59.8586 and 17.6389."},
		{"unknown member", `{"address":"Parkvägen 3","zoom":3}`, 422, "The value has the wrong type."},
		{"nested object", `{"address":{"street":"Parkvägen"}}`, 422, "The value has the wrong type."},
		{"empty", `{}`, 422, "This field is required."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", path, strings.NewReader(body(tc.loc)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept-Language", "en")
			r := e.do(t, req)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.msg == "" {
				return
			}
			var p struct {
				Errors map[string]string `json:"errors"`
			}
			if err := json.Unmarshal([]byte(r.body), &p); err != nil || p.Errors["location"] != tc.msg {
				t.Fatalf("errors %v (%v), want location: %q", p.Errors, err, tc.msg)
			}
		})
	}
}
