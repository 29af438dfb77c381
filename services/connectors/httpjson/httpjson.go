// Package httpjson is the connector kind "http": it hands a submission to a
// department's case system as a signed JSON POST and reads the case
// reference from the answer.
//
// The request carries an Idempotency-Key (the submission id) so that the
// back-end can deduplicate the at-least-once deliveries of the gateway, and
// an HMAC-SHA256 signature over timestamp and body (see Sign and Verify),
// which the back-end checks with the shared secret.
//
// Attachments are not in the body: each is listed in Envelope.Attachments
// with a signed, expiring download link on the gateway that the back-end
// GETs (see AttachmentRef and the README's attachment contract).
//
// A manifest routes a service here with
//
//	[route]
//	kind = "http"
//
//	[route.settings]
//	url = "${CASESIM_URL}/cases"
//	secret = "${CASESIM_SECRET}"
//	timeout = "10s"        # optional, at most 2m
//	max_concurrency = 8    # optional, 1..256
package httpjson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/services"
)

// Kind is the route.kind of this connector in manifests.
const Kind = "http"

func init() {
	services.RegisterConnector(services.ConnectorInfo{
		Kind: Kind,
		New:  func() services.ConnectorModule { return new(Settings) },
	})
}

// Defaults and limits of the settings.
const (
	DefaultTimeout        = 10 * time.Second
	MaxTimeout            = 2 * time.Minute
	DefaultMaxConcurrency = 8
	MaxMaxConcurrency     = 256
)

// maxResponseBody is how much of an answer is read; a case reference fits
// many times over.
const maxResponseBody = 64 << 10

// maxCaseReference is the longest case reference accepted from a back-end.
const maxCaseReference = 256

// maxRetryAfter caps a Retry-After asked for by a back-end.
const maxRetryAfter = 24 * time.Hour

// userAgent identifies the gateway to the back-end.
const userAgent = "servicegateway/1"

// Settings are the [route.settings] of a manifest with route.kind "http".
type Settings struct {
	// URL is where deliveries are POSTed. It may contain ${NAME} references
	// to environment variables, e.g. "${CASESIM_URL}/cases".
	URL string `toml:"url"`
	// Secret is the reference to the environment variable holding the
	// shared signing secret, e.g. "${CASESIM_SECRET}". Required.
	Secret services.Secret `toml:"secret"`
	// Timeout is the longest one delivery attempt may take, as a Go
	// duration. Default "10s", at most "2m".
	Timeout string `toml:"timeout"`
	// MaxConcurrency is how many deliveries to this URL may be in flight at
	// once from one gateway process. Default 8, at most 256.
	MaxConcurrency int `toml:"max_concurrency"`
	// FollowUpURL is where answers to completion requests are POSTed
	// (FollowUpEnvelope), signed like deliveries; "{case_reference}" in it
	// is replaced by the case reference (path-escaped). Optional: without
	// it the service's answers become dead letters.
	FollowUpURL string `toml:"followup_url"`
}

// refPattern matches a well-formed ${NAME} reference.
var refPattern = regexp.MustCompile(`\$\{[A-Z][A-Z0-9_]*\}`)

// Validate checks the settings without reading the environment or touching
// the network.
func (s *Settings) Validate() error {
	var errs []error
	if err := validateURLTemplate(s.URL); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if s.Secret == "" {
		errs = append(errs, errors.New("secret: required, e.g. secret = \"${MY_SECRET}\""))
	}
	if _, err := s.timeout(); err != nil {
		errs = append(errs, fmt.Errorf("timeout: %w", err))
	}
	if s.FollowUpURL != "" {
		if err := validateURLTemplate(strings.ReplaceAll(s.FollowUpURL, "{case_reference}", "x")); err != nil {
			errs = append(errs, fmt.Errorf("followup_url: %w", err))
		}
	}
	if s.MaxConcurrency < 0 || s.MaxConcurrency > MaxMaxConcurrency {
		errs = append(errs, fmt.Errorf("max_concurrency: %d is not between 1 and %d", s.MaxConcurrency, MaxMaxConcurrency))
	}
	return errors.Join(errs...)
}

// validateURLTemplate checks a URL that may still contain ${NAME}
// references: with every reference replaced by a placeholder it must be an
// absolute http or https URL, unless it starts with a reference, which then
// stands for the scheme and host.
func validateURLTemplate(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return errors.New("required")
	}
	replaced := refPattern.ReplaceAllString(raw, "x")
	if strings.Contains(replaced, "${") {
		return errors.New("malformed ${NAME} reference (NAME is upper case letters, digits and _)")
	}
	if loc := refPattern.FindStringIndex(raw); loc != nil && loc[0] == 0 {
		if _, err := url.Parse(replaced); err != nil {
			return errors.New("not a valid URL")
		}
		return nil
	}
	return checkAbsoluteURL(replaced)
}

