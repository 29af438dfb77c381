package httpapi

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// The client's address, as rate limits, the anonymous idempotency scope
// and the usage visitor hash see it. It is worked out once per request by
// the clientAddress middleware and read with clientIP; nothing else reads
// c.IP() (which, behind a trusted proxy, is the raw X-Forwarded-For).
//
//   - From a peer that is not a trusted proxy: the peer's address; any
//     X-Forwarded-For is ignored.
//   - From a trusted proxy: X-Forwarded-For read from the right, skipping
//     trusted proxies; the first address that is not trusted is the
//     client. Entries left of it were written by the client and are never
//     believed. An entry that is not an IP address stops the walk: the
//     last trusted hop stands in for the client. No header: the peer.
//   - IPv6 clients are grouped by their /64, the block one subscriber
//     usually holds, so one household cannot take a fresh rate-limit
//     bucket per address.

// maxForwardedHops bounds the X-Forwarded-For entries looked at.
const maxForwardedHops = 32

// parseTrusted reads GATEWAY_TRUSTED_PROXIES entries: addresses or CIDRs.
func parseTrusted(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("httpapi: trusted proxy %q: want an IP address or a CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (s *Server) isTrusted(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a
// port or in brackets (some proxies write "[2001:db8::1]:443").
func parseHop(h string) (netip.Addr, bool) {
	h = strings.TrimSpace(h)
	if a, err := netip.ParseAddr(h); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if a, err := netip.ParseAddr(h[1 : len(h)-1]); err == nil && a.Is6() && a.Zone() == "" {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// resolveClient returns the client's address for this request (see above).
func (s *Server) resolveClient(c *fiber.Ctx) netip.Addr {
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !s.isTrusted(peer) {
		return peer
	}
	var hops []string
	c.Request().Header.VisitAll(func(k, v []byte) {
		if strings.EqualFold(string(k), fiber.HeaderXForwardedFor) {
			hops = append(hops, strings.Split(string(v), ",")...)
		}
	})
	client := peer
	for i, n := len(hops)-1, 0; i >= 0 && n < maxForwardedHops; i, n = i-1, n+1 {
		a, ok := parseHop(hops[i])
		if !ok {
			return client
		}
		client = a
		if !s.isTrusted(a) {
			return a
		}
	}
	return client
}

// clientKey is the address as a key: IPv4 as is, IPv6 as its /64.
func clientKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is6():
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// clientAddress is the middleware that works out the client's address.
// The proxied prefixes (proxy.go), routed before it, resolve it
// themselves, and keep it only where they need the key.
func (s *Server) clientAddress() fiber.Handler {
	return func(c *fiber.Ctx) error {
		s.setClientAddress(c, s.resolveClient(c))
		return c.Next()
	}
}

// setClientAddress keeps a resolved address for clientIP.
func (s *Server) setClientAddress(c *fiber.Ctx, a netip.Addr) {
	c.Locals(localsClientIP, clientKey(a))
}

// clientIP is the client's address as a key (IPv6 grouped by /64), for
// rate limits, the anonymous idempotency scope and the visitor hash.
func clientIP(c *fiber.Ctx) string {
	if v, ok := c.Locals(localsClientIP).(string); ok && v != "" {
		return v
	}
	return "unknown"
}
