// Package notify tells residents about their submissions: when a status
// changes (delivered, in progress, needs info, decided, closed, failed) the
// resident who gave an e-mail address on the form, or who saved contact
// preferences on My pages, gets an e-mail and/or an SMS in the submission's
// language.
//
// Sending is as reliable as delivery. The store's status scripts write a
// notification event to a durable outbox in the same atomic step as the
// status change (see redisstore.notifyEvent); a Notifier reads it through a
// consumer group, so an event read by a notifier that dies is claimed by
// another after ClaimIdle. Failed sends are retried with backoff; after
// MaxAttempts, or on a permanent refusal, the event becomes a dead letter
// that administrators see. Each event has a stable id: the e-mail's
// Message-ID and the SMS provider's idempotency key derive from it, and a
// "sent" marker per event and channel keeps a retry (e.g. the SMS failed)
// from sending the e-mail again.
//
// Messages carry no case content and no personal data beyond the receipt
// reference and the status link; their texts are go-i18n messages
// (locales/notify.<lang>.toml), plain text plus simple HTML.
package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/smtpmail"
	"github.com/kommun/servicegateway/locales"
)

// Outbox is the part of the store the notifier works from.
type Outbox interface {
	ReadNotifications(ctx context.Context, consumer string, count int, block time.Duration) ([]gateway.NotifyEvent, error)
	ClaimNotifications(ctx context.Context, consumer string, minIdle time.Duration, count int) ([]gateway.NotifyEvent, error)
	NotificationDone(ctx context.Context, ev gateway.NotifyEvent) error
	RetryNotification(ctx context.Context, ev gateway.NotifyEvent, due time.Time) error
	DeadLetterNotification(ctx context.Context, ev gateway.NotifyEvent, reason string) error
	PromoteNotifications(ctx context.Context, now time.Time, limit int) (int, error)
	NotificationSent(ctx context.Context, event, channel string) (bool, error)
	MarkNotificationSent(ctx context.Context, event, channel string) error
}

// Submissions reads a submission (its reference, language and contacts).
type Submissions interface {
	Get(ctx context.Context, id string) (*gateway.Submission, error)
}

// Preferences reads a signed-in resident's notification preferences.
type Preferences interface {
	NotifyPrefs(ctx context.Context, subject string) (gateway.NotifyPrefs, error)
}

// Mailer hands one e-mail (CRLF lines) to an SMTP server;
// smtpmail.Client is one. Errors are *gateway.DeliveryError when they are
// permanent.
type Mailer interface {
	Send(ctx context.Context, from string, to []string, body []byte) error
}

// SMS is one text message.
type SMS struct {
	To   string // E.164
	Text string
	// IdempotencyKey is the same on every attempt of one notification, so
	// the provider sends it once.
	IdempotencyKey string
}

// SMSProvider sends one SMS. An error that is a *gateway.DeliveryError
// with Permanent set is not retried.
type SMSProvider interface {
	SendSMS(ctx context.Context, m SMS) error
}

// WebhookSender posts a department webhook event (gateway/webhook is one).
// Errors are classified like a delivery's (*gateway.DeliveryError).
type WebhookSender interface {
	SendWebhook(ctx context.Context, ev gateway.NotifyEvent, sub *gateway.Submission) error
}

// Observer counts messages by kind ("notification", "webhook"), channel
// ("email", "sms", "http") and outcome ("sent", "retry", "dead_letter");
// the metrics implement it.
type Observer interface {
	Message(kind, channel, outcome string)
}

// Defaults.
const (
	DefaultMaxAttempts = 8
	DefaultClaimIdle   = time.Minute
	DefaultSendTimeout = 30 * time.Second
)

// Config configures a Notifier. Outbox, Submissions and Translations are
// required; without Mailer (or From) no e-mail is sent, without SMS no SMS.
type Config struct {
	Outbox      Outbox
	Submissions Submissions
	Preferences Preferences // nil: signed-in residents get what an anonymous one gets
	Mailer      Mailer
	From        *mail.Address
	SMS         SMSProvider
	// Webhooks sends the outbox's department webhook events (kind
	// "webhook"); nil: they become dead letters.
	Webhooks     WebhookSender
	Observer     Observer // nil: nothing counted
	Translations *locales.Translations
	// BaseURL is the gateway's public address; links are BaseURL + "/s/" + id.
	BaseURL string
	// Consumer names this notifier in the consumer group (one per replica).
	Consumer    string
	MaxAttempts int
	// Backoff is the wait before attempt n+1 after attempt n failed.
	Backoff     func(attempt int) time.Duration
	ClaimIdle   time.Duration
	SendTimeout time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
}

