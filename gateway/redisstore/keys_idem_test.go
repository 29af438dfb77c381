package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestIdemDigestWithoutKey: the idempotency key name a submission without
// a key declares (computed once) is sha256(scope, 0, key) as for any other,
// so a gateway of an earlier release and this one name the same key.
func TestIdemDigestWithoutKey(t *testing.T) {
	for _, c := range [][2]string{{"", ""}, {"anon:x", "k1"}, {"", "k"}, {"s", ""}} {
		h := sha256.Sum256([]byte(c[0] + "\x00" + c[1]))
		if got, want := idemDigest(c[0], c[1]), hex.EncodeToString(h[:]); got != want {
			t.Fatalf("idemDigest(%q, %q) = %s, want %s", c[0], c[1], got, want)
		}
	}
}