// checkAbsoluteURL accepts an absolute http or https URL with a host.
func checkAbsoluteURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("must be an absolute http or https URL")
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	return nil
}

// timeout returns the parsed timeout, or the default.
func (s *Settings) timeout() (time.Duration, error) {
	if s.Timeout == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(s.Timeout)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as \"10s\"", s.Timeout)
	}
	if d <= 0 || d > MaxTimeout {
		return 0, fmt.Errorf("%s is not between 0 and %s", d, MaxTimeout)
	}
	return d, nil
}

// Provision expands the URL, resolves the secret through getenv and returns
// the connector.
func (s *Settings) Provision(getenv func(string) string) (gateway.Connector, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	target, err := services.Expand(s.URL, getenv)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if err := checkAbsoluteURL(target); err != nil {
		// The expanded URL is not shown: it may carry a token.
		return nil, fmt.Errorf("url: after expansion: %w", err)
	}
	u, _ := url.Parse(target)
	secret, err := s.Secret.Resolve(getenv)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	var followUp string
	if s.FollowUpURL != "" {
		if followUp, err = services.Expand(s.FollowUpURL, getenv); err != nil {
			return nil, fmt.Errorf("followup_url: %w", err)
		}
		if err := checkAbsoluteURL(strings.ReplaceAll(followUp, "{case_reference}", "x")); err != nil {
			return nil, fmt.Errorf("followup_url: after expansion: %w", err)
		}
	}
	timeout, _ := s.timeout()
	n := s.MaxConcurrency
	if n == 0 {
		n = DefaultMaxConcurrency
	}
	return &Connector{
		url:      target,
		followUp: followUp,
		host:     u.Host,
		origin:   u.Scheme + "://" + u.Host,
		secret:   []byte(secret),
		timeout:  timeout,
		sem:      make(chan struct{}, n),
		client:   sharedClient,
		now:      time.Now,
	}, nil
}

