package intake

import (
	"testing"

	"github.com/kommun/servicegateway/gateway/auth"
	"github.com/kommun/servicegateway/gateway/personnummer"
)

// The intake names a visitor as every identity provider names a resident,
// so a filing on behalf shows on the visitor's own My pages.
func TestPersonSubjectMatchesSignIn(t *testing.T) {
	n, err := personnummer.Parse("19900101-3011")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := personSubject(n), auth.PersonSubject(n); got != want {
		t.Fatalf("intake names %q, sign-in %q", got, want)
	}
}

// The store and the lock are not optional: without the lock a key in
// flight would silently race.
func TestNewRequiresStoreAndLocker(t *testing.T) {
	if _, err := New(Deps{}); err == nil {
		t.Fatal("New without a store: no error")
	}
}
