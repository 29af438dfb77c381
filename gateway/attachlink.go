package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// AttachmentFiles is how a connector reaches the attachments of what it
// hands on: their bytes (the e-mail connector makes MIME parts of them) or
// signed, expiring download links on the gateway (the http connector lists
// them in the JSON). The dispatcher fills it in; nil when there are no
// attachments.
type AttachmentFiles interface {
	// Open streams the bytes of a. ErrAttachmentNotFound (wrapped) when
	// they are gone.
	Open(ctx context.Context, a Attachment) (io.ReadCloser, error)
	// Link returns a signed download URL for a and when it stops working;
	// "" when the gateway hands out no links (no link secret).
	Link(a Attachment) (link string, expires time.Time)
}

// AttachmentPathPrefix is where the gateway serves attachments to
// back-ends: GET /attachments/{id}?exp={unix seconds}&sig={hex} (a
// contract with the case systems).
const AttachmentPathPrefix = "/attachments/"

// AttachmentLinks signs and checks download links of attachments: the
// signature is HMAC-SHA256(secret, "attachment\n" + id + "\n" + exp), hex
// encoded, so a link names one file until one moment and cannot be
// stretched to another file or a later time.
type AttachmentLinks struct {
	BaseURL string        // the gateway's external base URL, no trailing slash
	Secret  []byte        // shared by every replica
	TTL     time.Duration // lifetime of a link from when it is made
	Now     func() time.Time
}

// Errors of AttachmentLinks.Verify.
var (
	ErrLinkExpired   = errors.New("attachment link expired")
	ErrLinkSignature = errors.New("attachment link signature does not match")
)

// Link implements the link half of AttachmentFiles.
func (l *AttachmentLinks) Link(a Attachment) (string, time.Time) {
	if l == nil || len(l.Secret) == 0 || a.ID == "" {
		return "", time.Time{}
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	exp := now().Add(l.TTL).Truncate(time.Second)
	e := strconv.FormatInt(exp.Unix(), 10)
	q := url.Values{"exp": {e}, "sig": {l.sign(a.ID, e)}}
	return strings.TrimRight(l.BaseURL, "/") + AttachmentPathPrefix + url.PathEscape(a.ID) + "?" + q.Encode(), exp
}

func (l *AttachmentLinks) sign(id, exp string) string {
	m := hmac.New(sha256.New, l.Secret)
	m.Write([]byte("attachment\n" + id + "\n" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks the exp and sig of a link to attachment id at now. The
// comparison is constant-time; a link is refused after exp, and a link
// expiring further ahead than TTL (plus a minute of clock skew between
// replicas) was never made by this gateway.
func (l *AttachmentLinks) Verify(id, exp, sig string, now time.Time) error {
	if l == nil || len(l.Secret) == 0 {
		return ErrLinkSignature
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mustHex(l.sign(id, exp))) {
		return ErrLinkSignature
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return ErrLinkSignature
	}
	if now.Unix() > e {
		return ErrLinkExpired
	}
	if e-now.Unix() > int64((l.TTL+time.Minute)/time.Second) {
		return ErrLinkSignature
	}
	return nil
}

func mustHex(s string) []byte { b, _ := hex.DecodeString(s); return b }