// Notifier sends the outbox's notifications.
type Notifier struct {
	cfg Config
}

// DefaultBackoff doubles from 10 seconds up to an hour.
func DefaultBackoff(attempt int) time.Duration {
	d := 10 * time.Second
	for i := 1; i < attempt && d < time.Hour; i++ {
		d *= 2
	}
	return min(d, time.Hour)
}

// New returns a Notifier; Run starts it.
func New(cfg Config) *Notifier {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.ClaimIdle <= 0 {
		cfg.ClaimIdle = DefaultClaimIdle
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Consumer == "" {
		cfg.Consumer = "notifier"
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &Notifier{cfg: cfg}
}

// Run sends notifications until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	log := n.cfg.Logger
	lastClaim := time.Time{}
	for ctx.Err() == nil {
		now := n.cfg.Now()
		if _, err := n.cfg.Outbox.PromoteNotifications(ctx, now, 100); err != nil && ctx.Err() == nil {
			log.Warn("notifications: promote retries", "error", err)
		}
		var evs []gateway.NotifyEvent
		if now.Sub(lastClaim) >= n.cfg.ClaimIdle/2 {
			lastClaim = now
			claimed, err := n.cfg.Outbox.ClaimNotifications(ctx, n.cfg.Consumer, n.cfg.ClaimIdle, 50)
			if err != nil && ctx.Err() == nil {
				log.Warn("notifications: claim", "error", err)
			}
			evs = append(evs, claimed...)
		}
		fresh, err := n.cfg.Outbox.ReadNotifications(ctx, n.cfg.Consumer, 20, time.Second)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Warn("notifications: read", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		evs = append(evs, fresh...)
		for _, ev := range evs {
			n.Handle(ctx, ev)
		}
	}
	return ctx.Err()
}

// Handle sends one event's messages and settles it in the outbox: done,
// retry later, or dead letter.
func (n *Notifier) Handle(ctx context.Context, ev gateway.NotifyEvent) {
	log := n.cfg.Logger.With("event", eventLogID(ev.Event), "status", ev.Status, "attempt", ev.Attempt, "kind", ev.Kind)
	var (
		failed []string // the channels that failed
		err    error
	)
	if ev.Kind == gateway.KindWebhook {
		failed, err = n.sendWebhook(ctx, ev)
	} else {
		failed, err = n.send(ctx, ev)
	}
	kind := "notification"
	if ev.Kind == gateway.KindWebhook {
		kind = gateway.KindWebhook
	}
	var derr *gateway.DeliveryError
	outcome := ""
	switch {
	case err == nil:
		err = n.cfg.Outbox.NotificationDone(ctx, ev)
	case errors.As(err, &derr) && derr.Permanent, ev.Attempt >= n.cfg.MaxAttempts:
		log.Warn("notification dead-lettered", "error", err)
		outcome = "dead_letter"
		err = n.cfg.Outbox.DeadLetterNotification(ctx, ev, shorten(err.Error()))
	default:
		due := n.cfg.Now().Add(n.cfg.Backoff(ev.Attempt))
		if derr != nil && derr.RetryAfter > 0 {
			due = n.cfg.Now().Add(max(derr.RetryAfter, n.cfg.Backoff(ev.Attempt)))
		}
		log.Info("notification retry", "error", err, "due", due)
		outcome = "retry"
		err = n.cfg.Outbox.RetryNotification(ctx, ev, due)
	}
	if outcome != "" && err == nil {
		for _, ch := range failed {
			n.observe(kind, ch, outcome)
		}
	}
	if err != nil && ctx.Err() == nil {
		// Left pending: another notifier claims it after ClaimIdle.
		log.Warn("notification outcome not recorded", "error", err)
	}
}

func (n *Notifier) observe(kind, channel, outcome string) {
	if n.cfg.Observer != nil {
		n.cfg.Observer.Message(kind, channel, outcome)
	}
}

// sendWebhook posts a department webhook event once (the "http" channel's
// sent marker keeps a repeat from posting it again; the receiver
// deduplicates on the event id in any case).
func (n *Notifier) sendWebhook(ctx context.Context, ev gateway.NotifyEvent) ([]string, error) {
	const channel = "http"
	if ev.SubmissionID == "" || ev.Event == "" {
		return nil, &gateway.DeliveryError{Permanent: true, Err: errors.New("malformed outbox event")}
	}
	if n.cfg.Webhooks == nil {
		return []string{channel}, &gateway.DeliveryError{Permanent: true, Err: errors.New("webhooks are not configured")}
	}
	sub, err := n.cfg.Submissions.Get(ctx, ev.SubmissionID)
	var gerr *gateway.Error
	if errors.As(err, &gerr) && gerr.Code == gateway.ENotFound {
		return nil, nil // gone (retention)
	}
	if err != nil {
		return []string{channel}, &gateway.DeliveryError{Err: fmt.Errorf("read submission: %w", err)}
	}
	if err := n.once(ctx, ev.Event, gateway.KindWebhook, channel, func(ctx context.Context) error {
		return n.cfg.Webhooks.SendWebhook(ctx, ev, sub)
	}); err != nil {
		return []string{channel}, err
	}
	return nil, nil
}

// eventLogID hides the submission id (the status link's secret) in logs.
func eventLogID(event string) string {
	sum := sha256.Sum256([]byte(event))
	return hex.EncodeToString(sum[:6])
}

func shorten(s string) string {
	if len(s) > 300 {
		return s[:300]
	}
	return s
}

// Recipients decides whom to tell about a status change of sub: a
// signed-in resident who saved preferences gets what they chose (nothing
// when they opted out of this event); otherwise the reply address given
// on the form, for every event.
func Recipients(sub *gateway.Submission, prefs *gateway.NotifyPrefs, status gateway.Status) (email, mobile string) {
	if !slices.Contains(gateway.NotifyStatuses, status) {
		return "", ""
	}
	if prefs != nil && !prefs.UpdatedAt.IsZero() {
		if !prefs.Wants(status) {
			return "", ""
		}
		email = prefs.Email
		if email == "" {
			email = sub.ReplyEmail
		}
		return email, prefs.Mobile
	}
	return sub.ReplyEmail, ""
}

func (n *Notifier) send(ctx context.Context, ev gateway.NotifyEvent) ([]string, error) {
	if ev.SubmissionID == "" || ev.Event == "" {
		return nil, &gateway.DeliveryError{Permanent: true, Err: errors.New("malformed outbox event")}
	}
	sub, err := n.cfg.Submissions.Get(ctx, ev.SubmissionID)
	var gerr *gateway.Error
	if errors.As(err, &gerr) && gerr.Code == gateway.ENotFound {
		return nil, nil // gone (retention): nobody to tell
	}
	if err != nil {
		return nil, &gateway.DeliveryError{Err: fmt.Errorf("read submission: %w", err)}
	}
	var prefs *gateway.NotifyPrefs
	if sub.Subject != "" && n.cfg.Preferences != nil {
		p, err := n.cfg.Preferences.NotifyPrefs(ctx, sub.Subject)
		if err != nil {
			return nil, &gateway.DeliveryError{Err: fmt.Errorf("read preferences: %w", err)}
		}
		prefs = &p
	}
	email, mobile := Recipients(sub, prefs, ev.Status)
	texts := n.compose(sub, ev)
	// The channels are independent: an SMTP server that is down does not
	// hold the SMS back. A retry sends only what is not marked sent.
	var (
		errs   []error
		failed []string
	)
	if email != "" && n.cfg.Mailer != nil && n.cfg.From != nil {
		if err := n.once(ctx, ev.Event, "notification", "email", func(ctx context.Context) error { return n.sendEmail(ctx, email, ev, texts) }); err != nil {
			errs, failed = append(errs, err), append(failed, "email")
		}
	}
	if mobile != "" && n.cfg.SMS != nil {
		if err := n.once(ctx, ev.Event, "notification", "sms", func(ctx context.Context) error {
			return n.cfg.SMS.SendSMS(ctx, SMS{To: mobile, Text: texts.SMS, IdempotencyKey: IdempotencyKey(ev.Event, "sms")})
		}); err != nil {
			errs, failed = append(errs, err), append(failed, "sms")
		}
	}
	switch len(errs) {
	case 0:
		return nil, nil
	case 1:
		return failed, errs[0]
	}
	// Both failed: permanent only when both are (else a retry can help).
	var a, b *gateway.DeliveryError
	if errors.As(errs[0], &a) && a.Permanent && errors.As(errs[1], &b) && b.Permanent {
		return failed, &gateway.DeliveryError{Permanent: true, Err: errors.Join(errs...)}
	}
	return failed, &gateway.DeliveryError{Err: errors.Join(errs...)}
}

// once sends on channel unless the event was sent there already, marks it
// sent and counts it.
func (n *Notifier) once(ctx context.Context, event, kind, channel string, send func(context.Context) error) error {
	sent, err := n.cfg.Outbox.NotificationSent(ctx, event, channel)
	if err != nil {
		return &gateway.DeliveryError{Err: err}
	}
	if sent {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, n.cfg.SendTimeout)
	err = send(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("%s: %w", channel, err)
	}
	n.observe(kind, channel, "sent")
	if err := n.cfg.Outbox.MarkNotificationSent(ctx, event, channel); err != nil {
		n.cfg.Logger.Warn("notification sent but not marked; a retry may send it again", "channel", channel, "error", err)
	}
	return nil
}

// IdempotencyKey is the key a provider deduplicates a notification on: a
// hash of the event id (which holds the submission id, the status link's
// secret) and the channel.
func IdempotencyKey(event, channel string) string {
	sum := sha256.Sum256([]byte("servicegateway/notify\x00" + event + "\x00" + channel))
	return hex.EncodeToString(sum[:16])
}

// MessageID is the Message-ID of an event's e-mail (without brackets).
func MessageID(event, domain string) string {
	return "notify." + IdempotencyKey(event, "email") + "@" + domain
}

// texts are one event's rendered messages.
type texts struct {
	Lang, Subject, Text, HTML, SMS string
}

func (n *Notifier) compose(sub *gateway.Submission, ev gateway.NotifyEvent) texts {
	lang, ok := locales.Parse(sub.Locale)
	if !ok {
		lang = language.Swedish
	}
	l := n.cfg.Translations.Localizer(lang)
	link := n.cfg.BaseURL + "/s/" + sub.ID
	status := l.T("notify.status." + string(ev.Status))
	data := map[string]any{"Reference": sub.Reference, "Status": status, "Link": link}
	v := struct {
		Lang, Dir, Subject, Body, LinkText, Link, Footer string
	}{
		Lang: lang.String(), Dir: locales.Dir(lang), Subject: l.T("notify.subject", data),
		Body: l.T("notify.body."+string(ev.Status), data), LinkText: l.T("notify.link"), Link: link,
		Footer: l.T("notify.footer"),
	}
	t := texts{Lang: v.Lang, Subject: v.Subject}
	t.Text = v.Body + "\n\n" + v.LinkText + "\n" + link + "\n\n-- \n" + v.Footer + "\n"
	var h bytes.Buffer
	if err := htmlTemplate.Execute(&h, v); err == nil {
		t.HTML = h.String()
	}
	t.SMS = l.T("notify.sms", data)
	return t
}

var htmlTemplate = template.Must(template.New("notify").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}" dir="{{.Dir}}"><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body><p>{{.Body}}</p><p><a href="{{.Link}}">{{.LinkText}}</a></p><hr><p><small>{{.Footer}}</small></p></body></html>
`))

func (n *Notifier) sendEmail(ctx context.Context, to string, ev gateway.NotifyEvent, t texts) error {
	addr, err := mail.ParseAddress(to)
	if err != nil {
		return &gateway.DeliveryError{Permanent: true, Err: errors.New("the recipient is not an e-mail address")}
	}
	domain := n.cfg.From.Address[strings.LastIndexByte(n.cfg.From.Address, '@')+1:]
	msg := &smtpmail.Message{
		From: n.cfg.From, To: []*mail.Address{addr}, Subject: t.Subject, Date: n.cfg.Now(),
		MessageID: MessageID(ev.Event, domain), Text: t.Text, HTML: t.HTML,
		Headers: [][2]string{{"Content-Language", t.Lang}, {"Auto-Submitted", "auto-generated"}},
	}
	var body bytes.Buffer
	if _, err := msg.WriteTo(&body); err != nil {
		return &gateway.DeliveryError{Permanent: true, Err: err}
	}
	return n.cfg.Mailer.Send(ctx, n.cfg.From.Address, []string{addr.Address}, body.Bytes())
}
