package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway"
)

// Persona is a test identity of the development identity provider.
type Persona struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Roles        []gateway.Role    `json:"roles"`
	Assurance    gateway.Assurance `json:"assurance"`
	Personnummer string            `json:"personnummer,omitempty"` // residents: a valid test number, 12 digits
	ServicePoint string            `json:"service_point,omitempty"`
	Department   string            `json:"department,omitempty"`
	groups       []string
}

// DevPersonas are the development provider's test personas. The
// personnummer are valid (check digit and date) but made up.
var DevPersonas = []Persona{
	{ID: "anna", Name: "Anna Andersson", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceLow, Personnummer: "198507092388"},
	{ID: "bertil", Name: "Bertil Berg", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceSubstantial, Personnummer: "199001013011"},
	{ID: "cecilia", Name: "Cecilia Carlsson", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceHigh, Personnummer: "195212318256"},
	{ID: "dragan", Name: "Dragan Dimitrov", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceSubstantial, Personnummer: "197010632276"},
	{ID: "sara", Name: "Sara Servicepunkt", Roles: []gateway.Role{gateway.RoleStaff}, Assurance: gateway.AssuranceSubstantial, ServicePoint: "sp-centrum", groups: []string{"staff"}},
	// The municipality's administrator: no department claim, so every
	// department's dead letters (an admin with one sees only theirs).
	{ID: "admin", Name: "Adam Administratör", Roles: []gateway.Role{gateway.RoleAdmin}, Assurance: gateway.AssuranceSubstantial, groups: []string{"admin"}},
}

// DevClientID is the client id the gateway uses with the development provider.
const DevClientID = "servicegateway-dev"

type devCode struct {
	persona     Persona
	redirectURI string
	challenge   string
	nonce       string
	expires     time.Time
}

// DevIdP is the development identity provider: a small OpenID provider with
// test personas, for the demo and the tests. It keeps codes in memory (one
// process) and signs ID tokens with an RSA key made at start. Never in
// production.
type DevIdP struct {
	Issuer   string
	ClientID string
	Now      func() time.Time

	mu    sync.Mutex
	key   *rsa.PrivateKey
	kid   string
	old   []JWK // keys rotated out, still published
	codes map[string]devCode
}

// NewDevIdP makes a provider with a fresh signing key.
func NewDevIdP(issuer string) (*DevIdP, error) {
	d := &DevIdP{Issuer: strings.TrimRight(issuer, "/"), ClientID: DevClientID, Now: time.Now, codes: map[string]devCode{}}
	if err := d.Rotate(); err != nil {
		return nil, err
	}
	return d, nil
}

// Rotate makes a new signing key; the old one stays in the JWKS.
func (d *DevIdP) Rotate() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.key != nil {
		if j, err := PublicJWK(&d.key.PublicKey, d.kid, "RS256"); err == nil {
			d.old = append(d.old, j)
		}
	}
	d.key, d.kid = key, RandomToken(8)
	return nil
}

// PublicKey is the current signing key's public half.
func (d *DevIdP) PublicKey() *rsa.PublicKey {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &d.key.PublicKey
}

// Persona returns the persona with the id.
func (d *DevIdP) Persona(id string) (Persona, bool) {
	for _, p := range DevPersonas {
		if p.ID == id {
			return p, true
		}
	}
	return Persona{}, false
}

// Discovery is the provider's OpenID metadata.
func (d *DevIdP) Discovery() map[string]any {
	return map[string]any{
		"issuer": d.Issuer, "authorization_endpoint": d.Issuer + "/authorize", "token_endpoint": d.Issuer + "/token",
		"jwks_uri": d.Issuer + "/jwks", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported": []string{"S256"}, "scopes_supported": []string{"openid", "profile"},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"acr_values_supported":                  []string{DefaultACRRequest[gateway.AssuranceLow], DefaultACRRequest[gateway.AssuranceSubstantial], DefaultACRRequest[gateway.AssuranceHigh]},
		"claims_supported":                      []string{"sub", "name", "acr", "groups", "service_point", "department", "https://id.oidc.se/claim/personalIdentityNumber"},
	}
}

