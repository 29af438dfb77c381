package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/usage"
	"github.com/kommun/servicegateway/locales"
)

// SatisfactionStore keeps one answer to the satisfaction question per
// submission (*redisstore.Store).
type SatisfactionStore interface {
	// SaveSatisfaction stores the answer once; false when there was one.
	SaveSatisfaction(ctx context.Context, id string, score int, comment string, at time.Time, keep time.Duration) (bool, error)
	SatisfactionOf(ctx context.Context, id string) (score int, comment string, ok bool, err error)
}

// MaxSatisfactionComment bounds the optional comment, in characters.
const MaxSatisfactionComment = 500

// defaultSatisfactionKeep is how long an answer is kept when the service
// sets no retention.
const defaultSatisfactionKeep = 90 * 24 * time.Hour

// surveyView is the satisfaction question on the receipt page.
type surveyView struct {
	Action, Token string
	Scores        []surveyScore
	Comment       string
	Error         string
	Answered      bool
}

type surveyScore struct {
	Value, Label string
	Checked      bool
}

// satisfactionToken binds an answer to the receipt: it is derived from the
// signed receipt (or, without receipt keys, the submission's id and
// reference), and only the receipt page shows it.
func (s *Server) satisfactionToken(sub *gateway.Submission) string {
	basis := sub.ID + "\x00" + sub.Reference
	if r, err := s.receiptOf(sub); err == nil && r != nil {
		basis = r.JWS
	}
	h := sha256.Sum256([]byte("satisfaction\x00" + basis))
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

// survey is the question for sub's receipt page: nil when there is no
// store; Answered when it was answered.
func (s *Server) survey(c *fiber.Ctx, sub *gateway.Submission, score, comment, errID string) (*surveyView, error) {
	if s.Satisfaction == nil {
		return nil, nil
	}
	l := s.localizer(c)
	sv := &surveyView{Action: "/s/" + sub.ID + "/satisfaction?receipt=1", Token: s.satisfactionToken(sub), Comment: comment}
	if errID != "" {
		sv.Error = l.T(errID, "Max", MaxSatisfactionComment)
	} else {
		ctx, cancel := s.storeCtx(c)
		defer cancel()
		_, _, ok, err := s.Satisfaction.SatisfactionOf(ctx, sub.ID)
		if err != nil {
			return nil, err
		}
		sv.Answered = ok
	}
	for i := 1; i <= 5; i++ {
		v := strconv.Itoa(i)
		sv.Scores = append(sv.Scores, surveyScore{Value: v, Label: l.T("satisfaction.score." + v), Checked: v == score})
	}
	return sv, nil
}

// satisfactionForm: POST /s/{id}/satisfaction, one answer per submission
// from its receipt page: a score from 1 to 5 and an optional comment. The
// score becomes a usage event (per service and channel; in the KPIs,
// the dashboard and, suppressed, the open data); the comment is kept with
// the answer for the department, never published, and expires with the
// service's retention.
func (s *Server) satisfactionForm(c *fiber.Ctx) error {
	sub, err := s.readSubmission(c)
	if err != nil {
		return err
	}
	if s.Satisfaction == nil {
		return fiber.ErrNotFound
	}
	token := c.FormValue("token")
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.satisfactionToken(sub))) != 1 {
		return gateway.Errorf(gateway.EForbidden, "satisfaction.error.token", nil)
	}
	scoreText := strings.Clone(c.FormValue("score"))
	comment := strings.TrimSpace(strings.Clone(c.FormValue("comment")))
	score, err := strconv.Atoi(scoreText)
	switch {
	case err != nil || score < 1 || score > 5:
		return s.renderStatus(c, sub, fiber.StatusUnprocessableEntity, scoreText, comment, "satisfaction.error.score")
	case utf8.RuneCountInString(comment) > MaxSatisfactionComment:
		return s.renderStatus(c, sub, fiber.StatusUnprocessableEntity, scoreText, comment, "satisfaction.error.comment")
	}
	keep := defaultSatisfactionKeep
	svc, known := s.Catalog.Get(sub.Service)
	if known && svc.Retention > 0 {
		keep = svc.Retention
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	now := s.Config.Now()
	first, err := s.Satisfaction.SaveSatisfaction(ctx, sub.ID, score, comment, now, keep)
	if err != nil {
		return err
	}
	if first && s.Usage != nil {
		// Ids from the stored record, owned; no personal data.
		s.Usage.Track(usage.Event{Kind: usage.Satisfaction, Service: sub.Service, Department: sub.Department,
			Channel: sub.Channel, Locale: lang(c).String(), At: now, Score: score})
	}
	return c.Redirect("/s/"+sub.ID+"?receipt=1#satisfaction", fiber.StatusSeeOther)
}

// satisfactionTables are the dashboard's tables of answers to the
// satisfaction question, by service and by channel: the count per score,
// the answers and the mean score (exact: the dashboard is for staff).
func (s *Server) satisfactionTables(l *locales.Localizer, rep *usage.Report) []dashTable {
	head := func(first string) []string {
		h := []string{first}
		for i := 1; i <= 5; i++ {
			h = append(h, l.T("satisfaction.score."+strconv.Itoa(i)))
		}
		return append(h, l.T("usage.dash.satisfaction_answers"), l.T("usage.dash.satisfaction_mean"))
	}
	table := func(caption, first string, groups []usage.Group, name func(string) string) dashTable {
		t := dashTable{Caption: caption, Head: head(first)}
		for _, g := range groups {
			if g.SatisfactionCount == 0 {
				continue
			}
			cells := []string{name(g.Key)}
			for _, n := range g.Satisfaction {
				cells = append(cells, l.Int(n))
			}
			mean := "–"
			if g.SatisfactionMean != nil {
				mean = l.Decimal(*g.SatisfactionMean, 2)
			}
			t.Rows = append(t.Rows, dashRow{Cells: append(cells, l.Int(g.SatisfactionCount), mean)})
		}
		return t
	}
	title := l.T("usage.dash.satisfaction")
	return []dashTable{
		table(title+" – "+l.T("usage.dash.by_service"), l.T("usage.dash.service"), rep.Services, func(k string) string {
			if svc, ok := s.Catalog.Get(k); ok {
				return l.T(svc.MsgTitle())
			}
			return k
		}),
		table(title+" – "+l.T("usage.head.channel"), l.T("usage.head.channel"), rep.Channels, func(k string) string {
			return l.T("usage.channel." + k)
		}),
	}
}

// satisfactionJSON is an answer as the owning department reads it.
type satisfactionJSON struct {
	Score   int    `json:"score"`
	Comment string `json:"comment,omitempty"`
}

// satisfactionFor is sub's answer when the caller is its department (a
// machine client or staff of that department); nil otherwise or unanswered.
func (s *Server) satisfactionFor(c *fiber.Ctx, sub *gateway.Submission) (*satisfactionJSON, error) {
	p := principal(c)
	if s.Satisfaction == nil || p == nil || !p.HasRole(gateway.RoleDepartment) || p.Department != sub.Department {
		return nil, nil
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	score, comment, ok, err := s.Satisfaction.SatisfactionOf(ctx, sub.ID)
	if err != nil || !ok {
		return nil, err
	}
	return &satisfactionJSON{Score: score, Comment: comment}, nil
}
