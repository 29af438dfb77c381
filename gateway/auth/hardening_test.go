package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/auth"
	"github.com/kommun/servicegateway/gateway/auth/oidctest"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// opSignIn runs the code flow against an oidctest provider over HTTP.
func opSignIn(t *testing.T, rp *auth.RelyingParty) (*auth.SignInResult, error) {
	t.Helper()
	ar := rp.NewAuthRequest("http://gw.example/auth/callback", "/my", 0)
	to, err := rp.AuthCodeURL(context.Background(), ar, "")
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(to)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	back, _ := url.Parse(res.Header.Get("Location"))
	return rp.SignIn(context.Background(), ar, back.Query().Get("code"))
}

// After the provider rotates its key (the old one leaves the JWKS at
// once), the next sign-in works at once, not after the refetch window;
// tokens with made-up key ids cannot make the gateway fetch the JWKS more
// than a few times per window.
func TestKeyRotationRefetchesAtOnce(t *testing.T) {
	op := oidctest.Start(t, oidctest.Options{})
	op.IDClaims["https://id.oidc.se/claim/personalIdentityNumber"] = "19880315-1649"
	rp, err := auth.NewRelyingParty(auth.ProviderConfig{ID: "op", Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.Secret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opSignIn(t, rp); err != nil {
		t.Fatal(err)
	}
	if err := op.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := opSignIn(t, rp); err != nil {
		t.Fatalf("sign-in right after a key rotation: %v", err)
	}
	before := op.JWKSFetches()
	now := time.Now()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		kid := auth.RandomToken(8)
		if i%2 == 1 {
			kid = "always-the-same"
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": op.Issuer, "aud": op.ClientID, "sub": "x", "nonce": "n",
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
		tok.Header["kid"] = kid
		s, _ := tok.SignedString(other)
		if _, err := rp.Verify(context.Background(), s, "n"); err == nil {
			t.Fatal("a token with an unknown kid was accepted")
		}
	}
	if n := op.JWKSFetches() - before; n > 3 {
		t.Fatalf("20 unknown key ids made %d JWKS fetches, want at most 3 per window", n)
	}
}

// Machine client assertions: a crit header (an extension the gateway does
// not understand) and a typ other than JWT are refused.
func TestAssertionCritAndTyp(t *testing.T) {
	srv := redistest.Start(t)
	store := redisstore.New(srv.Client(t), "t")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewAssertions([]*auth.Client{auth.NewClient("sys", "social-care", "ES256", &key.PublicKey)}, []string{"https://gw.example"}, store)
	sign := func(hdr map[string]any) string {
		now := time.Now()
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": "sys", "sub": "sys", "aud": "https://gw.example",
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": auth.RandomToken(12)})
		for k, v := range hdr {
			if v == nil {
				delete(tok.Header, k) // golang-jwt writes typ JWT by default
				continue
			}
			tok.Header[k] = v
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for name, tc := range map[string]struct {
		hdr map[string]any
		ok  bool
	}{
		"plain":         {map[string]any{}, true},
		"typ JWT":       {map[string]any{"typ": "JWT"}, true},
		"no typ":        {map[string]any{"typ": nil}, true},
		"crit":          {map[string]any{"crit": []string{"exp"}}, false},
		"access token":  {map[string]any{"typ": "at+jwt"}, false},
		"logout token":  {map[string]any{"typ": "logout+jwt"}, false},
		"typ not text":  {map[string]any{"typ": 7}, false},
		"crit and JWT":  {map[string]any{"typ": "JWT", "crit": []string{"b64"}, "b64": false}, false},
		"typ lowercase": {map[string]any{"typ": "jwt"}, true},
	} {
		t.Run(name, func(t *testing.T) {
			raw := sign(tc.hdr)
			_, err := a.Verify(context.Background(), raw)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, auth.ErrAssertion) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}
}

// Staff and administrators get their roles from the provider at sign-in:
// their sessions end after Privileged (1h), a resident's after Absolute.
// All of one person's sessions can be ended at once, and a person has at
// most 50 (the 51st sign-in ends the oldest).
func TestSessionLifetimesAndRevocation(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store := redisstore.New(rdb, "t")
	now := time.Now()
	m := &auth.Sessions{Store: store, Key: []byte(strings.Repeat("k", 32)), Idle: 30 * time.Minute, Absolute: 12 * time.Hour,
		Now: func() time.Time { return now }}
	ctx := context.Background()
	resident := &gateway.Principal{Subject: "se-pnr:199001013011", Personnummer: "199001013011", Roles: []gateway.Role{gateway.RoleResident}}
	staff := &gateway.Principal{Subject: "dev:sara", Roles: []gateway.Role{gateway.RoleStaff}, ServicePoint: "sp-centrum"}
	rTok, _, err := m.Create(ctx, resident, "dev")
	if err != nil {
		t.Fatal(err)
	}
	sTok, _, err := m.Create(ctx, staff, "dev")
	if err != nil {
		t.Fatal(err)
	}
	start := now
	keep := func(tok *string) error { // use the session, taking renewed tokens
		_, renewed, err := m.Load(ctx, *tok)
		if renewed != "" {
			*tok = renewed
		}
		return err
	}
	for now = start.Add(5 * time.Minute); now.Before(start.Add(55 * time.Minute)); now = now.Add(5 * time.Minute) {
		if err := keep(&sTok); err != nil {
			t.Fatalf("staff session at %s: %v", now.Sub(start), err)
		}
		if err := keep(&rTok); err != nil {
			t.Fatalf("resident session at %s: %v", now.Sub(start), err)
		}
	}
	now = start.Add(61 * time.Minute)
	if err := keep(&sTok); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("staff session after 61 minutes: %v, want ended", err)
	}
	if err := keep(&rTok); err != nil {
		t.Fatalf("resident session after 61 minutes: %v", err)
	}

	// Every session of one person ends at once; others stay.
	now = time.Now()
	var toks []string
	for range 3 {
		tok, _, err := m.Create(ctx, resident, "dev")
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	other, _, _ := m.Create(ctx, &gateway.Principal{Subject: "se-pnr:198507092388", Personnummer: "198507092388", Roles: []gateway.Role{gateway.RoleResident}}, "dev")
	if n, err := m.RevokeSubject(ctx, resident.Subject); err != nil || n < 3 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	for _, tok := range toks {
		if _, _, err := m.Load(ctx, tok); !errors.Is(err, auth.ErrNoSession) {
			t.Fatalf("a session survived sign-out everywhere: %v", err)
		}
	}
	if _, _, err := m.Load(ctx, other); err != nil {
		t.Fatalf("another person's session ended: %v", err)
	}

	// Bounded: the 51st session ends the oldest.
	first, _, _ := m.Create(ctx, resident, "dev")
	for range redisstore.MaxSessionsPerSubject {
		if _, _, err := m.Create(ctx, resident, "dev"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := m.Load(ctx, first); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("the oldest of 51 sessions is still valid: %v", err)
	}
	idx := rdb.Keys(ctx, "t:sessidx:*").Val() // the resident, the other resident, the staff member
	if len(idx) != 3 {
		t.Fatalf("session indexes %v", idx)
	}
	for _, k := range idx {
		if n, ttl := rdb.ZCard(ctx, k).Val(), rdb.PTTL(ctx, k).Val(); n > int64(redisstore.MaxSessionsPerSubject) || ttl <= 0 {
			t.Fatalf("index %s: %d entries, TTL %s", k, n, ttl)
		}
	}
}

// An ID token with a crit header is refused: the gateway understands no
// JWS extension (RFC 7515 4.1.11).
func TestIDTokenCrit(t *testing.T) {
	op := oidctest.Start(t, oidctest.Options{})
	rp, err := auth.NewRelyingParty(auth.ProviderConfig{ID: "op", Issuer: op.Issuer, ClientID: op.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := jwt.MapClaims{"iss": op.Issuer, "aud": op.ClientID, "sub": "x", "nonce": "n", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"https://id.oidc.se/claim/personalIdentityNumber": "19880315-1649"}
	good, _ := op.SignHeader(claims, nil)
	if _, err := rp.Verify(context.Background(), good, "n"); err != nil {
		t.Fatalf("control: %v", err)
	}
	crit, _ := op.SignHeader(claims, map[string]any{"crit": []string{"exp"}})
	if _, err := rp.Verify(context.Background(), crit, "n"); err == nil {
		t.Fatal("an ID token with crit was accepted")
	}
}
