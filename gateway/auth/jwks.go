package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWK is one JSON Web Key (RFC 7517), the public parts only.
type JWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
}

// JWKSet is a JSON Web Key Set.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// PublicJWK returns the JWK of an RSA or ECDSA public key.
func PublicJWK(pub crypto.PublicKey, kid, alg string) (JWK, error) {
	enc := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return JWK{Kty: "RSA", Kid: kid, Use: "sig", Alg: alg, N: enc(k.N.Bytes()), E: enc(big.NewInt(int64(k.E)).Bytes())}, nil
	case *ecdsa.PublicKey:
		raw, err := k.Bytes() // 0x04 || X || Y, each coordinate full length
		if err != nil {
			return JWK{}, fmt.Errorf("auth: %w", err)
		}
		size := (len(raw) - 1) / 2
		return JWK{Kty: "EC", Kid: kid, Use: "sig", Alg: alg, Crv: k.Curve.Params().Name, X: enc(raw[1 : 1+size]), Y: enc(raw[1+size:])}, nil
	}
	return JWK{}, fmt.Errorf("auth: unsupported key type %T", pub)
}

// Key returns the public key of a JWK.
func (j JWK) Key() (crypto.PublicKey, error) {
	dec := base64.RawURLEncoding.DecodeString
	switch j.Kty {
	case "RSA":
		n, err1 := dec(j.N)
		e, err2 := dec(j.E)
		if err1 != nil || err2 != nil || len(n) < 256 || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("auth: bad RSA key (at least 2048 bits)")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("auth: unsupported curve %q", j.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err1 := dec(j.X)
		y, err2 := dec(j.Y)
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return nil, errors.New("auth: bad EC key")
		}
		// ParseUncompressedPublicKey refuses points that are not on the curve.
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, errors.New("auth: EC point not on curve")
		}
		return pub, nil
	}
	return nil, fmt.Errorf("auth: unsupported key type %q", j.Kty)
}

// KeySet is an issuer's JWKS, fetched over HTTP and cached. A token signed
// with a key id the cache does not know makes it fetch the set again at
// once (the issuer rotated its keys). Such refetches are rate-limited: a
// key id that was missing from a fresh fetch does not cause another one,
// and at most MaxRefetches happen per MinRefresh.
type KeySet struct {
	URL          string
	Client       *http.Client
	MinRefresh   time.Duration // the rate limit's window; default 10s
	MaxRefetches int           // refetches for unknown key ids per window; default 3
	MaxAge       time.Duration // refetch after this even without an unknown kid; default 1h

	mu      sync.Mutex
	keys    map[string]crypto.PublicKey
	fetched time.Time
	window  time.Time       // start of the current rate-limit window
	spent   int             // refetches in the window
	missing map[string]bool // key ids missing from a fetch in the window (at most 64)
}

// Keyfunc finds the key a token is signed with; for jwt.Parse.
func (ks *KeySet) Keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return ks.key(ctx, kid)
	}
}

func (ks *KeySet) key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	minRefresh, maxAge := ks.MinRefresh, ks.MaxAge
	if minRefresh <= 0 {
		minRefresh = 10 * time.Second
	}
	if maxAge <= 0 {
		maxAge = time.Hour
	}
	lookup := func() (crypto.PublicKey, bool) {
		if kid == "" && len(ks.keys) == 1 {
			for _, k := range ks.keys {
				return k, true
			}
		}
		k, ok := ks.keys[kid]
		return k, ok
	}
	maxRefetches := ks.MaxRefetches
	if maxRefetches <= 0 {
		maxRefetches = 3
	}
	if k, ok := lookup(); ok && time.Since(ks.fetched) < maxAge {
		return k, nil
	}
	if time.Since(ks.window) >= minRefresh {
		ks.window, ks.spent, ks.missing = time.Now(), 0, nil
	}
	stale := ks.keys == nil || time.Since(ks.fetched) >= maxAge
	if stale || (!ks.missing[kid] && ks.spent < maxRefetches) {
		if !stale {
			ks.spent++
		}
		if err := ks.fetch(ctx); err != nil {
			return nil, err
		}
	}
	if k, ok := lookup(); ok {
		return k, nil
	}
	if ks.missing == nil {
		ks.missing = map[string]bool{}
	}
	if len(ks.missing) < 64 {
		ks.missing[kid] = true
	}
	return nil, errors.New("auth: no key with the token's kid in the issuer's JWKS")
}

// Check fetches the set now (for the check at start and readiness).
func (ks *KeySet) Check(ctx context.Context) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.keys != nil {
		return nil
	}
	return ks.fetch(ctx)
}

// fetch reads the set; the caller holds mu.
func (ks *KeySet) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var set JWKSet
	if err := getJSON(ctx, ks.Client, ks.URL, &set); err != nil {
		return fmt.Errorf("auth: JWKS: %w", err)
	}
	keys := map[string]crypto.PublicKey{}
	for _, j := range set.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, err := j.Key()
		if err != nil {
			continue // one bad key does not spoil the others
		}
		keys[j.Kid] = k
	}
	ks.keys = keys
	ks.fetched = time.Now()
	return nil
}

// getJSON fetches a small JSON document.
func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return &Failure{Kind: FailConfig, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return &Failure{Kind: FailNetwork, Err: err}
	}
	defer res.Body.Close()
	if res.StatusCode >= 500 {
		return fail(FailNetwork, "GET %s: %s", url, res.Status)
	}
	if res.StatusCode != http.StatusOK {
		return fail(FailConfig, "GET %s: %s", url, res.Status)
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(v); err != nil {
		return fail(FailConfig, "GET %s: not JSON: %w", url, err)
	}
	return nil
}
