// Package s3test starts a real S3-protocol server for tests: gofakes3
// (in-memory back-end) behind an httptest server on a real listener, with
// a bucket, and returns an s3blob.Store speaking SigV4 to it over HTTP.
package s3test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/kommun/servicegateway/gateway/s3blob"
)

// Bucket is the bucket Start creates.
const Bucket = "attachments"

// Start returns a Store on a fresh server and its configuration.
func Start(t testing.TB) (*s3blob.Store, s3blob.Config) {
	t.Helper()
	be := s3mem.New()
	if err := be.CreateBucket(Bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(be, gofakes3.WithoutVersioning()).Server())
	t.Cleanup(srv.Close)
	cfg := s3blob.Config{
		Endpoint: strings.TrimPrefix(srv.URL, "http://"), Bucket: Bucket, Region: "us-east-1",
		AccessKey: "test", SecretKey: "test-secret", Prefix: "att/", Timeout: 10 * time.Second,
	}
	s, err := s3blob.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, cfg
}

// Objects lists the ids of every object in the store.
func Objects(t testing.TB, s *s3blob.Store) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ids []string
	if err := s.List(ctx, time.Now().Add(24*time.Hour), func(id string) error { ids = append(ids, id); return nil }); err != nil {
		t.Fatal(err)
	}
	return ids
}
