// Package proxy is the connector kind "proxy": an existing e-service (a web
// application a department already runs) served behind the gateway's front
// door under a path prefix, with the gateway's sign-in. The gateway forwards
// requests and streams the answers with fasthttp's client (keep-alive,
// timeouts); it takes no submissions for such a service.
//
//	[route]
//	kind = "proxy"
//	[route.settings]
//	prefix = "/e/library/"             # on the gateway: /e/<letters, digits, '-'>/
//	upstream = "${LIBRARY_URL}"        # http(s)://host[:port][/base]
//	identity_header = "X-Gateway-Identity"
//	timeout = "30s"                    # to connect, send, and wait for each answer
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/services"
)

func init() {
	services.RegisterConnector(services.ConnectorInfo{Kind: "proxy", New: func() services.ConnectorModule { return new(Settings) }})
}

// DefaultIdentityHeader carries the signed identity to the upstream.
const DefaultIdentityHeader = "X-Gateway-Identity"

// Settings are a proxied service's [route.settings].
type Settings struct {
	Prefix         string `toml:"prefix"`
	Upstream       string `toml:"upstream"`
	IdentityHeader string `toml:"identity_header"`
	Timeout        string `toml:"timeout"`
}

var (
	prefixPattern                   = regexp.MustCompile(`^/e/[a-z0-9][a-z0-9-]{0,62}/$`)
	headerPattern                   = regexp.MustCompile(`^X-[A-Za-z0-9-]{1,60}$`)
	_             services.Frontend = (*Settings)(nil)
)

// ServePrefix implements services.Frontend: the service has no form.
func (s *Settings) ServePrefix() string { return s.Prefix }

// Validate implements services.ConnectorModule.
func (s *Settings) Validate() error {
	var errs []error
	if !prefixPattern.MatchString(s.Prefix) {
		errs = append(errs, fmt.Errorf("prefix must look like /e/my-service/ (lower-case letters, digits and '-'), got %q", s.Prefix))
	}
	if !strings.HasPrefix(s.Upstream, "${") && !strings.HasPrefix(s.Upstream, "http://") && !strings.HasPrefix(s.Upstream, "https://") {
		errs = append(errs, fmt.Errorf("upstream must be an http(s) URL or a ${NAME} reference, got %q", s.Upstream))
	}
	if s.IdentityHeader != "" && !headerPattern.MatchString(s.IdentityHeader) {
		errs = append(errs, fmt.Errorf("identity_header must be a header name starting with X-, got %q", s.IdentityHeader))
	}
	if s.Timeout != "" {
		if d, err := time.ParseDuration(s.Timeout); err != nil || d <= 0 || d > 10*time.Minute {
			errs = append(errs, fmt.Errorf("timeout must be a duration between 0 and 10m, got %q", s.Timeout))
		}
	}
	return errors.Join(errs...)
}

// Provision implements services.ConnectorModule.
func (s *Settings) Provision(getenv func(string) string) (gateway.Connector, error) {
	raw, err := services.Expand(s.Upstream, getenv)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("upstream %q is not an http(s) URL with a host and no query", raw)
	}
	timeout := 30 * time.Second
	if s.Timeout != "" {
		timeout, _ = time.ParseDuration(s.Timeout)
	}
	header := s.IdentityHeader
	if header == "" {
		header = DefaultIdentityHeader
	}
	host := u.Host
	tls := u.Scheme == "https"
	if u.Port() == "" {
		if tls {
			host += ":443"
		} else {
			host += ":80"
		}
	}
	p := &Proxy{
		prefix: s.Prefix, base: strings.TrimSuffix(u.EscapedPath(), "/"), host: u.Host, header: header,
		audience: strings.TrimSuffix(u.String(), "/"), timeout: timeout,
		client: &fasthttp.HostClient{
			Addr: host, IsTLS: tls, Name: "servicegateway",
			// Stream answers through: a large download is never held
			// whole in the gateway. An answer of a declared length up to
			// MaxResponseBodySize is read whole (one pooled buffer), a
			// longer one streamed: without the limit fasthttp reads any
			// answer with a Content-Length whole before streaming it.
			StreamResponseBody:            true,
			MaxResponseBodySize:           StreamAbove,
			MaxConns:                      512,
			MaxIdleConnDuration:           60 * time.Second, // keep-alive to the upstream
			MaxConnWaitTimeout:            timeout,
			ReadTimeout:                   timeout,
			WriteTimeout:                  timeout,
			DisableHeaderNamesNormalizing: true,
			DisablePathNormalizing:        true,
			NoDefaultUserAgentHeader:      true,
			Dial: func(addr string) (net.Conn, error) {
				return fasthttp.DialTimeout(addr, min(timeout, 10*time.Second))
			},
		},
	}
	return p, nil
}

// StreamAbove is the size of an answer (by its Content-Length) above which
// it is streamed rather than read whole; chunked answers always stream.
const StreamAbove = 64 << 10

// Proxy forwards requests under its prefix to the upstream e-service.
type Proxy struct {
	prefix, base, host, header, audience string
	timeout                              time.Duration
	client                               *fasthttp.HostClient
}

