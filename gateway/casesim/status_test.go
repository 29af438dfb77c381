package casesim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

// casesim forwards a status change to the gateway, signed with the shared
// secret, and moves cases on by itself when AutoStatus is set.
func TestStatusUpdatesAreSignedAndSent(t *testing.T) {
	secret := []byte("status-secret")
	type got struct {
		path string
		upd  StatusUpdate
	}
	var (
		mu       sync.Mutex
		received []got
	)
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// The signature names method and submission (the path), as the
		// gateway checks it.
		sid := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/submissions/"), "/status")
		signed := gateway.StatusUpdateSigned(r.Method, sid, body)
		if err := httpjson.Verify(secret, r.Header.Get(httpjson.HeaderTimestamp), r.Header.Get(httpjson.HeaderSignature), signed, time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var u StatusUpdate
		_ = json.Unmarshal(body, &u)
		mu.Lock()
		received = append(received, got{r.URL.Path, u})
		mu.Unlock()
		w.Write([]byte(`{}`))
	}))
	defer gw.Close()
	s, err := New(Config{Secret: secret, GatewayURL: gw.URL, AutoStatus: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := gateway.NewID()
	body, _ := json.Marshal(httpjson.Envelope{SubmissionID: id, Reference: "2026-AAAA-BBBB", Service: "street-fault"})
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req := httptest.NewRequest("POST", "/cases", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(httpjson.HeaderIdempotencyKey, id)
	req.Header.Set(httpjson.HeaderTimestamp, ts)
	req.Header.Set(httpjson.HeaderSignature, httpjson.Sign(secret, ts, body))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var ans httpjson.Answer
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &ans) != nil {
		t.Fatalf("delivery: %d %s", rec.Code, rec.Body)
	}

	// A case officer moves it on.
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/cases/"+ans.CaseReference+"/status", bytes.NewReader([]byte(`{"status":"decided","message":"Beviljat"}`))))
	if rec.Code != http.StatusOK {
		t.Fatalf("status: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("POST", "/cases/KS-1999-000001/status", bytes.NewReader([]byte(`{"status":"decided"}`))))
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown case: %d", rec.Code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(received)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(received) != 2 {
		t.Fatalf("gateway received %d updates, want the manual one and the automatic one", len(received))
	}
	statuses := map[string]bool{}
	for _, r := range received {
		if r.path != "/api/v1/submissions/"+id+"/status" || r.upd.CaseReference != ans.CaseReference || r.upd.At == "" {
			t.Errorf("update %+v", r)
		}
		statuses[r.upd.Status] = true
	}
	if !statuses["decided"] || !statuses["in_progress"] {
		t.Errorf("statuses %v", statuses)
	}
}
