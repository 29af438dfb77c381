// Package httpscan is a malware scanner adapter for a scanning service
// over HTTP. Contract: the gateway POSTs the file's bytes to the URL
// (Content-Type application/octet-stream, streamed); the service answers
// 200 with JSON {"infected": false} or {"infected": true, "threat":
// "<name>"}. Any other answer, or none within the timeout, means the file
// could not be checked.
package httpscan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// Timeout bounds a scan whose context has no deadline.
const Timeout = 30 * time.Second

// MaxAnswer bounds the answer read.
const MaxAnswer = 4096

// ErrUnavailable wraps every failure to get an answer.
var ErrUnavailable = errors.New("httpscan: scanner unavailable")

// Scanner posts files to URL, with Token as a bearer token when set.
type Scanner struct {
	URL, Token string
	Client     *http.Client
}

// New returns a scanner for url.
func New(url, token string) *Scanner {
	return &Scanner{URL: url, Token: token, Client: &http.Client{Timeout: 5 * time.Minute}}
}

// Scan: nil clean; gateway.ErrAttachmentInfected (wrapped) infected;
// ErrUnavailable (wrapped) no usable answer.
func (s *Scanner) Scan(ctx context.Context, r io.Reader) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, io.NopCloser(r))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	res, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: status %d", ErrUnavailable, res.StatusCode)
	}
	var out struct {
		Infected *bool  `json:"infected"`
		Threat   string `json:"threat"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, MaxAnswer)).Decode(&out); err != nil || out.Infected == nil {
		return fmt.Errorf("%w: answer not understood: %v", ErrUnavailable, err)
	}
	if *out.Infected {
		return fmt.Errorf("%w: %s", gateway.ErrAttachmentInfected, out.Threat)
	}
	return nil
}
