package gateway

import (
	"crypto/rand"
	"encoding/base32"
	"strconv"
	"time"
)

var (
	idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	// Crockford's alphabet: no I, L, O or U, so a reference read aloud over
	// the phone is not misheard.
	refAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)

// NewID returns an unguessable identifier (160 random bits, 32 characters),
// used in status links: knowing it is what lets someone read a status.
func NewID() string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("gateway: no randomness: " + err.Error())
	}
	return idEncoding.EncodeToString(b[:])
}

// NewReference returns a short, human-friendly reference such as
// "2026-K7QM-4XPB" for receipts and phone calls. It is not a secret and not
// unique by itself: the store checks it is not taken.
func NewReference(now time.Time) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("gateway: no randomness: " + err.Error())
	}
	out := make([]byte, 0, 14)
	out = strconv.AppendInt(out, int64(now.Year()), 10)
	out = append(out, '-')
	for i, c := range b {
		if i == 4 {
			out = append(out, '-')
		}
		out = append(out, refAlphabet[int(c)%len(refAlphabet)])
	}
	return string(out)
}
