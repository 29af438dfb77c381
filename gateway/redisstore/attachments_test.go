package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func hexSHA(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// attachmentKeys lists the attachment keys of the "test" prefix, on every
// primary of a Cluster.
func attachmentKeys(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	ctx := testCtx(t)
	var mu sync.Mutex
	var out []string
	scan := func(ctx context.Context, c *redis.Client) error {
		keys, err := c.Keys(ctx, "test:{f:*").Result()
		mu.Lock()
		out = append(out, keys...)
		mu.Unlock()
		return err
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		t.Fatalf("client %T", rdb)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// failingReader yields n bytes, then fails as a connection cut off
// mid-body does.
type failingReader struct {
	r io.Reader
}

var errCutOff = errors.New("connection reset by peer")

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errCutOff
	}
	return n, err
}

// The attachment store on one node and the demo's miniredis: bytes stored
// in chunks come back intact with their digest; limits, empty files and a
// cut-off upload leave nothing behind; claims are idempotent and exclusive
// and extend the TTL; delete removes everything.
func TestAttachmentStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		data := randomBytes(t, 2*AttachmentChunk+12345) // three chunks, the last short
		a, err := s.PutAttachment(ctx, gateway.Attachment{Field: "drawings", Name: "../../etc/ritning\u202e.pdf", Type: "application/pdf"},
			bytes.NewReader(data), int64(len(data)), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if !validID(a.ID) || a.Size != int64(len(data)) || a.SHA256 != hexSHA(data) || a.Name != "ritning.pdf" ||
			a.Field != "drawings" || a.Type != "application/pdf" {
			t.Fatalf("description %+v", a)
		}
		if keys := attachmentKeys(t, rdb); len(keys) != 4 {
			t.Fatalf("keys %v, want metadata and three chunks", keys)
		}
		for _, k := range attachmentKeys(t, rdb) {
			if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Minute {
				t.Fatalf("%s TTL %v", k, ttl)
			}
		}
		rc, got, err := s.OpenAttachment(ctx, a.ID)
		if err != nil || got != a {
			t.Fatalf("open: %+v %v", got, err)
		}
		back, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("read back %d bytes, %v", len(back), err)
		}

		// Claims: idempotent for one submission, refused for another, and
		// they extend the TTL of every key.
		sub1, sub2 := s.newID(), s.newID()
		for range 2 {
			if err := s.ClaimAttachments(ctx, sub1, []string{a.ID}, 48*time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range attachmentKeys(t, rdb) {
			if ttl := rdb.PTTL(ctx, k).Val(); ttl < 47*time.Hour {
				t.Fatalf("%s TTL %v after the claim", k, ttl)
			}
		}
		if _, owner, err := s.Attachment(ctx, a.ID); err != nil || owner != sub1 {
			t.Fatalf("owner %q %v", owner, err)
		}
		if err := s.ClaimAttachments(ctx, sub2, []string{a.ID}, time.Hour); !errors.Is(err, gateway.ErrAttachmentNotFound) {
			t.Fatalf("claim by another submission: %v", err)
		}
		for _, id := range []string{s.newID(), "not-an-id", ""} {
			if err := s.ClaimAttachments(ctx, sub1, []string{id}, time.Hour); !errors.Is(err, gateway.ErrAttachmentNotFound) {
				t.Fatalf("claim %q: %v", id, err)
			}
		}
		if _, _, err := s.OpenAttachment(ctx, s.newID()); !errors.Is(err, gateway.ErrAttachmentNotFound) {
			t.Fatalf("open missing: %v", err)
		}

		// A chunk gone (expired) is an error while reading, not short data,
		// and the claim refuses the incomplete attachment.
		b, err := s.PutAttachment(ctx, gateway.Attachment{Name: "b.png"}, bytes.NewReader(data), 1<<20, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		rdb.Del(ctx, s.keys.attachmentChunk(b.ID, 1))
		rc, _, err = s.OpenAttachment(ctx, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(rc); !errors.Is(err, gateway.ErrAttachmentNotFound) {
			t.Fatalf("read with a chunk gone: %v", err)
		}
		if err := s.ClaimAttachments(ctx, sub1, []string{b.ID}, time.Hour); !errors.Is(err, gateway.ErrAttachmentNotFound) {
			t.Fatalf("claim with a chunk gone: %v", err)
		}

		if err := s.DeleteAttachments(ctx, a.ID, b.ID, s.newID(), "bad"); err != nil {
			t.Fatal(err)
		}
		if keys := attachmentKeys(t, rdb); len(keys) != 0 {
			t.Fatalf("left after delete: %v", keys)
		}
		if _, _, err := s.OpenAttachment(ctx, a.ID); !errors.Is(err, gateway.ErrAttachmentNotFound) {
			t.Fatalf("open deleted: %v", err)
		}
	})
}

// Refused uploads leave nothing: one byte over the limit (also when the
// limit falls inside a later chunk), an empty file, and an upload whose
// body is cut off after two chunks were written.
func TestAttachmentStoreRefusalsLeaveNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		data := randomBytes(t, 3*AttachmentChunk)
		for _, max := range []int64{int64(len(data)) - 1, AttachmentChunk + 1, 10} {
			_, err := s.PutAttachment(ctx, gateway.Attachment{Name: "x.pdf"}, bytes.NewReader(data), max, time.Minute)
			if !errors.Is(err, gateway.ErrAttachmentTooLarge) {
				t.Fatalf("max %d: %v", max, err)
			}
		}
		if _, err := s.PutAttachment(ctx, gateway.Attachment{Name: "x.pdf"}, bytes.NewReader(nil), 10, time.Minute); !errors.Is(err, gateway.ErrAttachmentEmptyFile) {
			t.Fatalf("empty: %v", err)
		}
		_, err := s.PutAttachment(ctx, gateway.Attachment{Name: "x.pdf"}, &failingReader{r: bytes.NewReader(data[:2*AttachmentChunk+7])}, 1<<30, time.Minute)
		if !errors.Is(err, errCutOff) {
			t.Fatalf("cut off: %v", err)
		}
		if keys := attachmentKeys(t, rdb); len(keys) != 0 {
			t.Fatalf("left behind: %v", keys)
		}
		// Exactly the limit is fine.
		if _, err := s.PutAttachment(ctx, gateway.Attachment{Name: "x.pdf"}, bytes.NewReader(data), int64(len(data)), time.Minute); err != nil {
			t.Fatalf("at the limit: %v", err)
		}
	})
}

