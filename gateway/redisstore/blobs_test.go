package redisstore

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/s3blob"
	"github.com/kommun/servicegateway/gateway/s3blob/s3test"
)

// byteStores are where attachment bytes can live: Redis chunks (default)
// and an S3-protocol server (gofakes3 on a real listener). objects counts
// what holds bytes: chunk keys, or objects.
type byteStore struct {
	name  string
	start func(t *testing.T, s *Store) (objects func() int, blobs *s3blob.Store)
}

var byteStores = []byteStore{
	{"redis-chunks", func(t *testing.T, s *Store) (func() int, *s3blob.Store) {
		return func() int {
			n := 0
			for _, k := range attachmentKeys(t, s.rdb) {
				if !bytes.HasSuffix([]byte(k), []byte(":meta")) {
					n++
				}
			}
			return n
		}, nil
	}},
	{"s3", func(t *testing.T, s *Store) (func() int, *s3blob.Store) {
		b, _ := s3test.Start(t)
		s.Blobs = b
		return func() int { return len(s3test.Objects(t, b)) }, b
	}},
}

func forEachByteStore(t *testing.T, fn func(t *testing.T, s *Store, rdb redis.UniversalClient, objects func() int, blobs *s3blob.Store)) {
	for _, bs := range byteStores {
		t.Run(bs.name, func(t *testing.T) {
			s, rdb := realRedis(t)
			objects, blobs := bs.start(t, s)
			fn(t, s, rdb, objects, blobs)
		})
	}
}

