package httpapi_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway"
)

// TestTokenEndpoint (issue 14, goal 5): client credentials with a
// private_key_jwt assertion at POST /oauth/token, on a real listener and a
// real redis-server.
func TestTokenEndpoint(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	ctx := context.Background()
	ids := map[string]string{} // department -> a submission of it
	for svc, dept := range map[string]string{"street-fault": "streets-parks", "home-care": "social-care"} {
		sub, _, err := e.store.Create(ctx, &gateway.Submission{Service: svc, ServiceVersion: "1.0.0", Department: dept,
			Channel: gateway.ChannelAPI, Locale: "sv", Payload: map[string]any{"x": "y"}}, gateway.Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		ids[dept] = sub.ID
	}
	tokenURL := e.base + "/oauth/token"
	form := func(assertion string) url.Values {
		return url.Values{"grant_type": {"client_credentials"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	}
	toEndpoint := func(c jwt.MapClaims) { c["aud"] = tokenURL }
	type tokenAnswer struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Error       string `json:"error"`
	}
	ask := func(v url.Values) (answer, tokenAnswer) {
		t.Helper()
		a := e.browser(t).post("/oauth/token", v)
		var ta tokenAnswer
		if err := json.Unmarshal([]byte(a.body), &ta); err != nil {
			t.Fatalf("token answer is not JSON: %d %s", a.status, a.body)
		}
		return a, ta
	}
	list := func(tok string) answer {
		return e.browser(t).get("/api/v1/department/submissions", "Authorization", "Bearer "+tok)
	}

	// Success: a token for social-care-system, used for its department's
	// list, not for the other department's data.
	spent := e.assertion(t, "social-care-system", toEndpoint)
	a, tok := ask(form(spent))
	if a.status != 200 || tok.TokenType != "Bearer" || tok.ExpiresIn != 300 || tok.AccessToken == "" ||
		!strings.Contains(a.header.Get("Cache-Control"), "no-store") {
		t.Fatalf("token: %d %+v %q", a.status, tok, a.header.Get("Cache-Control"))
	}
	for range 3 { // the same token serves many calls
		r := list(tok.AccessToken)
		if r.status != 200 || !strings.Contains(r.body, ids["social-care"]) || strings.Contains(r.body, ids["streets-parks"]) {
			t.Fatalf("list with the token: %d %s", r.status, r.body)
		}
	}
	// The other client's token sees its own department only.
	_, tok2 := ask(form(e.assertion(t, "streets-system", toEndpoint)))
	if r := list(tok2.AccessToken); r.status != 200 || !strings.Contains(r.body, ids["streets-parks"]) || strings.Contains(r.body, ids["social-care"]) {
		t.Fatalf("streets list with its token: %d %s", r.status, r.body)
	}
	// A token re-labelled for another client fails its signature.
	body, sig, _ := strings.Cut(strings.TrimPrefix(tok2.AccessToken, "gwat."), ".")
	otherBody, _, _ := strings.Cut(strings.TrimPrefix(tok.AccessToken, "gwat."), ".")
	if r := list("gwat." + otherBody + "." + sig); r.status != 401 || body == otherBody {
		t.Errorf("forged token: %d", r.status)
	}
	// Per-call assertions keep working.
	if r := list(e.assertion(t, "social-care-system", nil)); r.status != 200 || !strings.Contains(r.body, ids["social-care"]) {
		t.Errorf("per-call assertion: %d %s", r.status, r.body)
	}

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		err    string
	}{
		{"replayed assertion", form(spent), 401, "invalid_client"},
		{"assertion spent on a call first", func() url.Values {
			as := e.assertion(t, "social-care-system", nil)
			if r := list(as); r.status != 200 {
				t.Fatalf("call: %d", r.status)
			}
			return form(as)
		}(), 401, "invalid_client"},
		{"expired assertion", form(e.assertion(t, "social-care-system", func(c jwt.MapClaims) {
			c["aud"] = tokenURL
			c["iat"] = time.Now().Add(-10 * time.Minute).Unix()
			c["exp"] = time.Now().Add(-5 * time.Minute).Unix()
		})), 401, "invalid_client"},
		{"wrong audience", form(e.assertion(t, "social-care-system", func(c jwt.MapClaims) { c["aud"] = "https://other.example/oauth/token" })), 401, "invalid_client"},
		{"unknown client", form(e.assertion(t, "social-care-system", func(c jwt.MapClaims) { c["aud"] = tokenURL; c["iss"], c["sub"] = "nobody", "nobody" })), 401, "invalid_client"},
		{"no assertion", form(""), 401, "invalid_client"},
		{"wrong assertion type", func() url.Values {
			v := form(e.assertion(t, "social-care-system", toEndpoint))
			v.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
			return v
		}(), 401, "invalid_client"},
		{"password grant", func() url.Values {
			v := form(e.assertion(t, "social-care-system", toEndpoint))
			v.Set("grant_type", "password")
			return v
		}(), 400, "unsupported_grant_type"},
		{"no grant type", func() url.Values {
			v := form(e.assertion(t, "social-care-system", toEndpoint))
			v.Del("grant_type")
			return v
		}(), 400, "invalid_request"},
	} {
		a, ta := ask(tc.form)
		if a.status != tc.status || ta.Error != tc.err || ta.AccessToken != "" {
			t.Errorf("%s: %d %s", tc.name, a.status, a.body)
		}
	}

	// The token expires after its lifetime: used afterwards it is refused
	// with invalid_token.
	e.skew.Store(int64(5*time.Minute + time.Second))
	r := list(tok.AccessToken)
	if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("token after expiry: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
	e.skew.Store(0)
	if r := list(tok.AccessToken); r.status != 200 {
		t.Errorf("token before expiry: %d", r.status)
	}
}
