// Package auth is the gateway's identity adapter: an OpenID Connect relying
// party (authorization code flow with PKCE, state and nonce; ID tokens
// verified with golang-jwt against the issuer's JWKS), a development
// identity provider with test personas, server-side sessions referenced by
// a short-lived signed cookie token, and JWT client assertions for the
// departments' machine clients. It knows nothing of HTTP frameworks or
// Redis: stores are interfaces, pages are rendered by the caller.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/personnummer"
)

// RandomToken returns n random bytes, base64url without padding.
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("auth: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// PKCEChallenge is the S256 code challenge of a verifier (RFC 7636).
func PKCEChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Default ACR values: Sweden Connect and eIDAS URIs, and the plain words.
var DefaultACR = map[string]gateway.Assurance{
	"http://id.elegnamnden.se/loa/1.0/loa2":       gateway.AssuranceLow,
	"http://id.elegnamnden.se/loa/1.0/loa3":       gateway.AssuranceSubstantial,
	"http://id.elegnamnden.se/loa/1.0/loa4":       gateway.AssuranceHigh,
	"http://id.elegnamnden.se/loa/1.0/eidas-low":  gateway.AssuranceLow,
	"http://id.elegnamnden.se/loa/1.0/eidas-sub":  gateway.AssuranceSubstantial,
	"http://id.elegnamnden.se/loa/1.0/eidas-high": gateway.AssuranceHigh,
	"http://eidas.europa.eu/LoA/low":              gateway.AssuranceLow,
	"http://eidas.europa.eu/LoA/substantial":      gateway.AssuranceSubstantial,
	"http://eidas.europa.eu/LoA/high":             gateway.AssuranceHigh,
	"low":                                         gateway.AssuranceLow,
	"substantial":                                 gateway.AssuranceSubstantial,
	"high":                                        gateway.AssuranceHigh,
}

// DefaultACRRequest is what the gateway asks for in acr_values per level.
var DefaultACRRequest = map[gateway.Assurance]string{
	gateway.AssuranceLow:         "http://id.elegnamnden.se/loa/1.0/loa2",
	gateway.AssuranceSubstantial: "http://id.elegnamnden.se/loa/1.0/loa3",
	gateway.AssuranceHigh:        "http://id.elegnamnden.se/loa/1.0/loa4",
}

// Claims says which ID token claims carry what.
type Claims struct {
	Subject      string `json:"subject"`       // default "sub"
	Personnummer string `json:"personnummer"`  // default "https://id.oidc.se/claim/personalIdentityNumber"
	Name         string `json:"name"`          // default "name"
	ACR          string `json:"acr"`           // default "acr"
	Groups       string `json:"groups"`        // default "groups"
	ServicePoint string `json:"service_point"` // default "service_point"
	Department   string `json:"department"`    // default "department"
	// StaffGroup and AdminGroup are the group values that make a person
	// service-point staff or an administrator.
	StaffGroup string `json:"staff_group"` // default "staff"
	AdminGroup string `json:"admin_group"` // default "admin"
}

func (c Claims) withDefaults() Claims {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&c.Subject, "sub")
	def(&c.Personnummer, "https://id.oidc.se/claim/personalIdentityNumber")
	def(&c.Name, "name")
	def(&c.ACR, "acr")
	def(&c.Groups, "groups")
	def(&c.ServicePoint, "service_point")
	def(&c.Department, "department")
	def(&c.StaffGroup, "staff")
	def(&c.AdminGroup, "admin")
	return c
}

// ProviderConfig configures one OpenID provider.
type ProviderConfig struct {
	ID           string // short name, e.g. "eid"; used in subjects of people without a personnummer
	Issuer       string // the issuer exactly as in the provider's discovery document (a trailing "/" included); discovery at Issuer without a trailing "/" + "/.well-known/openid-configuration"
	ClientID     string
	ClientSecret string   // empty: a public client (PKCE only)
	Scopes       []string // default openid profile
	Algorithms   []string // accepted ID token algorithms; default RS256
	Leeway       time.Duration
	Claims       Claims
	ACR          map[string]gateway.Assurance // acr value -> level; default DefaultACR
	ACRRequest   map[gateway.Assurance]string // level -> acr_values; default DefaultACRRequest
	HTTPClient   *http.Client
	// JWKSMinRefresh is the least time between two fetches of the JWKS
	// caused by an unknown key id (default 10s).
	JWKSMinRefresh time.Duration
	// Now is the clock; tests may set it.
	Now func() time.Time
}

