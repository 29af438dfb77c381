package receipt

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway"
)

func sub(t *testing.T, payload map[string]any) *gateway.Submission {
	t.Helper()
	h, err := PayloadHash(payload)
	if err != nil {
		t.Fatal(err)
	}
	return &gateway.Submission{Reference: "AB12-CD34", Service: "street-fault", ServiceVersion: "1.0.0",
		Channel: gateway.ChannelDigital, CreatedAt: time.Date(2026, 12, 2, 5, 0, 0, 123456789, time.UTC), PayloadHash: h}
}

func mustKey(t *testing.T) Key {
	t.Helper()
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignIsDeterministicAndVerifiesAfterRotation(t *testing.T) {
	s := sub(t, map[string]any{"description": "Hål i gatan <här> & där", "count": 3.5, "tags": []string{"a", "b"}})
	old := mustKey(t)
	ring1, err := NewKeyring([]Key{old})
	if err != nil {
		t.Fatal(err)
	}
	jws1, err := ring1.SignSubmission(s)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := ring1.SignSubmission(s)
	if again != jws1 {
		t.Fatal("the same record and key gave two receipts")
	}
	// Rotation: the new key first; the old one kept without its private part.
	nw := mustKey(t)
	ring2, err := NewKeyring([]Key{nw, {ID: old.ID, Public: old.Public}})
	if err != nil {
		t.Fatal(err)
	}
	jws2, err := ring2.SignSubmission(s)
	if err != nil {
		t.Fatal(err)
	}
	if jws2 == jws1 {
		t.Fatal("the receipt was not re-signed with the new key")
	}
	// Through the published JSON, as an offline verifier gets it.
	b, _ := json.Marshal(ring2.JWKS())
	if strings.Contains(string(b), `"d"`) {
		t.Fatalf("private part published: %s", b)
	}
	set, err := ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, jws := range map[string]string{"old": jws1, "new": jws2} {
		c, kid, err := set.Verify(jws)
		if err != nil {
			t.Fatalf("%s receipt: %v", name, err)
		}
		if c.Reference != s.Reference || c.PayloadSHA256 != s.PayloadHash || c.ReceivedAt != "2026-12-02T05:00:00.123456789Z" || c.Attachments == nil {
			t.Fatalf("%s receipt claims %+v", name, c)
		}
		if want := map[string]string{"old": old.ID, "new": nw.ID}[name]; kid != want {
			t.Fatalf("%s receipt kid %s, want %s", name, kid, want)
		}
	}
	// Without the old key in the set, the old receipt does not verify.
	if _, _, err := (JWKSet{Keys: set.Keys[:1]}).Verify(jws1); err == nil {
		t.Fatal("old receipt verified without its key")
	}
}

func TestForgedReceiptsFail(t *testing.T) {
	s := sub(t, map[string]any{"a": "1"})
	k := mustKey(t)
	ring, _ := NewKeyring([]Key{k})
	jws, _ := ring.SignSubmission(s)
	parts := strings.Split(jws, ".")

	// Claims changed (another payload hash) under the old signature.
	c, _, _ := ring.Verify(jws)
	c.PayloadSHA256 = strings.Repeat("0", 64)
	body, _ := json.Marshal(c)
	forgedBody := parts[0] + "." + b64(body) + "." + parts[2]
	// Signed by a key the gateway does not have, with its kid.
	other := mustKey(t)
	otherRing, _ := NewKeyring([]Key{{ID: k.ID, Private: other.Private, Public: other.Public}})
	foreign, _ := otherRing.SignSubmission(s)
	// alg none.
	none := b64([]byte(`{"alg":"none","kid":"`+k.ID+`"}`)) + "." + parts[1] + "."
	for name, f := range map[string]string{"changed claims": forgedBody, "foreign key": foreign, "alg none": none,
		"truncated": jws[:len(jws)-2], "empty": ""} {
		if _, _, err := ring.Verify(f); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestCanonicalPayload(t *testing.T) {
	h1, err := PayloadHash(map[string]any{"b": "x<y", "a": []string{"1", "2"}, "n": 12.0})
	if err != nil {
		t.Fatal(err)
	}
	// The same payload as JSON, keys in another order, with white space.
	h2, err := PayloadHashJSON([]byte(` { "n": 12, "a": ["1","2"], "b": "x\u003cy" } `))
	if err != nil {
		t.Fatal(err)
	}
	if h1 != h2 {
		t.Fatalf("canonical hashes differ: %s %s", h1, h2)
	}
	h3, _ := PayloadHashJSON([]byte(`{"n": 12, "a": ["1","2"], "b": "x<z"}`))
	if h3 == h1 {
		t.Fatal("a changed payload has the same hash")
	}
	for _, bad := range []string{`[]`, `null`, `{"a":1} {}`, `{`} {
		if _, err := PayloadHashJSON([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestVerificationCode(t *testing.T) {
	c := VerificationCode("a.b.c")
	if len(c) != 9 || c[4] != '-' || strings.ToUpper(c) != c {
		t.Fatalf("code %q", c)
	}
	if VerificationCode("a.b.d") == c {
		t.Fatal("two receipts, one code")
	}
}

func TestKeyFileRoundTrip(t *testing.T) {
	k := mustKey(t)
	b, _ := json.Marshal(JWKSet{Keys: []JWK{PrivateJWK(k)}})
	p := t.TempDir() + "/keys.json"
	if err := writeFile(p, b); err != nil {
		t.Fatal(err)
	}
	ring, err := LoadKeyring(p)
	if err != nil {
		t.Fatal(err)
	}
	if ring.SigningKeyID() != k.ID {
		t.Fatalf("kid %s", ring.SigningKeyID())
	}
}

// A receipt names each attachment's digest, in the record's order, so a
// receipt for other files does not verify as this one; a receipt without
// attachments still has [] (what receipts signed before attachments had).
func TestReceiptSignsAttachmentDigests(t *testing.T) {
	s := sub(t, map[string]any{"a": "1"})
	ring, _ := NewKeyring([]Key{mustKey(t)})
	plain, _ := ring.SignSubmission(s)
	if c, _, err := ring.Verify(plain); err != nil || c.Attachments == nil || len(c.Attachments) != 0 {
		t.Fatalf("no attachments: %+v %v", c, err)
	}
	d1, d2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	s.Attachments = []gateway.Attachment{{ID: "x", SHA256: d1}, {ID: "y", SHA256: d2}}
	jws, err := ring.SignSubmission(s)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := ring.Verify(jws)
	if err != nil || len(c.Attachments) != 2 || c.Attachments[0] != d1 || c.Attachments[1] != d2 {
		t.Fatalf("claims %+v %v", c, err)
	}
	if jws == plain {
		t.Fatal("the same receipt with and without attachments")
	}
}

// Check with the files the checker holds: each one's digest must be named
// by the receipt; a changed file (or one never attached) fails, with the
// signature still good.
func TestCheckAttachments(t *testing.T) {
	k := mustKey(t)
	ring, _ := NewKeyring([]Key{k})
	drawing := []byte("%PDF-1.7 the drawing of the extension")
	d, err := FileDigest(bytes.NewReader(drawing))
	if err != nil {
		t.Fatal(err)
	}
	s := sub(t, map[string]any{"a": "1"})
	s.Attachments = []gateway.Attachment{{ID: "x", SHA256: d}}
	jws, err := ring.SignSubmission(s)
	if err != nil {
		t.Fatal(err)
	}
	set := JWKSet{Keys: []JWK{PrivateJWK(k)}}
	r, err := Check(set, File{JWS: jws, Attachments: []string{d}})
	if err != nil || r.AttachmentsChecked != 1 {
		t.Fatalf("the attached file: %+v %v", r, err)
	}
	changed := append([]byte{}, drawing...)
	changed[len(changed)-1] ^= 1
	dc, _ := FileDigest(bytes.NewReader(changed))
	if _, err := Check(set, File{JWS: jws, Attachments: []string{d, dc}}); !errors.Is(err, ErrAttachmentMismatch) {
		t.Fatalf("a changed file: %v", err)
	}
	if r, err := Check(set, File{JWS: jws}); err != nil || r.AttachmentsChecked != 0 {
		t.Fatalf("no file given: %+v %v", r, err)
	}
}

// signWithJWTLibrary is how Sign made receipts before it wrote the compact
// form itself: golang-jwt's NewWithClaims and SignedString.
func signWithJWTLibrary(k Key, c Claims) (string, error) {
	if c.Attachments == nil {
		c.Attachments = []string{}
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwtClaims{c})
	t.Header["kid"] = k.ID
	t.Header["typ"] = "receipt+jwt"
	return t.SignedString(k.Private)
}

// TestSignMatchesJWTLibrary: the receipt Sign writes is byte for byte the
// one golang-jwt made, also for strings encoding/json escapes (quotes,
// HTML characters, control characters, U+2028, non-ASCII, invalid UTF-8).
func TestSignMatchesJWTLibrary(t *testing.T) {
	k := mustKey(t)
	ring, err := NewKeyring([]Key{k, {ID: "old", Public: mustKey(t).Public}})
	if err != nil {
		t.Fatal(err)
	}
	base := Claims{Reference: "AB12-CD34", Service: "street-fault", ServiceVersion: "1.0.0",
		ReceivedAt: "2026-12-02T05:00:00.123456789Z", PayloadSHA256: strings.Repeat("ab", 32), Channel: "digital"}
	odd := []string{"", `a"b`, `back\slash`, "<script>&amp;", "a<b", "a>b", "a&b", "tab\there\nnewline\x00\x1f", "Hål i gatan ĳ 日本",
		"line\u2028sep\u2029", "bad \xff\xfe utf-8", "\x7f del", "~!@#$%^*()_+={}[]|:;',.?/"}
	var cases []Claims
	cases = append(cases, base)
	withAtts := base
	withAtts.Attachments = []string{strings.Repeat("01", 32), strings.Repeat("ef", 32)}
	cases = append(cases, withAtts)
	empty := base
	empty.Attachments = []string{}
	cases = append(cases, empty)
	for _, o := range odd {
		c := base
		c.Reference, c.Service, c.ServiceVersion, c.ReceivedAt, c.Channel = o, o+"x", "v"+o, o, o
		c.Attachments = []string{o, o + o}
		cases = append(cases, c)
	}
	for i, c := range cases {
		got, err := ring.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		want, err := signWithJWTLibrary(k, c)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("case %d: Sign gave\n%s\ngolang-jwt gave\n%s", i, got, want)
		}
		if _, _, err := ring.Verify(got); err != nil && c.Reference != "" {
			t.Fatalf("case %d: %v", i, err)
		}
	}
}

// TestVerificationCodeUnchanged: the code is the first 8 characters of the
// base32 of the whole digest, computed from its first 5 bytes.
func TestVerificationCodeUnchanged(t *testing.T) {
	for _, jws := range []string{"", "a", "eyJhbGciOiJFZERTQSJ9.e30.sig", strings.Repeat("x", 999)} {
		h := sha256.Sum256([]byte(jws))
		s := base32.StdEncoding.EncodeToString(h[:])[:8]
		if want, got := s[:4]+"-"+s[4:], VerificationCode(jws); got != want {
			t.Fatalf("%q: %s, want %s", jws, got, want)
		}
	}
}

// payloadHashRoundTrip is PayloadHash as it was: always through
// CanonicalJSON.
func payloadHashRoundTrip(t *testing.T, payload map[string]any) string {
	t.Helper()
	if payload == nil {
		payload = map[string]any{}
	}
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	c, err := CanonicalJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return hashHex(c)
}

// TestPayloadHashSkipsOnlyIdentityRoundTrips: PayloadHash skips the round
// trip through CanonicalJSON only where it changes nothing; payloads whose
// JSON the round trip does change (a struct's field order, invalid UTF-8
// in a value or a key) still hash as the round trip gives.
func TestPayloadHashSkipsOnlyIdentityRoundTrips(t *testing.T) {
	type point struct {
		Z string  `json:"z"`
		A float64 `json:"a"`
	}
	payloads := []map[string]any{
		nil,
		{},
		{"kind": "pothole", "description": "Hål i gatan <här> & där \u2028 \"citat\" \\ 日本", "location": "Storgatan 1"},
		{"n": 3.5, "big": 1e21, "small": 1e-7, "neg0": math.Copysign(0, -1), "i": 42, "i64": int64(-7), "num": json.Number("1.50")},
		{"yes": true, "no": false, "none": nil, "tags": []string{"b", "a", "<&>"}, "mixed": []any{"x", 1.0, true, nil, map[string]any{"b": 1.0, "a": "z"}}},
		{"nested": map[string]any{"z": "1", "a": map[string]any{"y": []any{"q"}, "b": "c"}}},
		{"bad": "ok \xff\xfe not utf-8"},
		{"bad \xff key": "v"},
		{"tags": []string{"fine", "\xc3"}},
		{"deep": []any{map[string]any{"k": "\xff"}}},
		{"struct": point{Z: "last", A: 1}},
		{"ptr": &point{Z: "<", A: 2}},
	}
	for i, p := range payloads {
		got, err := PayloadHash(p)
		if err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
		if want := payloadHashRoundTrip(t, p); got != want {
			t.Fatalf("payload %d: hash %s, the round trip gives %s", i, got, want)
		}
	}
	// The cases above do take both ways.
	for i, want := range map[int]bool{2: true, 4: true, 5: true, 6: false, 7: false, 8: false, 9: false, 10: false, 11: false} {
		if got := canonicalAsIs(payloads[i]); got != want {
			t.Fatalf("payload %d: canonicalAsIs %v, want %v", i, got, want)
		}
	}
}
