package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway/delivery"
	"github.com/kommun/servicegateway/gateway/notify"
	"github.com/kommun/servicegateway/gateway/notify/smssink"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/smtpmail"
	"github.com/kommun/servicegateway/gateway/webhook"
	"github.com/kommun/servicegateway/locales"
)

// setupNotify builds the notifier: e-mail through the same SMTP server as
// the e-mail routes (lookup sees the demo's mail catcher), SMS through
// GATEWAY_SMS_URL or, in development, an in-process reference SMS sink.
// It returns nil when notifications are off.
func setupNotify(cfg config, lookup func(string) string, store *redisstore.Store, tr *locales.Translations,
	publicURL, consumer string, observer notify.Observer, log *slog.Logger) (n *notify.Notifier, stop func(), err error) {
	stop = func() {}
	if !cfg.Notify {
		if cfg.WebhooksFile != "" {
			return nil, stop, errors.New("GATEWAY_WEBHOOKS_FILE needs GATEWAY_NOTIFY=on: webhooks are sent from the notification outbox")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return nil, stop, store.SetWebhookSubscriptions(ctx, nil) // none: the scripts write no webhook events
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err = store.EnsureNotifyGroup(ctx)
	cancel()
	if err != nil {
		return nil, stop, fmt.Errorf("redis: %w", err)
	}
	hooks, err := loadWebhooks(cfg, lookup)
	if err != nil {
		return nil, stop, err
	}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	err = store.SetWebhookSubscriptions(ctx, hooks.events())
	cancel()
	if err != nil {
		return nil, stop, fmt.Errorf("redis: webhook subscriptions: %w", err)
	}
	c := notify.Config{Outbox: store, Submissions: store, Preferences: store, Translations: tr, BaseURL: publicURL,
		Consumer: consumer, ClaimIdle: cfg.ClaimIdle, MaxAttempts: cfg.NotifyMaxAttempts, Logger: log.With("component", "notify"), Observer: observer,
		Backoff: func(attempt int) time.Duration { // the delivery retry schedule: capped exponential backoff, full jitter
			if cfg.RetryBase <= 0 {
				return notify.DefaultBackoff(attempt)
			}
			return delivery.Backoff(attempt-1, cfg.RetryBase, max(cfg.RetryMax, cfg.RetryBase), nil)
		}}
	if len(hooks) > 0 {
		c.Webhooks = &webhook.Sender{Subscriptions: hooks.subscriptions()}
		log.Info("department webhooks", "departments", hooks.departments())
	}
	if host := lookup("SMTP_HOST"); host != "" {
		fromS := cfg.NotifyFrom
		if fromS == "" {
			fromS = cfg.MailFrom
		}
		from, err := mail.ParseAddress(fromS)
		if err != nil {
			return nil, stop, fmt.Errorf("GATEWAY_NOTIFY_FROM: %w", err)
		}
		tlsConfig := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if caFile := lookup("SMTP_CA_FILE"); caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, stop, fmt.Errorf("SMTP_CA_FILE: %w", err)
			}
			tlsConfig.RootCAs = x509.NewCertPool()
			if !tlsConfig.RootCAs.AppendCertsFromPEM(pem) {
				return nil, stop, errors.New("SMTP_CA_FILE: no PEM certificate")
			}
		}
		c.From = from
		c.Mailer = &smtpmail.Client{Addr: net.JoinHostPort(host, lookup("SMTP_PORT")), Host: host,
			Domain: from.Address[strings.LastIndexByte(from.Address, '@')+1:], Username: lookup("SMTP_USERNAME"),
			Password: lookup("SMTP_PASSWORD"), TLSConfig: tlsConfig, Timeout: 30 * time.Second}
	}
	smsURL, smsToken := cfg.SMSURL, cfg.SMSToken
	if smsURL == "" && !cfg.production() {
		url, s, err := startSMSSink(log)
		if err != nil {
			return nil, stop, err
		}
		stop = s
		smsURL, smsToken = url+"/messages", ""
		log.Info("no GATEWAY_SMS_URL: SMS notifications go to an in-process reference SMS sink", "url", url+"/messages")
	}
	if smsURL != "" {
		c.SMS = &notify.HTTPSMS{URL: smsURL, Token: smsToken, Sender: cfg.SMSSender}
	}
	return notify.New(c), stop, nil
}

// startSMSSink serves the reference SMS sink on a loopback port.
func startSMSSink(log *slog.Logger) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: smssink.New(""), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("sms sink stopped", "error", err)
		}
	}()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// notifyConsumer names this process in the notifiers' consumer group.
func notifyConsumer() string {
	h, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}
