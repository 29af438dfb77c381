package main

import (
	"log/slog"
	"testing"
	"time"
)

// Production needs a link secret shared by the replicas once a service
// takes files; without file fields, or in development, a random one does.
func TestAttachmentLinkSecretInProduction(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	prod := config{Env: "production", AttachmentLinkTTL: 24 * time.Hour}
	if _, err := attachmentLinks(prod, "https://e.example", true, log); err == nil {
		t.Error("production with file fields and no GATEWAY_ATTACHMENT_LINK_SECRET accepted")
	}
	if _, err := attachmentLinks(prod, "https://e.example", false, log); err != nil {
		t.Errorf("production without file fields: %v", err)
	}
	prod.AttachmentLinkSecret = "Zq8s0d7cM2yQ1n4vLk9xT3pW6bR5eH8jA0uC7fG2"
	l, err := attachmentLinks(prod, "https://e.example", true, log)
	if err != nil || string(l.Secret) != prod.AttachmentLinkSecret || l.TTL != 24*time.Hour {
		t.Errorf("production with a secret: %+v %v", l, err)
	}
	dev, err := attachmentLinks(config{Env: "development", AttachmentLinkTTL: time.Hour}, "http://localhost:8080", true, log)
	if err != nil || len(dev.Secret) != 32 {
		t.Errorf("development: %+v %v", dev, err)
	}
	if _, err := loadConfig(func(k string) string { return map[string]string{"GATEWAY_ATTACHMENT_LINK_TTL": "10s"}[k] }); err == nil {
		t.Error("a link lifetime under a minute accepted")
	}
}
