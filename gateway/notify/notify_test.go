package notify_test

import (
	"context"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/notify"
	"github.com/kommun/servicegateway/gateway/notify/smssink"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/redisstore/redistest"
	"github.com/kommun/servicegateway/gateway/smtpmail"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services/connectors/email/mailpittest"
)

// clock is a settable time, so retries come due without waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A status change reaches an anonymous resident's reply address and a
// signed-in resident's e-mail and mobile exactly once each, although the
// SMTP server refused the first connection and the SMS gateway the first
// request; a resident who opted out gets nothing.
func TestStatusChangeNotifiesOnceThroughRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rdb := redistest.Start(t).Client(t)
	store := redisstore.New(rdb, "t")
	if err := store.EnsureNotifyGroup(ctx); err != nil {
		t.Fatal(err)
	}
	mp := mailpittest.Start(t, mailpittest.Options{})
	sink := smssink.New("sms-token")
	srv := httptest.NewServer(sink)
	defer srv.Close()
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	host := strings.Split(mp.SMTPAddr(), ":")[0]
	n := notify.New(notify.Config{
		Outbox: store, Submissions: store, Preferences: store, Translations: tr,
		Mailer:  &smtpmail.Client{Addr: mp.SMTPAddr(), Host: host, Domain: "kommun.example", Timeout: 5 * time.Second},
		From:    &mail.Address{Name: "Kommunen", Address: "noreply@kommun.example"},
		SMS:     &notify.HTTPSMS{URL: srv.URL + "/messages", Token: "sms-token"},
		BaseURL: "https://e.kommun.example", Now: clk.Now, Consumer: "t1",
	})

	mk := func(subject, reply, locale string) *gateway.Submission {
		sub, _, err := store.Create(ctx, &gateway.Submission{Service: "street-fault", ServiceVersion: "1", Department: "streets",
			Channel: gateway.ChannelDigital, Locale: locale, Subject: subject, ReplyEmail: reply,
			Payload: map[string]any{"description": "secret case content"}}, redisstore.Idempotency{})
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	anon := mk("", "anna@example.org", "en")
	signed := mk("199001012380", "", "sv")
	optedOut := mk("198501012385", "", "sv")
	if err := store.SetNotifyPrefs(ctx, signed.Subject, gateway.NotifyPrefs{Email: "bo@example.org", Mobile: "+46701234567",
		Events: gateway.NotifyStatuses, UpdatedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := store.SetNotifyPrefs(ctx, optedOut.Subject, gateway.NotifyPrefs{Email: "cy@example.org", Mobile: "+46709999999",
		UpdatedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}

	mp.Stop()        // the SMTP connection is refused
	sink.FailNext(1) // and the SMS gateway answers 503 once
	for _, sub := range []*gateway.Submission{anon, signed, optedOut} {
		if _, _, err := store.UpdateStatusOnce(ctx, sub.ID, gateway.StatusChange{Status: gateway.StatusNeedsInfo, Message: "Which lamp?"}, "K-1", "", 0); err != nil {
			t.Fatal(err)
		}
	}
	drain := func() int {
		evs, err := store.ReadNotifications(ctx, "t1", 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			n.Handle(ctx, ev)
		}
		return len(evs)
	}
	if got := drain(); got != 3 {
		t.Fatalf("outbox held %d events, want 3", got)
	}
	if len(sink.Messages()) != 0 {
		t.Fatalf("SMS taken although the gateway answered 503: %+v", sink.Messages())
	}
	mp.Start()
	for i := 0; i < 5; i++ { // retries come due; the SMS fails once more at most
		clk.Add(2 * time.Hour)
		if _, err := store.PromoteNotifications(ctx, clk.Now(), 100); err != nil {
			t.Fatal(err)
		}
		drain()
	}
	msgs := mp.Messages(t)
	if len(msgs) != 2 {
		t.Fatalf("mailpit received %d messages, want 2: %+v", len(msgs), msgs)
	}
	var raw strings.Builder
	for _, m := range msgs {
		raw.Write(mp.Raw(t, m.ID))
	}
	for _, want := range []string{"anna@example.org", "bo@example.org", "https://e.kommun.example/s/" + anon.ID, anon.Reference} {
		if !strings.Contains(raw.String(), want) {
			t.Errorf("e-mails lack %q", want)
		}
	}
	for _, never := range []string{"cy@example.org", "secret case content", "Which lamp?"} {
		if strings.Contains(raw.String(), never) {
			t.Errorf("e-mails contain %q", never)
		}
	}
	sms := sink.Messages()
	if len(sms) != 1 || sms[0].To != "+46701234567" || !strings.Contains(sms[0].Text, signed.Reference) {
		t.Fatalf("SMS sink: %+v", sms)
	}
	dead, err := store.NotificationDeadLetters(ctx, 10)
	if err != nil || len(dead) != 0 {
		t.Fatalf("dead letters: %+v %v", dead, err)
	}
	if got := drain(); got != 0 {
		t.Fatalf("outbox still holds %d events", got)
	}
}
