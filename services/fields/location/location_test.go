package location_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/services/fields/location"
)

func TestParseArea(t *testing.T) {
	for _, bad := range []string{"", "59.6,17.2", "59.6;60.2,18.2", "91,17;60,18", "59.6,17.2;59.6,18.2", "a,b;c,d"} {
		if _, err := location.ParseArea(bad); err == nil {
			t.Errorf("ParseArea(%q): want an error", bad)
		}
	}
	box, err := location.ParseArea(location.DefaultArea)
	if err != nil {
		t.Fatal(err)
	}
	// A triangle: the box's lower-left half.
	tri, err := location.ParseArea("59.6,17.2; 60.2,17.2; 59.6,18.2")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		p            location.Point
		inBox, inTri bool
	}{
		{location.Point{Lat: 59.8586, Lon: 17.6389}, true, true},   // Uppsala centre
		{location.Point{Lat: 60.1, Lon: 18.1}, true, false},        // upper right, outside the triangle
		{location.Point{Lat: 59.3293, Lon: 18.0686}, false, false}, // Stockholm
		{location.Point{Lat: 59.9, Lon: 16.9}, false, false},
	}
	for _, c := range cases {
		if got := box.Contains(c.p); got != c.inBox {
			t.Errorf("box contains %v = %v, want %v", c.p, got, c.inBox)
		}
		if got := tri.Contains(c.p); got != c.inTri {
			t.Errorf("triangle contains %v = %v, want %v", c.p, got, c.inTri)
		}
	}
}

func TestValidate(t *testing.T) {
	k, ok := gateway.LookupFieldKind(location.Name)
	if !ok {
		t.Fatal("location kind not registered")
	}
	req := &gateway.Field{Name: "location", Type: gateway.FieldLocation, Required: true}
	opt := &gateway.Field{Name: "location", Type: gateway.FieldLocation}
	addr := &gateway.Field{Name: "location", Type: gateway.FieldLocation, Required: true, Require: location.RequireAddress}
	coords := &gateway.Field{Name: "location", Type: gateway.FieldLocation, Require: location.RequireCoordinates}
	svc := &gateway.Service{ID: "s"}
	cases := []struct {
		name string
		f    *gateway.Field
		in   []string
		want any
		msg  string
	}{
		{"address only", req, []string{"Storgatan 1", "", ""}, map[string]any{"address": "Storgatan 1"}, ""},
		{"address, one input", req, []string{" Storgatan 1 "}, map[string]any{"address": "Storgatan 1"}, ""},
		{"coordinates inside", req, []string{"", "59.8586", "17.6389"}, map[string]any{"lat": 59.8586, "lon": 17.6389}, ""},
		{"both, comma decimals", req, []string{"Storgatan 1", "59,8586", "17,6389"}, map[string]any{"address": "Storgatan 1", "lat": 59.8586, "lon": 17.6389}, ""},
		{"outside (Stockholm)", req, []string{"", "59.3293", "18.0686"}, nil, gateway.MsgLocationOutside},
		{"outside with an address", req, []string{"Drottninggatan 1", "59.3293", "18.0686"}, nil, gateway.MsgLocationOutside},
		{"malformed latitude", req, []string{"", "north", "17.6"}, nil, gateway.MsgLocationCoordinates},
		{"out of range", req, []string{"", "159.8", "17.6"}, nil, gateway.MsgLocationCoordinates},
		{"NaN", req, []string{"", "NaN", "17.6"}, nil, gateway.MsgLocationCoordinates},
		{"latitude without longitude", req, []string{"", "59.85", ""}, nil, gateway.MsgLocationCoordinates},
		{"missing, required", req, []string{"", "", ""}, nil, gateway.MsgRequired},
		{"missing, nothing sent", req, nil, nil, gateway.MsgRequired},
		{"missing, optional", opt, []string{" ", "", ""}, nil, ""},
		{"require address: coordinates only", addr, []string{"", "59.85", "17.63"}, nil, gateway.MsgLocationAddress},
		{"require address: given", addr, []string{"Storgatan 1", "", ""}, map[string]any{"address": "Storgatan 1"}, ""},
		{"require coordinates: address only", coords, []string{"Storgatan 1", "", ""}, nil, gateway.MsgLocationCoordinates},
		{"require coordinates: given", coords, []string{"", "59.85", "17.63"}, map[string]any{"lat": 59.85, "lon": 17.63}, ""},
		{"require coordinates: optional, empty", coords, []string{"", "", ""}, nil, ""},
		{"two values", req, []string{"a", "b"}, nil, gateway.MsgType},
		{"control character", req, []string{"Storgatan\x01 1", "", ""}, nil, gateway.MsgControlChars},
		{"too long an address", req, []string{strings.Repeat("å", 201), "", ""}, nil, gateway.MsgMaxLength},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, m := k.Validate(svc, c.f, c.in, time.Now())
			if c.msg != "" {
				if m == nil || m.ID != c.msg {
					t.Fatalf("got %v, %v; want message %s", got, m, c.msg)
				}
				return
			}
			if m != nil {
				t.Fatalf("got message %v", m)
			}
			if c.want == nil {
				if got != nil {
					t.Fatalf("got %v, want nothing", got)
				}
				return
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %#v, want %#v", got, c.want)
			}
		})
	}
}

// The configured area is what Validate checks against.
func TestConfigure(t *testing.T) {
	k, _ := gateway.LookupFieldKind(location.Name)
	f := &gateway.Field{Name: "location", Type: gateway.FieldLocation}
	stockholm := []string{"", "59.3293", "18.0686"}
	if _, m := k.Validate(&gateway.Service{}, f, stockholm, time.Now()); m == nil {
		t.Fatal("Stockholm accepted in the default area")
	}
	a, err := location.ParseArea("59.2,17.8;59.5,18.3")
	if err != nil {
		t.Fatal(err)
	}
	location.Configure(a)
	defer func() { d, _ := location.ParseArea(location.DefaultArea); location.Configure(d) }()
	if _, m := k.Validate(&gateway.Service{}, f, stockholm, time.Now()); m != nil {
		t.Fatalf("Stockholm refused in its own area: %v", m)
	}
}
