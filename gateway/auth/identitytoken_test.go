package auth

import (
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// A token is reused for the same person and audience while fresh (and a
// reused one costs no allocation: it is looked up on every proxied
// request); any other audience, role or level gets its own.
func TestIdentityTokenReuse(t *testing.T) {
	s, err := NewIdentitySigner(nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return now }
	p := &gateway.Principal{Subject: "bertil", Personnummer: "199001013011", Name: "Bertil Berg",
		Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceSubstantial}
	sign := func(p *gateway.Principal, aud string) string {
		t.Helper()
		tok, err := s.Sign(p, aud)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	first := sign(p, "http://library")
	if again := sign(&gateway.Principal{Subject: "bertil", Personnummer: "199001013011", Name: "Bertil Berg",
		Roles: []gateway.Role{gateway.RoleResident}, Assurance: gateway.AssuranceSubstantial}, "http://library"); again != first {
		t.Error("the same person and audience got a new token while the first was fresh")
	}
	if n := testing.AllocsPerRun(100, func() { sign(p, "http://library") }); n != 0 {
		t.Errorf("a reused token costs %v allocations, want 0", n)
	}
	others := map[string]string{
		"audience": sign(p, "http://pool"),
		"level":    sign(&gateway.Principal{Subject: "bertil", Personnummer: "199001013011", Name: "Bertil Berg", Roles: p.Roles, Assurance: gateway.AssuranceHigh}, "http://library"),
		"roles":    sign(&gateway.Principal{Subject: "bertil", Personnummer: "199001013011", Name: "Bertil Berg", Roles: []gateway.Role{gateway.RoleResident, gateway.RoleStaff}, Assurance: p.Assurance}, "http://library"),
	}
	for what, tok := range others {
		if tok == first {
			t.Errorf("another %s got the same token", what)
		}
	}
	now = now.Add(IdentityTokenLife/2 + time.Second)
	if sign(p, "http://library") == first {
		t.Error("a token older than half its life was reused")
	}
}

// A session cookie token is checked with no allocation (on every
// signed-in request), and a token changed anywhere is refused.
func TestSessionTokenParse(t *testing.T) {
	m := &Sessions{Key: []byte("0123456789abcdef0123456789abcdef")}
	m.defaults()
	id := "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"[:43]
	tok := m.token(id)
	got, exp, ok := m.parse(tok)
	if !ok || got != id || !exp.After(time.Now()) {
		t.Fatalf("parse(%q) = %q, %v, %v", tok, got, exp, ok)
	}
	if n := testing.AllocsPerRun(100, func() { m.parse(tok) }); n != 0 {
		t.Errorf("parse costs %v allocations, want 0", n)
	}
	for _, bad := range []string{
		"", tok + "x", tok[:len(tok)-1], "v2" + tok[2:], tok + ".x", "v1." + id[1:] + "." + tok[3+43+1:],
		tok[:3] + "B" + tok[4:], // another id, the same HMAC
	} {
		if _, _, ok := m.parse(bad); ok {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}
