package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// Access tokens (OAuth 2.0 client credentials, RFC 6749 §4.4, with a
// private_key_jwt client assertion, RFC 7523): a machine client trades one
// assertion for a short-lived access token and presents the token on each
// call, so the gateway verifies one asymmetric signature per token instead
// of one per call.
//
// The token is signed by the gateway with HMAC-SHA256 and stored nowhere:
// "gwat." base64url(client id NUL expiry unix seconds) "." base64url(MAC).
// Verifying it is one HMAC and a map lookup, without a Redis round trip;
// the client is looked up on every call, so a client removed from the
// clients file loses its tokens at the next restart at the latest, and its
// department is always the configured one. Tokens cannot be revoked one by
// one before they expire: hence the short lifetime.

// tokenPrefix tells an access token from a JWT assertion (which starts
// with a base64url JSON header, "eyJ").
const tokenPrefix = "gwat."

// DefaultTokenTTL is how long an access token is valid.
const DefaultTokenTTL = 5 * time.Minute

// ErrToken is any reason an access token is refused; details are for logs.
var ErrToken = errors.New("auth: access token refused")

// IsAccessToken reports whether a bearer credential is one of the
// gateway's access tokens (else it is a client assertion).
func IsAccessToken(raw string) bool { return strings.HasPrefix(raw, tokenPrefix) }

// TokenKey derives the access tokens' HMAC key from the gateway's session
// key (shared by all replicas), separate from every other use of it.
func TokenKey(sessionKey []byte) []byte {
	m := hmac.New(sha256.New, sessionKey)
	m.Write([]byte("servicegateway access token v1"))
	return m.Sum(nil)
}

// Issue verifies a client assertion for the token endpoint (audiences:
// Audiences and TokenAudiences; the jti is spent as for any assertion) and
// returns an access token for its client and how long it is valid.
func (a *Assertions) Issue(ctx context.Context, assertion string) (string, time.Duration, error) {
	if len(a.TokenKey) < 32 {
		return "", 0, errors.New("auth: no access token key")
	}
	p, err := a.verify(ctx, assertion, append(append([]string(nil), a.Audiences...), a.TokenAudiences...))
	if err != nil {
		return "", 0, err
	}
	ttl := a.TokenTTL
	if ttl <= 0 {
		ttl = DefaultTokenTTL
	}
	exp := a.now().Add(ttl).Unix()
	body := base64.RawURLEncoding.EncodeToString([]byte(p.Name + "\x00" + strconv.FormatInt(exp, 10)))
	return tokenPrefix + body + "." + base64.RawURLEncoding.EncodeToString(a.tokenMAC(body)), ttl, nil
}

// VerifyToken checks an access token and returns its client's principal.
func (a *Assertions) VerifyToken(raw string) (*gateway.Principal, error) {
	if len(a.TokenKey) < 32 || len(raw) > 512 || !IsAccessToken(raw) {
		return nil, fmt.Errorf("%w: malformed", ErrToken)
	}
	body, sig, ok := strings.Cut(raw[len(tokenPrefix):], ".")
	if !ok {
		return nil, fmt.Errorf("%w: malformed", ErrToken)
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, a.tokenMAC(body)) {
		return nil, fmt.Errorf("%w: bad signature", ErrToken)
	}
	claims, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed", ErrToken)
	}
	id, expStr, ok := strings.Cut(string(claims), "\x00")
	exp, err := strconv.ParseInt(expStr, 10, 64)
	if !ok || err != nil {
		return nil, fmt.Errorf("%w: malformed", ErrToken)
	}
	if a.now().Unix() >= exp {
		return nil, fmt.Errorf("%w: expired", ErrToken)
	}
	c, ok := a.Clients[id]
	if !ok {
		return nil, fmt.Errorf("%w: unknown client", ErrToken)
	}
	return c.principal(), nil
}

func (a *Assertions) tokenMAC(body string) []byte {
	m := hmac.New(sha256.New, a.TokenKey)
	m.Write([]byte(body))
	return m.Sum(nil)
}

func (a *Assertions) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}
