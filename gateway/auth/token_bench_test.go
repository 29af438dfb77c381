package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway/auth"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// The per-call cost of a machine client's authentication (issue 14, goal
// 5): a fresh ES256 assertion per call (signature check plus the jti's
// SET NX on a real redis-server) against an access token from the token
// endpoint (one HMAC, no store). Signing the assertions is outside the
// timer.
func benchAssertions(b *testing.B) (*auth.Assertions, *ecdsa.PrivateKey) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	rs := redistest.Start(b)
	a := auth.NewAssertions([]*auth.Client{auth.NewClient("c1", "streets-parks", "ES256", &k.PublicKey)},
		[]string{"https://gw.example"}, redisstore.New(rs.Client(b), "bench"))
	a.TokenKey = auth.TokenKey([]byte("0123456789abcdef0123456789abcdef"))
	return a, k
}

func signed(b *testing.B, k *ecdsa.PrivateKey) string {
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "c1", "sub": "c1", "aud": "https://gw.example",
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": auth.RandomToken(16)}).SignedString(k)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkPerCallAssertion(b *testing.B) {
	a, k := benchAssertions(b)
	toks := make([]string, b.N)
	for i := range toks {
		toks[i] = signed(b, k)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := a.Verify(ctx, toks[i]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAccessToken(b *testing.B) {
	a, k := benchAssertions(b)
	tok, _, err := a.Issue(context.Background(), signed(b, k))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := a.VerifyToken(tok); err != nil {
			b.Fatal(err)
		}
	}
}
