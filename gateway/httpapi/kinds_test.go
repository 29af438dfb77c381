package httpapi_test

import (
	"testing"

	"github.com/kommun/servicegateway/gateway"
	// The built-in field kinds, as cmd/gateway registers them.
	_ "github.com/kommun/servicegateway/services/fields/all"
	"github.com/kommun/servicegateway/web"
)

// Every registered field kind has its template field-<kind> in every
// page's template set (web/templates/field_<kind>.html).
func TestEveryFieldKindHasATemplate(t *testing.T) {
	pages, err := web.Pages(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range gateway.FieldKindNames() {
		for name, p := range pages {
			if p.Lookup("field-"+kind) == nil {
				t.Errorf("page %s: no template field-%s", name, kind)
			}
		}
	}
}
