package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/kommun/servicegateway/gateway/auth/oidctest"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
)

func TestIdentityConfig(t *testing.T) {
	redis := map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/0", "GATEWAY_ENV": "production", "CASESIM_URL": "http://cs", "CASESIM_SECRET": strings.Repeat("s", 40)}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	refused := []struct {
		name, want string
		env        map[string]string
	}{
		{"dev provider in production", "refused with GATEWAY_ENV=production", with(redis, "GATEWAY_DEV_IDP", "on")},
		{"issuer without client id", "GATEWAY_OIDC_CLIENT_ID", with(nil, "GATEWAY_OIDC_ISSUER", "https://idp.example")},
		{"production without session key", "GATEWAY_SESSION_KEY", with(redis, "GATEWAY_OIDC_ISSUER", "https://idp.example", "GATEWAY_OIDC_CLIENT_ID", "gw")},
		{"short session key", "GATEWAY_SESSION_KEY", with(nil, "GATEWAY_SESSION_KEY", "short")},
		{"HMAC algorithm", "GATEWAY_OIDC_ALGORITHMS", with(nil, "GATEWAY_OIDC_ALGORITHMS", "RS256,HS256")},
		{"none algorithm", "GATEWAY_OIDC_ALGORITHMS", with(nil, "GATEWAY_OIDC_ALGORITHMS", "none")},
		{"bad acr map", "GATEWAY_OIDC_ACR_MAP", with(nil, "GATEWAY_OIDC_ACR_MAP", "urn:x=medium")},
		{"bad dev switch", "GATEWAY_DEV_IDP", with(nil, "GATEWAY_DEV_IDP", "maybe")},
		{"absolute shorter than idle", "GATEWAY_SESSION_ABSOLUTE", with(nil, "GATEWAY_SESSION_IDLE", "2h", "GATEWAY_SESSION_ABSOLUTE", "1h")},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(func(k string) string { return tc.env[k] })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
	accepted := []struct {
		name   string
		env    map[string]string
		devIdP bool
	}{
		{"development default: dev provider", nil, true},
		{"development with an issuer: no dev provider", with(nil, "GATEWAY_OIDC_ISSUER", "https://idp.example", "GATEWAY_OIDC_CLIENT_ID", "gw"), false},
		{"development with an issuer and the dev provider on", with(nil, "GATEWAY_OIDC_ISSUER", "https://idp.example", "GATEWAY_OIDC_CLIENT_ID", "gw", "GATEWAY_DEV_IDP", "on"), true},
		{"production with an issuer", with(redis, "GATEWAY_OIDC_ISSUER", "https://idp.example", "GATEWAY_OIDC_CLIENT_ID", "gw",
			"GATEWAY_SESSION_KEY", strings.Repeat("k", 40), "GATEWAY_OIDC_ACR_MAP", "urn:x:bankid=high"), false},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if c.DevIdP != tc.devIdP {
				t.Fatalf("dev provider %v, want %v", c.DevIdP, tc.devIdP)
			}
		})
	}
}