// Discovery is the part of an OpenID provider's metadata the gateway uses.
type Discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	UserinfoEndpoint      string   `json:"userinfo_endpoint,omitempty"`
	EndSessionEndpoint    string   `json:"end_session_endpoint,omitempty"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported,omitempty"`
}

// RelyingParty signs people in with one OpenID provider.
type RelyingParty struct {
	cfg ProviderConfig

	mu   sync.Mutex
	disc *Discovery
	keys *KeySet

	checkMu   sync.Mutex
	checkedAt time.Time
	checkErr  error
}

// NewRelyingParty checks cfg; it does not contact the provider (discovery
// happens at the first sign-in, so a provider served by this very process
// works).
func NewRelyingParty(cfg ProviderConfig) (*RelyingParty, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("auth: an OpenID provider needs an issuer and a client id")
	}
	if u, err := url.Parse(cfg.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("auth: issuer %q is not an http(s) URL", cfg.Issuer)
	}
	if cfg.ID == "" {
		cfg.ID = "oidc"
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"openid", "profile"}
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{"RS256"}
	}
	for _, a := range cfg.Algorithms {
		if a == "none" || strings.HasPrefix(a, "HS") {
			return nil, fmt.Errorf("auth: ID token algorithm %q is not allowed", a)
		}
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 30 * time.Second
	}
	if cfg.ACR == nil {
		cfg.ACR = DefaultACR
	}
	if cfg.ACRRequest == nil {
		cfg.ACRRequest = DefaultACRRequest
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Claims = cfg.Claims.withDefaults()
	return &RelyingParty{cfg: cfg}, nil
}

// ID is the provider's short name.
func (rp *RelyingParty) ID() string { return rp.cfg.ID }

// Issuer is the provider's issuer URL.
func (rp *RelyingParty) Issuer() string { return rp.cfg.Issuer }

// discover fetches (once) the provider's metadata.
func (rp *RelyingParty) discover(ctx context.Context) (*Discovery, *KeySet, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.disc != nil {
		return rp.disc, rp.keys, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var d Discovery
	// OpenID Connect Discovery 1.0, section 4: remove a terminating "/"
	// from the issuer before appending the well-known path; the issuer
	// itself is compared exactly as configured (section 4.3).
	if err := getJSON(ctx, rp.cfg.HTTPClient, strings.TrimSuffix(rp.cfg.Issuer, "/")+"/.well-known/openid-configuration", &d); err != nil {
		return nil, nil, fmt.Errorf("auth: discovery: %w", err)
	}
	if d.Issuer != rp.cfg.Issuer {
		return nil, nil, fail(FailConfig, "discovery names issuer %q, configured %q: configure exactly the discovery document's issuer", d.Issuer, rp.cfg.Issuer)
	}
	if d.AuthorizationEndpoint == "" || d.TokenEndpoint == "" || d.JWKSURI == "" {
		return nil, nil, fail(FailConfig, "discovery lacks an endpoint")
	}
	rp.disc = &d
	rp.keys = &KeySet{URL: d.JWKSURI, Client: rp.cfg.HTTPClient, MinRefresh: rp.cfg.JWKSMinRefresh}
	return rp.disc, rp.keys, nil
}

// Check discovers the provider and fetches its JWKS, for a check at start
// and for readiness. After a failure it answers the same error for 2
// seconds without asking the provider again, so a readiness probe cannot
// hammer an unreachable provider.
func (rp *RelyingParty) Check(ctx context.Context) error {
	rp.checkMu.Lock()
	defer rp.checkMu.Unlock()
	if rp.checkErr != nil && time.Since(rp.checkedAt) < 2*time.Second {
		return rp.checkErr
	}
	_, keys, err := rp.discover(ctx)
	if err == nil {
		err = keys.Check(ctx)
	}
	rp.checkedAt, rp.checkErr = time.Now(), err
	return err
}

// Discovered reports whether the provider's discovery ever succeeded.
func (rp *RelyingParty) Discovered() bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.disc != nil
}