// The attachment store with either home for the bytes: a file of several
// chunks and (S3) several parts comes back intact with its digest, whole
// and at random offsets; a claim is exclusive; delete removes the bytes.
func TestAttachmentBytesStores(t *testing.T) {
	forEachByteStore(t, func(t *testing.T, s *Store, rdb redis.UniversalClient, objects func() int, _ *s3blob.Store) {
		ctx := testCtx(t)
		data := randomBytes(t, s3blob.PartSize+3*AttachmentChunk+321)
		a, err := s.PutAttachment(ctx, gateway.Attachment{Field: "f", Name: "a.pdf", Type: "application/pdf", Scope: "form:x"}, bytes.NewReader(data), int64(len(data)), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if a.Size != int64(len(data)) || a.SHA256 != hexSHA(data) {
			t.Fatalf("%+v", a)
		}
		rc, got, err := s.OpenAttachment(ctx, a.ID)
		if err != nil || got != a {
			t.Fatalf("open %+v %v", got, err)
		}
		back, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || hexSHA(back) != a.SHA256 {
			t.Fatalf("read back %d: %v", len(back), err)
		}
		ra, size, err := s.AttachmentReaderAt(ctx, a.ID)
		if err != nil || size != a.Size {
			t.Fatal(size, err)
		}
		for _, c := range []struct{ off, n int }{{0, 10}, {AttachmentChunk - 1, AttachmentChunk + 2}, {len(data) - 50, 50}} {
			p := make([]byte, c.n)
			if n, err := ra.ReadAt(p, int64(c.off)); err != nil || n != c.n || !bytes.Equal(p, data[c.off:c.off+c.n]) {
				t.Fatalf("ReadAt(%d, %d): %d %v", c.off, c.n, n, err)
			}
		}
		p := make([]byte, 100)
		if n, err := ra.ReadAt(p, int64(len(data)-40)); n != 40 || err != io.EOF {
			t.Fatalf("read past the end: %d %v", n, err)
		}
		sub := s.newID()
		for range 2 {
			if err := s.ClaimAttachments(ctx, sub, []string{a.ID}, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ClaimAttachments(ctx, s.newID(), []string{a.ID}, time.Hour); !errors.Is(err, gateway.ErrAttachmentNotFound) {
			t.Fatalf("claim by another: %v", err)
		}
		if objects() == 0 {
			t.Fatal("no bytes stored")
		}
		if err := s.DeleteAttachments(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if n := objects(); n != 0 || len(attachmentKeys(t, rdb)) != 0 {
			t.Fatalf("left after delete: %d objects, keys %v", n, attachmentKeys(t, rdb))
		}
		if _, _, err := s.OpenAttachment(ctx, a.ID); !errors.Is(err, gateway.ErrAttachmentNotFound) {
			t.Fatalf("open deleted: %v", err)
		}
	})
}

// Refused and interrupted uploads leave no bytes and no description: over
// the limit (inside a later part), empty, and cut off after the first
// S3 part was sent.
func TestAttachmentBytesRefusalsLeaveNothing(t *testing.T) {
	forEachByteStore(t, func(t *testing.T, s *Store, rdb redis.UniversalClient, objects func() int, _ *s3blob.Store) {
		ctx := testCtx(t)
		data := randomBytes(t, 2*s3blob.PartSize+10)
		for _, max := range []int64{int64(len(data)) - 1, s3blob.PartSize + 1, 10} {
			if _, err := s.PutAttachment(ctx, gateway.Attachment{Name: "x.pdf", Scope: "form:y"}, bytes.NewReader(data), max, time.Minute); !errors.Is(err, gateway.ErrAttachmentTooLarge) {
				t.Fatalf("max %d: %v", max, err)
			}
		}
		if _, err := s.PutAttachment(ctx, gateway.Attachment{Name: "x.pdf"}, bytes.NewReader(nil), 10, time.Minute); !errors.Is(err, gateway.ErrAttachmentEmptyFile) {
			t.Fatalf("empty: %v", err)
		}
		if _, err := s.PutAttachment(ctx, gateway.Attachment{Name: "x.pdf"}, &failingReader{r: bytes.NewReader(data[:s3blob.PartSize+4096])}, 1<<30, time.Minute); !errors.Is(err, errCutOff) {
			t.Fatalf("cut off: %v", err)
		}
		if n := objects(); n != 0 || len(attachmentKeys(t, rdb)) != 0 {
			t.Fatalf("left: %d objects, keys %v", n, attachmentKeys(t, rdb))
		}
	})
}

// After delivery the bytes go: at once when the back-end fetched them, at
// the next complete fetch otherwise.
func TestAttachmentBytesDeletedAfterDelivery(t *testing.T) {
	forEachByteStore(t, func(t *testing.T, s *Store, rdb redis.UniversalClient, objects func() int, _ *s3blob.Store) {
		ctx := testCtx(t)
		put := func() string {
			a, err := s.PutAttachment(ctx, gateway.Attachment{Name: "x.pdf"}, bytes.NewReader(randomBytes(t, 1000)), 1<<20, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.ClaimAttachments(ctx, "sub1", []string{a.ID}, time.Hour); err != nil {
				t.Fatal(err)
			}
			return a.ID
		}
		fetchedFirst, releasedFirst := put(), put()
		if err := s.AttachmentFetched(ctx, fetchedFirst); err != nil {
			t.Fatal(err)
		}
		if err := s.AttachmentsDelivered(ctx, []string{fetchedFirst, releasedFirst}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if n := objects(); n != 1 {
			t.Fatalf("%d attachments' bytes after delivery, want the unfetched one", n)
		}
		if err := s.AttachmentFetched(ctx, releasedFirst); err != nil {
			t.Fatal(err)
		}
		if n := objects(); n != 0 || len(attachmentKeys(t, rdb)) != 0 {
			t.Fatalf("left: %d, keys %v", n, attachmentKeys(t, rdb))
		}
	})
}

// An abandoned upload (its description expired in Redis) is deleted from
// the object store by the sweeper once older than the given age; a live
// one, claimed or not, is kept; a young orphan (an upload still being
// written) is kept.
func TestSweepAbandonedBlobs(t *testing.T) {
	s, rdb := realRedis(t)
	b, _ := s3test.Start(t)
	s.Blobs = b
	ctx := testCtx(t)
	put := func(ttl time.Duration) string {
		a, err := s.PutAttachment(ctx, gateway.Attachment{Name: "x.pdf"}, bytes.NewReader(randomBytes(t, 1000)), 1<<20, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	abandoned, live := put(100*time.Millisecond), put(time.Hour)
	for rdb.Exists(ctx, s.keys.attachmentMeta(abandoned)).Val() == 1 {
		if ctx.Err() != nil {
			t.Fatal("description never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, err := s.SweepAttachmentBlobs(ctx, b, time.Hour); err != nil || n != 0 {
		t.Fatalf("young orphan swept: %d %v", n, err)
	}
	s.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if n, err := s.SweepAttachmentBlobs(ctx, b, time.Hour); err != nil || n != 1 {
		t.Fatalf("swept %d, %v", n, err)
	}
	if ids := s3test.Objects(t, b); len(ids) != 1 || ids[0] != live {
		t.Fatalf("objects %v, want %s", ids, live)
	}
}

// forEachAttachmentBackend is forEachBackend and, for the tests that do
// not look at chunk keys, a real redis-server with the bytes in S3.
func forEachAttachmentBackend(t *testing.T, fn func(t *testing.T, s *Store, rdb redis.UniversalClient)) {
	t.Helper()
	forEachBackend(t, fn)
	t.Run("redis-server+s3", func(t *testing.T) {
		s, rdb := realRedis(t)
		s.Blobs, _ = s3test.Start(t)
		fn(t, s, rdb)
	})
}
