// Package casesim is a small reference case management system: the kind of
// back-end a department plugs the gateway into with the "http" connector.
// It receives signed deliveries, deduplicates them by Idempotency-Key,
// assigns case numbers such as KS-2026-000001 and lists what it received.
//
// It is used by the demo (the gateway starts it when CASESIM_URL is unset),
// by tests, and by departments as a worked example of the receiving side of
// the contract. It has no authentication on its read endpoints: bind it to
// a trusted network only.
package casesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

// DemoSecret is the signing secret shared by the demo gateway and casesim
// when CASESIM_SECRET is unset. It is public: never use it in production.
const DemoSecret = "demo-secret-change-me"

// CasePrefix starts every case reference.
const CasePrefix = "KS"

// MaxSkew is how far the timestamp of a delivery may be from the clock of
// casesim.
const MaxSkew = 5 * time.Minute

// maxBody is the largest delivery accepted.
const maxBody = 4 << 20

// maxKey is the longest Idempotency-Key accepted.
const maxKey = 256

// Config configures a Server.
type Config struct {
	// Secret is the shared signing secret. Required.
	Secret []byte
	// DataFile, when set, is an append-only JSON-lines file that keeps the
	// cases across restarts. It is read by New and written, with fsync,
	// before a delivery is answered.
	DataFile string
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// Logger receives one line per case; default: discard.
	Logger *slog.Logger
	// GatewayURL is the gateway's base URL, where status updates are sent
	// (see SendStatus); it can be set later with SetGatewayURL.
	GatewayURL string
	// AutoStatus, when positive, moves every new case to in_progress this
	// long after it was created and tells the gateway (for the demo).
	AutoStatus time.Duration
	// FetchTimeout bounds fetching one attachment link; default 30s.
	FetchTimeout time.Duration
	// MaxAttachment is the largest attachment fetched, in bytes; default
	// 25 MB.
	MaxAttachment int64
}

// Case is one case in the case system, as listed by GET /cases.
type Case struct {
	CaseReference  string          `json:"case_reference"`
	SubmissionID   string          `json:"submission_id"`
	Service        string          `json:"service"`
	ServiceVersion string          `json:"service_version,omitempty"`
	Department     string          `json:"department,omitempty"`
	IdempotencyKey string          `json:"idempotency_key"`
	Reference      string          `json:"reference"`
	Channel        string          `json:"channel"`
	Locale         string          `json:"locale,omitempty"`
	Subject        string          `json:"subject,omitempty"`
	SubmittedAt    string          `json:"submitted_at,omitempty"`
	ReceivedAt     time.Time       `json:"received_at"`
	Deliveries     int             `json:"deliveries"` // how many times this key was POSTed
	Payload        json.RawMessage `json:"payload"`
	// Attachments were fetched through the delivery's links, their bytes
	// checked against the announced size and SHA-256.
	Attachments []Attachment `json:"attachments,omitempty"`
	// FollowUps are the resident's answers to completion requests, one per
	// Idempotency-Key, in the order they arrived (at most maxFollowUps).
	FollowUps []FollowUp `json:"followups,omitempty"`
}

// FollowUp is one answer received for a case.
type FollowUp struct {
	IdempotencyKey string    `json:"idempotency_key"`
	Seq            int       `json:"seq"`
	Question       string    `json:"question,omitempty"`
	Answer         string    `json:"answer"`
	ReceivedAt     time.Time `json:"received_at"`
	Deliveries     int       `json:"deliveries"` // how many times this key was POSTed
	// Attachments sent with the answer, fetched and checked like a case's.
	Attachments []Attachment `json:"attachments,omitempty"`
}

// maxFollowUps bounds the follow-ups kept per case.
const maxFollowUps = 50

// clone returns a copy that shares no memory with c.
func (c *Case) clone() Case {
	out := *c
	out.Payload = append(json.RawMessage(nil), c.Payload...)
	out.Attachments = append([]Attachment(nil), c.Attachments...)
	out.FollowUps = make([]FollowUp, len(c.FollowUps))
	for i, f := range c.FollowUps {
		f.Attachments = append([]Attachment(nil), f.Attachments...)
		out.FollowUps[i] = f
	}
	return out
}

