package services

import (
	"regexp"
	"slices"

	"github.com/kommun/servicegateway/gateway"
)

// open311Manifest is the [open311] table: the service is published through
// Open311 GeoReport v2 (gateway/open311).
//
//	[open311]
//	service_code = "street-fault"      # default: the service id
//	keywords = ["pothole", "lighting"]   # default: the manifest's keywords
//	location_field = "location"          # text field for address_string, lat/long
//	description_field = "description"    # optional
//	email_field = "email"                # optional, never shown in GET requests
type open311Manifest struct {
	ServiceCode      string   `toml:"service_code"`
	Keywords         []string `toml:"keywords"`
	LocationField    string   `toml:"location_field"`
	DescriptionField string   `toml:"description_field"`
	EmailField       string   `toml:"email_field"`
}

var serviceCodePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// open311 checks the [open311] table against the service: its requests
// become public, so the service must be anonymous (assurance none) and open
// to machine clients (channel api); the fields it names must exist with a
// kind that takes the Open311 value.
func (v *validator) open311(svc *gateway.Service, m *open311Manifest) *gateway.Open311 {
	if m == nil {
		return nil
	}
	o := &gateway.Open311{ServiceCode: m.ServiceCode, Keywords: m.Keywords, LocationField: m.LocationField,
		DescriptionField: m.DescriptionField, EmailField: m.EmailField}
	if o.ServiceCode == "" {
		o.ServiceCode = svc.ID
	}
	if o.Keywords == nil {
		o.Keywords = svc.Keywords
	}
	v.check(serviceCodePattern.MatchString(o.ServiceCode), "open311.service_code", "open311.service_code must be letters, digits, '_' and '-', got %q", o.ServiceCode)
	v.check(svc.Assurance == gateway.AssuranceNone, "open311", "open311: requests are public in Open311, so the service must have assurance none")
	v.check(slices.Contains(svc.Channels, gateway.ChannelAPI), "open311", "open311: Open311 submits through the api channel, so channels must list api")
	text := []gateway.FieldType{gateway.FieldText, gateway.FieldTextarea}
	v.open311Field(svc, "open311.location_field", o.LocationField, true, append(text, gateway.FieldLocation)...)
	v.open311Field(svc, "open311.description_field", o.DescriptionField, false, text...)
	v.open311Field(svc, "open311.email_field", o.EmailField, false, gateway.FieldEmail, gateway.FieldText)
	return o
}

func (v *validator) open311Field(svc *gateway.Service, key, name string, required bool, kinds ...gateway.FieldType) {
	if name == "" {
		v.check(!required, key, "%s is required", key)
		return
	}
	f := svc.Field(name)
	if f == nil {
		v.check(false, key, "%s: no field %q", key, name)
		return
	}
	v.check(slices.Contains(kinds, f.Type), key, "%s: field %q is a %s field (want %v)", key, name, f.Type, kinds)
}