// An upload nobody claims is gone after its TTL, chunks and metadata.
func TestAttachmentUnclaimedExpires(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		a, err := s.PutAttachment(ctx, gateway.Attachment{Name: "x.pdf"}, bytes.NewReader(randomBytes(t, AttachmentChunk+1)), 1<<20, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for len(attachmentKeys(t, rdb)) > 0 {
			if ctx.Err() != nil {
				t.Fatalf("still there: %v", attachmentKeys(t, rdb))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, _, err := s.OpenAttachment(ctx, a.ID); !errors.Is(err, gateway.ErrAttachmentNotFound) {
			t.Fatalf("open expired: %v", err)
		}
	})
}

// The record keeps its attachments' descriptions, and an id drawn by the
// caller (attachments claimed for it first) is the submission's id.
func TestCreateKeepsAttachmentsAndPresetID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		sub := newSubmission()
		sub.ID = s.newID()
		want := sub.ID
		sub.Attachments = []gateway.Attachment{{ID: s.newID(), Field: "f", Name: "a.pdf", Type: "application/pdf", Size: 3, SHA256: hexSHA([]byte("abc"))}}
		got, created, err := s.Create(ctx, sub, Idempotency{})
		if err != nil || !created || got.ID != want {
			t.Fatalf("create: %v %v id %s want %s", created, err, got.ID, want)
		}
		back, err := s.Get(ctx, want)
		if err != nil || len(back.Attachments) != 1 || back.Attachments[0] != sub.Attachments[0] {
			t.Fatalf("get: %+v %v", back, err)
		}
	})
}