// sharedClient is used by every connector of this kind, so that connections
// to a back-end are pooled and kept alive across services. Redirects are not
// followed: a signed POST goes where the manifest says or nowhere.
var sharedClient = &http.Client{
	Transport: newTransport(),
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Connector delivers to one URL. It is safe for concurrent use.
type Connector struct {
	url      string
	followUp string // "" when the route takes no follow-ups
	host     string // for error messages; the full URL may carry a token
	origin   string // scheme://host[:port], the back-end's circuit-breaker key
	secret   []byte
	timeout  time.Duration
	sem      chan struct{}
	client   *http.Client
	now      func() time.Time
}

// Envelope is the JSON body of a delivery. Back-ends may decode it with
// this type.
type Envelope struct {
	SubmissionID   string          `json:"submission_id"`
	Reference      string          `json:"reference"`
	Service        string          `json:"service"`
	ServiceVersion string          `json:"service_version"`
	Department     string          `json:"department"`
	Channel        gateway.Channel `json:"channel"`
	Locale         string          `json:"locale"`
	Subject        string          `json:"subject,omitempty"`
	SubmittedAt    string          `json:"submitted_at"` // RFC 3339, UTC
	Attempt        int             `json:"attempt"`
	Payload        map[string]any  `json:"payload"`
	// Attachments are the files of the form's file fields, each with a
	// signed, expiring download link on the gateway (see AttachmentRef).
	Attachments []AttachmentRef `json:"attachments,omitempty"`
}

// AttachmentRef is one attached file in a delivery or follow-up. The
// back-end GETs URL (no credentials needed: the link is signed and
// expires at ExpiresAt, normally 24 hours after the attempt that carried
// it), checks that the bytes hash to SHA256 and are Size long, and keeps
// them: the gateway deletes its copy once the delivery succeeded and the
// file was fetched, or when the link expired. A fetch that fails should
// fail the delivery (answer 5xx): the retry carries fresh links.
type AttachmentRef struct {
	ID        string `json:"id"`
	Field     string `json:"field"`
	Name      string `json:"name"` // sanitised file name
	Type      string `json:"type"` // media type found by sniffing the content
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"` // lower-case hex
	URL       string `json:"url"`
	ExpiresAt string `json:"expires_at"` // RFC 3339, UTC
}

// attachmentRefs lists atts with fresh links from files.
func attachmentRefs(atts []gateway.Attachment, files gateway.AttachmentFiles) ([]AttachmentRef, error) {
	if len(atts) == 0 {
		return nil, nil
	}
	if files == nil {
		return nil, temporary(errors.New("attachments but no way to link them"), 0)
	}
	out := make([]AttachmentRef, 0, len(atts))
	for _, a := range atts {
		link, exp := files.Link(a)
		if link == "" {
			// A gateway without a link secret: fixed by configuration,
			// so the submission waits in the retries.
			return nil, temporary(errors.New("no download link for an attachment (link secret unset)"), 0)
		}
		out = append(out, AttachmentRef{ID: a.ID, Field: a.Field, Name: a.Name, Type: a.Type, Size: a.Size, SHA256: a.SHA256,
			URL: link, ExpiresAt: exp.UTC().Format(time.RFC3339)})
	}
	return out, nil
}

// Answer is the JSON body a back-end answers a delivery with.
type Answer struct {
	CaseReference string `json:"case_reference"`
}

// NewEnvelope builds the body of a delivery.
func NewEnvelope(d *gateway.Delivery) Envelope {
	payload := d.Payload
	if payload == nil {
		payload = map[string]any{}
	}
	return Envelope{
		SubmissionID:   d.SubmissionID,
		Reference:      d.Reference,
		Service:        d.Service,
		ServiceVersion: d.ServiceVersion,
		Department:     d.Department,
		Channel:        d.Channel,
		Locale:         d.Locale,
		Subject:        d.Subject,
		SubmittedAt:    d.SubmittedAt.UTC().Format(time.RFC3339),
		Attempt:        d.Attempt,
		Payload:        payload,
	}
}

// temporary and permanent build classified delivery errors.
func temporary(err error, retryAfter time.Duration) error {
	return &gateway.DeliveryError{Err: err, RetryAfter: retryAfter}
}

func permanent(err error) error {
	return &gateway.DeliveryError{Permanent: true, Err: err}
}

// Deliver POSTs the delivery and returns the case reference from the
// answer. Every error is a *gateway.DeliveryError: permanent for a 4xx other
// than 408 and 429, temporary otherwise. Error messages never contain the
// payload.
func (c *Connector) Deliver(ctx context.Context, d *gateway.Delivery) (string, error) {
	if d.SubmissionID == "" {
		return "", permanent(errors.New("delivery has no submission id"))
	}
	env := NewEnvelope(d)
	refs, err := attachmentRefs(d.Attachments, d.Files)
	if err != nil {
		return "", err
	}
	env.Attachments = refs
	body, err := json.Marshal(env)
	if err != nil {
		// Only the error's kind is kept: a json error may quote a value.
		return "", permanent(errors.New("payload cannot be encoded as JSON"))
	}

	resp, err := c.post(ctx, c.url, d.IdempotencyKey(), body)
	if err != nil {
		return "", err
	}
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
		resp.Body.Close()
	}()

	status := strings.TrimSpace(fmt.Sprintf("%s answered %d %s", c.host, resp.StatusCode, http.StatusText(resp.StatusCode)))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		ref, err := readCaseReference(resp.Body)
		if err != nil {
			// The back-end took it (2xx): sending it again cannot help, and
			// dead-lettering it would hand a person a case the department
			// already has. The dispatcher records it as delivered without a
			// case reference and warns.
			return "", temporary(acceptedError{fmt.Errorf("%s but %w", status, err)}, 0)
		}
		return ref, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return "", temporary(errors.New(status), parseRetryAfter(resp.Header.Get("Retry-After"), c.now()))
	case code >= 400:
		return "", permanent(errors.New(status))
	default:
		// 1xx and 3xx (redirects are not followed): most likely a
		// misconfiguration that someone can fix, so keep the submission.
		return "", temporary(errors.New(status), 0)
	}
}

