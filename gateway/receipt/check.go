package receipt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// MaxFile bounds a receipt file (receipt and payload) given to ParseFile.
const MaxFile = 512 * 1024

// File is what `gateway verify-receipt FILE` and the page /receipts/verify
// read. The file is either the compact JWS alone, or a JSON object:
//
//	{"receipt": {"jws": "eyJ...", ...}, "payload": {...}}
//
// where "receipt" is the member the API returns (202 answer and GET
// /api/v1/submissions/{id}) and "payload" (optional) the JSON object that
// was submitted. {"jws": "eyJ...", "payload": {...}} (the receipt object
// itself with a payload member added) is read too.
type File struct {
	JWS     string
	Payload []byte // nil: no payload to check
	// Attachments are the hex SHA-256 digests (FileDigest) of files the
	// checker holds and says were attached: each must be one the receipt
	// names. Empty: no attachment to check.
	Attachments []string
}

// FileDigest is the lower-case hex SHA-256 of r's bytes, read as a stream
// (any size, constant memory): what a receipt names for an attachment.
func FileDigest(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ParseFile reads a receipt file (see File).
func ParseFile(b []byte) (File, error) {
	if len(b) > MaxFile {
		return File{}, fmt.Errorf("receipt: file larger than %d bytes", MaxFile)
	}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] != '{' {
		return File{JWS: string(b)}, nil
	}
	var f struct {
		JWS     string          `json:"jws"`
		Receipt json.RawMessage `json:"receipt"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return File{}, fmt.Errorf("receipt: file: %w", err)
	}
	out := File{JWS: f.JWS}
	if len(f.Receipt) > 0 {
		var r struct {
			JWS string `json:"jws"`
		}
		if err := json.Unmarshal(f.Receipt, &r); err != nil {
			var s string // the receipt as a plain string
			if json.Unmarshal(f.Receipt, &s) != nil {
				return File{}, fmt.Errorf("receipt: file: receipt: %w", err)
			}
			r.JWS = s
		}
		out.JWS = r.JWS
	}
	if out.JWS == "" {
		return File{}, errors.New("receipt: file: no receipt (jws) in it")
	}
	if len(f.Payload) > 0 && string(f.Payload) != "null" {
		out.Payload = f.Payload
	}
	return out, nil
}

// Result is a checked receipt.
type Result struct {
	Claims
	KeyID string
	Code  string // the verification code
	// PayloadChecked: a payload was given; then it matched (else Check
	// returns ErrPayloadMismatch).
	PayloadChecked bool
	// AttachmentsChecked is how many attachment digests were given and
	// found in the receipt (a digest not in it: ErrAttachmentMismatch).
	AttachmentsChecked int
}

// ErrPayloadMismatch: the signature is good, but the payload given is not
// the one the receipt was made for.
var ErrPayloadMismatch = errors.New("receipt: the payload does not match the receipt")

// ErrAttachmentMismatch: the signature is good, but a file given as an
// attachment is not one the receipt names (changed, or never attached).
var ErrAttachmentMismatch = errors.New("receipt: an attachment does not match the receipt")

// Check verifies the receipt's signature against set and, when the file
// has a payload, its hash. An invalid signature is an error (the claims are
// not returned); a changed payload returns the claims and
// ErrPayloadMismatch.
func Check(set JWKSet, f File) (Result, error) {
	jws := strings.TrimSpace(f.JWS)
	c, kid, err := set.Verify(jws)
	if err != nil {
		return Result{KeyID: kid}, err
	}
	r := Result{Claims: c, KeyID: kid, Code: VerificationCode(jws)}
	if f.Payload != nil {
		r.PayloadChecked = true
		h, err := PayloadHashJSON(f.Payload)
		if err != nil {
			return r, err
		}
		if h != c.PayloadSHA256 {
			return r, ErrPayloadMismatch
		}
	}
	for _, d := range f.Attachments {
		if !slices.Contains(c.Attachments, strings.ToLower(d)) {
			return r, fmt.Errorf("%w: sha256 %s", ErrAttachmentMismatch, d)
		}
		r.AttachmentsChecked++
	}
	return r, nil
}
