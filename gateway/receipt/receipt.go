// Package receipt makes and checks the gateway's signed receipts: a JWS
// (compact serialization, alg EdDSA with Ed25519) that a resident can keep
// and anyone can verify offline against the gateway's published keys.
//
// What is signed (the claims, see Claims): the reference, the service id
// and version, the time the submission was received, the SHA-256 of the
// canonical payload, the SHA-256 of each attachment (an empty list until
// the file field kind exists), the channel, and in the protected header the
// key id (kid). Nothing personal is in it beyond what the resident sent,
// and the payload itself is not: only its hash.
//
// Canonical payload: the JSON that Go's encoding/json gives for the payload
// as a map[string]any: object keys sorted by their bytes, no white space,
// strings escaped as encoding/json does (including <, > and & as \u003c,
// \u003e, \u0026), numbers written as they were decoded. CanonicalJSON
// turns any JSON object into that form (decoding numbers as json.Number,
// so they are kept verbatim), and PayloadHash is the lower-case hex SHA-256
// of it. The intake computes the hash before the atomic write and the store
// keeps it in the submission record, so the receipt is made from the
// record whenever it is shown, also after the payload was deleted.
//
// Ed25519 signatures are deterministic: the same record and key give the
// same JWS, so nothing is stored besides the hash. After a key rotation the
// receipt is signed with the new key; receipts signed with an older key
// still verify as long as its public key is in the published set (keys are
// kept there after rotation).
//
// Signing and checking use golang-jwt v5, already the gateway's JWT
// library for ID tokens and machine clients: it parses the compact form
// strictly (three base64url parts, no padding), and the method is pinned
// to EdDSA with WithValidMethods, so "none", HS* (a public key used as an
// HMAC secret) and RS/ES are refused before any key is looked up.
package receipt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway"
)

// Alg is the only signature algorithm of receipts.
const Alg = "EdDSA"

// MaxJWKS bounds a key set read from a file or URL, in bytes; MaxKeys the
// number of keys in it; MaxReceipt a receipt (JWS) given to Verify.
const (
	MaxJWKS    = 256 * 1024
	MaxKeys    = 100
	MaxReceipt = 8 * 1024
)

// Claims are what a receipt signs.
type Claims struct {
	Reference      string   `json:"reference"`
	Service        string   `json:"service"`
	ServiceVersion string   `json:"service_version"`
	ReceivedAt     string   `json:"received_at"` // RFC 3339, UTC, with the store's precision
	PayloadSHA256  string   `json:"payload_sha256"`
	Attachments    []string `json:"attachments_sha256"` // hex SHA-256 of each attachment, in field order; [] for none
	Channel        string   `json:"channel"`
}

// jwtClaims makes Claims a jwt.Claims with no registered claims: receipts
// do not expire.
type jwtClaims struct{ Claims }

