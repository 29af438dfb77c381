package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/auth"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/redisstore"
)

// oidcConfig is the OpenID provider's settings (GATEWAY_OIDC_*).
type oidcConfig struct {
	Issuer, ClientID, ClientSecret                       string
	Scopes, Algorithms                                   []string
	ClaimSubject, ClaimPersonnummer, ClaimName, ClaimACR string
	ClaimGroups, ClaimServicePoint, ClaimDepartment      string
	StaffGroup, AdminGroup                               string
	ACRMap, ACRValues                                    []string
	acr                                                  map[string]gateway.Assurance
	acrRequest                                           map[gateway.Assurance]string
}

// checkIdentity validates the identity settings and decides on the
// development provider.
func (c *config) checkIdentity(devIdP string) []string {
	var errs []string
	switch devIdP {
	case "on":
		c.DevIdP = true
	case "off":
	case "auto":
		c.DevIdP = !c.production() && c.OIDC.Issuer == "" && c.ProvidersFile == ""
	default:
		errs = append(errs, fmt.Sprintf("GATEWAY_DEV_IDP: want on, off or auto, got %q", devIdP))
	}
	if c.production() && c.DevIdP {
		errs = append(errs, "GATEWAY_DEV_IDP: the development identity provider is refused with GATEWAY_ENV=production")
	}
	if c.OIDC.Issuer != "" && c.OIDC.ClientID == "" {
		errs = append(errs, "GATEWAY_OIDC_CLIENT_ID is needed with GATEWAY_OIDC_ISSUER")
	}
	if c.SessionKey != "" && len(c.SessionKey) < 32 {
		errs = append(errs, "GATEWAY_SESSION_KEY: want at least 32 bytes")
	}
	if c.production() && c.SessionKey == "" && (c.OIDC.Issuer != "" || c.ProvidersFile != "") {
		errs = append(errs, "GATEWAY_SESSION_KEY is needed in production (the same on every replica)")
	}
	if c.SessionAbsolute < c.SessionIdle {
		errs = append(errs, "GATEWAY_SESSION_ABSOLUTE must not be less than GATEWAY_SESSION_IDLE")
	}
	c.OIDC.acr = map[string]gateway.Assurance{}
	for k, v := range auth.DefaultACR {
		c.OIDC.acr[k] = v
	}
	for _, kv := range c.OIDC.ACRMap {
		i := strings.LastIndex(kv, "=")
		lvl, err := gateway.ParseAssurance(kv[i+1:])
		if i <= 0 || err != nil {
			errs = append(errs, fmt.Sprintf("GATEWAY_OIDC_ACR_MAP: want value=level, got %q", kv))
			continue
		}
		c.OIDC.acr[kv[:i]] = lvl
	}
	c.OIDC.acrRequest = map[gateway.Assurance]string{}
	for k, v := range auth.DefaultACRRequest {
		c.OIDC.acrRequest[k] = v
	}
	for _, kv := range c.OIDC.ACRValues {
		lv, val, ok := strings.Cut(kv, "=")
		lvl, err := gateway.ParseAssurance(lv)
		if !ok || err != nil || val == "" {
			errs = append(errs, fmt.Sprintf("GATEWAY_OIDC_ACR_VALUES: want level=value, got %q", kv))
			continue
		}
		c.OIDC.acrRequest[lvl] = val
	}
	for _, a := range c.OIDC.Algorithms {
		if a == "none" || strings.HasPrefix(strings.ToUpper(a), "HS") {
			errs = append(errs, fmt.Sprintf("GATEWAY_OIDC_ALGORITHMS: %q is not allowed", a))
		}
	}
	return errs
}

