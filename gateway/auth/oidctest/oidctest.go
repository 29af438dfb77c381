// Package oidctest runs a small but real OpenID provider over a real
// listener for tests: discovery (at an issuer that may end in "/"),
// an authorization endpoint that approves at once (or answers an error),
// a token endpoint with client_secret_basic, JWKS with key rotation, an
// optional userinfo endpoint and an optional end_session_endpoint. Tests
// shape its answers through the exported fields (under Lock/Unlock).
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway/auth"
)

// Provider is the running provider.
type Provider struct {
	URL      string // base URL of the listener
	Issuer   string // URL + IssuerPath
	ClientID string
	Secret   string

	mu sync.Mutex
	// Subject is the sub of whoever signs in.
	Subject string
	// IDClaims are added to every ID token.
	IDClaims map[string]any
	// Userinfo are the userinfo endpoint's claims besides sub; nil: the
	// provider has no userinfo endpoint.
	Userinfo map[string]any
	// EndSession publishes an end_session_endpoint.
	EndSession bool
	// AuthorizeError makes the authorization endpoint send the browser
	// back with ?error=<it> instead of a code.
	AuthorizeError string
	// Skew is added to iat and exp of ID tokens (a provider whose clock
	// is off).
	Skew time.Duration

	key         *rsa.PrivateKey
	kid         string
	codes       map[string]string // code -> nonce
	access      map[string]bool   // issued access tokens
	issued      []string          // ID tokens issued
	logouts     []url.Values      // end-session requests seen
	jwksFetches int
}

// Options shape the provider at start.
type Options struct {
	IssuerPath string // e.g. "/tenant/" for an issuer ending in "/"; default ""
	EndSession bool
	Userinfo   map[string]any
}

// Start runs a provider until the test ends.
func Start(t testing.TB, o Options) *Provider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{URL: "http://" + ln.Addr().String(), ClientID: "gw-test", Secret: "test-secret", Subject: "u1",
		IDClaims: map[string]any{}, Userinfo: o.Userinfo, EndSession: o.EndSession,
		codes: map[string]string{}, access: map[string]bool{}}
	p.Issuer = p.URL + o.IssuerPath
	if err := p.Rotate(); err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSuffix(o.IssuerPath, "/")
	mux := http.NewServeMux()
	mux.HandleFunc(base+"/.well-known/openid-configuration", p.discovery)
	mux.HandleFunc(base+"/authorize", p.authorize)
	mux.HandleFunc(base+"/token", p.token)
	mux.HandleFunc(base+"/jwks", p.jwks)
	mux.HandleFunc(base+"/userinfo", p.userinfo)
	mux.HandleFunc(base+"/logout", p.logout)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}

// Lock and Unlock guard the exported fields while a test changes them.
func (p *Provider) Lock()   { p.mu.Lock() }
func (p *Provider) Unlock() { p.mu.Unlock() }

// Rotate replaces the signing key; the old one leaves the JWKS at once.
func (p *Provider) Rotate() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.key, p.kid = key, auth.RandomToken(8)
	return nil
}

// IssuedIDTokens returns the ID tokens issued so far.
func (p *Provider) IssuedIDTokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.issued...)
}

// Logouts returns the end-session requests seen so far.
func (p *Provider) Logouts() []url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]url.Values(nil), p.logouts...)
}

// JWKSFetches is how often the JWKS was fetched.
func (p *Provider) JWKSFetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jwksFetches
}

// Sign signs claims with the current key (RS256, with its kid).
func (p *Provider) Sign(claims jwt.MapClaims) (string, error) { return p.SignHeader(claims, nil) }

// SignHeader signs claims with the current key and extra header fields.
func (p *Provider) SignHeader(claims jwt.MapClaims, header map[string]any) (string, error) {
	p.mu.Lock()
	key, kid := p.key, p.kid
	p.mu.Unlock()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = kid
	for k, v := range header {
		t.Header[k] = v
	}
	return t.SignedString(key)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (p *Provider) endpoint(name string) string {
	return strings.TrimSuffix(p.Issuer, "/") + "/" + name
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := map[string]any{"issuer": p.Issuer, "authorization_endpoint": p.endpoint("authorize"),
		"token_endpoint": p.endpoint("token"), "jwks_uri": p.endpoint("jwks"),
		"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"}}
	if p.Userinfo != nil {
		d["userinfo_endpoint"] = p.endpoint("userinfo")
	}
	if p.EndSession {
		d["end_session_endpoint"] = p.endpoint("logout")
	}
	writeJSON(w, 200, d)
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("client_id") != p.ClientID || q.Get("code_challenge_method") != "S256" {
		http.Error(w, "bad request", 400)
		return
	}
	p.mu.Lock()
	v := url.Values{"state": {q.Get("state")}}
	if p.AuthorizeError != "" {
		v.Set("error", p.AuthorizeError)
	} else {
		code := auth.RandomToken(16)
		p.codes[code] = q.Get("nonce")
		v.Set("code", code)
	}
	p.mu.Unlock()
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if u, s, ok := r.BasicAuth(); !ok || u != p.ClientID || s != p.Secret {
		writeJSON(w, 401, map[string]string{"error": "invalid_client"})
		return
	}
	_ = r.ParseForm()
	p.mu.Lock()
	nonce, ok := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	now := time.Now().Add(p.Skew)
	claims := jwt.MapClaims{"iss": p.Issuer, "aud": p.ClientID, "sub": p.Subject, "nonce": nonce,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for k, v := range p.IDClaims {
		claims[k] = v
	}
	p.mu.Unlock()
	if !ok || r.PostForm.Get("code_verifier") == "" {
		writeJSON(w, 400, map[string]string{"error": "invalid_grant"})
		return
	}
	tok, err := p.Sign(claims)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	at := auth.RandomToken(24)
	p.mu.Lock()
	p.access[at] = true
	p.issued = append(p.issued, tok)
	p.mu.Unlock()
	writeJSON(w, 200, map[string]any{"id_token": tok, "access_token": at, "token_type": "Bearer", "expires_in": 300})
}

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.jwksFetches++
	j, err := auth.PublicJWK(&p.key.PublicKey, p.kid, "RS256")
	p.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	writeJSON(w, 200, auth.JWKSet{Keys: []auth.JWK{j}})
}

func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if p.Userinfo == nil || !ok || !p.access[tok] {
		writeJSON(w, 401, map[string]string{"error": "invalid_token"})
		return
	}
	out := map[string]any{"sub": p.Subject}
	for k, v := range p.Userinfo {
		out[k] = v
	}
	writeJSON(w, 200, out)
}

func (p *Provider) logout(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.logouts = append(p.logouts, r.URL.Query())
	p.mu.Unlock()
	if to := r.URL.Query().Get("post_logout_redirect_uri"); to != "" {
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	w.Write([]byte("signed out"))
}
