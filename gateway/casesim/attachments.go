package casesim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

// Defaults of fetching attachments.
const (
	DefaultFetchTimeout  = 30 * time.Second
	DefaultMaxAttachment = 25 << 20
	maxAttachments       = 50
)

// Attachment is a file fetched for a case: what the case system keeps of
// it here (a real one would archive the bytes).
type Attachment struct {
	Field  string `json:"field,omitempty"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // computed from the fetched bytes, equal to the announced one
}

// fetchClient fetches attachment links; it follows no redirects.
var fetchClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// fetchAttachments GETs every attachment link of a delivery, checks size
// and digest against what was announced, and returns what the case keeps.
// Any failure is an error: the delivery is then answered 502, and the
// gateway retries with fresh links.
func (s *Server) fetchAttachments(ctx context.Context, refs []httpjson.AttachmentRef) ([]Attachment, error) {
	if len(refs) > maxAttachments {
		return nil, fmt.Errorf("more than %d attachments", maxAttachments)
	}
	out := make([]Attachment, 0, len(refs))
	for _, ref := range refs {
		a, err := s.fetchOne(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("attachment %q: %w", ref.Name, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func (s *Server) fetchOne(ctx context.Context, ref httpjson.AttachmentRef) (Attachment, error) {
	if ref.Size < 0 || ref.Size > s.maxAttachment {
		return Attachment{}, fmt.Errorf("announced size %d is over the limit of %d bytes", ref.Size, s.maxAttachment)
	}
	ctx, cancel := context.WithTimeout(ctx, s.fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref.URL, nil)
	if err != nil {
		return Attachment{}, errors.New("malformed link")
	}
	resp, err := fetchClient.Do(req)
	if err != nil {
		return Attachment{}, fmt.Errorf("fetch failed: %w", errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Attachment{}, fmt.Errorf("fetch answered %d", resp.StatusCode)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(resp.Body, s.maxAttachment+1))
	if err != nil {
		return Attachment{}, fmt.Errorf("reading failed after %d bytes", n)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	switch {
	case n > s.maxAttachment:
		return Attachment{}, fmt.Errorf("larger than %d bytes", s.maxAttachment)
	case n != ref.Size:
		return Attachment{}, fmt.Errorf("got %d bytes, announced %d", n, ref.Size)
	case sum != ref.SHA256:
		return Attachment{}, errors.New("sha256 of the bytes differs from the announced one")
	}
	return Attachment{Field: ref.Field, Name: ref.Name, Type: ref.Type, Size: n, SHA256: sum}, nil
}
