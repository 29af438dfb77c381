package clamav_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/clamav"
	"github.com/kommun/servicegateway/gateway/clamav/clamdtest"
)

// Against a real TCP server speaking INSTREAM: a clean file passes, one
// with the EICAR string (also split between two chunks) is infected, a
// stream over clamd's limit and a server that is down are "unavailable".
func TestScan(t *testing.T) {
	srv := clamdtest.Start(t)
	sc := clamav.New(srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clean := bytes.Repeat([]byte("%PDF-1.4 clean "), 20000) // several chunks
	if err := sc.Scan(ctx, bytes.NewReader(clean)); err != nil {
		t.Fatalf("clean: %v", err)
	}
	split := append(bytes.Repeat([]byte("a"), clamav.ChunkSize-10), []byte(clamdtest.EICAR)...)
	for name, b := range map[string][]byte{"eicar": []byte(clamdtest.EICAR), "split": split} {
		err := sc.Scan(ctx, bytes.NewReader(b))
		if !errors.Is(err, gateway.ErrAttachmentInfected) || !strings.Contains(err.Error(), "Eicar-Test-Signature") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	srv.MaxStream = 1000
	if err := sc.Scan(ctx, bytes.NewReader(clean)); !errors.Is(err, clamav.ErrUnavailable) {
		t.Fatalf("over the limit: %v", err)
	}
	srv.Close()
	if err := sc.Scan(ctx, bytes.NewReader(clean)); !errors.Is(err, clamav.ErrUnavailable) {
		t.Fatalf("down: %v", err)
	}
}