// setupIdentity builds sign-in, sessions and machine clients. baseURL is
// where this process answers (for the development provider's issuer and
// the machine clients' audience when GATEWAY_PUBLIC_URL is unset). It
// returns nil when there is no identity configured at all.
func setupIdentity(cfg config, store *redisstore.Store, baseURL string, log *slog.Logger) (*httpapi.Auth, error) {
	if cfg.PublicURL != "" {
		baseURL = cfg.PublicURL
	}
	a := &httpapi.Auth{Store: store, LoginLimit: cfg.LoginLimit, LoginWindow: time.Minute}
	if !cfg.RateLimit {
		a.LoginLimit = 0
	}
	httpClient := &http.Client{Timeout: 10 * time.Second}
	if cfg.OIDC.Issuer != "" {
		o := cfg.OIDC
		rp, err := auth.NewRelyingParty(auth.ProviderConfig{ID: "oidc", Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
			Scopes: o.Scopes, Algorithms: o.Algorithms, ACR: o.acr, ACRRequest: o.acrRequest, HTTPClient: httpClient,
			Claims: auth.Claims{Subject: o.ClaimSubject, Personnummer: o.ClaimPersonnummer, Name: o.ClaimName, ACR: o.ClaimACR,
				Groups: o.ClaimGroups, ServicePoint: o.ClaimServicePoint, Department: o.ClaimDepartment,
				StaffGroup: o.StaffGroup, AdminGroup: o.AdminGroup}})
		if err != nil {
			return nil, err
		}
		a.Providers = append(a.Providers, rp)
	}
	if cfg.ProvidersFile != "" {
		more, err := providersFromFile(cfg.ProvidersFile, os.Getenv, httpClient)
		if err != nil {
			return nil, fmt.Errorf("GATEWAY_OIDC_PROVIDERS_FILE: %w", err)
		}
		a.Providers = append(a.Providers, more...)
	}
	if cfg.DevIdP {
		idp, err := auth.NewDevIdP(baseURL + "/dev-idp")
		if err != nil {
			return nil, err
		}
		rp, err := auth.NewRelyingParty(auth.ProviderConfig{ID: "dev", Issuer: idp.Issuer, ClientID: idp.ClientID, HTTPClient: httpClient})
		if err != nil {
			return nil, err
		}
		a.DevIdP = idp
		a.Providers = append(a.Providers, rp)
		log.Warn("development identity provider enabled at /dev-idp: test personas, no real e-ID; never use in production", "issuer", idp.Issuer)
	}
	if cfg.ClientsFile != "" {
		b, err := os.ReadFile(cfg.ClientsFile)
		if err != nil {
			return nil, fmt.Errorf("GATEWAY_CLIENTS_FILE: %w", err)
		}
		clients, err := auth.ParseClients(b)
		if err != nil {
			return nil, fmt.Errorf("GATEWAY_CLIENTS_FILE: %w", err)
		}
		a.Assertions = auth.NewAssertions(clients, []string{baseURL, baseURL + "/"}, store)
		log.Info("machine clients loaded", "clients", len(clients))
	}
	if len(a.Providers) == 0 && a.Assertions == nil {
		log.Warn("no identity configured: nobody can sign in, services above assurance none cannot be sent")
		return nil, nil
	}
	key := []byte(cfg.SessionKey)
	if len(key) == 0 {
		key = []byte(auth.RandomToken(32))
		log.Warn("GATEWAY_SESSION_KEY unset: a random key; sessions end at restart and are not shared between replicas")
	}
	if a.Assertions != nil {
		// Access tokens of the token endpoint are signed with a key derived
		// from the session key, so every replica accepts them.
		a.Assertions.TokenKey = auth.TokenKey(key)
		a.Assertions.TokenAudiences = []string{baseURL + "/oauth/token"}
	}
	a.Sessions = &auth.Sessions{Store: store, Key: key, Idle: cfg.SessionIdle, Absolute: cfg.SessionAbsolute, Privileged: cfg.SessionPrivileged,
		CacheFor: cfg.SessionCache, Watch: store}
	return a, nil
}

// providerFile is one provider in GATEWAY_OIDC_PROVIDERS_FILE. The secret
// is named by an environment variable, never written in the file.
type providerFile struct {
	ID              string            `json:"id"`
	Issuer          string            `json:"issuer"`
	ClientID        string            `json:"client_id"`
	ClientSecretEnv string            `json:"client_secret_env"`
	Scopes          []string          `json:"scopes"`
	Algorithms      []string          `json:"algorithms"`
	Claims          auth.Claims       `json:"claims"`
	ACR             map[string]string `json:"acr"`        // acr value -> level, added to the known ones
	ACRValues       map[string]string `json:"acr_values"` // level -> acr_values asked for
}

