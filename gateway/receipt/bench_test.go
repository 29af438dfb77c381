package receipt

import (
	"testing"
)

// BenchmarkSign and BenchmarkVerify measure what showing and checking a
// receipt cost (run briefly: go test -bench . -benchtime 2000x).
func BenchmarkSign(b *testing.B) {
	k, _ := Generate()
	ring, _ := NewKeyring([]Key{k})
	s := benchSub()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.SignSubmission(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	k, _ := Generate()
	ring, _ := NewKeyring([]Key{k})
	jws, _ := ring.SignSubmission(benchSub())
	set := ring.JWKS()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := set.Verify(jws); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(jws)), "jws-bytes")
}

// BenchmarkSignJWTLibrary is the former way (golang-jwt), side by side.
func BenchmarkSignJWTLibrary(b *testing.B) {
	k, _ := Generate()
	c, _ := ClaimsOf(benchSub())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signWithJWTLibrary(k, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPayloadHash: a street-fault payload as the validation gives it.
func BenchmarkPayloadHash(b *testing.B) {
	p := map[string]any{"kind": "pothole", "description": "Ett djupt hål i cykelbanan vid bron", "location": "Storgatan 1", "email": "anna@example.se"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PayloadHash(p); err != nil {
			b.Fatal(err)
		}
	}
}
