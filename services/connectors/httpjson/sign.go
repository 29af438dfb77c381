package httpjson

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of the signed JSON POST. They are part of the contract with
// the departments' case systems.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderTimestamp      = "X-Gateway-Timestamp"
	HeaderSignature      = "X-Gateway-Signature"
)

// signaturePrefix names the algorithm in the signature header.
const signaturePrefix = "sha256="

// Errors returned by Verify. They name what is wrong, never the secret or
// the body.
var (
	ErrNoSecret       = errors.New("no secret configured")
	ErrBadTimestamp   = errors.New("missing or malformed timestamp")
	ErrStaleTimestamp = errors.New("timestamp outside the allowed clock skew")
	ErrBadSignature   = errors.New("signature does not match")
)

// Sign returns the value of the X-Gateway-Signature header for body sent at
// timestamp (Unix seconds, in decimal): "sha256=" followed by the hex-encoded
// HMAC-SHA256, keyed with secret, of timestamp + "." + body.
func Sign(secret []byte, timestamp string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a signature made by Sign. The comparison is constant-time.
// The timestamp must be Unix seconds no further than maxSkew from now, in
// either direction, so that a captured request cannot be replayed later.
// The errors wrap ErrNoSecret, ErrBadTimestamp, ErrBadSignature or
// ErrStaleTimestamp.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || ts <= 0 {
		return ErrBadTimestamp
	}
	hexSig, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok {
		return fmt.Errorf("%w: want %s<hex>", ErrBadSignature, signaturePrefix)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: not hexadecimal", ErrBadSignature)
	}
	if !hmac.Equal(got, mac(secret, timestamp, body)) {
		return ErrBadSignature
	}
	// Compare in seconds: converting a huge timestamp to a time.Duration
	// would overflow.
	skew := now.Unix() - ts
	if skew < 0 {
		skew = -skew
	}
	if skew > int64(maxSkew/time.Second) {
		return ErrStaleTimestamp
	}
	return nil
}
