package httpscan_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/httpscan"
)

// eicar is the EICAR anti-malware test string.
const eicar = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

// A real HTTP scanning service that flags EICAR: clean passes, EICAR is
// infected, a 503 and a closed server are "unavailable".
func TestScan(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if bytes.Contains(b, []byte("down")) {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if bytes.Contains(b, []byte(eicar)) {
			w.Write([]byte(`{"infected":true,"threat":"EICAR"}`))
			return
		}
		w.Write([]byte(`{"infected":false}`))
	}))
	sc := httpscan.New(srv.URL, "tok")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sc.Scan(ctx, bytes.NewReader([]byte("%PDF-1.4 clean"))); err != nil {
		t.Fatalf("clean: %v", err)
	}
	if err := sc.Scan(ctx, bytes.NewReader([]byte("%PDF "+eicar))); !errors.Is(err, gateway.ErrAttachmentInfected) {
		t.Fatalf("eicar: %v", err)
	}
	if err := sc.Scan(ctx, bytes.NewReader([]byte("down"))); !errors.Is(err, httpscan.ErrUnavailable) {
		t.Fatalf("503: %v", err)
	}
	srv.Close()
	if err := sc.Scan(ctx, bytes.NewReader([]byte("x"))); !errors.Is(err, httpscan.ErrUnavailable) {
		t.Fatalf("down: %v", err)
	}
}
