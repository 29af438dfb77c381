// Package smssink is the reference SMS gateway: a small HTTP server that
// speaks the contract of notify.HTTPSMS, keeps what it received in memory
// (bounded) and lists it at GET /messages. The demo starts it when no SMS
// provider is configured, and tests count what arrived. It sends nothing.
package smssink

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// Limits.
const (
	MaxMessages = 1000    // kept; the oldest go first
	maxBody     = 4 << 10 // bytes of one request
)

// Message is one SMS received.
type Message struct {
	To             string    `json:"to"`
	From           string    `json:"from,omitempty"`
	Text           string    `json:"text"`
	IdempotencyKey string    `json:"idempotency_key"`
	ReceivedAt     time.Time `json:"received_at"`
	// Repeats counts requests with the same idempotency key after the
	// first (they are not new messages).
	Repeats int `json:"repeats"`
}

// Sink is the reference SMS gateway; it is an http.Handler.
type Sink struct {
	Token string // required bearer token ("" accepts any)

	mu    sync.Mutex
	msgs  []*Message
	byKey map[string]*Message
	// FailNext makes the next n sends answer 503 (for tests and demos of
	// retries).
	failNext int
}

// New returns an empty sink.
func New(token string) *Sink { return &Sink{Token: token, byKey: map[string]*Message{}} }

// FailNext makes the next n POSTs answer 503.
func (s *Sink) FailNext(n int) {
	s.mu.Lock()
	s.failNext = n
	s.mu.Unlock()
}

// Messages returns a copy of what was received, oldest first.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = *m
	}
	return out
}

func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/messages" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Messages())
	case r.URL.Path == "/messages" && r.Method == http.MethodPost:
		s.receive(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Sink) receive(w http.ResponseWriter, r *http.Request) {
	if s.Token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+s.Token)) != 1 {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil || m.To == "" || m.Text == "" {
		http.Error(w, "want JSON with to and text", http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" || len(key) > 200 {
		http.Error(w, "Idempotency-Key required", http.StatusBadRequest)
		return
	}
	m.IdempotencyKey, m.ReceivedAt = key, time.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	if prev, ok := s.byKey[key]; ok {
		prev.Repeats++
		w.WriteHeader(http.StatusOK)
		return
	}
	if len(s.msgs) >= MaxMessages {
		delete(s.byKey, s.msgs[0].IdempotencyKey)
		s.msgs = s.msgs[1:]
	}
	s.msgs = append(s.msgs, &m)
	s.byKey[key] = &m
	w.WriteHeader(http.StatusAccepted)
}
