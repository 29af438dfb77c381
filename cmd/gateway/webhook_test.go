package main

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/gateway/webhook"
)

// hookReceiver is a department's webhook endpoint on a real listener: it
// checks every signature, refuses (503) while refusing is set, and keeps
// the events it accepted and the ids it refused.
type hookReceiver struct {
	mu       sync.Mutex
	secret   []byte
	refusing bool
	accepted []webhook.Payload
	refused  map[string]bool
	bad      int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	h.mu.Lock()
	defer h.mu.Unlock()
	if webhook.Verify(h.secret, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute) != nil {
		h.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if h.refusing {
		h.refused[r.Header.Get(webhook.HeaderEventID)] = true
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var p webhook.Payload
	if json.Unmarshal(body, &p) != nil || p.ID != r.Header.Get(webhook.HeaderEventID) {
		h.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.accepted = append(h.accepted, p)
	w.WriteHeader(http.StatusOK)
}

func (h *hookReceiver) state() (accepted []webhook.Payload, refused, bad int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]webhook.Payload(nil), h.accepted...), len(h.refused), h.bad
}

// Real processes: redis-server, casesim, the gateway and a department's
// webhook receiver on a real listener. The department subscribes to all
// three events. While the receiver refuses, two submissions are received
// and delivered and one case moves to in_progress; the gateway is
// SIGKILLed with every event waiting for a retry. A new gateway process
// delivers each of the five events once the receiver accepts, signed, with
// a stable id and without form content; nothing is dead-lettered.
func TestWebhooksThroughRefusalAndRestart(t *testing.T) {
	rs := redistest.Start(t, redistest.WithAOF("always"))
	rcv := &hookReceiver{secret: []byte("streets-webhook-secret-0123456789"), refusing: true, refused: map[string]bool{}}
	hooks := httptest.NewServer(rcv)
	defer hooks.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "webhooks.json")
	conf := `{"departments": {"streets-parks": {"url": "` + hooks.URL + `/gateway-events", "secret": "${STREETS_HOOK_SECRET}",
		"events": ["submission.received", "submission.delivered", "status.changed"]}}}`
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	_, csBin := binaries(t)
	gwAddr := freeAddr(t)
	cs := start(t, csBin, map[string]string{"CASESIM_ADDR": "127.0.0.1:0", "CASESIM_SECRET": demoSecret, "CASESIM_GATEWAY_URL": "http://" + gwAddr})
	env := gatewayEnv(rs.URL(), cs.URL)
	maps.Copy(env, map[string]string{"GATEWAY_ADDR": gwAddr, "GATEWAY_WEBHOOKS_FILE": file, "STREETS_HOOK_SECRET": string(rcv.secret),
		"GATEWAY_NOTIFY_MAX_ATTEMPTS": "100"})
	a := gatewayProc(t, env)

	const description = "Hål i asfalten utanför nummer 7"
	ids := []string{
		mustSubmit(t, a.URL, "street-fault", `{"kind":"pothole","description":"`+description+`","location":"Storgatan 7"}`),
		mustSubmit(t, a.URL, "street-fault", `{"kind":"pothole","description":"`+description+`","location":"Storgatan 9"}`),
	}
	waitDelivered(t, 30*time.Second, "delivered", a.URL, ids...)
	ref := submission(t, a.URL, ids[0]).CaseReference
	if code, m := postJSON(t, cs.URL+"/cases/"+ref+"/status", `{"status":"in_progress","message":"Vi lagar hålet."}`); code != 200 || m["gateway_status"] != float64(200) {
		t.Fatalf("casesim status: %d %v", code, m)
	}
	eventually(t, 60*time.Second, "every event tried and refused", func() bool { _, refused, _ := rcv.state(); return refused == 5 })
	a.Kill()

	rcv.mu.Lock()
	rcv.refusing = false
	rcv.mu.Unlock()
	gatewayProc(t, env)
	rdb := rs.Client(t)
	eventually(t, 60*time.Second, "every event accepted and the outbox empty", func() bool {
		got, _, _ := rcv.state()
		return len(got) >= 5 && rdb.XLen(t.Context(), "gw:{q}:nout").Val() == 0 && rdb.ZCard(t.Context(), "gw:{q}:nretry").Val() == 0
	})
	got, _, bad := rcv.state()
	if bad != 0 {
		t.Errorf("%d requests with a bad signature or body", bad)
	}
	types := map[string]int{}
	seen := map[string]bool{}
	for _, p := range got {
		types[p.Type+" "+p.Submission.Status]++
		if seen[p.ID] {
			t.Errorf("event %s accepted twice", p.ID)
		}
		seen[p.ID] = true
		if p.Submission.Department != "streets-parks" || p.Submission.Service != "street-fault" || p.Submission.Reference == "" || p.OccurredAt.IsZero() {
			t.Errorf("payload %+v", p)
		}
	}
	want := map[string]int{"submission.received received": 2, "submission.delivered delivered": 2, "status.changed in_progress": 1}
	if !maps.Equal(types, want) || len(got) != 5 {
		t.Fatalf("accepted %v (%d), want %v", types, len(got), want)
	}
	raw, _ := json.Marshal(got)
	if strings.Contains(string(raw), description) || strings.Contains(string(raw), "Vi lagar") {
		t.Errorf("a payload carries form content: %s", raw)
	}
	if dead := rdb.ZCard(t.Context(), "gw:{q}:ndead").Val(); dead != 0 {
		t.Errorf("%d events dead-lettered", dead)
	}
}