func (jwtClaims) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (jwtClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (jwtClaims) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (jwtClaims) GetIssuer() (string, error)                   { return "", nil }
func (jwtClaims) GetSubject() (string, error)                  { return "", nil }
func (jwtClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// CanonicalJSON returns the canonical form of a JSON object (see the
// package comment). It fails on anything but one JSON object.
func CanonicalJSON(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("receipt: payload: %w", err)
	}
	if m == nil {
		return nil, errors.New("receipt: payload: not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("receipt: payload: trailing data after the JSON object")
	}
	return json.Marshal(m)
}

// PayloadHash is the hex SHA-256 of the canonical form of payload (nil is
// the empty object).
func PayloadHash(payload map[string]any) (string, error) {
	if payload == nil {
		payload = map[string]any{}
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return "", fmt.Errorf("receipt: payload: %w", err)
	}
	if canonicalAsIs(payload) {
		// json.Marshal of these values already is the canonical form: the
		// round trip below would give the same bytes
		// (TestPayloadHashSkipsOnlyIdentityRoundTrips).
		return hashHex(b), nil
	}
	// Round trip so that a payload holding other Go values (structs, whose
	// fields are not sorted; strings that are not valid UTF-8, which come
	// back with U+FFFD written as itself instead of \ufffd) hashes exactly
	// as its JSON will when a verifier reads it back.
	c, err := CanonicalJSON(b)
	if err != nil {
		return "", err
	}
	return hashHex(c), nil
}

// canonicalAsIs reports whether json.Marshal of v gives its canonical form
// unchanged: objects as map[string]any (keys sorted), valid UTF-8 strings
// (escaped alike on every pass), numbers (float64 and ints are written
// once and then kept verbatim as json.Number), booleans, null, and arrays
// of these, which is what Service.Validate produces.
func canonicalAsIs(v any) bool {
	switch x := v.(type) {
	case nil, bool, float64, int, int64, json.Number:
		return true
	case string:
		return utf8.ValidString(x)
	case []string:
		for _, s := range x {
			if !utf8.ValidString(s) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range x {
			if !canonicalAsIs(e) {
				return false
			}
		}
		return true
	case map[string]any:
		for k, e := range x {
			if !utf8.ValidString(k) || !canonicalAsIs(e) {
				return false
			}
		}
		return true
	}
	return false
}

// PayloadHashJSON is PayloadHash of a payload given as JSON.
func PayloadHashJSON(b []byte) (string, error) {
	c, err := CanonicalJSON(b)
	if err != nil {
		return "", err
	}
	return hashHex(c), nil
}

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ClaimsOf are the claims of a stored submission's receipt. A record
// without a payload hash (stored before receipts existed) has none.
func ClaimsOf(sub *gateway.Submission) (Claims, error) {
	if sub.PayloadHash == "" {
		return Claims{}, ErrNoHash
	}
	// Each attachment's digest, in the order the record lists them (field
	// order, then upload order): the receipt proves which files were sent,
	// not only that some were. A receipt signed before attachments existed
	// has [] and still verifies: the claims travel inside the JWS.
	atts := make([]string, 0, len(sub.Attachments))
	for _, a := range sub.Attachments {
		atts = append(atts, a.SHA256)
	}
	return Claims{
		Reference: sub.Reference, Service: sub.Service, ServiceVersion: sub.ServiceVersion,
		ReceivedAt: sub.CreatedAt.UTC().Format(time.RFC3339Nano), PayloadSHA256: sub.PayloadHash,
		Attachments: atts, Channel: string(sub.Channel),
	}, nil
}

// ErrNoHash: the submission was stored without a payload hash, so no
// receipt can be signed for it.
var ErrNoHash = errors.New("receipt: the submission has no payload hash")

// VerificationCode is the short code printed on a receipt: the first 8
// characters of the base32 (RFC 4648) SHA-256 of the JWS, in two groups of
// four ("ABCD-EFGH"). It lets a person compare a printed receipt with the
// one shown online; it is not a signature.
func VerificationCode(jws string) string {
	h := sha256.Sum256([]byte(jws))
	// 8 base32 characters are exactly the first 5 bytes of the digest.
	var s [9]byte
	base32.StdEncoding.Encode(s[:8], h[:5])
	copy(s[5:], s[4:8])
	s[4] = '-'
	return string(s[:])
}

// Key is one signing key.
type Key struct {
	ID      string
	Private ed25519.PrivateKey // nil for a key kept only to verify old receipts
	Public  ed25519.PublicKey
}

// Keyring holds the keys, newest first. The newest key with a private part
// signs; every key verifies.
type Keyring struct {
	keys   []Key
	header string // the signer's protected header segment (headerSegment)
}

// NewKeyring returns a keyring of keys, newest first. At least one key with
// a private part is needed; key ids must be unique.
func NewKeyring(keys []Key) (*Keyring, error) {
	seen := map[string]bool{}
	signer := false
	for _, k := range keys {
		if k.ID == "" || seen[k.ID] {
			return nil, fmt.Errorf("receipt: key id %q empty or repeated", k.ID)
		}
		seen[k.ID] = true
		if len(k.Public) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("receipt: key %s: not an Ed25519 public key", k.ID)
		}
		if k.Private != nil {
			if len(k.Private) != ed25519.PrivateKeySize || !bytes.Equal(k.Private.Public().(ed25519.PublicKey), k.Public) {
				return nil, fmt.Errorf("receipt: key %s: private and public parts do not match", k.ID)
			}
			signer = true
		}
	}
	if !signer {
		return nil, errors.New("receipt: no key with a private part to sign with")
	}
	r := &Keyring{keys: keys}
	var err error
	if r.header, err = headerSegment(r.signer()); err != nil {
		return nil, err
	}
	return r, nil
}

// Generate returns a new key with a key id made from its public key.
func Generate() (Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, err
	}
	return Key{ID: KeyID(pub), Private: priv, Public: pub}, nil
}

// KeyID is a key id derived from the public key: "r-" and 16 base64url
// characters of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return "r-" + base64.RawURLEncoding.EncodeToString(h[:12])
}

