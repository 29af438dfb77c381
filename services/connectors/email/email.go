// Package email is the connector kind "email", for departments without an
// API: each submission becomes one e-mail (RFC 5322, MIME, UTF-8) to the
// department's functional mailbox (plain text with an HTML alternative),
// sent over SMTP with STARTTLS and AUTH PLAIN.
//
// The Message-ID is derived from the submission id, so every attempt sends
// the same message and a mailbox (or a person) can recognise a repeat. The
// case reference is the gateway's receipt reference: an e-mail has no reply
// channel, so status updates come from staff through the department client
// API (POST /api/v1/submissions/{id}/status).
//
// A manifest routes a service here with
//
//	[route]
//	kind = "email"
//
//	[route.settings]
//	host = "${SMTP_HOST}"            # ${ENV} references are expanded at start-up
//	port = "${SMTP_PORT}"            # optional, default 587
//	from = "${MAIL_FROM}"            # "Name <address>" or an address
//	to = "${CITY_OFFICE_MAILBOX}"    # one or more addresses, comma-separated (at most 10)
//	username = "${SMTP_USERNAME}"    # optional; empty value: no AUTH
//	password = "${SMTP_PASSWORD}"    # with username
//	tls = "starttls"                 # starttls (default) or none (refused in production)
//	ca_file = "${SMTP_CA_FILE}"      # optional PEM file of CAs to trust; empty: the system's
//	tls_insecure_skip_verify = false # tests only; refused in production
//	timeout = "30s"                  # dial and each SMTP command, at most 2m
//	language = "sv"                  # language of the e-mail (labels, headings)
//	max_concurrency = 4              # connections per process, 1..64
//	max_message_bytes = 20971520     # whole message with its attachments (base64); default 20 MiB, at most 100 MiB
//
// Attachments (file fields, answers to completion requests) become MIME
// parts of the one message: multipart/mixed, base64, the file name in RFC
// 2231 and RFC 2047 form. A message that would exceed max_message_bytes is
// a permanent error (ErrMessageTooLarge): the submission becomes a dead
// letter rather than mail the server would refuse.
package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/smtpmail"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"
)

// Kind is the route.kind of this connector in manifests.
const Kind = "email"

func init() {
	services.RegisterConnector(services.ConnectorInfo{
		Kind: Kind,
		New:  func() services.ConnectorModule { return new(Settings) },
	})
}

// Defaults and limits of the settings.
const (
	DefaultPort           = "587"
	DefaultTimeout        = 30 * time.Second
	MaxTimeout            = 2 * time.Minute
	DefaultMaxConcurrency = 4
	MaxMaxConcurrency     = 64
	MaxRecipients         = 10
	maxCAFile             = 1 << 20 // bytes of PEM read from ca_file
)

// TLS modes.
const (
	TLSStartTLS = "starttls"
	TLSNone     = "none"
)

// Settings are the [route.settings] of a manifest with route.kind "email".
type Settings struct {
	Host     string          `toml:"host"`
	Port     string          `toml:"port"`
	From     string          `toml:"from"`
	To       string          `toml:"to"`
	Username services.Secret `toml:"username"`
	Password services.Secret `toml:"password"`
	TLS      string          `toml:"tls"`
	CAFile   string          `toml:"ca_file"`
	// InsecureSkipVerify accepts any server certificate. For tests against
	// a server with a throw-away certificate; refused in production.
	InsecureSkipVerify bool   `toml:"tls_insecure_skip_verify"`
	Timeout            string `toml:"timeout"`
	Language           string `toml:"language"`
	MaxConcurrency     int    `toml:"max_concurrency"`
	MaxMessageBytes    int64  `toml:"max_message_bytes"`

	// Bound by the catalog loader (services.ServiceBinder): the service
	// whose submissions are sent, and its translations.
	svc *gateway.Service
	tr  *locales.Translations
}

var _ services.ServiceBinder = (*Settings)(nil)

// BindService gives the connector the service's fields and translations,
// so that the e-mail shows labels instead of field names.
func (s *Settings) BindService(svc *gateway.Service, tr *locales.Translations) {
	s.svc, s.tr = svc, tr
}

var refPattern = regexp.MustCompile(`\$\{[A-Z][A-Z0-9_]*\}`)

// checkTemplate checks a value that may contain ${NAME} references.
func checkTemplate(v string, required bool) error {
	if strings.TrimSpace(v) == "" {
		if required {
			return errors.New("required")
		}
		return nil
	}
	if strings.Contains(refPattern.ReplaceAllString(v, "x"), "${") {
		return errors.New("malformed ${NAME} reference (NAME is upper case letters, digits and _)")
	}
	return nil
}

