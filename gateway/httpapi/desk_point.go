package httpapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

// The desk's choice of service point (staff without a point claim) lives
// in a cookie signed with HMAC-SHA256 and bound to the staff member's
// subject: "<point id>.<mac>". A cookie set by anyone else (another host
// of the domain, another staff member's browser) or edited by hand is
// ignored, and the staff member is asked to choose again. The key is
// derived from the session key, so every replica accepts it; without
// sign-in configured (tests), a random key per process.

// pointKey returns the key that signs point cookies.
func (s *Server) pointKey() []byte {
	s.pointKeyOnce.Do(func() {
		if s.Auth != nil && s.Auth.Sessions != nil && len(s.Auth.Sessions.Key) >= 32 {
			m := hmac.New(sha256.New, s.Auth.Sessions.Key)
			m.Write([]byte("servicegateway desk point cookie v1"))
			s.pointKeyBytes = m.Sum(nil)
			return
		}
		s.pointKeyBytes = make([]byte, 32)
		if _, err := rand.Read(s.pointKeyBytes); err != nil {
			panic("httpapi: no randomness: " + err.Error())
		}
	})
	return s.pointKeyBytes
}

func (s *Server) pointMAC(p *gateway.Principal, point string) string {
	m := hmac.New(sha256.New, s.pointKey())
	m.Write([]byte(p.Subject + "\x00" + point))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signPoint is the cookie value for p's choice of point.
func (s *Server) signPoint(p *gateway.Principal, point string) string {
	return point + "." + s.pointMAC(p, point)
}

// pointFromCookie returns the point p chose at this desk, or "" when the
// cookie is missing, not p's, or not signed by the gateway.
func (s *Server) pointFromCookie(c *fiber.Ctx, p *gateway.Principal) string {
	v := c.Cookies(s.cookieName(deskPointCookie))
	if len(v) > 200 {
		return ""
	}
	i := strings.LastIndexByte(v, '.')
	if i <= 0 {
		return ""
	}
	point, mac := v[:i], v[i+1:]
	if !hmac.Equal([]byte(mac), []byte(s.pointMAC(p, point))) {
		return ""
	}
	return strings.Clone(point)
}
