package casesim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/kommun/servicegateway/services/connectors/httpjson"
)

// handleFollowUp: POST /cases/{ref}/followups. A resident's answer to a
// completion request, signed like a delivery (httpjson.FollowUpEnvelope),
// attached to the case once per Idempotency-Key.
func (s *Server) handleFollowUp(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
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
		writeError(w, http.StatusUnauthorized, "invalid signature: "+err.Error())
		return
	}
	key := r.Header.Get(httpjson.HeaderIdempotencyKey)
	if key == "" || len(key) > maxKey {
		writeError(w, http.StatusBadRequest, "Idempotency-Key header is required (at most 256 bytes)")
		return
	}
	var env httpjson.FollowUpEnvelope
	if err := json.Unmarshal(body, &env); err != nil || env.Answer == "" {
		writeError(w, http.StatusBadRequest, "body is not a JSON follow-up with an answer")
		return
	}
	var files []Attachment
	if len(env.Attachments) > 0 {
		s.mu.Lock()
		c, ok := s.byRef[r.PathValue("ref")]
		seen := false
		for _, f := range c.followUpsOrNil(ok) {
			seen = seen || f.IdempotencyKey == key
		}
		s.mu.Unlock()
		if ok && !seen {
			if files, err = s.fetchAttachments(r.Context(), env.Attachments); err != nil {
				writeError(w, http.StatusBadGateway, "attachments could not be fetched: "+err.Error())
				return
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.byRef[r.PathValue("ref")]
	if !ok {
		writeError(w, http.StatusNotFound, "no such case")
		return
	}
	if c.SubmissionID != env.SubmissionID {
		writeError(w, http.StatusConflict, "the follow-up names another submission than the case's")
		return
	}
	next := c.clone()
	found := false
	for i := range next.FollowUps {
		if next.FollowUps[i].IdempotencyKey == key {
			next.FollowUps[i].Deliveries++
			found = true
		}
	}
	if !found {
		if len(next.FollowUps) >= maxFollowUps {
			writeError(w, http.StatusUnprocessableEntity, "too many follow-ups on this case")
			return
		}
		next.FollowUps = append(next.FollowUps, FollowUp{IdempotencyKey: key, Seq: env.Seq, Question: env.Question,
			Answer: env.Answer, ReceivedAt: s.now().UTC(), Deliveries: 1, Attachments: files})
	}
	if err := s.persist(&next); err != nil {
		writeError(w, http.StatusInternalServerError, "the follow-up could not be stored")
		return
	}
	*c = next
	s.log.Info("follow-up received", "case_reference", c.CaseReference, "seq", env.Seq, "repeat", found)
	status := http.StatusCreated
	if found {
		status = http.StatusOK
	}
	writeJSON(w, status, map[string]string{"case_reference": c.CaseReference})
}

// followUpsOrNil returns c's follow-ups, nil when c was not found.
func (c *Case) followUpsOrNil(found bool) []FollowUp {
	if !found {
		return nil
	}
	return c.FollowUps
}