// Validate checks the settings without reading the environment or touching
// the network.
func (s *Settings) Validate() error {
	var errs []error
	for _, f := range []struct {
		name, v  string
		required bool
	}{{"host", s.Host, true}, {"port", s.Port, false}, {"from", s.From, true}, {"to", s.To, true}, {"ca_file", s.CAFile, false}} {
		if err := checkTemplate(f.v, f.required); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	if !refPattern.MatchString(s.From) {
		if _, err := mail.ParseAddress(s.From); err != nil {
			errs = append(errs, fmt.Errorf("from: not an e-mail address: %v", err))
		}
	}
	if !refPattern.MatchString(s.To) {
		if _, err := parseRecipients(s.To); err != nil {
			errs = append(errs, fmt.Errorf("to: %w", err))
		}
	}
	if s.Password != "" && s.Username == "" {
		errs = append(errs, errors.New("password: given without username"))
	}
	if s.Username != "" && s.Password == "" {
		errs = append(errs, errors.New("username: given without password"))
	}
	switch s.TLS {
	case "", TLSStartTLS:
	case TLSNone:
		if s.CAFile != "" || s.InsecureSkipVerify {
			errs = append(errs, errors.New(`tls: "none" with ca_file or tls_insecure_skip_verify makes no sense`))
		}
	default:
		errs = append(errs, fmt.Errorf("tls: want %q or %q, got %q", TLSStartTLS, TLSNone, s.TLS))
	}
	if _, err := s.timeout(); err != nil {
		errs = append(errs, fmt.Errorf("timeout: %w", err))
	}
	if _, err := s.language(); err != nil {
		errs = append(errs, fmt.Errorf("language: %w", err))
	}
	if s.MaxConcurrency < 0 || s.MaxConcurrency > MaxMaxConcurrency {
		errs = append(errs, fmt.Errorf("max_concurrency: %d is not between 1 and %d", s.MaxConcurrency, MaxMaxConcurrency))
	}
	if s.MaxMessageBytes < 0 || s.MaxMessageBytes > MaxMaxMessageBytes {
		errs = append(errs, fmt.Errorf("max_message_bytes: %d is not between 1 and %d", s.MaxMessageBytes, MaxMaxMessageBytes))
	}
	return errors.Join(errs...)
}

func (s *Settings) timeout() (time.Duration, error) {
	if s.Timeout == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(s.Timeout)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as \"30s\"", s.Timeout)
	}
	if d <= 0 || d > MaxTimeout {
		return 0, fmt.Errorf("%s is not between 0 and %s", d, MaxTimeout)
	}
	return d, nil
}

func (s *Settings) language() (language.Tag, error) {
	if s.Language == "" {
		return locales.Default, nil
	}
	t, ok := locales.Parse(s.Language)
	if !ok {
		return locales.Default, fmt.Errorf("%q is not a shipped language", s.Language)
	}
	return t, nil
}

// parseRecipients reads a comma-separated list of addresses.
func parseRecipients(v string) ([]*mail.Address, error) {
	list, err := mail.ParseAddressList(v)
	if err != nil {
		return nil, fmt.Errorf("not a list of e-mail addresses: %v", err)
	}
	if len(list) > MaxRecipients {
		return nil, fmt.Errorf("%d addresses; at most %d", len(list), MaxRecipients)
	}
	return list, nil
}

// expandOptional replaces ${NAME} references, allowing empty values.
func expandOptional(v string, getenv func(string) string) string {
	return refPattern.ReplaceAllStringFunc(v, func(ref string) string { return getenv(ref[2 : len(ref)-1]) })
}