func TestProvidersFile(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "providers.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := map[string]string{"STAFF_SECRET": "s3cret"}
	good := `{"providers": [{"id": "staff", "issuer": "https://login.example/", "client_id": "gw", "client_secret_env": "STAFF_SECRET",
		"claims": {"groups": "roles", "service_point": "office"}, "acr": {"urn:x:mfa": "substantial"}, "acr_values": {"substantial": "urn:x:mfa"}}]}`
	rps, err := providersFromFile(write(good), func(k string) string { return env[k] }, nil)
	if err != nil || len(rps) != 1 || rps[0].ID() != "staff" || rps[0].Issuer() != "https://login.example/" {
		t.Fatalf("good file: %v %v", err, rps)
	}
	for name, body := range map[string]string{
		"unknown key":     `{"providers": [{"id": "x", "issuer": "https://a.example", "client_id": "gw", "colour": "red"}]}`,
		"secret unset":    `{"providers": [{"id": "x", "issuer": "https://a.example", "client_id": "gw", "client_secret_env": "NOPE"}]}`,
		"taken id":        `{"providers": [{"id": "dev", "issuer": "https://a.example", "client_id": "gw"}]}`,
		"bad level":       `{"providers": [{"id": "x", "issuer": "https://a.example", "client_id": "gw", "acr": {"a": "medium"}}]}`,
		"hmac algorithm":  `{"providers": [{"id": "x", "issuer": "https://a.example", "client_id": "gw", "algorithms": ["HS256"]}]}`,
		"issuer not http": `{"providers": [{"id": "x", "issuer": "ftp://a.example", "client_id": "gw"}]}`,
	} {
		if _, err := providersFromFile(write(body), func(k string) string { return env[k] }, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The gateway binary with a machine clients file: a department system
// signs an assertion and lists its department's submissions; another
// department's system does not see them; an ID token from the development
// provider is no API token.
func TestMachineClientsBinary(t *testing.T) {
	rs := redistest.Start(t)
	cs := casesimProc(t)
	keys := map[string]*ecdsa.PrivateKey{}
	var clients []map[string]string
	for id, dept := range map[string]string{"streets-system": "streets-parks", "care-system": "social-care"} {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[id] = k
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		clients = append(clients, map[string]string{"id": id, "department": dept, "algorithm": "ES256",
			"public_key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))})
	}
	file := filepath.Join(t.TempDir(), "clients.json")
	b, _ := json.Marshal(map[string]any{"clients": clients})
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	env := gatewayEnv(rs.URL(), cs.URL)
	env["GATEWAY_CLIENTS_FILE"] = file
	gw := gatewayProc(t, env)

	id := mustSubmit(t, gw.URL, "street-fault", `{"kind":"litter","description":"Överfull papperskorg vid torget","location":"Stora torget"}`)
	assertion := func(client string) string {
		now := time.Now()
		s, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": client, "sub": client, "aud": gw.URL,
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": fmt.Sprint(now.UnixNano())}).SignedString(keys[client])
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	list := func(bearer string) (int, string) {
		req, _ := http.NewRequest("GET", gw.URL+"/api/v1/department/submissions", nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	if code, body := list(assertion("streets-system")); code != 200 || !strings.Contains(body, id) || strings.Contains(body, "payload") {
		t.Fatalf("own department: %d %s", code, body)
	}
	if code, body := list(assertion("care-system")); code != 200 || strings.Contains(body, id) {
		t.Fatalf("other department: %d %s", code, body)
	}
	// An ID token of the development provider, signed by its real key, is
	// not an API token.
	res, err := client.Get(gw.URL + "/auth/login?login_hint=bertil")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 303 || !strings.Contains(res.Header.Get("Location"), "/dev-idp/authorize") {
		t.Fatalf("the development provider is not on: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if code, _ := list("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"); code != 401 {
		t.Fatalf("a foreign token: %d", code)
	}
	if strings.Contains(gw.Out.String(), "Bearer") || strings.Contains(gw.Out.String(), assertion("streets-system")[:20]) {
		t.Fatal("a token reached the log")
	}
}

// The gateway binary against a real OpenID provider whose issuer ends in
// "/" (Auth0, zitadel), configured exactly so through GATEWAY_OIDC_ISSUER:
// the provider is checked at start, /readyz is ready and a resident signs
// in. With the main provider unreachable, /readyz says not ready.
func TestOIDCIssuerWithSlashAndReadiness(t *testing.T) {
	rs := redistest.Start(t)
	cs := casesimProc(t)
	op := oidctest.Start(t, oidctest.Options{IssuerPath: "/tenant/"})
	op.IDClaims["https://id.oidc.se/claim/personalIdentityNumber"] = "19880315-1649"
	op.IDClaims["name"] = "Eva Ek"
	env := gatewayEnv(rs.URL(), cs.URL)
	env["GATEWAY_LOG_LEVEL"] = "info"
	env["GATEWAY_OIDC_ISSUER"] = op.Issuer
	env["GATEWAY_OIDC_CLIENT_ID"] = op.ClientID
	env["GATEWAY_OIDC_CLIENT_SECRET"] = op.Secret
	gw := gatewayProc(t, env)

	ready := func(gw *proc) int {
		res, err := client.Get(gw.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := ready(gw); code != 200 {
		t.Fatalf("readyz %d with a reachable provider:\n%s", code, gw.Out)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	res, err := browser.Get(gw.URL + "/auth/login?return_to=/my")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path != "/my" || !strings.Contains(string(page), "Eva Ek") {
		t.Fatalf("sign-in ended at %s with %d:\n%.600s\n%s", res.Request.URL, res.StatusCode, page, gw.Out)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(gw.Out.String(), "identity provider ok"); {
		if time.Now().After(deadline) {
			t.Fatalf("no start-up check logged:\n%s", gw.Out)
		}
		time.Sleep(50 * time.Millisecond)
	}

	env["GATEWAY_OIDC_ISSUER"] = "http://127.0.0.1:1/nobody/"
	down := gatewayProc(t, env)
	if code := ready(down); code != 503 {
		t.Fatalf("readyz %d with the main provider never reached", code)
	}
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(down.Out.String(), "identity provider unreachable"); {
		if time.Now().After(deadline) {
			t.Fatalf("the unreachable provider was not logged:\n%s", down.Out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
