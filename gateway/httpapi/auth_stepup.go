package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"regexp"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/auth"
)

// Step-up: a resident who sends a form that needs a higher level of
// assurance than their sign-in (or who is not signed in) is sent to sign
// in with acr_values for the service's level. What they typed is kept in
// Redis for a short while under a random key, bound to their browser (the
// CSRF cookie), and the form is drawn again with it after the sign-in; they
// then press Send again.
//
// What an anonymous visitor can park this way is bounded: only the
// service's own fields are kept (each value cut to the field's maximum
// length), a draft is at most maxDraftBytes, and a browser (its CSRF
// cookie) may start draftsPerBrowser, a client address draftsPerAddress,
// per DraftTTL; over that the form is drawn again with what was typed and
// a message, and nothing is stored.

type draft struct {
	Service string              `json:"service"`
	Values  map[string][]string `json:"values"`
	Token   string              `json:"token"`
	Owner   string              `json:"owner"` // sha256 of the browser's CSRF cookie
}

var draftKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`)

// Bounds of the drafts kept across a step-up sign-in.
const (
	maxDraftBytes    = 32 * 1024
	draftsPerBrowser = 5
	draftsPerAddress = 30
)

// draftValues keeps only svc's fields, bounded: the one rule of every
// draft (gateway.DraftValues).
func draftValues(svc *gateway.Service, values map[string][]string) map[string][]string {
	return gateway.DraftValues(svc, values)
}

func (s *Server) draftOwner(c *fiber.Ctx) string {
	sum := sha256.Sum256([]byte("draft\x00" + c.Cookies(s.cookieName(CSRFConfigDefault.CookieName))))
	return hex.EncodeToString(sum[:])
}

// checkAssurance: submitting needs the service's level of assurance. Not
// signed in: 401; signed in too low (or a machine client): 403.
func (s *Server) checkAssurance(c *fiber.Ctx, svc *gateway.Service) *gateway.Error {
	p := principal(c)
	if p.Satisfies(svc.Assurance) {
		return nil
	}
	if p == nil {
		return gateway.Errorf(gateway.EUnauth, "auth.signin_required", nil)
	}
	return &gateway.Error{Code: gateway.EForbidden, Message: gateway.Message{ID: "auth.assurance_too_low",
		Data: map[string]any{"Level": s.localizer(c).T("assurance." + svc.Assurance.String())}}}
}

// stepUp keeps the form values and sends the browser to sign in.
func (s *Server) stepUp(c *fiber.Ctx, svc *gateway.Service, st formState, aerr *gateway.Error) error {
	if s.Auth == nil || len(s.Auth.Providers) == 0 || c.Cookies(s.cookieName(CSRFConfigDefault.CookieName)) == "" {
		st.formErr = &aerr.Message
		return s.renderForm(c, fiber.StatusForbidden, svc, st)
	}
	key, refused, status, err := s.putDraft(c, svc, st, "draft")
	if err != nil {
		return err
	}
	if refused != nil {
		st.formErr = refused
		return s.renderForm(c, status, svc, st)
	}
	back := "/services/" + svc.ID + "?draft=" + key
	q := url.Values{"level": {svc.Assurance.String()}, "return_to": {back}}
	return c.Redirect("/auth/login?"+q.Encode(), fiber.StatusSeeOther)
}

// putDraft keeps st's values for this browser and returns their key. kind
// names the purpose ("draft": a step-up sign-in; "langdraft": a language
// switch), each with its own count per browser and per client address, so
// one cannot use up the other. A draft too large or over a count is
// refused: the message and status to answer with.
func (s *Server) putDraft(c *fiber.Ctx, svc *gateway.Service, st formState, kind string) (string, *gateway.Message, int, error) {
	key := auth.RandomToken(24)
	b, err := json.Marshal(draft{Service: svc.ID, Values: draftValues(svc, st.values), Token: st.token, Owner: s.draftOwner(c)})
	if err != nil {
		return "", nil, 0, err
	}
	if len(b) > maxDraftBytes {
		return "", &gateway.Message{ID: "error.draft_too_large"}, fiber.StatusRequestEntityTooLarge, nil
	}
	for _, l := range []struct {
		key string
		n   int
	}{{kind + ":browser:" + s.draftOwner(c), draftsPerBrowser}, {kind + ":ip:" + clientIP(c), draftsPerAddress}} {
		if err := s.limitMsg(c, l.key, l.n, s.Auth.DraftTTL, "error.draft_limit"); err != nil {
			return "", &gateway.Message{ID: "error.draft_limit"}, fiber.StatusTooManyRequests, nil
		}
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	if err := s.Auth.Store.PutDraft(ctx, key, b, s.Auth.DraftTTL); err != nil {
		return "", nil, 0, unavailableErr(err)
	}
	return key, nil, 0, nil
}

// draftState returns the values kept for this browser under ?draft=, to
// draw the form with; an empty state when there are none.
func (s *Server) draftState(c *fiber.Ctx, svc *gateway.Service) formState {
	if id := c.Query("saved"); id != "" {
		return s.savedState(c, svc, id) // a saved draft (drafts.go)
	}
	key := c.Query("draft")
	if s.Auth == nil || !draftKeyPattern.MatchString(key) {
		return formState{}
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	b, err := s.Auth.Store.GetDraft(ctx, key)
	if err != nil || b == nil {
		return formState{}
	}
	var d draft
	if json.Unmarshal(b, &d) != nil || d.Service != svc.ID || subtle.ConstantTimeCompare([]byte(d.Owner), []byte(s.draftOwner(c))) != 1 {
		return formState{}
	}
	// A multi-step form comes back on its check-your-answers page.
	return formState{values: d.Values, token: d.Token, action: "/services/" + svc.ID + "?draft=" + key, check: len(svc.Steps) > 0}
}

// dropDraft forgets the kept values once the form has been sent.
func (s *Server) dropDraft(c *fiber.Ctx) {
	s.dropSaved(c) // a saved draft (drafts.go)
	key := c.Query("draft")
	if s.Auth == nil || !draftKeyPattern.MatchString(key) {
		return
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	if err := s.Auth.Store.DeleteDraft(ctx, key); err != nil {
		s.Logger.Warn("delete draft", "request_id", c.Locals(localsRequestID), "error", err)
	}
}
