package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/auth"
	"github.com/kommun/servicegateway/gateway/auth/oidctest"
)

// Sign-in against real OpenID providers (gateway/auth/oidctest, each on
// its own listener) through the gateway's real HTTP layer and redis-server.

const pnrClaim = "https://id.oidc.se/claim/personalIdentityNumber"

func opRP(t *testing.T, id string, op *oidctest.Provider, mod func(*auth.ProviderConfig)) *auth.RelyingParty {
	t.Helper()
	cfg := auth.ProviderConfig{ID: id, Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.Secret,
		HTTPClient: &http.Client{Timeout: 5 * time.Second}}
	if mod != nil {
		mod(&cfg)
	}
	rp, err := auth.NewRelyingParty(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func englishBrowser(t *testing.T, e *authEnv) *browser {
	b := e.browser(t)
	b.setCookie("lang", "en")
	return b
}

// Each way a sign-in fails gets its own page: a cancelled sign-in is not
// "you do not have access", a configuration error (wrong client secret,
// an issuer that differs from discovery) does not blame the network, a
// provider whose clock is off says so.
func TestSignInFailuresSayWhatHappened(t *testing.T) {
	cancel := oidctest.Start(t, oidctest.Options{})
	cancel.AuthorizeError = "access_denied"
	noAccess := oidctest.Start(t, oidctest.Options{})
	noAccess.IDClaims["name"] = "Nils Nobody" // neither personnummer nor groups
	secret := oidctest.Start(t, oidctest.Options{})
	secret.IDClaims[pnrClaim] = "19880315-1649"
	skew := oidctest.Start(t, oidctest.Options{})
	skew.IDClaims[pnrClaim] = "19880315-1649"
	skew.Skew = 10 * time.Minute
	slash := oidctest.Start(t, oidctest.Options{IssuerPath: "/tenant/"})
	down := oidctest.Start(t, oidctest.Options{})
	downRP := opRP(t, "down", down, func(c *auth.ProviderConfig) { c.Issuer = "http://127.0.0.1:1" })

	e := newAuthEnv(t, authOpts{providers: []*auth.RelyingParty{
		opRP(t, "cancel", cancel, nil),
		opRP(t, "noaccess", noAccess, nil),
		opRP(t, "secret", secret, func(c *auth.ProviderConfig) { c.ClientSecret = "wrong" }),
		opRP(t, "skew", skew, nil),
		opRP(t, "mismatch", slash, func(c *auth.ProviderConfig) { c.Issuer = strings.TrimSuffix(slash.Issuer, "/") }),
		downRP,
	}})
	const (
		noAccessTitle = "You do not have access"
		network       = "cannot reach the sign-in service"
		config        = "not set up correctly"
	)
	for _, tc := range []struct {
		provider string
		status   int
		want     []string
		not      []string
	}{
		{"cancel", 401, []string{"Sign-in cancelled", "You cancelled the sign-in"}, []string{noAccessTitle}},
		{"noaccess", 403, []string{noAccessTitle, "neither a personal identity number nor a staff"}, nil},
		{"secret", 401, []string{config}, []string{network, noAccessTitle}},
		{"mismatch", 401, []string{config}, []string{network, noAccessTitle}},
		{"skew", 401, []string{"clocks"}, []string{network, noAccessTitle}},
		{"down", 503, []string{network}, []string{config, noAccessTitle}},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			b := englishBrowser(t, e)
			a, at := b.follow("/auth/login?provider=" + tc.provider + "&return_to=/my")
			if a.status != tc.status {
				t.Fatalf("ended at %s with %d, want %d:\n%.400s", at, a.status, tc.status, a.body)
			}
			for _, w := range tc.want {
				if !strings.Contains(a.body, w) {
					t.Errorf("page lacks %q:\n%.1500s", w, a.body)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(a.body, n) {
					t.Errorf("page says %q", n)
				}
			}
			if b.cookie("gw_session") != "" {
				t.Error("a session was begun")
			}
		})
	}
}

// An issuer that ends in "/" (Auth0, zitadel) signs in when configured
// exactly as its discovery document names it.
func TestIssuerEndingInSlash(t *testing.T) {
	op := oidctest.Start(t, oidctest.Options{IssuerPath: "/tenant/"})
	op.IDClaims[pnrClaim] = "19880315-1649"
	if !strings.HasSuffix(op.Issuer, "/tenant/") {
		t.Fatal(op.Issuer)
	}
	e := newAuthEnv(t, authOpts{providers: []*auth.RelyingParty{opRP(t, "slash", op, nil)}})
	b := e.browser(t)
	if a, at := b.follow("/auth/login?provider=slash&return_to=/my"); a.status != 200 || at != "/my" {
		t.Fatalf("ended at %s with %d: %.300s", at, a.status, a.body)
	}
}

// Claims that only the userinfo endpoint gives (zitadel's and
// oidc-provider's default) are used; the level of assurance is never
// taken from userinfo.
func TestUserinfoClaims(t *testing.T) {
	op := oidctest.Start(t, oidctest.Options{Userinfo: map[string]any{pnrClaim: "19880315-1649", "name": "Eva Ek",
		"acr": "http://eidas.europa.eu/LoA/high"}})
	e := newAuthEnv(t, authOpts{providers: []*auth.RelyingParty{opRP(t, "ui", op, nil)}})
	b := e.browser(t)
	if a, at := b.follow("/auth/login?provider=ui&return_to=/my"); a.status != 200 || at != "/my" {
		t.Fatalf("ended at %s with %d: %.300s", at, a.status, a.body)
	}
	me := b.get("/api/v1/me")
	if me.status != 200 || !strings.Contains(me.body, `"subject":"se-pnr:19880315-****"`) || !strings.Contains(me.body, `"name":"Eva Ek"`) ||
		!strings.Contains(me.body, `"assurance":"none"`) {
		t.Fatalf("me: %d %s", me.status, me.body)
	}
}

// Sign-out ends the provider's session too (RP-initiated logout): the
// browser is sent to end_session_endpoint with the ID token as hint and
// the signed-out page as post_logout_redirect_uri.
func TestRPInitiatedLogout(t *testing.T) {
	op := oidctest.Start(t, oidctest.Options{EndSession: true})
	op.IDClaims[pnrClaim] = "19880315-1649"
	e := newAuthEnv(t, authOpts{providers: []*auth.RelyingParty{opRP(t, "op", op, nil)}})
	b := e.browser(t)
	my, at := b.follow("/auth/login?provider=op&return_to=/my")
	if my.status != 200 || at != "/my" {
		t.Fatalf("ended at %s with %d", at, my.status)
	}
	a := b.post("/auth/logout", url.Values{"_csrf": {hidden(t, my.body, "_csrf")}})
	loc, _ := url.Parse(a.header.Get("Location"))
	if a.status != 303 || !strings.HasPrefix(loc.String(), op.Issuer+"/logout?") {
		t.Fatalf("logout: %d to %s", a.status, loc)
	}
	q := loc.Query()
	if ids := op.IssuedIDTokens(); len(ids) != 1 || q.Get("id_token_hint") != ids[0] || q.Get("client_id") != op.ClientID ||
		q.Get("post_logout_redirect_uri") != e.base+"/?signed_out=1" {
		t.Fatalf("end-session request %v", q)
	}
	if end, at := b.follow(loc.String()); end.status != 200 || at != "/?signed_out=1" || len(op.Logouts()) != 1 {
		t.Fatalf("after the provider: %s %d, %d logouts", at, end.status, len(op.Logouts()))
	}
	if st, _ := b.me(); st != 401 {
		t.Fatalf("me after sign-out: %d", st)
	}
}

// A step-up (a new sign-in without provider=, as the form's step-up sends)
// goes to the provider the resident signed in with, not the default one.
func TestStepUpUsesSignInProvider(t *testing.T) {
	op := oidctest.Start(t, oidctest.Options{})
	op.IDClaims[pnrClaim] = "19880315-1649"
	op.IDClaims["acr"] = "http://id.elegnamnden.se/loa/1.0/loa2"
	e := newAuthEnv(t, authOpts{providers: []*auth.RelyingParty{opRP(t, "op", op, nil)}})
	b := e.browser(t)
	if a, at := b.follow("/auth/login?provider=op&return_to=/my"); a.status != 200 || at != "/my" {
		t.Fatalf("ended at %s with %d", at, a.status)
	}
	a := b.get("/auth/login?" + url.Values{"level": {"substantial"}, "return_to": {"/services/home-care"}}.Encode())
	if a.status != 303 || !strings.HasPrefix(a.header.Get("Location"), op.Issuer+"/authorize?") {
		t.Fatalf("step-up went to %d %s, want the resident's provider %s", a.status, a.header.Get("Location"), op.Issuer)
	}
	// Not signed in: the default provider.
	if a := e.browser(t).get("/auth/login?level=substantial"); !strings.Contains(a.header.Get("Location"), "/dev-idp/authorize?") {
		t.Fatalf("anonymous sign-in went to %s", a.header.Get("Location"))
	}
}

// "Sign out on all devices" ends every session of the person, and no one
// else's.
func TestSignOutEverywhere(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	phone, laptop, anna := e.browser(t), e.browser(t), e.browser(t)
	my := phone.signIn("bertil", "/my")
	laptop.signIn("bertil", "/my")
	anna.signIn("anna", "/my")
	if !strings.Contains(my.body, `name="everywhere"`) {
		t.Fatal("My pages lack the sign-out-everywhere button")
	}
	a := phone.post("/auth/logout", url.Values{"_csrf": {hidden(t, my.body, "_csrf")}, "everywhere": {"1"}})
	if a.status != 303 {
		t.Fatalf("logout: %d", a.status)
	}
	if st, _ := laptop.me(); st != 401 {
		t.Fatalf("the other device is still signed in: %d", st)
	}
	if st, _ := anna.me(); st != 200 {
		t.Fatalf("another person was signed out: %d", st)
	}
}
