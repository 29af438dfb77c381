package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway/auth"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/services"
)

// setupIdentityKeys returns the signer of the identity tokens for proxied
// e-services: the key from GATEWAY_IDENTITY_KEY_FILE, or in development a
// random one. Production refuses to proxy without a configured key.
func setupIdentityKeys(cfg config, loaded *services.Loaded) (*auth.IdentitySigner, error) {
	var pemKey []byte
	if cfg.IdentityKeyFile != "" {
		b, err := os.ReadFile(cfg.IdentityKeyFile)
		if err != nil {
			return nil, fmt.Errorf("GATEWAY_IDENTITY_KEY_FILE: %w", err)
		}
		pemKey = b
	} else if cfg.production() {
		for _, svc := range loaded.Services {
			if svc.Prefix != "" {
				return nil, fmt.Errorf("service %s is proxied: GATEWAY_IDENTITY_KEY_FILE is required in production", svc.ID)
			}
		}
	}
	issuer := cfg.PublicURL
	if issuer == "" {
		issuer = "servicegateway"
	}
	return auth.NewIdentitySigner(pemKey, issuer)
}

// startDemoEService starts the demo's existing e-service (the example
// service library-loans proxies to it): a page that verifies the identity
// token with the gateway's published key and greets the resident.
func startDemoEService(keys *auth.IdentitySigner, log *slog.Logger) (url string, stop func(), err error) {
	var set auth.JWKSet
	if err := json.Unmarshal(keys.JWKS(), &set); err != nil || len(set.Keys) != 1 {
		return "", nil, errors.New("demo e-service: bad key set")
	}
	pub, err := set.Keys[0].Key()
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	url = "http://" + ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var claims auth.IdentityClaims
		_, err := jwt.ParseWithClaims(r.Header.Get("X-Gateway-Identity"), &claims, func(*jwt.Token) (any, error) { return pub, nil },
			jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(url), jwt.WithExpirationRequired())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `<!doctype html><html lang="sv"><title>Boka lokal</title><p>Ingen giltig identitet från e-tjänstportalen.</p></html>`)
			return
		}
		fmt.Fprintf(w, `<!doctype html><html lang="sv"><title>Boka lokal</title><h1>Boka lokal</h1><p>Välkommen, %s (%s).</p><p>Du har inga bokningar just nu.</p><p><a href="/">Till e-tjänsterna</a></p></html>`,
			html.EscapeString(claims.Name), html.EscapeString(claims.Level))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("demo e-service started in-process", "url", url)
	return url, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

var _ httpapi.IdentitySigner = (*auth.IdentitySigner)(nil)