// post sends one signed JSON POST to target, waiting for a concurrency
// slot first. Errors are *gateway.DeliveryError.
func (c *Connector) post(ctx context.Context, target, key string, body []byte) (*http.Response, error) {
	// Wait for a slot, but not past the caller's patience.
	if err := ctx.Err(); err != nil {
		return nil, temporary(err, 0)
	}
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	case <-ctx.Done():
		return nil, temporary(ctx.Err(), 0)
	}

	reqCtx, cancel := context.WithTimeout(ctx, c.timeout)
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, permanent(fmt.Errorf("build request to %s: invalid URL", c.host))
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderIdempotencyKey, key)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(c.secret, ts, body))

	resp, err := c.client.Do(req)
	if err != nil {
		cancel()
		return nil, temporary(c.transportError(ctx, reqCtx, err), 0)
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

// cancelOnClose ends a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error { err := b.ReadCloser.Close(); b.cancel(); return err }

// FollowUpEnvelope is the JSON body of a follow-up: a resident's answer to
// the case system's completion request, for the case it names.
type FollowUpEnvelope struct {
	SubmissionID  string `json:"submission_id"`
	Reference     string `json:"reference"`
	Service       string `json:"service"`
	CaseReference string `json:"case_reference"`
	Seq           int    `json:"seq"`
	Question      string `json:"question,omitempty"`
	Answer        string `json:"answer"`
	AnsweredAt    string `json:"answered_at"` // RFC 3339, UTC
	Attempt       int    `json:"attempt"`
	// Attachments sent with the answer, as in a delivery.
	Attachments []AttachmentRef `json:"attachments,omitempty"`
}

var _ gateway.FollowUpConnector = (*Connector)(nil)

// DeliverFollowUp POSTs an answer to the route's followup_url, signed like
// a delivery, with Idempotency-Key "<submission id>.answer.<seq>". Errors
// are classified like Deliver's.
func (c *Connector) DeliverFollowUp(ctx context.Context, f *gateway.FollowUp) error {
	if c.followUp == "" {
		return permanent(errors.New("the route has no followup_url"))
	}
	if f.CaseReference == "" {
		return temporary(errors.New("the submission has no case reference yet"), 0)
	}
	refs, err := attachmentRefs(f.Attachments, f.Files)
	if err != nil {
		return err
	}
	body, err := json.Marshal(FollowUpEnvelope{SubmissionID: f.SubmissionID, Reference: f.Reference, Service: f.Service,
		CaseReference: f.CaseReference, Seq: f.Seq, Question: f.Question, Answer: f.Answer,
		AnsweredAt: f.AnsweredAt.UTC().Format(time.RFC3339), Attempt: f.Attempt, Attachments: refs})
	if err != nil {
		return permanent(errors.New("follow-up cannot be encoded as JSON"))
	}
	target := strings.ReplaceAll(c.followUp, "{case_reference}", url.PathEscape(f.CaseReference))
	resp, err := c.post(ctx, target, f.IdempotencyKey(), body)
	if err != nil {
		return err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
		resp.Body.Close()
	}()
	status := strings.TrimSpace(fmt.Sprintf("%s answered %d %s", c.host, resp.StatusCode, http.StatusText(resp.StatusCode)))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return temporary(errors.New(status), parseRetryAfter(resp.Header.Get("Retry-After"), c.now()))
	case code >= 400:
		return permanent(errors.New(status))
	default:
		return temporary(errors.New(status), 0)
	}
}

// acceptedError is the error of a 2xx whose answer could not be read: the
// back-end accepted the delivery. Accepted tells the dispatcher so.
type acceptedError struct{ err error }

func (e acceptedError) Error() string  { return e.err.Error() }
func (e acceptedError) Unwrap() error  { return e.err }
func (e acceptedError) Accepted() bool { return true }

// transportError describes a failed round trip without the URL, which may
// carry a token.
func (c *Connector) transportError(parent, reqCtx context.Context, err error) error {
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("post to %s: %w", c.host, parent.Err())
	case errors.Is(reqCtx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("post to %s: no answer within %s: %w", c.host, c.timeout, context.DeadlineExceeded)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("post to %s: %w", c.host, err)
}

// readCaseReference reads the answer of a 2xx.
func readCaseReference(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxResponseBody+1))
	if err != nil {
		return "", fmt.Errorf("the answer could not be read: %w", err)
	}
	if len(b) > maxResponseBody {
		return "", fmt.Errorf("the answer is larger than %d bytes", maxResponseBody)
	}
	var a Answer
	if err := json.Unmarshal(b, &a); err != nil {
		return "", errors.New("the answer is not a JSON object")
	}
	ref := strings.TrimSpace(a.CaseReference)
	switch {
	case ref == "":
		return "", errors.New("the answer has no case_reference")
	case len(ref) > maxCaseReference:
		return "", fmt.Errorf("the case_reference is longer than %d bytes", maxCaseReference)
	case strings.ContainsFunc(ref, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", errors.New("the case_reference contains control characters")
	}
	return ref, nil
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
// It returns 0 when the header is absent or invalid, and caps the delay.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}
