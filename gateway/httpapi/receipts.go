package httpapi

import (
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/receipt"
)

// ReceiptSigner signs receipts from stored submissions and publishes its
// public keys (*receipt.Keyring).
type ReceiptSigner interface {
	SignSubmission(sub *gateway.Submission) (string, error)
	SigningKeyID() string // the kid of the receipts SignSubmission makes
	JWKS() receipt.JWKSet
}

// ReceiptKeysPath is where the receipts' public keys are published (JWKS).
const ReceiptKeysPath = "/.well-known/receipt-keys.json"

// receiptJSON is the API's `receipt` member (contract): the JWS, its key
// id, the short verification code and where the keys are.
type receiptJSON struct {
	JWS              string `json:"jws"`
	KeyID            string `json:"kid"`
	VerificationCode string `json:"verification_code"`
	KeysURL          string `json:"keys_url"`
}

// receiptOf signs sub's receipt; nil when there are no receipt keys or the
// record has no payload hash (stored before receipts existed).
func (s *Server) receiptOf(sub *gateway.Submission) (*receiptJSON, error) {
	if s.Receipts == nil {
		return nil, nil
	}
	jws, err := s.Receipts.SignSubmission(sub)
	if errors.Is(err, receipt.ErrNoHash) {
		return nil, nil
	}
	if err != nil {
		return nil, gateway.Errorf(gateway.EInternal, "error.internal", err)
	}
	// The signing key's id, without building the published key set
	// (a base64 encoding per key) for every receipt shown.
	return &receiptJSON{JWS: jws, KeyID: s.Receipts.SigningKeyID(), VerificationCode: receipt.VerificationCode(jws),
		KeysURL: s.Config.PublicURL + ReceiptKeysPath}, nil
}

// receiptKeys: GET /.well-known/receipt-keys.json, the public keys of every
// receipt key, old ones included, so receipts verify after a rotation.
func (s *Server) receiptKeys(c *fiber.Ctx) error {
	if s.Receipts == nil {
		return fiber.ErrNotFound
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
	return c.JSON(s.Receipts.JWKS())
}

// maxVerifyPayload bounds the payload pasted on the verify page.
const maxVerifyPayload = 64 * 1024

type verifyContent struct {
	Receipt, Payload string
	Checked, Valid   bool
	PayloadChecked   bool
	Problem          string // a message ID
	Result           receipt.Result
	Received         string
}

// receiptVerifyPage: GET /receipts/verify, a form to paste a receipt (and
// optionally the payload) into; POST checks it against the gateway's keys.
// No JavaScript.
func (s *Server) receiptVerifyPage(c *fiber.Ctx) error {
	l := s.localizer(c)
	if s.Receipts == nil {
		return fiber.ErrNotFound
	}
	vc := verifyContent{}
	status := fiber.StatusOK
	if c.Method() == fiber.MethodPost {
		vc.Checked = true
		vc.Receipt = strings.Clone(strings.TrimSpace(c.FormValue("receipt")))
		vc.Payload = strings.Clone(strings.TrimSpace(c.FormValue("payload")))
		f, err := receipt.ParseFile([]byte(vc.Receipt))
		switch {
		case len(vc.Payload) > maxVerifyPayload:
			vc.Problem = "receipt.verify.payload_bad"
		case err != nil:
			vc.Problem = "receipt.verify.unreadable"
		default:
			if vc.Payload != "" {
				f.Payload = []byte(vc.Payload)
			}
			res, err := receipt.Check(s.Receipts.JWKS(), f)
			vc.Result, vc.PayloadChecked = res, res.PayloadChecked
			switch {
			case errors.Is(err, receipt.ErrPayloadMismatch):
				vc.Problem = "receipt.verify.payload_mismatch"
			case err != nil && res.Reference != "":
				vc.Problem = "receipt.verify.payload_bad"
			case err != nil:
				vc.Problem = "receipt.verify.invalid"
			default:
				vc.Valid = true
			}
			if t, err := time.Parse(time.RFC3339Nano, res.ReceivedAt); err == nil && res.Reference != "" {
				vc.Received = l.DateTime(t.In(stockholm))
			}
		}
		if !vc.Valid {
			status = fiber.StatusUnprocessableEntity
		}
	}
	return s.render(c, status, "receipt_verify", l.T("receipt.verify.title"), vc)
}