// JWKS is the provider's key set.
func (d *DevIdP) JWKS() JWKSet {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, _ := PublicJWK(&d.key.PublicKey, d.kid, "RS256")
	return JWKSet{Keys: append([]JWK{cur}, d.old...)}
}

// ErrBadRequest is an authorization request the provider refuses (wrong
// client, redirect URI, response type or PKCE method). The browser is not
// sent back: the redirect URI cannot be trusted.
var ErrBadRequest = errors.New("devidp: invalid authorization request")

// CheckAuthorize validates an authorization request before a persona is picked.
func (d *DevIdP) CheckAuthorize(q url.Values) error {
	if q.Get("client_id") != d.ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		len(q.Get("code_challenge")) != 43 || q.Get("state") == "" || q.Get("nonce") == "" {
		return ErrBadRequest
	}
	u, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "/auth/callback" || u.RawQuery != "" || u.Fragment != "" {
		return ErrBadRequest
	}
	return nil
}

// Approve signs the persona in for the request and returns where the
// browser goes next: the redirect URI with a one-time code and the state.
func (d *DevIdP) Approve(q url.Values, personaID string) (string, error) {
	if err := d.CheckAuthorize(q); err != nil {
		return "", err
	}
	p, ok := d.Persona(personaID)
	if !ok {
		return "", ErrBadRequest
	}
	code := RandomToken(32)
	d.mu.Lock()
	now := d.Now()
	for k, c := range d.codes {
		if now.After(c.expires) {
			delete(d.codes, k)
		}
	}
	d.codes[code] = devCode{persona: p, redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), expires: now.Add(time.Minute)}
	d.mu.Unlock()
	r := url.Values{"code": {code}, "state": {q.Get("state")}}
	return q.Get("redirect_uri") + "?" + r.Encode(), nil
}

// TokenError is an OAuth error answer of the token endpoint.
type TokenError struct{ Code string }

func (e *TokenError) Error() string { return "devidp: " + e.Code }

// Token redeems a code (single use, PKCE checked) for an ID token.
func (d *DevIdP) Token(form url.Values) (map[string]any, error) {
	if form.Get("grant_type") != "authorization_code" {
		return nil, &TokenError{"unsupported_grant_type"}
	}
	if form.Get("client_id") != d.ClientID {
		return nil, &TokenError{"invalid_client"}
	}
	d.mu.Lock()
	c, ok := d.codes[form.Get("code")]
	delete(d.codes, form.Get("code"))
	d.mu.Unlock()
	if !ok || d.Now().After(c.expires) || c.redirectURI != form.Get("redirect_uri") ||
		subtle.ConstantTimeCompare([]byte(PKCEChallenge(form.Get("code_verifier"))), []byte(c.challenge)) != 1 {
		return nil, &TokenError{"invalid_grant"}
	}
	now := d.Now()
	claims := jwt.MapClaims{
		"iss": d.Issuer, "aud": d.ClientID, "sub": c.persona.ID, "name": c.persona.Name,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": c.nonce,
		"acr": DefaultACRRequest[c.persona.Assurance],
	}
	if c.persona.Personnummer != "" {
		claims["https://id.oidc.se/claim/personalIdentityNumber"] = c.persona.Personnummer
	}
	if len(c.persona.groups) > 0 {
		claims["groups"] = c.persona.groups
	}
	if c.persona.ServicePoint != "" {
		claims["service_point"] = c.persona.ServicePoint
	}
	if c.persona.Department != "" {
		claims["department"] = c.persona.Department
	}
	tok, err := d.Sign(claims)
	if err != nil {
		return nil, err
	}
	return map[string]any{"id_token": tok, "token_type": "Bearer", "access_token": RandomToken(32), "expires_in": 300}, nil
}

// Sign signs claims with the provider's current key (RS256). Tests use it
// to make tokens the gateway must refuse.
func (d *DevIdP) Sign(claims jwt.Claims) (string, error) {
	d.mu.Lock()
	key, kid := d.key, d.kid
	d.mu.Unlock()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = kid
	return t.SignedString(key)
}
