// Package location is the "location" field kind: a place in the
// municipality, given as an address, WGS84 coordinates, or both. The form
// needs no JavaScript: an address input and latitude and longitude typed
// as decimal numbers, all three posted under the field's name in that
// order. Coordinates must lie inside the municipality's area (GATEWAY_AREA,
// set with Configure at start-up). The stored value is an object
// {"address", "lat", "lon"} with the members given; the JSON API takes the
// same object.
package location

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// Name is the kind's name in manifests.
const Name = string(gateway.FieldLocation)

// Members are the parts of a location, in the order the form posts them
// and the JSON object names them.
var Members = []string{"address", "lat", "lon"}

var area atomic.Pointer[Area]

func init() {
	a, err := ParseArea(DefaultArea)
	if err != nil {
		panic(err)
	}
	Configure(a)
	gateway.RegisterFieldKind(Name, kind{})
}

// Configure sets the municipality's area that coordinates must lie in
// (provisioned once at start-up from GATEWAY_AREA).
func Configure(a Area) { area.Store(&a) }

type kind struct{}

// What require may say: an address, coordinates, or either (the default).
const (
	RequireAddress     = "address"
	RequireCoordinates = "coordinates"
	RequireEither      = "either"
)

func (kind) Check(f *gateway.Field) []gateway.FieldProblem {
	out := gateway.CheckSettings(f, gateway.SettingRequire)
	switch f.Require {
	case "", RequireAddress, RequireCoordinates, RequireEither:
	default:
		out = append(out, gateway.FieldProblem{Key: "require", Msg: "require must be address, coordinates or either, got " + strconv.Quote(f.Require)})
	}
	return out
}

func (kind) Members() []string { return Members }

func (kind) Validate(_ *gateway.Service, f *gateway.Field, in []string, _ time.Time) (any, *gateway.Message) {
	if m := gateway.CheckInput(in, false); m != nil {
		return nil, m
	}
	var address, latS, lonS string
	switch len(in) {
	case 0:
	case 1: // an address only (a one-input client)
		address = in[0]
	case 3:
		address, latS, lonS = in[0], in[1], in[2]
	default:
		return nil, gateway.NewMessage(gateway.MsgType)
	}
	address, latS, lonS = strings.TrimSpace(address), strings.TrimSpace(latS), strings.TrimSpace(lonS)
	if address == "" && latS == "" && lonS == "" {
		if f.Required {
			return nil, gateway.NewMessage(gateway.MsgRequired)
		}
		return nil, nil
	}
	switch {
	case f.Require == RequireAddress && address == "":
		return nil, gateway.NewMessage(gateway.MsgLocationAddress)
	case f.Require == RequireCoordinates && (latS == "" || lonS == ""):
		return nil, gateway.NewMessage(gateway.MsgLocationCoordinates)
	}
	out := map[string]any{}
	if address != "" {
		max := f.MaxLength
		if max <= 0 {
			max = gateway.DefaultMaxText
		}
		if n := len([]rune(address)); n > max {
			return nil, gateway.NewMessage(gateway.MsgMaxLength, "Max", max)
		} else if f.MinLength > 0 && n < f.MinLength {
			return nil, gateway.NewMessage(gateway.MsgMinLength, "Min", f.MinLength)
		}
		out["address"] = address
	}
	if latS != "" || lonS != "" {
		p, ok := parsePoint(decimal(latS), decimal(lonS))
		if !ok || latS == "" || lonS == "" {
			return nil, gateway.NewMessage(gateway.MsgLocationCoordinates)
		}
		if !area.Load().Contains(p) {
			return nil, gateway.NewMessage(gateway.MsgLocationOutside)
		}
		out["lat"], out["lon"] = p.Lat, p.Lon
	}
	return out, nil
}

// decimal lets a form use a comma as the decimal point (59,85).
func decimal(s string) string { return strings.Replace(s, ",", ".", 1) }

// Schema: the object {address, lat, lon}, or a string that is the address
// alone (what the field took before it was a location).
func (kind) Schema(f *gateway.Field) map[string]any {
	maxLen := f.MaxLength
	if maxLen <= 0 {
		maxLen = gateway.DefaultMaxText
	}
	address := map[string]any{"type": "string", "maxLength": maxLen}
	if f.MinLength > 0 {
		address["minLength"] = f.MinLength
	}
	object := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"address": address,
			"lat":     map[string]any{"type": "number", "minimum": -90, "maximum": 90, "description": "WGS84 latitude, decimal degrees"},
			"lon":     map[string]any{"type": "number", "minimum": -180, "maximum": 180, "description": "WGS84 longitude, decimal degrees"},
		},
		"additionalProperties": false,
		"dependentRequired":    map[string]any{"lat": []string{"lon"}, "lon": []string{"lat"}},
	}
	switch f.Require {
	case RequireAddress:
		object["required"] = []string{"address"}
		address["minLength"] = max(f.MinLength, 1)
	case RequireCoordinates:
		object["required"] = []string{"lat", "lon"}
		return object // a string is an address alone: not enough
	default:
		if f.Required {
			object["anyOf"] = []any{map[string]any{"required": []string{"address"}}, map[string]any{"required": []string{"lat", "lon"}}}
		}
	}
	return map[string]any{"oneOf": []any{address, object}}
}

func (kind) View(_ *gateway.Field, vals []string) gateway.FieldView {
	in := make([]string, len(Members))
	switch len(vals) {
	case 1:
		in[0] = vals[0]
	case len(Members):
		copy(in, vals)
	}
	return gateway.FieldView{Note: "form.location.hint", Parts: []gateway.FieldPart{
		{Label: "form.location.address", Value: in[0], Autocomplete: "street-address"},
		{Suffix: "-lat", Label: "form.location.lat", Value: in[1], InputMode: "decimal", Autocomplete: "off"},
		{Suffix: "-lon", Label: "form.location.lon", Value: in[2], InputMode: "decimal", Autocomplete: "off"},
	}}
}

func (kind) Example(f *gateway.Field) any {
	return map[string]any{"address": gateway.ExampleText(f), "lat": 59.8586, "lon": 17.6389}
}