// signer is the newest key with a private part.
func (r *Keyring) signer() Key {
	for _, k := range r.keys {
		if k.Private != nil {
			return k
		}
	}
	panic("receipt: keyring without a signing key") // NewKeyring prevents it
}

// SigningKeyID is the id of the key that signs new receipts.
func (r *Keyring) SigningKeyID() string { return r.signer().ID }

// Sign returns the receipt (compact JWS) of claims, signed with the newest
// key. The same claims and key always give the same JWS.
//
// It writes the compact form itself, with the same bytes golang-jwt's
// NewWithClaims/SignedString gives (TestSignMatchesJWTLibrary): the
// protected header segment is fixed per key and made once (NewKeyring),
// the claims are written field by field (strings escaped as encoding/json
// does), then crypto/ed25519 signs header.claims. On a submission this
// saves the library's header map, two reflection-driven json.Marshal calls
// and their intermediate strings.
func (r *Keyring) Sign(c Claims) (string, error) {
	k := r.signer()
	hdr := r.header
	body := appendClaimsJSON(make([]byte, 0, 320), &c)
	n := len(hdr) + 1 + base64.RawURLEncoding.EncodedLen(len(body))
	out := make([]byte, 0, n+1+base64.RawURLEncoding.EncodedLen(ed25519.SignatureSize))
	out = append(out, hdr...)
	out = append(out, '.')
	out = base64.RawURLEncoding.AppendEncode(out, body)
	sig := ed25519.Sign(k.Private, out)
	out = append(out, '.')
	out = base64.RawURLEncoding.AppendEncode(out, sig)
	return string(out), nil
}

// headerSegment is the base64url protected header of k's receipts, as
// golang-jwt writes it: its header map {"alg", "typ"} with "kid" added and
// "typ" replaced, marshalled by encoding/json (keys sorted).
func headerSegment(k Key) (string, error) {
	b, err := json.Marshal(map[string]any{"alg": Alg, "kid": k.ID, "typ": "receipt+jwt"})
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// appendClaimsJSON appends c as encoding/json marshals jwtClaims{c}: the
// fields in declaration order, strings escaped as encoding/json does, nil
// attachments as [].
func appendClaimsJSON(b []byte, c *Claims) []byte {
	b = append(b, `{"reference":`...)
	b = appendJSONString(b, c.Reference)
	b = append(b, `,"service":`...)
	b = appendJSONString(b, c.Service)
	b = append(b, `,"service_version":`...)
	b = appendJSONString(b, c.ServiceVersion)
	b = append(b, `,"received_at":`...)
	b = appendJSONString(b, c.ReceivedAt)
	b = append(b, `,"payload_sha256":`...)
	b = appendJSONString(b, c.PayloadSHA256)
	b = append(b, `,"attachments_sha256":[`...)
	for i, a := range c.Attachments {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a)
	}
	b = append(b, `],"channel":`...)
	b = appendJSONString(b, c.Channel)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string exactly as encoding/json
// writes it: printable ASCII other than the quote, the backslash and the
// HTML characters <, > and & is copied; anything else (rare in a receipt:
// ids, hex digests, a timestamp) goes through encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// SignSubmission is Sign of the claims of a stored submission.
func (r *Keyring) SignSubmission(sub *gateway.Submission) (string, error) {
	c, err := ClaimsOf(sub)
	if err != nil {
		return "", err
	}
	return r.Sign(c)
}

// JWKS is the public key set, every key, newest first.
func (r *Keyring) JWKS() JWKSet {
	set := JWKSet{Keys: make([]JWK, 0, len(r.keys))}
	for _, k := range r.keys {
		set.Keys = append(set.Keys, publicJWK(k))
	}
	return set
}

// Verify checks a receipt against the keyring's public keys.
func (r *Keyring) Verify(jws string) (Claims, string, error) { return r.JWKS().Verify(jws) }

// JWK is an OKP (Ed25519) JSON Web Key (RFC 8037); D is the private part
// (only in the key file, never published).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Kid string `json:"kid"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
	X   string `json:"x"`
	D   string `json:"d,omitempty"`
}

