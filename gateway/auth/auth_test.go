package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/auth"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

// serveDevIdP serves the development provider's machine endpoints over
// real HTTP (the gateway serves them through fiber; here net/http).
func serveDevIdP(t *testing.T) *auth.DevIdP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	idp, err := auth.NewDevIdP("http://" + ln.Addr().String() + "/dev-idp")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/dev-idp/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, idp.Discovery()) })
	mux.HandleFunc("/dev-idp/jwks", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, idp.JWKS()) })
	mux.HandleFunc("/dev-idp/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		res, err := idp.Token(r.PostForm)
		if err != nil {
			w.WriteHeader(400)
			writeJSON(w, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, res)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return idp
}

func devRP(t *testing.T, idp *auth.DevIdP, now func() time.Time) *auth.RelyingParty {
	rp, err := auth.NewRelyingParty(auth.ProviderConfig{ID: "dev", Issuer: idp.Issuer, ClientID: idp.ClientID,
		JWKSMinRefresh: time.Nanosecond, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

// signIn runs the code flow: authorize (approved for a persona), token,
// verification.
func signIn(t *testing.T, rp *auth.RelyingParty, idp *auth.DevIdP, persona string, level gateway.Assurance) (*gateway.Principal, error) {
	t.Helper()
	ar := rp.NewAuthRequest("http://gw.example/auth/callback", "/my", level)
	to, err := rp.AuthCodeURL(context.Background(), ar, persona)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(to)
	back, err := idp.Approve(u.Query(), persona)
	if err != nil {
		t.Fatal(err)
	}
	bu, _ := url.Parse(back)
	if bu.Query().Get("state") != ar.State {
		t.Fatal("state not returned")
	}
	return rp.Exchange(context.Background(), ar, bu.Query().Get("code"))
}

func TestCodeFlowPersonas(t *testing.T) {
	idp := serveDevIdP(t)
	rp := devRP(t, idp, nil)
	cases := []struct {
		persona, subject string
		roles            []gateway.Role
		level            gateway.Assurance
		servicePoint     string
	}{
		{"anna", "se-pnr:198507092388", []gateway.Role{gateway.RoleResident}, gateway.AssuranceLow, ""},
		{"bertil", "se-pnr:199001013011", []gateway.Role{gateway.RoleResident}, gateway.AssuranceSubstantial, ""},
		{"cecilia", "se-pnr:195212318256", []gateway.Role{gateway.RoleResident}, gateway.AssuranceHigh, ""},
		{"dragan", "se-pnr:197010632276", []gateway.Role{gateway.RoleResident}, gateway.AssuranceSubstantial, ""},
		{"sara", "dev:sara", []gateway.Role{gateway.RoleStaff}, gateway.AssuranceSubstantial, "sp-centrum"},
		{"admin", "dev:admin", []gateway.Role{gateway.RoleAdmin}, gateway.AssuranceSubstantial, ""},
	}
	for _, tc := range cases {
		t.Run(tc.persona, func(t *testing.T) {
			p, err := signIn(t, rp, idp, tc.persona, gateway.AssuranceNone)
			if err != nil {
				t.Fatal(err)
			}
			if p.Subject != tc.subject || p.Assurance != tc.level || len(p.Roles) != len(tc.roles) || p.Roles[0] != tc.roles[0] || p.ServicePoint != tc.servicePoint {
				t.Fatalf("principal %+v", p)
			}
		})
	}
}

// A code is used once, and only with its PKCE verifier.
func TestCodeSingleUseAndPKCE(t *testing.T) {
	idp := serveDevIdP(t)
	rp := devRP(t, idp, nil)
	ar := rp.NewAuthRequest("http://gw.example/auth/callback", "/my", 0)
	to, _ := rp.AuthCodeURL(context.Background(), ar, "")
	u, _ := url.Parse(to)
	back, _ := idp.Approve(u.Query(), "bertil")
	bu, _ := url.Parse(back)
	code := bu.Query().Get("code")
	wrong := *ar
	wrong.Verifier = auth.RandomToken(48)
	if _, err := rp.Exchange(context.Background(), &wrong, code); err == nil {
		t.Fatal("a wrong PKCE verifier was accepted")
	}
	// The failed attempt used the code up.
	if _, err := rp.Exchange(context.Background(), ar, code); err == nil {
		t.Fatal("a code was redeemed twice")
	}
}

// Key rotation: tokens signed with a new key verify after the provider
// rotated, because an unknown kid makes the relying party fetch the JWKS
// again.
func TestKeyRotation(t *testing.T) {
	idp := serveDevIdP(t)
	rp := devRP(t, idp, nil)
	if _, err := signIn(t, rp, idp, "bertil", 0); err != nil {
		t.Fatal(err)
	}
	if err := idp.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := signIn(t, rp, idp, "bertil", 0); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
}

// The clock moves: an ID token issued now is refused once expired.
func TestIDTokenClock(t *testing.T) {
	idp := serveDevIdP(t)
	now := time.Now()
	clock := func() time.Time { return now }
	rp := devRP(t, idp, clock)
	tok, _ := idp.Sign(jwt.MapClaims{"iss": idp.Issuer, "aud": idp.ClientID, "sub": "bertil", "nonce": "n", "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "https://id.oidc.se/claim/personalIdentityNumber": "199001013011"})
	if _, err := rp.Verify(context.Background(), tok, "n"); err != nil {
		t.Fatal(err)
	}
	for name, at := range map[string]time.Time{"expired": now.Add(6 * time.Minute), "issued in the future": now.Add(-2 * time.Minute)} {
		now = at
		if _, err := rp.Verify(context.Background(), tok, "n"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNewRelyingPartyRefusesWeakAlgorithms(t *testing.T) {
	for _, alg := range []string{"none", "HS256"} {
		if _, err := auth.NewRelyingParty(auth.ProviderConfig{Issuer: "https://idp.example", ClientID: "gw", Algorithms: []string{alg}}); err == nil {
			t.Errorf("%s accepted", alg)
		}
	}
}

// Sessions: idle timeout (Redis TTL), absolute timeout, token expiry and
// renewal, tampering, revocation.
func TestSessions(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store := redisstore.New(rdb, "t")
	now := time.Now()
	m := &auth.Sessions{Store: store, Key: []byte(strings.Repeat("k", 32)), Idle: 30 * time.Minute, Absolute: 2 * time.Hour,
		TokenTTL: 15 * time.Minute, Now: func() time.Time { return now }}
	ctx := context.Background()
	p := &gateway.Principal{Subject: "se-pnr:199001013011", Personnummer: "199001013011", Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceHigh}
	tok, s, err := m.Create(ctx, p, "dev")
	if err != nil {
		t.Fatal(err)
	}
	keys := rdb.Keys(ctx, "t:sess:*").Val()
	if len(keys) != 1 || strings.Contains(keys[0], s.ID) {
		t.Fatalf("session keys %v (the id must be hashed)", keys)
	}
	if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > 30*time.Minute {
		t.Fatalf("idle TTL %v", ttl)
	}
	if raw := rdb.Get(ctx, keys[0]).Val(); !strings.Contains(raw, "199001013011") {
		t.Fatal("the session keeps the personnummer (server-side only)")
	}
	got, renewed, err := m.Load(ctx, tok)
	if err != nil || got.Principal.Personnummer != "199001013011" || renewed != "" {
		t.Fatalf("load: %v %+v %q", err, got, renewed)
	}
	// Tampered: another id under the same MAC.
	parts := strings.Split(tok, ".")
	parts[1] = auth.RandomToken(32)
	if _, _, err := m.Load(ctx, strings.Join(parts, ".")); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("tampered token: %v", err)
	}
	// Past half the token's life: a renewed token.
	now = now.Add(10 * time.Minute)
	if _, renewed, err = m.Load(ctx, tok); err != nil || renewed == "" || renewed == tok {
		t.Fatalf("renewal: %v %q", err, renewed)
	}
	// The old token has expired: refused, the renewed one works.
	now = now.Add(6 * time.Minute)
	if _, _, err := m.Load(ctx, tok); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("expired token: %v", err)
	}
	if _, _, err := m.Load(ctx, renewed); err != nil {
		t.Fatalf("renewed token: %v", err)
	}
	// Idle timeout: the record expires in Redis.
	tok2, _, _ := m.Create(ctx, p, "dev")
	for _, k := range rdb.Keys(ctx, "t:sess:*").Val() {
		rdb.PExpire(ctx, k, time.Millisecond)
	}
	for len(rdb.Keys(ctx, "t:sess:*").Val()) > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, _, err := m.Load(ctx, tok2); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("idle session: %v", err)
	}
	// Absolute timeout: refused and deleted even while in use.
	tok3, _, _ := m.Create(ctx, p, "dev")
	for i := 0; i < 9; i++ { // used every 14 minutes for over two hours
		now = now.Add(14 * time.Minute)
		var err error
		_, renewed, err := m.Load(ctx, tok3)
		if err != nil {
			break
		}
		if renewed != "" {
			tok3 = renewed
		}
	}
	if _, _, err := m.Load(ctx, tok3); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("past the absolute timeout: %v", err)
	}
	if n := len(rdb.Keys(ctx, "t:sess:*").Val()); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
	// Revocation.
	tok4, _, _ := m.Create(ctx, p, "dev")
	if err := m.Revoke(ctx, tok4); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Load(ctx, tok4); !errors.Is(err, auth.ErrNoSession) {
		t.Fatalf("revoked: %v", err)
	}
}
