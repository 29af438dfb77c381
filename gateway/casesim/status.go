package casesim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

// Status updates flow back: a case officer (here, a POST to casesim) moves
// a case on, and casesim tells the gateway, signed with the shared secret
// like the gateway signs its deliveries:
//
//	POST {gateway}/api/v1/submissions/{submission id}/status
//	X-Gateway-Timestamp: <unix seconds>
//	X-Gateway-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." +
//	                     "POST /api/v1/submissions/{id}/status\n" + body)>
//
// (gateway.StatusUpdateSigned): the signature names the submission, so an
// update signed for one case is refused for another.
//	{"status": "in_progress", "message": "...", "case_reference": "KS-...", "at": "RFC 3339"}

// statusTimeout bounds one status update sent to the gateway.
const statusTimeout = 10 * time.Second

var statusClient = &http.Client{Timeout: statusTimeout}

// StatusUpdate is the body casesim sends to the gateway.
type StatusUpdate struct {
	Status        string `json:"status"`
	Message       string `json:"message,omitempty"`
	CaseReference string `json:"case_reference,omitempty"`
	At            string `json:"at,omitempty"`
	// Service lets the gateway verify the signature even when it no longer
	// has the submission (lost in a Redis failover): it keeps the update.
	Service string `json:"service,omitempty"`
}

// SetGatewayURL sets where status updates go (the gateway's base URL), for
// a casesim started before the gateway knew its own address.
func (s *Server) SetGatewayURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gatewayURL = strings.TrimRight(u, "/")
}

// SendStatus tells the gateway that the case with reference ref moved to
// status, with an optional message to the resident. It returns the
// gateway's answer status code.
func (s *Server) SendStatus(ctx context.Context, ref, status, message string) (int, error) {
	s.mu.Lock()
	c, ok := s.byRef[ref]
	var sid, service string
	if ok {
		sid, service = c.SubmissionID, c.Service
	}
	base := s.gatewayURL
	s.mu.Unlock()
	if !ok {
		return 0, errNoCase
	}
	if base == "" {
		return 0, errors.New("casesim: no gateway URL configured (CASESIM_GATEWAY_URL)")
	}
	body, err := json.Marshal(StatusUpdate{Status: status, Message: message, CaseReference: ref, At: s.now().UTC().Format(time.RFC3339Nano), Service: service})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+gateway.StatusUpdatePath(url.PathEscape(sid)), bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(httpjson.HeaderTimestamp, ts)
	req.Header.Set(httpjson.HeaderSignature, httpjson.Sign(s.secret, ts, gateway.StatusUpdateSigned(http.MethodPost, sid, body)))
	res, err := statusClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("casesim: status update: %w", err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	s.log.Info("status sent to the gateway", "case_reference", ref, "status", status, "answer", res.StatusCode)
	return res.StatusCode, nil
}

var errNoCase = errors.New("casesim: no such case")

// handleStatus: POST /cases/{ref}/status {"status", "message"} moves a case
// on and forwards the update to the gateway.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil || in.Status == "" {
		writeError(w, http.StatusBadRequest, `body must be JSON {"status": "...", "message": "..."}`)
		return
	}
	code, err := s.SendStatus(r.Context(), r.PathValue("ref"), in.Status, in.Message)
	switch {
	case errors.Is(err, errNoCase):
		writeError(w, http.StatusNotFound, "no such case")
	case err != nil:
		writeError(w, http.StatusBadGateway, err.Error())
	default:
		writeJSON(w, http.StatusOK, map[string]any{"gateway_status": code})
	}
}

// autoProgress, when configured, moves each new case to in_progress after
// a while, so the demo shows statuses flowing back without a person.
func (s *Server) autoProgress(ref string) {
	if s.autoStatus <= 0 {
		return
	}
	time.AfterFunc(s.autoStatus, func() {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return
		}
		if _, err := s.SendStatus(context.Background(), ref, "in_progress", "En handläggare har börjat titta på ditt ärende."); err != nil {
			s.log.Warn("automatic status update failed", "case_reference", ref, "error", err.Error())
		}
	})
}
