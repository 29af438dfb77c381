package s3blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/s3blob"
	"github.com/kommun/servicegateway/gateway/s3blob/s3test"
)

type cutOff struct{ r io.Reader }

var errCut = errors.New("connection reset by peer")

func (c *cutOff) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		return n, errCut
	}
	return n, err
}

// Against a real S3-protocol server: a multipart upload (three parts) and
// a single-part one come back intact, whole and by range; over the limit
// and cut off leave no object; delete and list.
func TestStore(t *testing.T) {
	s, _ := s3test.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	big := make([]byte, 2*s3blob.PartSize+777)
	rand.Read(big)
	for _, data := range [][]byte{big, big[:1000]} {
		n, err := s.Put(ctx, "a1", bytes.NewReader(data), int64(len(data)))
		if err != nil || n != int64(len(data)) {
			t.Fatalf("put %d: %d %v", len(data), n, err)
		}
		rc, err := s.Open(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("read back %d of %d: %v", len(back), len(data), err)
		}
		p := make([]byte, 100)
		if n, err := s.ReadAt(ctx, "a1", p, int64(len(data)-100)); n != 100 || err != nil || !bytes.Equal(p, data[len(data)-100:]) {
			t.Fatalf("range: %d %v", n, err)
		}
	}
	if _, err := s.Put(ctx, "a2", bytes.NewReader(big), int64(len(big))-1); !errors.Is(err, gateway.ErrAttachmentTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if _, err := s.Put(ctx, "a3", &cutOff{bytes.NewReader(big[:PartPlus()])}, 1<<30); !errors.Is(err, errCut) {
		t.Fatalf("cut off: %v", err)
	}
	if ids := s3test.Objects(t, s); len(ids) != 1 || ids[0] != "a1" {
		t.Fatalf("objects %v, want a1 only", ids)
	}
	if err := s.Delete(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a1"); err != nil {
		t.Fatalf("delete again: %v", err)
	}
	if _, err := s.ReadAt(ctx, "a1", make([]byte, 4), 0); !errors.Is(err, gateway.ErrAttachmentNotFound) {
		t.Fatalf("read deleted: %v", err)
	}
	if _, err := s.Open(ctx, "a1"); !errors.Is(err, gateway.ErrAttachmentNotFound) {
		t.Fatalf("open deleted: %v", err)
	}
	if ids := s3test.Objects(t, s); len(ids) != 0 {
		t.Fatalf("objects %v", ids)
	}
}

// PartPlus is past the first part: the cut comes after one part was sent.
func PartPlus() int { return s3blob.PartSize + 4096 }