// LogoutURL is where the browser goes to end its session at the provider
// too (OpenID Connect RP-Initiated Logout 1.0): the provider's
// end_session_endpoint with id_token_hint, client_id and
// post_logout_redirect_uri. ok is false when the provider has no such
// endpoint (or was never discovered): then only the gateway's session ends.
func (rp *RelyingParty) LogoutURL(ctx context.Context, idToken, postLogoutRedirect string) (to string, ok bool) {
	d, _, err := rp.discover(ctx)
	if err != nil || d.EndSessionEndpoint == "" {
		return "", false
	}
	q := url.Values{"client_id": {rp.cfg.ClientID}}
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	if postLogoutRedirect != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirect)
	}
	sep := "?"
	if strings.Contains(d.EndSessionEndpoint, "?") {
		sep = "&"
	}
	return d.EndSessionEndpoint + sep + q.Encode(), true
}

// AuthRequest is one sign-in attempt: what the gateway must remember
// (server-side) between sending the browser away and its return.
type AuthRequest struct {
	Provider    string            `json:"provider"`
	State       string            `json:"-"`
	Nonce       string            `json:"nonce"`
	Verifier    string            `json:"verifier"`
	RedirectURI string            `json:"redirect_uri"`
	ReturnTo    string            `json:"return_to"`
	Level       gateway.Assurance `json:"level"`
}

// NewAuthRequest draws state, nonce and PKCE verifier.
func (rp *RelyingParty) NewAuthRequest(redirectURI, returnTo string, level gateway.Assurance) *AuthRequest {
	return &AuthRequest{Provider: rp.cfg.ID, State: RandomToken(32), Nonce: RandomToken(32), Verifier: RandomToken(48),
		RedirectURI: redirectURI, ReturnTo: returnTo, Level: level}
}

// AuthCodeURL is where the browser goes to sign in.
func (rp *RelyingParty) AuthCodeURL(ctx context.Context, ar *AuthRequest, loginHint string) (string, error) {
	d, _, err := rp.discover(ctx)
	if err != nil {
		return "", err
	}
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {rp.cfg.ClientID},
		"redirect_uri":          {ar.RedirectURI},
		"scope":                 {strings.Join(rp.cfg.Scopes, " ")},
		"state":                 {ar.State},
		"nonce":                 {ar.Nonce},
		"code_challenge":        {PKCEChallenge(ar.Verifier)},
		"code_challenge_method": {"S256"},
	}
	if ar.Level > gateway.AssuranceNone {
		if v, ok := rp.cfg.ACRRequest[ar.Level]; ok {
			q.Set("acr_values", v)
		}
	}
	if loginHint != "" {
		q.Set("login_hint", loginHint)
	}
	sep := "?"
	if strings.Contains(d.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	return d.AuthorizationEndpoint + sep + q.Encode(), nil
}

// Exchange redeems an authorization code at the token endpoint and returns
// the verified identity of the person.
func (rp *RelyingParty) Exchange(ctx context.Context, ar *AuthRequest, code string) (*gateway.Principal, error) {
	r, err := rp.SignIn(ctx, ar, code)
	if err != nil {
		return nil, err
	}
	return r.Principal, nil
}

// SignInResult is a completed sign-in: the person, and the ID token the
// provider issued (kept for id_token_hint at sign-out).
type SignInResult struct {
	Principal *gateway.Principal
	IDToken   string
}

// MaxIDToken is the longest ID token accepted (bytes).
const MaxIDToken = 16 << 10