// Deliver implements gateway.Connector: a proxied service takes no
// submissions (the intake refuses them first), so any delivery is a
// permanent failure.
func (p *Proxy) Deliver(context.Context, *gateway.Delivery) (string, error) {
	return "", &gateway.DeliveryError{Permanent: true, Err: errors.New("proxy: a proxied e-service takes no submissions")}
}

// Prefix is the path on the gateway, e.g. "/e/library/".
func (p *Proxy) Prefix() string { return p.prefix }

// Audience is the upstream's URL, the audience of the identity tokens.
func (p *Proxy) Audience() string { return p.audience }

// IdentityHeader is the request header that carries the identity token.
func (p *Proxy) IdentityHeader() string { return p.header }

// hopByHop are the headers of one connection (RFC 9110, 7.6.1), never
// forwarded.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// Forward sends c's request to the upstream, with the path below the prefix
// appended to the upstream's base path, and answers with the upstream's
// answer, its body streamed. client is the client's address as the
// gateway resolved it (behind trusted proxies, not what the client wrote
// in X-Forwarded-For), sent on as X-Forwarded-For (an invalid one sends
// none), proto the scheme the client used, as X-Forwarded-Proto. The caller has removed and set identity headers; Forward removes
// the hop-by-hop headers both ways. It allocates nothing of its own.
func (p *Proxy) Forward(c *fiber.Ctx, client netip.Addr, proto string) error {
	req, resp := c.Request(), c.Response()
	rest := strings.TrimPrefix(strings.TrimPrefix(c.Path(), p.prefix[:len(p.prefix)-1]), "/")
	var buf [256]byte // the path and the client's address, on the stack unless long
	path := append(append(append(buf[:0], p.base...), '/'), rest...)
	uri := req.URI()
	uri.SetPathBytes(path)
	uri.SetScheme("http")
	uri.SetHost(p.host)
	req.SetHost(p.host)
	stripHopByHop(&req.Header)
	if client.IsValid() {
		req.Header.SetBytesV(fiber.HeaderXForwardedFor, client.AppendTo(buf[:0]))
	} else {
		req.Header.Del(fiber.HeaderXForwardedFor)
	}
	req.Header.Set(fiber.HeaderXForwardedProto, proto)
	req.Header.Set("X-Forwarded-Prefix", p.prefix[:len(p.prefix)-1])
	// The client resets the answer: keep the cookies the gateway set
	// before (a renewed session token).
	var own []*fasthttp.Cookie
	resp.Header.VisitAllCookie(func(_, v []byte) {
		ck := fasthttp.AcquireCookie()
		if ck.ParseBytes(v) == nil {
			own = append(own, ck)
		}
	})
	defer func() {
		for _, ck := range own {
			resp.Header.SetCookie(ck)
			fasthttp.ReleaseCookie(ck)
		}
	}()
	if err := p.client.DoTimeout(req, resp, p.timeout); err != nil {
		resp.Reset()
		return gateway.Errorf(gateway.EUnavailable, "error.upstream_unavailable", fmt.Errorf("proxy %s: %w", p.prefix, err))
	}
	// A redirect to the upstream's own address points at the prefix
	// instead (as nginx's proxy_redirect default does).
	if loc := resp.Header.Peek(fiber.HeaderLocation); len(loc) > 0 {
		if rest, ok := strings.CutPrefix(string(loc), p.audience+"/"); ok {
			resp.Header.Set(fiber.HeaderLocation, p.prefix+rest)
		} else if string(loc) == p.audience {
			resp.Header.Set(fiber.HeaderLocation, p.prefix)
		}
	}
	stripResponseHopByHop(&resp.Header)
	return nil
}

// stripHopByHop removes the hop-by-hop headers and those the Connection
// header names. A request rarely has any of them: one pass over the
// headers finds which, and only those are deleted (a Del normalizes its
// name and scans every header).
func stripHopByHop(h *fasthttp.RequestHeader) {
	if conn := h.Peek(fiber.HeaderConnection); len(conn) > 0 { // most requests have none or "keep-alive"
		for _, name := range strings.Split(string(conn), ",") {
			if name = strings.TrimSpace(name); name != "" && !strings.EqualFold(name, "close") && !strings.EqualFold(name, "keep-alive") {
				h.Del(name)
			}
		}
	}
	var found uint32
	h.VisitAll(func(k, _ []byte) { found |= namedIn(k, hopByHop) })
	delFound(h.Del, found, hopByHop)
}

// responseHopByHop are the hop-by-hop headers of an answer that Forward
// removes (Transfer-Encoding stays: fasthttp frames the answer itself).
var responseHopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Upgrade"}

func stripResponseHopByHop(h *fasthttp.ResponseHeader) {
	var found uint32
	h.VisitAll(func(k, _ []byte) { found |= namedIn(k, responseHopByHop) })
	delFound(h.Del, found, responseHopByHop)
}

// namedIn is the bit of name's place in names (at most 32), in any letter
// case; 0 if it is not there.
func namedIn(name []byte, names []string) uint32 {
	for i, n := range names {
		if len(n) == len(name) && strings.EqualFold(string(name), n) {
			return 1 << i
		}
	}
	return 0
}

func delFound(del func(string), found uint32, names []string) {
	for i, n := range names {
		if found&(1<<i) != 0 {
			del(n)
		}
	}
}