// In a real Cluster (three primaries): attachments spread over the shards
// by their own hash tags, and put, claim, open and delete work, each
// script touching only its attachment's slot.
func TestAttachmentStoreCluster(t *testing.T) {
	nodes := startCluster(t)
	var addrs []string
	for a := range nodes {
		addrs = append(addrs, a)
	}
	rdb, err := NewClient(ClientConfig{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	s := New(rdb, "test")
	ctx := testCtx(t)
	data := randomBytes(t, AttachmentChunk+99)
	var ids []string
	slots := map[int64]bool{}
	for range 6 {
		a, err := s.PutAttachment(ctx, gateway.Attachment{Name: "x.png", Type: "image/png"}, bytes.NewReader(data), 1<<20, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
		slots[rdb.ClusterKeySlot(ctx, s.keys.attachmentMeta(a.ID)).Val()] = true
	}
	if len(slots) < 2 {
		t.Fatalf("six attachments in %d slot(s)", len(slots))
	}
	sub := s.newID()
	if err := s.ClaimAttachments(ctx, sub, ids, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		rc, _, err := s.OpenAttachment(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		if err != nil || hexSHA(b) != hexSHA(data) {
			t.Fatalf("read %s: %v", id, err)
		}
	}
	if err := s.DeleteAttachments(ctx, ids...); err != nil {
		t.Fatal(err)
	}
	if keys := attachmentKeys(t, rdb); len(keys) != 0 {
		t.Fatalf("left: %v", keys)
	}
}

// Random access (a zip's directory at its end) reads the right bytes
// across a chunk boundary; the type found inside can be recorded; the
// uploader's scope is kept.
func TestAttachmentReaderAtAndType(t *testing.T) {
	forEachAttachmentBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		data := randomBytes(t, 2*AttachmentChunk+100)
		a, err := s.PutAttachment(ctx, gateway.Attachment{Name: "a.docx", Type: "application/zip", Scope: "form:abc"}, bytes.NewReader(data), 1<<20, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		ra, size, err := s.AttachmentReaderAt(ctx, a.ID)
		if err != nil || size != int64(len(data)) {
			t.Fatal(size, err)
		}
		for _, c := range []struct{ off, n int }{{0, 10}, {AttachmentChunk - 5, 10}, {AttachmentChunk - 1, AttachmentChunk + 2}, {len(data) - 50, 50}} {
			p := make([]byte, c.n)
			if n, err := ra.ReadAt(p, int64(c.off)); err != nil || n != c.n || !bytes.Equal(p, data[c.off:c.off+c.n]) {
				t.Fatalf("ReadAt(%d, %d): %d %v", c.off, c.n, n, err)
			}
		}
		p := make([]byte, 100)
		if n, err := ra.ReadAt(p, int64(len(data)-40)); n != 40 || err != io.EOF {
			t.Fatalf("read past the end: %d %v", n, err)
		}
		if err := s.SetAttachmentType(ctx, a.ID, "application/vnd.oasis.opendocument.text"); err != nil {
			t.Fatal(err)
		}
		got, _, err := s.Attachment(ctx, a.ID)
		if err != nil || got.Type != "application/vnd.oasis.opendocument.text" || got.Scope != "form:abc" {
			t.Fatalf("%+v %v", got, err)
		}
		if err := s.SetAttachmentType(ctx, s.newID(), "x"); !errors.Is(err, gateway.ErrAttachmentNotFound) {
			t.Fatalf("missing: %v", err)
		}
	})
}

// One uploader's uploads within the upload TTL are bounded in number; a
// refused or failed upload frees its place; another uploader is not
// affected.
func TestUploadsPerScopeBounded(t *testing.T) {
	forEachAttachmentBackend(t, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := testCtx(t)
		s.MaxUploadsPerScope = 2
		put := func(scope string, r io.Reader) error {
			_, err := s.PutAttachment(ctx, gateway.Attachment{Name: "a.pdf", Scope: scope}, r, 1<<20, time.Minute)
			return err
		}
		for i := range 2 {
			if err := put("browser:a", bytes.NewReader([]byte("x"))); err != nil {
				t.Fatalf("upload %d: %v", i, err)
			}
		}
		if err := put("browser:a", bytes.NewReader([]byte("x"))); !errors.Is(err, gateway.ErrAttachmentTooMany) {
			t.Fatalf("third: %v", err)
		}
		if err := put("browser:b", bytes.NewReader([]byte("x"))); err != nil {
			t.Fatalf("another uploader: %v", err)
		}
		s.MaxUploadsPerScope = 3
		if err := put("browser:a", &failingReader{r: bytes.NewReader([]byte("x"))}); !errors.Is(err, errCutOff) {
			t.Fatalf("cut off: %v", err)
		}
		if err := put("browser:a", bytes.NewReader([]byte("x"))); err != nil {
			t.Fatalf("the cut-off upload's place: %v", err)
		}
		if ttl := rdb.PTTL(ctx, s.keys.uploadScope("browser:a")).Val(); ttl <= 0 || ttl > time.Minute {
			t.Fatalf("scope index TTL %v", ttl)
		}
	})
}
