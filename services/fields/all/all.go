// Package all registers every built-in field kind. Import it (blank) where
// services are loaded: the manifest loader accepts registered kinds only.
package all

import (
	_ "github.com/kommun/servicegateway/services/fields/checkbox"
	_ "github.com/kommun/servicegateway/services/fields/date"
	_ "github.com/kommun/servicegateway/services/fields/email"
	_ "github.com/kommun/servicegateway/services/fields/file"
	_ "github.com/kommun/servicegateway/services/fields/location"
	_ "github.com/kommun/servicegateway/services/fields/multiselect"
	_ "github.com/kommun/servicegateway/services/fields/number"
	_ "github.com/kommun/servicegateway/services/fields/personnummer"
	_ "github.com/kommun/servicegateway/services/fields/phone"
	_ "github.com/kommun/servicegateway/services/fields/select"
	_ "github.com/kommun/servicegateway/services/fields/text"
	_ "github.com/kommun/servicegateway/services/fields/textarea"
)
