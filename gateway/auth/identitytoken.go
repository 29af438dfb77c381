package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway"
)

// Identity tokens: the gateway tells an existing e-service it proxies who
// the resident is with a short-lived JWT (ES256) in a request header, the
// audience being the e-service's URL. The public key is published as a
// JWK Set (IdentitySigner.JWKS), so the e-service verifies the token
// without sharing a secret.

// IdentityTokenLife is how long an identity token is valid. A token is
// reused for half of it, so that signing is not paid on every request.
const IdentityTokenLife = 60 * time.Second

// maxCachedTokens bounds the token cache; when full it is emptied.
const maxCachedTokens = 10000

// IdentityClaims are the claims of an identity token.
type IdentityClaims struct {
	jwt.RegisteredClaims
	Personnummer string   `json:"personnummer,omitempty"` // 12 digits, residents only
	Name         string   `json:"name,omitempty"`
	Level        string   `json:"level"` // level of assurance: low, substantial, high
	Roles        []string `json:"roles,omitempty"`
}

// IdentitySigner signs identity tokens with one ECDSA P-256 key.
type IdentitySigner struct {
	key    *ecdsa.PrivateKey
	kid    string
	issuer string
	jwks   []byte
	now    func() time.Time

	mu    sync.Mutex
	cache map[string]cachedToken
}

type cachedToken struct {
	token string
	until time.Time
}

// NewIdentitySigner returns a signer with the key (a PEM "PRIVATE KEY" or
// "EC PRIVATE KEY" on the P-256 curve); with an empty pemKey, a new random
// key (development: tokens stop verifying at a restart, and replicas do not
// agree). issuer is the iss claim.
func NewIdentitySigner(pemKey []byte, issuer string) (*IdentitySigner, error) {
	var key *ecdsa.PrivateKey
	if len(pemKey) == 0 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		key = k
	} else {
		b, _ := pem.Decode(pemKey)
		if b == nil {
			return nil, errors.New("auth: identity key: no PEM block")
		}
		var parsed any
		var err error
		if b.Type == "EC PRIVATE KEY" {
			parsed, err = x509.ParseECPrivateKey(b.Bytes)
		} else {
			parsed, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		}
		if err != nil {
			return nil, fmt.Errorf("auth: identity key: %w", err)
		}
		k, ok := parsed.(*ecdsa.PrivateKey)
		if !ok || k.Curve != elliptic.P256() {
			return nil, errors.New("auth: identity key must be an ECDSA P-256 key (ES256)")
		}
		key = k
	}
	jwk, err := PublicJWK(&key.PublicKey, "", "ES256")
	if err != nil {
		return nil, err
	}
	// kid: the RFC 7638 thumbprint of the public key.
	sum := sha256.Sum256([]byte(`{"crv":"` + jwk.Crv + `","kty":"EC","x":"` + jwk.X + `","y":"` + jwk.Y + `"}`))
	jwk.Kid = base64.RawURLEncoding.EncodeToString(sum[:])
	set, err := json.Marshal(JWKSet{Keys: []JWK{jwk}})
	if err != nil {
		return nil, err
	}
	return &IdentitySigner{key: key, kid: jwk.Kid, issuer: issuer, jwks: set, now: time.Now, cache: map[string]cachedToken{}}, nil
}

// JWKS is the JSON Web Key Set with the public key.
func (s *IdentitySigner) JWKS() []byte { return s.jwks }

// Sign returns an identity token for p with the audience; a token signed
// within the last half of IdentityTokenLife for the same person and
// audience is reused.
func (s *IdentitySigner) Sign(p *gateway.Principal, audience string) (string, error) {
	if p == nil {
		return "", errors.New("auth: no principal to sign for")
	}
	// The cache key is built on the stack and looked up without a copy:
	// a token reused costs no allocation.
	var keyBuf [256]byte
	key := append(keyBuf[:0], audience...)
	for _, f := range [...]string{p.Subject, p.Personnummer, p.Name, p.Assurance.String()} {
		key = append(append(key, 0), f...)
	}
	key = append(key, 0)
	for i, r := range p.Roles {
		if i > 0 {
			key = append(key, ',')
		}
		key = append(key, r...)
	}
	now := s.now()
	s.mu.Lock()
	if t, ok := s.cache[string(key)]; ok && now.Before(t.until) {
		s.mu.Unlock()
		return t.token, nil
	}
	s.mu.Unlock()

	roles := make([]string, len(p.Roles))
	for i, r := range p.Roles {
		roles[i] = string(r)
	}
	claims := IdentityClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.issuer, Subject: p.Subject, Audience: jwt.ClaimStrings{audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Second)),
			ExpiresAt: jwt.NewNumericDate(now.Add(IdentityTokenLife)),
		},
		Personnummer: p.Personnummer, Name: p.Name, Level: p.Assurance.String(), Roles: roles,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = s.kid
	signed, err := tok.SignedString(s.key)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if len(s.cache) >= maxCachedTokens {
		clear(s.cache)
	}
	s.cache[string(key)] = cachedToken{token: signed, until: now.Add(IdentityTokenLife / 2)}
	s.mu.Unlock()
	return signed, nil
}
