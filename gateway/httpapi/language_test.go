package httpapi_test

import (
	"strings"
	"testing"
	"unsafe"

	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/locales"
)

// Remembered matches of Accept-Language are the matches: the first time,
// from memory, for a value whose buffer is reused after the request (as
// fasthttp does), and beyond the bound.
func TestAcceptLanguageRemembered(t *testing.T) {
	values := []string{"en", "fi-FI,fi;q=0.9,en;q=0.8", "ar", "so,en;q=0.5", "uk-UA", "de-DE,de;q=0.9", "", "*", "xx;q=0",
		strings.Repeat("en-GB,", 60) + "sv"}
	for round := 0; round < 2; round++ {
		for _, v := range values {
			buf := []byte(v)
			borrowed := "" // the request's bytes, overwritten after it: the map must not keep them
			if len(buf) > 0 {
				borrowed = unsafe.String(&buf[0], len(buf))
			}
			gotTag, gotOK := httpapi.MatchAcceptLanguage(borrowed)
			for i := range buf {
				buf[i] = 'x'
			}
			wantTag, wantOK := locales.Match(v)
			if gotTag != wantTag || gotOK != wantOK {
				t.Errorf("round %d, %q: %v %v, want %v %v", round, v, gotTag, gotOK, wantTag, wantOK)
			}
		}
	}
	for _, v := range values { // what the overwritten bytes read now
		x := strings.Repeat("x", len(v))
		gotTag, gotOK := httpapi.MatchAcceptLanguage(x)
		if wantTag, wantOK := locales.Match(x); gotTag != wantTag || gotOK != wantOK {
			t.Errorf("%q: %v %v, want %v %v", x, gotTag, gotOK, wantTag, wantOK)
		}
	}
	for i := 0; i < 3000; i++ { // more values than are remembered
		v := "en;q=0." + strings.Repeat("9", i%200+1)
		if tag, ok := httpapi.MatchAcceptLanguage(v); !ok || tag.String() != "en" {
			t.Fatalf("%q: %v %v", v, tag, ok)
		}
	}
}