// Server is the case system. It is an http.Handler and safe for
// concurrent use.
type Server struct {
	secret []byte
	now    func() time.Time
	log    *slog.Logger
	mux    *http.ServeMux

	mu     sync.Mutex
	cases  []*Case          // in the order they were created
	byKey  map[string]*Case // Idempotency-Key -> case
	byRef  map[string]*Case // case reference -> case
	counts map[int]int      // year -> last case number of that year
	store  *store           // nil without DataFile
	closed bool

	gatewayURL string        // where status updates go
	autoStatus time.Duration // see Config.AutoStatus

	fetchTimeout  time.Duration
	maxAttachment int64
}

// New returns a Server, loading the cases in cfg.DataFile when it is set.
func New(cfg Config) (*Server, error) {
	if len(cfg.Secret) == 0 {
		return nil, errors.New("casesim: a secret is required")
	}
	s := &Server{
		secret: append([]byte(nil), cfg.Secret...),
		now:    cfg.Now,
		log:    cfg.Logger,
		byKey:  map[string]*Case{},
		byRef:  map[string]*Case{},
		counts: map[int]int{},

		gatewayURL: strings.TrimRight(cfg.GatewayURL, "/"),
		autoStatus: cfg.AutoStatus,

		fetchTimeout:  cfg.FetchTimeout,
		maxAttachment: cfg.MaxAttachment,
	}
	if s.fetchTimeout <= 0 {
		s.fetchTimeout = DefaultFetchTimeout
	}
	if s.maxAttachment <= 0 {
		s.maxAttachment = DefaultMaxAttachment
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.DataFile != "" {
		st, loaded, err := openStore(cfg.DataFile, s.log)
		if err != nil {
			return nil, fmt.Errorf("casesim: %w", err)
		}
		s.store = st
		for _, c := range loaded {
			if err := s.index(c); err != nil {
				st.close()
				return nil, fmt.Errorf("casesim: %s: %w", cfg.DataFile, err)
			}
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /cases", s.handleCreate)
	mux.HandleFunc("GET /cases", s.handleList)
	mux.HandleFunc("GET /cases/{ref}", s.handleGet)
	mux.HandleFunc("POST /cases/{ref}/status", s.handleStatus)
	mux.HandleFunc("POST /cases/{ref}/followups", s.handleFollowUp)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux = mux
	return s, nil
}

// index adds or replaces a loaded case in the in-memory indexes. A later
// record for the same key replaces the earlier one (it has a higher count
// of deliveries).
func (s *Server) index(c *Case) error {
	year, n, err := parseCaseReference(c.CaseReference)
	if err != nil {
		return err
	}
	if c.IdempotencyKey == "" {
		return fmt.Errorf("case %s has no idempotency key", c.CaseReference)
	}
	if old, ok := s.byKey[c.IdempotencyKey]; ok {
		if old.CaseReference != c.CaseReference {
			return fmt.Errorf("idempotency key has two case references: %s and %s", old.CaseReference, c.CaseReference)
		}
		*old = *c
		return nil
	}
	if _, dup := s.byRef[c.CaseReference]; dup {
		return fmt.Errorf("case reference %s is used twice", c.CaseReference)
	}
	s.cases = append(s.cases, c)
	s.byKey[c.IdempotencyKey] = c
	s.byRef[c.CaseReference] = c
	s.counts[year] = max(s.counts[year], n)
	return nil
}

// Close closes the data file.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.store == nil {
		return nil
	}
	return s.store.close()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Cases returns a copy of every case, in the order they were created.
func (s *Server) Cases() []Case {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Case, len(s.cases))
	for i, c := range s.cases {
		out[i] = c.clone()
	}
	return out
}

// Count returns the number of cases.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cases)
}

// caseReference formats a case number.
func caseReference(year, n int) string {
	return fmt.Sprintf("%s-%04d-%06d", CasePrefix, year, n)
}