// JWKSet is a JSON Web Key Set.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

func publicJWK(k Key) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", Kid: k.ID, Use: "sig", Alg: Alg, X: base64.RawURLEncoding.EncodeToString(k.Public)}
}

// PrivateJWK is the key with its private part, for a key file.
func PrivateJWK(k Key) JWK {
	j := publicJWK(k)
	if k.Private != nil {
		j.D = base64.RawURLEncoding.EncodeToString(k.Private.Seed())
	}
	return j
}

// key turns a JWK into a Key (with the private part when D is set).
func (j JWK) key() (Key, error) {
	if j.Kty != "OKP" || j.Crv != "Ed25519" {
		return Key{}, fmt.Errorf("receipt: key %q: kty %q crv %q, want OKP Ed25519", j.Kid, j.Kty, j.Crv)
	}
	if j.Alg != "" && j.Alg != Alg {
		return Key{}, fmt.Errorf("receipt: key %q: alg %q, want %s", j.Kid, j.Alg, Alg)
	}
	x, err := base64.RawURLEncoding.DecodeString(j.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return Key{}, fmt.Errorf("receipt: key %q: bad x", j.Kid)
	}
	k := Key{ID: j.Kid, Public: ed25519.PublicKey(x)}
	if j.D != "" {
		d, err := base64.RawURLEncoding.DecodeString(j.D)
		if err != nil || len(d) != ed25519.SeedSize {
			return Key{}, fmt.Errorf("receipt: key %q: bad d", j.Kid)
		}
		k.Private = ed25519.NewKeyFromSeed(d)
	}
	return k, nil
}

// ParseJWKS reads a key set (at most MaxJWKS bytes, MaxKeys keys).
func ParseJWKS(b []byte) (JWKSet, error) {
	if len(b) > MaxJWKS {
		return JWKSet{}, fmt.Errorf("receipt: key set larger than %d bytes", MaxJWKS)
	}
	var set JWKSet
	if err := json.Unmarshal(b, &set); err != nil {
		return JWKSet{}, fmt.Errorf("receipt: key set: %w", err)
	}
	if len(set.Keys) > MaxKeys {
		return JWKSet{}, fmt.Errorf("receipt: key set with more than %d keys", MaxKeys)
	}
	return set, nil
}

// LoadKeyring reads a key file: a JWK set whose keys are Ed25519 with their
// private parts, newest first (rotation: add the new key at the top; keep
// old keys, with or without their private parts, so old receipts verify).
func LoadKeyring(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("receipt: %w", err)
	}
	set, err := ParseJWKS(b)
	if err != nil {
		return nil, err
	}
	keys := make([]Key, 0, len(set.Keys))
	for _, j := range set.Keys {
		k, err := j.key()
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return NewKeyring(keys)
}

// Verify checks a receipt (compact JWS) against the set's public keys: the
// algorithm must be EdDSA and the header's kid one of the set's keys. It
// returns the claims and the key id.
func (set JWKSet) Verify(jws string) (Claims, string, error) {
	jws = strings.TrimSpace(jws)
	if len(jws) > MaxReceipt {
		return Claims{}, "", fmt.Errorf("receipt: longer than %d bytes", MaxReceipt)
	}
	var kid string
	var c jwtClaims
	_, err := jwt.ParseWithClaims(jws, &c, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		for _, j := range set.Keys {
			if j.Kid == kid && kid != "" {
				k, err := j.key()
				if err != nil {
					return nil, err
				}
				return k.Public, nil
			}
		}
		return nil, fmt.Errorf("unknown key id %q", kid)
	}, jwt.WithValidMethods([]string{Alg}), jwt.WithStrictDecoding())
	if err != nil {
		return Claims{}, kid, fmt.Errorf("receipt: %w", err)
	}
	if c.Reference == "" || c.PayloadSHA256 == "" || c.Attachments == nil {
		return Claims{}, kid, errors.New("receipt: claims incomplete")
	}
	return c.Claims, kid, nil
}