// providersFromFile reads further OpenID providers:
// {"providers": [{"id": "freja", "issuer": "...", "client_id": "...", ...}]}.
func providersFromFile(path string, getenv func(string) string, hc *http.Client) ([]*auth.RelyingParty, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Providers []providerFile `json:"providers"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	var out []*auth.RelyingParty
	seen := map[string]bool{"oidc": true, "dev": true}
	for i, p := range f.Providers {
		if p.ID == "" || seen[p.ID] {
			return nil, fmt.Errorf("provider %d: missing or repeated id %q (oidc and dev are taken)", i+1, p.ID)
		}
		seen[p.ID] = true
		acr := map[string]gateway.Assurance{}
		for k, v := range auth.DefaultACR {
			acr[k] = v
		}
		for k, v := range p.ACR {
			lvl, err := gateway.ParseAssurance(v)
			if err != nil {
				return nil, fmt.Errorf("provider %s: acr %q: %w", p.ID, k, err)
			}
			acr[k] = lvl
		}
		req := map[gateway.Assurance]string{}
		for k, v := range auth.DefaultACRRequest {
			req[k] = v
		}
		for k, v := range p.ACRValues {
			lvl, err := gateway.ParseAssurance(k)
			if err != nil {
				return nil, fmt.Errorf("provider %s: acr_values: %w", p.ID, err)
			}
			req[lvl] = v
		}
		secret := ""
		if p.ClientSecretEnv != "" {
			if secret = getenv(p.ClientSecretEnv); secret == "" {
				return nil, fmt.Errorf("provider %s: %s is not set", p.ID, p.ClientSecretEnv)
			}
		}
		rp, err := auth.NewRelyingParty(auth.ProviderConfig{ID: p.ID, Issuer: p.Issuer, ClientID: p.ClientID,
			ClientSecret: secret, Scopes: p.Scopes, Algorithms: p.Algorithms, Claims: p.Claims, ACR: acr, ACRRequest: req, HTTPClient: hc})
		if err != nil {
			return nil, fmt.Errorf("provider %s: %w", p.ID, err)
		}
		out = append(out, rp)
	}
	return out, nil
}

// checkProviders asks every OpenID provider for its discovery document and
// keys once at start and logs what it found: an unreachable provider as a
// warning, a configuration error (issuer mismatch, missing endpoints) as an
// error. Sign-ins retry discovery on their own.
func checkProviders(ctx context.Context, a *httpapi.Auth, log *slog.Logger) {
	if a == nil {
		return
	}
	for _, rp := range a.Providers {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := rp.Check(cctx)
		cancel()
		switch {
		case err == nil:
			log.Info("identity provider ok", "provider", rp.ID(), "issuer", rp.Issuer())
		case auth.KindOf(err) == auth.FailConfig:
			log.Error("identity provider misconfigured", "provider", rp.ID(), "issuer", rp.Issuer(), "error", err.Error())
		default:
			log.Warn("identity provider unreachable", "provider", rp.ID(), "issuer", rp.Issuer(), "kind", auth.KindOf(err).String(), "error", err.Error())
		}
	}
}

// identityReady adds the main provider (the first, the default for
// sign-in) to readiness: /readyz fails while its discovery has never
// succeeded, so a replica that could not sign anyone in from the start is
// not sent traffic. Once discovered, the provider being down later does
// not fail readiness (every replica would fail at once; sign-ins say the
// provider is unreachable instead). Other providers are only logged.
func identityReady(store func(context.Context) error, a *httpapi.Auth) func(context.Context) error {
	if a == nil || len(a.Providers) == 0 {
		return store
	}
	main := a.Providers[0]
	return func(ctx context.Context) error {
		if err := store(ctx); err != nil {
			return err
		}
		if main.Discovered() {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := main.Check(ctx); err != nil {
			return fmt.Errorf("identity provider %s: %w", main.ID(), err)
		}
		return nil
	}
}