// SignIn redeems an authorization code at the token endpoint, verifies the
// ID token and, when the ID token lacks the claims that decide who the
// person is, asks the userinfo endpoint for them.
func (rp *RelyingParty) SignIn(ctx context.Context, ar *AuthRequest, code string) (*SignInResult, error) {
	d, _, err := rp.discover(ctx)
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {ar.RedirectURI},
		"code_verifier": {ar.Verifier}, "client_id": {rp.cfg.ClientID}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if rp.cfg.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(rp.cfg.ClientID), url.QueryEscape(rp.cfg.ClientSecret))
	}
	res, err := rp.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fail(FailNetwork, "token endpoint: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fail(FailNetwork, "token endpoint: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		// The body may hold an error code; never a token worth logging.
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		kind := FailInvalid // invalid_grant: a code expired or used twice
		switch {
		case res.StatusCode >= 500:
			kind = FailNetwork
		case res.StatusCode == http.StatusUnauthorized || e.Error == "invalid_client" || e.Error == "unauthorized_client":
			kind = FailConfig // wrong client id or secret
		}
		if len(e.Error) > 64 {
			e.Error = e.Error[:64]
		}
		return nil, fail(kind, "token endpoint answered %s (%q)", res.Status, e.Error)
	}
	var tr struct {
		IDToken     string `json:"id_token"`
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.IDToken == "" {
		return nil, fail(FailConfig, "token response without an id_token (is the openid scope asked for?)")
	}
	if len(tr.IDToken) > MaxIDToken {
		return nil, fail(FailInvalid, "ID token longer than %d bytes", MaxIDToken)
	}
	claims, err := rp.verify(ctx, tr.IDToken, ar.Nonce)
	if err != nil {
		return nil, err
	}
	if rp.needsUserinfo(claims) && d.UserinfoEndpoint != "" && tr.AccessToken != "" {
		if err := rp.userinfo(ctx, d.UserinfoEndpoint, tr.AccessToken, claims); err != nil {
			return nil, err
		}
	}
	p, err := rp.principal(claims)
	if err != nil {
		return nil, err
	}
	return &SignInResult{Principal: p, IDToken: tr.IDToken}, nil
}

// needsUserinfo: the ID token lacks the claims that decide who the person
// is (neither the personnummer nor the groups claim) or lacks the name.
// Many providers (zitadel, node oidc-provider) put profile claims only in
// the userinfo response by default.
func (rp *RelyingParty) needsUserinfo(claims jwt.MapClaims) bool {
	cm := rp.cfg.Claims
	_, pnr := claims[cm.Personnummer]
	_, groups := claims[cm.Groups]
	_, name := claims[cm.Name]
	return (!pnr && !groups) || !name
}

// userinfoProtected are claims userinfo never sets: the level of assurance
// and the token's own claims come from the signed ID token only.
var userinfoProtected = map[string]bool{"iss": true, "aud": true, "exp": true, "iat": true, "nbf": true, "nonce": true,
	"azp": true, "auth_time": true, "at_hash": true, "c_hash": true, "jti": true, "sub": true}

// userinfo fetches the userinfo response (OIDC Core 5.3) and adds the
// claims the ID token lacks. Its sub must equal the ID token's.
func (rp *RelyingParty) userinfo(ctx context.Context, endpoint, accessToken string, claims jwt.MapClaims) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return fail(FailConfig, "userinfo endpoint: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	res, err := rp.cfg.HTTPClient.Do(req)
	if err != nil {
		return fail(FailNetwork, "userinfo: %w", err)
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode >= 500:
		return fail(FailNetwork, "userinfo answered %s", res.Status)
	case res.StatusCode != http.StatusOK:
		return fail(FailConfig, "userinfo answered %s", res.Status)
	}
	if ct := res.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/jwt") {
		return fail(FailConfig, "userinfo answers a signed JWT; only JSON userinfo is supported")
	}
	info := map[string]any{}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&info); err != nil {
		return fail(FailInvalid, "userinfo: %w", err)
	}
	if sub, _ := info["sub"].(string); sub == "" || sub != claims["sub"] {
		return fail(FailInvalid, "userinfo sub differs from the ID token's")
	}
	for k, v := range info {
		if _, ok := claims[k]; ok || userinfoProtected[k] || k == rp.cfg.Claims.ACR {
			continue
		}
		claims[k] = v
	}
	return nil
}

// Verify checks an ID token: signature with a key from the issuer's JWKS,
// algorithm among the configured ones, issuer, audience, expiry (required),
// not-before and issued-at with a small leeway, and the nonce. Any problem
// rejects the token. It then maps the claims to a principal.
func (rp *RelyingParty) Verify(ctx context.Context, raw, nonce string) (*gateway.Principal, error) {
	claims, err := rp.verify(ctx, raw, nonce)
	if err != nil {
		return nil, err
	}
	return rp.principal(claims)
}

