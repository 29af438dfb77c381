package httpapi

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway/auth"
)

// The token endpoint for machine clients: OAuth 2.0 client credentials
// (RFC 6749 §4.4) with a private_key_jwt client assertion (RFC 7523 §2.2).
// The answer is a short-lived access token (auth/token.go) the client
// presents as "Authorization: Bearer" instead of a fresh assertion per
// call. Errors are RFC 6749 §5.2 JSON objects.

const assertionTypeJWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// oauthError answers an RFC 6749 §5.2 error; invalid_client is a 401 with
// a WWW-Authenticate challenge.
func oauthError(c *fiber.Ctx, code, description string) error {
	status := fiber.StatusBadRequest
	if code == "invalid_client" {
		status = fiber.StatusUnauthorized
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="servicegateway"`)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(status).JSON(fiber.Map{"error": code, "error_description": description})
}

func (s *Server) oauthToken(c *fiber.Ctx) error {
	a := s.Auth.Assertions
	if a == nil || len(a.TokenKey) < 32 {
		return oauthError(c, "unauthorized_client", "this gateway has no machine clients")
	}
	if !strings.HasPrefix(strings.ToLower(c.Get(fiber.HeaderContentType)), fiber.MIMEApplicationForm) {
		return oauthError(c, "invalid_request", "the request must be application/x-www-form-urlencoded")
	}
	switch gt := c.FormValue("grant_type"); gt {
	case "client_credentials":
	case "":
		return oauthError(c, "invalid_request", "grant_type is missing")
	default:
		return oauthError(c, "unsupported_grant_type", "only client_credentials is supported")
	}
	if c.FormValue("client_assertion_type") != assertionTypeJWT {
		return oauthError(c, "invalid_client", "client_assertion_type must be "+assertionTypeJWT)
	}
	assertion := strings.TrimSpace(c.FormValue("client_assertion"))
	if assertion == "" {
		return oauthError(c, "invalid_client", "client_assertion is missing")
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	tok, ttl, err := a.Issue(ctx, assertion)
	if err != nil {
		if !errors.Is(err, auth.ErrAssertion) {
			return unavailableErr(err)
		}
		s.Logger.Info("token request refused", "error", err.Error())
		return oauthError(c, "invalid_client", "the client assertion was refused")
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderPragma, "no-cache")
	return c.JSON(fiber.Map{"access_token": tok, "token_type": "Bearer", "expires_in": int(ttl.Seconds())})
}
