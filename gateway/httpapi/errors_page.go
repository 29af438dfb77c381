package httpapi

import (
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
)

// The error page is never a dead end: it offers the next step that fits.

// errorContent is what the error page shows. The hrefs are empty when
// they do not apply.
type errorContent struct {
	Heading, Message string
	// SignIn starts a sign-in that comes back here (401), or again at the
	// level needed (a sign-in that ended too low).
	SignIn string
	// Back is the page to go back to: the form of an expired post, or the
	// form whose values were kept during a sign-in.
	Back string
	// Home is a signed-in person's own start page (a page of another role).
	Home string
}

// errorLinksKey holds, in the request's Locals, links a handler wants on
// the error page it is about to cause (set with offerOnError).
type errorLinksKey struct{}

type errorLinks struct{ SignIn, Back string }

// offerOnError puts links on the error page of this request.
func offerOnError(c *fiber.Ctx, signIn, back string) {
	c.Locals(errorLinksKey{}, errorLinks{SignIn: signIn, Back: back})
}

func (s *Server) errorContent(c *fiber.Ctx, status int, msgID, title, detail string) errorContent {
	ec := errorContent{Heading: title, Message: detail}
	if el, ok := c.Locals(errorLinksKey{}).(errorLinks); ok {
		ec.SignIn, ec.Back = el.SignIn, el.Back
	}
	canSignIn := s.Auth != nil && len(s.Auth.Providers) > 0
	p := principal(c)
	switch {
	case msgID == "error.csrf":
		ec.Back = postBack(localPath(c))
	case status == fiber.StatusUnauthorized && ec.SignIn == "" && canSignIn:
		back := "/my"
		if p := localPath(c); c.Method() == fiber.MethodGet && p != "/" && !strings.HasPrefix(p, "/auth/") {
			back = p
			if q := string(c.Request().URI().QueryString()); q != "" {
				back += "?" + q
			}
		}
		ec.SignIn = loginHref(back, gateway.AssuranceNone)
	case status == fiber.StatusForbidden && p != nil && !p.Machine:
		ec.Home = homeOf(p)
		if ec.Home == "" && p.HasRole(gateway.RoleResident) {
			ec.Home = "/my"
		}
		if ec.Home == c.Path() {
			ec.Home = ""
		}
	}
	return ec
}

// postBack is the page a form posted to path came from: the form itself
// for the pages that draw one at the same address, or the page listing the
// thing acted on.
func postBack(path string) string {
	switch {
	case strings.HasPrefix(path, "/services/"), strings.HasPrefix(path, "/desk/services/"):
		return path
	case strings.HasPrefix(path, "/admin/dead-letters/"):
		return strings.TrimSuffix(strings.TrimSuffix(path, "/replay"), "/close")
	case strings.HasPrefix(path, "/desk/"):
		return "/desk"
	}
	return "/"
}

// loginHref starts a sign-in, at level when it is above none, that comes
// back to the local path back.
func loginHref(back string, level gateway.Assurance) string {
	q := url.Values{"return_to": {safeReturn(back)}}
	if level > gateway.AssuranceNone {
		q.Set("level", level.String())
	}
	return "/auth/login?" + q.Encode()
}
