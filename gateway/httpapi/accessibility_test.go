package httpapi_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/kommun/servicegateway/gateway/httpapi"
)

// The accessibility statement: linked from every page's footer, in the
// page's language, with a feedback form that goes through the intake to the
// configured service (the same form route as the service's own form).
func TestAccessibilityStatement(t *testing.T) {
	e := newEnv(t, httpapi.Config{})
	for _, path := range []string{"/", "/services/street-fault", "/open-data", "/receipts/verify"} {
		if r := e.get(t, path); !strings.Contains(r.body, `<a href="/tillganglighet" id="a11y-link">Tillgänglighetsredogörelse</a>`) {
			t.Errorf("%s: no link to the accessibility statement (%d)", path, r.status)
		}
	}
	for lang, want := range map[string]string{"sv": "Myndigheten för digital förvaltning (Digg)", "en": "The Agency for Digital Government (Digg)",
		"ar": "بيان إمكانية الوصول"} {
		r := e.get(t, "/tillganglighet?lang="+lang)
		if r.status != 200 || !strings.Contains(r.body, want) || !strings.Contains(r.body, `action="/services/feedback"`) {
			t.Fatalf("%s statement: %d, lacks %q or the form", lang, r.status, want)
		}
	}
	cookie, csrf, token := e.form(t, "/tillganglighet?lang=en")
	v := url.Values{"_csrf": {csrf}, "_form": {token}, "topic": {"complaint"}, "message": {"The map on the street-fault form is hard to use with a screen reader."}}
	r := e.postForm(t, "/services/feedback", cookie, v)
	m := regexp.MustCompile(`^/s/([a-z2-7]{32})\?receipt=1$`).FindStringSubmatch(r.header.Get("Location"))
	if r.status != 303 || m == nil {
		t.Fatalf("feedback: %d %s", r.status, r.header.Get("Location"))
	}
	sub, err := e.store.Get(t.Context(), m[1])
	if err != nil || sub.Service != "feedback" || sub.Channel != "digital" || sub.PayloadHash == "" {
		t.Fatalf("stored feedback: %v %+v", err, sub)
	}

	// Another configured service: its form.
	e2 := newEnv(t, httpapi.Config{AccessibilityService: "street-fault"})
	if r := e2.get(t, "/tillganglighet"); !strings.Contains(r.body, `action="/services/street-fault"`) {
		t.Fatal("the configured service's form is not on the page")
	}
}
