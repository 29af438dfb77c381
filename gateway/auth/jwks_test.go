package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/kommun/servicegateway/gateway/auth"
)

// An EC key survives the trip to JWK and back; a JWK whose point is not on
// the curve, or whose coordinates are not full length, is refused.
func TestECJWK(t *testing.T) {
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		priv, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		j, err := auth.PublicJWK(&priv.PublicKey, "k1", "ES256")
		if err != nil {
			t.Fatal(err)
		}
		got, err := j.Key()
		if err != nil {
			t.Fatalf("%s: %v", j.Crv, err)
		}
		if !priv.PublicKey.Equal(got) {
			t.Fatalf("%s: key changed on the round trip", j.Crv)
		}
		off := j
		raw, _ := base64.RawURLEncoding.DecodeString(j.Y)
		raw[len(raw)-1] ^= 1
		off.Y = base64.RawURLEncoding.EncodeToString(raw)
		if _, err := off.Key(); err == nil {
			t.Errorf("%s: a point off the curve was accepted", j.Crv)
		}
		short := j
		short.X = base64.RawURLEncoding.EncodeToString(raw[1:])
		if _, err := short.Key(); err == nil {
			t.Errorf("%s: a short coordinate was accepted", j.Crv)
		}
	}
}
