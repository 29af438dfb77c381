package email

import (
	"net/mail"
	"strings"
	"testing"
)

func TestMessageIDIsStableAndHidesTheSubmissionID(t *testing.T) {
	a := MessageID("s3cr3t-submission-id", "ABC-123", "kommun.example")
	if a != MessageID("s3cr3t-submission-id", "ABC-123", "kommun.example") {
		t.Fatal("not stable")
	}
	if a == MessageID("other-id", "ABC-123", "kommun.example") {
		t.Fatal("two submissions share a Message-ID")
	}
	if strings.Contains(a, "s3cr3t") || !strings.HasPrefix(a, "ABC-123.") || !strings.HasSuffix(a, "@kommun.example") {
		t.Fatalf("Message-ID %q", a)
	}
	if _, err := mail.ParseAddress("<" + a + ">"); err != nil {
		t.Fatalf("Message-ID %q is not an addr-spec: %v", a, err)
	}
}