// Provision expands the settings through getenv and returns the connector.
// With GATEWAY_ENV=production it refuses tls = "none" and
// tls_insecure_skip_verify.
func (s *Settings) Provision(getenv func(string) string) (gateway.Connector, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	production := getenv("GATEWAY_ENV") == "production"
	if production && s.TLS == TLSNone {
		return nil, errors.New(`tls: "none" sends mail and passwords in clear text and is refused with GATEWAY_ENV=production`)
	}
	if production && s.InsecureSkipVerify {
		return nil, errors.New("tls_insecure_skip_verify is for tests and is refused with GATEWAY_ENV=production")
	}
	host, err := services.Expand(s.Host, getenv)
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	host = strings.TrimSpace(host)
	if host == "" || strings.ContainsAny(host, " /:@") && net.ParseIP(host) == nil {
		return nil, errors.New("host: after expansion: not a host name or IP address")
	}
	port := DefaultPort
	if s.Port != "" {
		if port, err = services.Expand(s.Port, getenv); err != nil {
			return nil, fmt.Errorf("port: %w", err)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("port: after expansion: %q is not a port number", port)
	}
	fromS, err := services.Expand(s.From, getenv)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	from, err := mail.ParseAddress(fromS)
	if err != nil {
		return nil, fmt.Errorf("from: after expansion: not an e-mail address: %v", err)
	}
	toS, err := services.Expand(s.To, getenv)
	if err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	to, err := parseRecipients(toS)
	if err != nil {
		return nil, fmt.Errorf("to: after expansion: %w", err)
	}
	tr := s.tr
	if tr == nil { // not loaded through the catalog: no labels, field names
		if tr, err = locales.New(); err != nil {
			return nil, err
		}
	}
	c := &Connector{
		addr: net.JoinHostPort(host, port), host: host, from: from, to: to,
		startTLS: s.TLS != TLSNone, svc: s.svc, tr: tr,
		sem:        make(chan struct{}, orDefault(s.MaxConcurrency, DefaultMaxConcurrency)),
		maxMessage: s.MaxMessageBytes,
	}
	if c.maxMessage == 0 {
		c.maxMessage = DefaultMaxMessageBytes
	}
	c.timeout, _ = s.timeout()
	c.lang, _ = s.language()
	c.domain = from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	if s.Username != "" {
		// An empty username means: this installation's server takes mail
		// without authentication (e.g. an internal relay that trusts the
		// gateway's address).
		c.username = getenv(strings.TrimSuffix(strings.TrimPrefix(string(s.Username), "${"), "}"))
		if c.username != "" {
			if c.password, err = s.Password.Resolve(getenv); err != nil {
				return nil, fmt.Errorf("password: %w", err)
			}
		}
	}
	if c.startTLS {
		c.tlsConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.InsecureSkipVerify}
		if caFile := strings.TrimSpace(expandOptional(s.CAFile, getenv)); caFile != "" {
			pool, err := loadCAFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("ca_file: %w", err)
			}
			c.tlsConfig.RootCAs = pool
		}
	}
	c.smtp = &smtpmail.Client{Addr: c.addr, Host: c.host, Domain: c.domain, Username: c.username,
		Password: c.password, Timeout: c.timeout, TLSConfig: c.tlsConfig}
	return c, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// loadCAFile reads PEM certificates to trust.
func loadCAFile(path string) (*x509.CertPool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxCAFile+1)); err != nil {
		return nil, err
	}
	if buf.Len() > maxCAFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxCAFile)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(buf.Bytes()) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// Connector sends submissions to one mailbox through one SMTP server. It is
// safe for concurrent use.
type Connector struct {
	addr, host string
	domain     string // of the From address: the Message-ID's right side and EHLO name
	from       *mail.Address
	to         []*mail.Address
	username   string
	password   string
	startTLS   bool
	tlsConfig  *tls.Config
	timeout    time.Duration
	lang       language.Tag
	svc        *gateway.Service
	tr         *locales.Translations
	sem        chan struct{}
	smtp       *smtpmail.Client
	maxMessage int64 // bytes of a whole message
}

// Target names the SMTP server for the circuit breaker and metrics.
func (c *Connector) Target() string { return "smtp://" + c.addr }

// MessageID is the Message-ID of a submission's e-mail, without angle
// brackets: the same on every attempt, so a mailbox can recognise a repeat.
// Its left side is a hash of the submission id (which is the secret of the
// resident's status link and so must not travel in mail headers) after the
// receipt reference, readable by people.
func MessageID(submissionID, reference, domain string) string {
	sum := sha256.Sum256([]byte("servicegateway/email/message-id\x00" + submissionID))
	ref := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, reference)
	if ref == "" {
		ref = "submission"
	}
	return ref + "." + hex.EncodeToString(sum[:16]) + "@" + domain
}

func temporary(err error) error { return &gateway.DeliveryError{Err: err} }
func permanent(err error) error { return &gateway.DeliveryError{Permanent: true, Err: err} }

// Deliver sends the submission's e-mail and returns the receipt reference as
// the case reference. SMTP replies 4xx and network errors are temporary,
// 5xx permanent. Error messages never contain the payload.
func (c *Connector) Deliver(ctx context.Context, d *gateway.Delivery) (string, error) {
	if d.SubmissionID == "" {
		return "", permanent(errors.New("delivery has no submission id"))
	}
	msg := c.Compose(d)
	if err := c.attach(ctx, msg, d.Attachments, d.Files); err != nil {
		return "", err
	}
	var body bytes.Buffer
	if _, err := msg.WriteTo(&body); err != nil {
		return "", permanent(err)
	}
	if err := ctx.Err(); err != nil {
		return "", temporary(err)
	}
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	case <-ctx.Done():
		return "", temporary(ctx.Err())
	}
	if err := c.send(ctx, body.Bytes()); err != nil {
		return "", err
	}
	ref := d.Reference
	if ref == "" {
		ref = msg.MessageID
	}
	return ref, nil
}

// send runs one SMTP session (see smtpmail.Client.Send).
func (c *Connector) send(ctx context.Context, body []byte) error {
	to := make([]string, len(c.to))
	for i, a := range c.to {
		to[i] = a.Address
	}
	return c.smtp.Send(ctx, c.from.Address, to, body)
}
