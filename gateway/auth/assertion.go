package auth

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway"
)

// Client is a department's machine client: it authenticates with JWTs it
// signs with its private key (private_key_jwt style client assertions).
type Client struct {
	ID           string `json:"id"`
	Department   string `json:"department"`
	Algorithm    string `json:"algorithm"`  // RS256, PS256, ES256, ES384 or EdDSA
	PublicKeyPEM string `json:"public_key"` // PKIX "PUBLIC KEY" PEM
	key          crypto.PublicKey
}

var clientAlgorithms = map[string]bool{"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true, "EdDSA": true}

// ParseClients reads the machine clients file: JSON {"clients": [...]}.
func ParseClients(data []byte) ([]*Client, error) {
	var f struct {
		Clients []*Client `json:"clients"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("auth: clients file: %w", err)
	}
	seen := map[string]bool{}
	for i, c := range f.Clients {
		if c.ID == "" || c.Department == "" {
			return nil, fmt.Errorf("auth: clients file: client %d needs an id and a department", i+1)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("auth: clients file: client %q twice", c.ID)
		}
		seen[c.ID] = true
		if !clientAlgorithms[c.Algorithm] {
			return nil, fmt.Errorf("auth: clients file: client %q: algorithm %q not allowed", c.ID, c.Algorithm)
		}
		blk, _ := pem.Decode([]byte(c.PublicKeyPEM))
		if blk == nil {
			return nil, fmt.Errorf("auth: clients file: client %q: no PEM public key", c.ID)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: clients file: client %q: %w", c.ID, err)
		}
		c.key = k
	}
	return f.Clients, nil
}

// NewClient makes a client from a public key (tests, wiring).
func NewClient(id, department, alg string, key crypto.PublicKey) *Client {
	return &Client{ID: id, Department: department, Algorithm: alg, key: key}
}

// ReplayStore remembers assertion ids: FirstUse reports whether key is seen
// for the first time, and remembers it for ttl.
type ReplayStore interface {
	FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Assertions verifies machine clients' JWT assertions, presented as
// "Authorization: Bearer <assertion>": iss = sub = the client id, aud = one
// of Audiences (the gateway's base URL), exp no more than MaxLifetime ahead,
// jti present and never used before.
type Assertions struct {
	Clients     map[string]*Client
	Audiences   []string
	Replay      ReplayStore
	MaxLifetime time.Duration // default 5m
	Leeway      time.Duration // default 30s
	Now         func() time.Time

	// The token endpoint (see token.go): TokenKey signs access tokens (at
	// least 32 bytes; none: no tokens), TokenTTL is their lifetime
	// (default DefaultTokenTTL), TokenAudiences are accepted as the
	// audience of assertions presented there, besides Audiences.
	TokenKey       []byte
	TokenTTL       time.Duration
	TokenAudiences []string
}

// NewAssertions indexes clients by id.
func NewAssertions(clients []*Client, audiences []string, replay ReplayStore) *Assertions {
	m := map[string]*Client{}
	for _, c := range clients {
		m[c.ID] = c
	}
	return &Assertions{Clients: m, Audiences: audiences, Replay: replay, MaxLifetime: 5 * time.Minute, Leeway: 30 * time.Second, Now: time.Now}
}

// ErrAssertion is any reason an assertion is refused; details are for logs.
var ErrAssertion = errors.New("auth: client assertion refused")

// Verify checks an assertion and returns the client's principal.
func (a *Assertions) Verify(ctx context.Context, raw string) (*gateway.Principal, error) {
	return a.verify(ctx, raw, a.Audiences)
}

func (a *Assertions) verify(ctx context.Context, raw string, audiences []string) (*gateway.Principal, error) {
	if len(raw) > 8192 {
		return nil, fmt.Errorf("%w: too long", ErrAssertion)
	}
	unverified := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, unverified); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAssertion, err)
	}
	iss, _ := unverified["iss"].(string)
	c, ok := a.Clients[iss]
	if !ok || c.key == nil {
		return nil, fmt.Errorf("%w: unknown client", ErrAssertion)
	}
	now := a.Now
	if now == nil {
		now = time.Now
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, noCrit(func(t *jwt.Token) (any, error) {
		// Explicit typing (RFC 8725 3.11): an assertion is a plain JWT; a
		// token of another type (an access token "at+jwt", a logout token,
		// ...) signed by the same key is not an assertion.
		if typ, ok := t.Header["typ"]; ok {
			if s, _ := typ.(string); !strings.EqualFold(s, "JWT") && !strings.EqualFold(s, "application/jwt") {
				return nil, fmt.Errorf("typ %q is not JWT", s)
			}
		}
		return c.key, nil
	}),
		jwt.WithValidMethods([]string{c.Algorithm}),
		jwt.WithIssuer(c.ID), jwt.WithSubject(c.ID),
		jwt.WithAudience(audiences...),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(a.Leeway), jwt.WithTimeFunc(now))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAssertion, err)
	}
	exp, _ := claims.GetExpirationTime()
	if exp.Sub(now()) > a.MaxLifetime {
		return nil, fmt.Errorf("%w: expires more than %s ahead", ErrAssertion, a.MaxLifetime)
	}
	jti, _ := claims["jti"].(string)
	if jti == "" || len(jti) > 256 {
		return nil, fmt.Errorf("%w: no jti", ErrAssertion)
	}
	fresh, err := a.Replay.FirstUse(ctx, c.ID+"\x00"+jti, exp.Sub(now())+a.Leeway)
	if err != nil {
		return nil, err
	}
	if !fresh {
		return nil, fmt.Errorf("%w: jti used before", ErrAssertion)
	}
	return c.principal(), nil
}

func (c *Client) principal() *gateway.Principal {
	return &gateway.Principal{Subject: "client:" + c.ID, Name: c.ID, Roles: []gateway.Role{gateway.RoleDepartment},
		Assurance: gateway.AssuranceNone, Department: c.Department, Machine: true}
}