// parseCaseReference reads back the year and number of a case reference.
func parseCaseReference(ref string) (year, n int, err error) {
	parts := strings.Split(ref, "-")
	if len(parts) == 3 && parts[0] == CasePrefix {
		year, err1 := strconv.Atoi(parts[1])
		n, err2 := strconv.Atoi(parts[2])
		if err1 == nil && err2 == nil && n > 0 && caseReference(year, n) == ref {
			return year, n, nil
		}
	}
	return 0, 0, fmt.Errorf("malformed case reference %q", ref)
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "body too large")
			return
		}
		writeError(w, http.StatusBadRequest, "body could not be read")
		return
	}
	if err := httpjson.Verify(s.secret, r.Header.Get(httpjson.HeaderTimestamp), r.Header.Get(httpjson.HeaderSignature), body, s.now(), MaxSkew); err != nil {
		s.log.Warn("delivery refused", "reason", err.Error())
		writeError(w, http.StatusUnauthorized, "invalid signature: "+err.Error())
		return
	}
	key := r.Header.Get(httpjson.HeaderIdempotencyKey)
	if key == "" {
		writeError(w, http.StatusBadRequest, "Idempotency-Key header is required")
		return
	}
	if len(key) > maxKey {
		writeError(w, http.StatusBadRequest, "Idempotency-Key is too long")
		return
	}
	var env struct {
		httpjson.Envelope
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		writeError(w, http.StatusBadRequest, "body is not a JSON delivery")
		return
	}
	if env.SubmissionID == "" || env.Service == "" {
		writeError(w, http.StatusBadRequest, "submission_id and service are required")
		return
	}
	payload := env.Payload
	if len(payload) == 0 || string(payload) == "null" {
		payload = json.RawMessage("{}")
	}

	// A new case's attachments are fetched first, without the lock: a
	// failed fetch fails the delivery (502) so that the gateway retries
	// with fresh links. A repeated delivery has them already.
	s.mu.Lock()
	_, known := s.byKey[key]
	s.mu.Unlock()
	var files []Attachment
	if !known && len(env.Attachments) > 0 {
		files, err = s.fetchAttachments(r.Context(), env.Attachments)
		if err != nil {
			s.log.Warn("delivery refused: attachments could not be fetched", "reference", env.Reference, "error", err.Error())
			writeError(w, http.StatusBadGateway, "attachments could not be fetched: "+err.Error())
			return
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.byKey[key]; ok {
		if c.SubmissionID != env.SubmissionID {
			writeError(w, http.StatusConflict, "Idempotency-Key was used for another submission")
			return
		}
		next := c.clone()
		next.Deliveries++
		if err := s.persist(&next); err != nil {
			writeError(w, http.StatusInternalServerError, "the case could not be stored")
			return
		}
		*c = next
		s.log.Info("repeated delivery", "case_reference", c.CaseReference, "reference", c.Reference, "deliveries", c.Deliveries)
		writeJSON(w, http.StatusOK, httpjson.Answer{CaseReference: c.CaseReference})
		return
	}

	now := s.now().UTC()
	year := now.Year()
	c := &Case{
		CaseReference:  caseReference(year, s.counts[year]+1),
		SubmissionID:   env.SubmissionID,
		Service:        env.Service,
		ServiceVersion: env.ServiceVersion,
		Department:     env.Department,
		IdempotencyKey: key,
		Reference:      env.Reference,
		Channel:        string(env.Channel),
		Locale:         env.Locale,
		Subject:        env.Subject,
		SubmittedAt:    env.SubmittedAt,
		ReceivedAt:     now,
		Deliveries:     1,
		Payload:        append(json.RawMessage(nil), payload...),
		Attachments:    files,
	}
	if err := s.persist(c); err != nil {
		writeError(w, http.StatusInternalServerError, "the case could not be stored")
		return
	}
	s.counts[year]++
	s.cases = append(s.cases, c)
	s.byKey[key] = c
	s.byRef[c.CaseReference] = c
	s.log.Info("case created", "case_reference", c.CaseReference, "reference", c.Reference)
	s.autoProgress(c.CaseReference)
	writeJSON(w, http.StatusCreated, httpjson.Answer{CaseReference: c.CaseReference})
}

// persist writes c to the data file, if any. s.mu is held.
func (s *Server) persist(c *Case) error {
	if s.store == nil {
		return nil
	}
	if s.closed {
		return ErrClosed
	}
	if err := s.store.append(c); err != nil {
		s.log.Error("data file write failed", "case_reference", c.CaseReference, "error", err.Error())
		return err
	}
	return nil
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	service := r.URL.Query().Get("service")
	out := []Case{}
	for _, c := range s.Cases() {
		if service == "" || c.Service == service {
			out = append(out, c)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c, ok := s.byRef[r.PathValue("ref")]
	var out Case
	if ok {
		out = c.clone()
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "no such case")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// ErrClosed is returned for deliveries after Close when there is a data file.
var ErrClosed = errors.New("casesim: closed")
