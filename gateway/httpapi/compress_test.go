package httpapi_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kommun/servicegateway/gateway/httpapi"
)

// Responses are gzipped for clients that accept it, over a real listener,
// and are the same once unzipped; others get them as they are.
func TestCompression(t *testing.T) {
	e := newAuthEnv(t, authOpts{})
	get := func(path, accept string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.base+path, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept) // set by hand: the client does not unzip
		}
		tr := &http.Transport{DisableCompression: true}
		defer tr.CloseIdleConnections()
		res, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}
	for _, path := range []string{"/?lang=sv", "/static/site.css", "/api/v1/services", "/no-such-page?lang=sv"} {
		t.Run(path, func(t *testing.T) {
			plainRes, plain := get(path, "")
			if enc := plainRes.Header.Get("Content-Encoding"); enc != "" {
				t.Fatalf("no Accept-Encoding, got Content-Encoding %q", enc)
			}
			res, zipped := get(path, "br;q=1.0, gzip;q=0.8, *;q=0.1")
			if res.StatusCode != plainRes.StatusCode {
				t.Fatalf("status %d, plain %d", res.StatusCode, plainRes.StatusCode)
			}
			if enc := res.Header.Get("Content-Encoding"); enc != "gzip" {
				t.Fatalf("Content-Encoding %q, want gzip", enc)
			}
			if !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
				t.Errorf("Vary %q lacks Accept-Encoding", res.Header.Get("Vary"))
			}
			zr, err := gzip.NewReader(strings.NewReader(string(zipped)))
			if err != nil {
				t.Fatal(err)
			}
			unzipped, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(path, "/?") || strings.HasPrefix(path, "/no-such-page") {
				// pages carry per-request tokens: the same page, not the same bytes
				if !strings.HasPrefix(string(unzipped), "<!DOCTYPE html>") || !strings.HasSuffix(strings.TrimSpace(string(unzipped)), "</html>") {
					t.Errorf("unzipped page is not a whole page: %.200s", unzipped)
				}
			} else if string(unzipped) != string(plain) {
				t.Errorf("unzipped body differs from the plain one")
			}
			if len(zipped) >= len(plain) {
				t.Errorf("gzip %d bytes, plain %d", len(zipped), len(plain))
			}
			t.Logf("%s: %d bytes, gzip %d", path, len(plain), len(zipped))
		})
	}
	// A page with a CSRF token (a form) is not compressed: next to reflected
	// input its compressed length would leak the token (BREACH).
	if res, body := get("/services/street-fault?lang=sv&q=reflected", "gzip"); res.Header.Get("Content-Encoding") != "" || !strings.Contains(string(body), `name="_csrf"`) {
		t.Errorf("a form page was compressed (Content-Encoding %q)", res.Header.Get("Content-Encoding"))
	}
	// gzip;q=0 refuses it.
	if res, _ := get("/static/site.css", "gzip;q=0, identity"); res.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 got %q", res.Header.Get("Content-Encoding"))
	}
}

// A submission's 202 answer (about 1 KB with its receipt) fits in one TCP
// segment as it is: it is not compressed, also for a client that accepts
// gzip (gzip would cost about as much CPU as the receipt's signature and
// save no round trip).
func TestSubmitAnswerNotCompressed(t *testing.T) {
	deps, _, _ := baseDeps(t)
	deps.Receipts = keyring(t, newKey(t))
	app := build(t, deps)
	req := httptest.NewRequest("POST", "/api/v1/services/street-fault/submissions", strings.NewReader(streetFault))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 202 || !strings.Contains(string(body), `"jws"`) {
		t.Fatalf("submit: %d %s", res.StatusCode, body)
	}
	if enc := res.Header.Get("Content-Encoding"); enc != "" || len(body) < 512 || len(body) >= httpapi.CompressConfigDefault.MinSize {
		t.Errorf("202 answer of %d bytes: Content-Encoding %q, want none (MinSize %d)", len(body), enc, httpapi.CompressConfigDefault.MinSize)
	}
}
