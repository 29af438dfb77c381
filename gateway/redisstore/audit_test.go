package redisstore

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/servicepoint"
)

// filedOnBehalf is a submission filed for a visitor at a service point.
func filedOnBehalf() *gateway.Submission {
	sub := newSubmission()
	sub.Channel = gateway.ChannelAssisted
	sub.Actor, sub.ServicePoint, sub.IdentityCheck = "staff-1", "central", "id_document"
	sub.Audit = &gateway.FilingAudit{ActorName: "Stina Staff", MaskedSubject: "19900101-****"}
	return sub
}

// TestCreateWritesFilingAudit: a submission filed on a visitor's behalf and
// its audit entry are one write: the entry is in the audit stream when
// Create returns, names the reference (never the id), and a re-run of the
// script (go-redis re-sending it) writes no second entry. Before, the
// intake appended the entry after the create in a separate call, so a
// crash in between left a filing without its entry.
func TestCreateWritesFilingAudit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		sub, created, err := s.Create(ctx, filedOnBehalf(), Idempotency{})
		if err != nil || !created {
			t.Fatalf("Create = %v, %v", created, err)
		}
		entries, total, err := s.Audit(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if total != 1 || len(entries) != 1 {
			t.Fatalf("audit has %d entries (total %d), want 1", len(entries), total)
		}
		e := entries[0]
		if e.Action != servicepoint.ActionFiled || e.Reference != sub.Reference || e.Actor != "staff-1" || e.ActorName != "Stina Staff" ||
			e.ServicePoint != "central" || e.Subject != "19900101-****" || e.Service != sub.Service || e.IdentityCheck != "id_document" || e.At == "" {
			t.Errorf("audit entry %+v", e)
		}
		raw := rdb.XRange(ctx, s.keys.audit(), "-", "+").Val()[0].Values["e"].(string)
		if strings.Contains(raw, sub.ID) {
			t.Error("the audit entry holds the submission id")
		}
		// The same call again (a re-run after a broken connection).
		now := time.Now().UTC()
		again := filedOnBehalf()
		id, ref := gateway.NewID(), gateway.NewReference(now)
		keys, args := s.createCall(again, Idempotency{}, "0", time.Hour, id, ref, now, []byte(`{}`), []byte(`{}`))
		for run := 1; run <= 2; run++ {
			if r, err := createScript.Run(ctx, rdb, keys, args...).StringSlice(); err != nil || r[0] != "ok" {
				t.Fatalf("run %d: %v %v", run, r, err)
			}
		}
		if n := rdb.XLen(ctx, s.keys.audit()).Val(); n != 2 {
			t.Errorf("audit has %d entries after a script run twice, want 2", n)
		}
		// A submission not filed on behalf leaves no entry.
		if _, _, err := s.Create(ctx, newSubmission(), Idempotency{}); err != nil {
			t.Fatal(err)
		}
		if n := rdb.XLen(ctx, s.keys.audit()).Val(); n != 2 {
			t.Errorf("audit has %d entries after a digital submission, want 2", n)
		}
	})
}

// TestAuditReadsEarlierStream: entries of the audit stream of earlier
// releases ({a} slot, no longer written) are listed with the new ones,
// newest first, and paged across both by the entry-id cursor.
func TestAuditReadsEarlierStream(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		add := func(key, id, ref string) {
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: id, Values: []string{"e", `{"action":"filed_on_behalf","reference":"` + ref + `"}`}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		add(s.keys.auditLegacy(), "100-0", "old1")
		add(s.keys.auditLegacy(), "300-0", "old3")
		add(s.keys.audit(), "200-0", "new2")
		add(s.keys.audit(), "400-0", "new4")
		add(s.keys.audit(), "400-1", "new4b")
		var got []string
		before := ""
		for range 5 {
			page, total, err := s.Audit(ctx, before, 2)
			if err != nil {
				t.Fatal(err)
			}
			if total != 5 {
				t.Fatalf("total %d, want 5", total)
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				got = append(got, e.Reference)
			}
			before = page[len(page)-1].ID
		}
		if want := "new4b new4 old3 new2 old1"; strings.Join(got, " ") != want {
			t.Errorf("audit pages %q, want %q", strings.Join(got, " "), want)
		}
	})
}