func (rp *RelyingParty) verify(ctx context.Context, raw, nonce string) (jwt.MapClaims, error) {
	_, keys, err := rp.discover(ctx)
	if err != nil {
		return nil, err
	}
	// Configuration mismatches the provider cannot be blamed for twice:
	// an algorithm not allowed here.
	var hdr struct {
		Alg string `json:"alg"`
	}
	if h, _, ok := strings.Cut(raw, "."); ok {
		if b, err := base64.RawURLEncoding.DecodeString(h); err == nil && json.Unmarshal(b, &hdr) == nil &&
			hdr.Alg != "" && hdr.Alg != "none" && !slices.Contains(rp.cfg.Algorithms, hdr.Alg) {
			return nil, fail(FailConfig, "the provider signs ID tokens with %q; allowed here: %v", hdr.Alg, rp.cfg.Algorithms)
		}
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(raw, claims, noCrit(keys.Keyfunc(ctx)),
		jwt.WithValidMethods(rp.cfg.Algorithms),
		jwt.WithIssuer(rp.cfg.Issuer),
		jwt.WithAudience(rp.cfg.ClientID),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(rp.cfg.Leeway),
		jwt.WithTimeFunc(rp.cfg.Now),
	)
	if err != nil {
		kind := FailInvalid
		switch {
		case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
			kind = FailClock
		case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidAudience):
			kind = FailConfig
		case KindOf(err) == FailNetwork:
			kind = FailNetwork // the JWKS could not be fetched
		}
		return nil, fail(kind, "ID token rejected: %w", err)
	}
	// With several audiences, the authorized party must be us (OIDC Core 3.1.3.7).
	if aud, _ := claims.GetAudience(); len(aud) > 1 {
		if azp, _ := claims["azp"].(string); azp != rp.cfg.ClientID {
			return nil, fail(FailInvalid, "ID token for several audiences without our azp")
		}
	}
	if n, _ := claims["nonce"].(string); nonce == "" || n != nonce {
		return nil, fail(FailInvalid, "ID token nonce does not match")
	}
	return claims, nil
}

// noCrit refuses tokens with a "crit" header: the gateway understands no
// JWS extension, and RFC 7515 4.1.11 says such a token must be rejected.
func noCrit(kf jwt.Keyfunc) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New("auth: token with a crit header")
		}
		return kf(t)
	}
}

// principal maps verified claims to a principal.
func (rp *RelyingParty) principal(claims jwt.MapClaims) (*gateway.Principal, error) {
	cm := rp.cfg.Claims
	str := func(name string) string { s, _ := claims[name].(string); return strings.TrimSpace(s) }
	sub := str(cm.Subject)
	if sub == "" {
		return nil, fail(FailInvalid, "ID token without a subject")
	}
	p := &gateway.Principal{Name: str(cm.Name), Department: str(cm.Department), ServicePoint: str(cm.ServicePoint)}
	p.Assurance = rp.cfg.ACR[str(cm.ACR)] // unknown or missing acr: none
	groups := stringList(claims[cm.Groups])
	if raw := str(cm.Personnummer); raw != "" {
		n, err := personnummer.ParseAt(raw, rp.cfg.Now())
		if err != nil {
			return nil, fmt.Errorf("auth: personnummer claim: %w", err) // the error never holds the number
		}
		p.Personnummer = n.String()
		p.Subject = PersonSubject(n)
		p.Roles = append(p.Roles, gateway.RoleResident)
	} else {
		p.Subject = rp.cfg.ID + ":" + sub
	}
	if slices.Contains(groups, cm.StaffGroup) {
		p.Roles = append(p.Roles, gateway.RoleStaff)
	}
	if slices.Contains(groups, cm.AdminGroup) {
		p.Roles = append(p.Roles, gateway.RoleAdmin)
	}
	if len(p.Roles) == 0 {
		return nil, fail(FailNoAccess, "the identity has neither a personnummer (claim %q) nor the staff or admin group (claim %q)", cm.Personnummer, cm.Groups)
	}
	if p.Name == "" {
		p.Name = p.Subject
		if p.Personnummer != "" {
			p.Name = personnummer.Number(p.Personnummer).Masked()
		}
	}
	return p, nil
}

// PersonSubject is the stable subject of a person with a personnummer or
// samordningsnummer: the same person from any provider is the same subject.
func PersonSubject(n personnummer.Number) string { return "se-pnr:" + n.String() }

func stringList(v any) []string {
	switch x := v.(type) {
	case string:
		return strings.Fields(strings.ReplaceAll(x, ",", " "))
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
