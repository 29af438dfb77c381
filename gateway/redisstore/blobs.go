package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

// Blobs is where the bytes of attachments live when not in Redis chunks
// (Store.Blobs; nil keeps them in Redis, see attachments.go). Descriptions,
// claims, uploader counts, TTLs and the release after delivery stay in
// Redis in either case: they need its atomic scripts. An S3-compatible
// object store is one (gateway/s3blob).
type Blobs interface {
	// Put stores the bytes read from r as object id, streaming with
	// bounded memory; more than max bytes is gateway.ErrAttachmentTooLarge.
	// It returns the size; an empty r stores nothing and returns 0. On
	// any error (also one from r) no object is left behind.
	Put(ctx context.Context, id string, r io.Reader, max int64) (int64, error)
	// Open reads object id from the start.
	Open(ctx context.Context, id string) (io.ReadCloser, error)
	// ReadAt reads len(p) bytes of object id at off (a ranged read).
	ReadAt(ctx context.Context, id string, p []byte, off int64) (int, error)
	// Delete deletes object id; a missing one is no error.
	Delete(ctx context.Context, id string) error
}

// BlobLister lists stored objects for SweepAttachmentBlobs.
type BlobLister interface {
	// List calls fn with the id of every object stored before before.
	List(ctx context.Context, before time.Time, fn func(id string) error) error
	Delete(ctx context.Context, id string) error
}

// blobMarker is the metadata field telling that the bytes are in Blobs
// (its chunk count is 0, so the scripts touch no chunk keys).
const faBlob = "blob"

// putBlob is PutAttachment with Store.Blobs: the object first, the
// description after it (so an incomplete upload can never be opened or
// claimed); any failure deletes the object.
func (s *Store) putBlob(ctx context.Context, a gateway.Attachment, r io.Reader, max int64, ttl time.Duration, fail func(error) (gateway.Attachment, error)) (gateway.Attachment, error) {
	h := sha256.New()
	n, err := s.Blobs.Put(ctx, a.ID, io.TeeReader(r, h), max)
	if err != nil {
		return fail(blobErr(err))
	}
	if n == 0 {
		s.deleteBlob(ctx, a.ID)
		return fail(gateway.ErrAttachmentEmptyFile)
	}
	a.Size, a.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	mk := s.keys.attachmentMeta(a.ID)
	cctx, cancel := s.bound(ctx)
	defer cancel()
	_, err = s.rdb.TxPipelined(cctx, func(p redis.Pipeliner) error {
		p.HSet(cctx, mk, faID, a.ID, faField, a.Field, faName, a.Name, faType, a.Type,
			faSize, a.Size, faSHA256, a.SHA256, faChunks, 0, faScope, a.Scope, faBlob, "1")
		p.PExpire(cctx, mk, ttl)
		return nil
	})
	if err != nil {
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), s.opTimeout())
		s.rdb.Del(dctx, mk) // should it have landed
		dcancel()
		s.deleteBlob(ctx, a.ID)
		return fail(unavailable(err))
	}
	return a, nil
}

// blobErr keeps the domain errors of a Blobs call and makes any other an
// unavailable store.
func blobErr(err error) error {
	if errors.Is(err, gateway.ErrAttachmentTooLarge) || errors.Is(err, gateway.ErrAttachmentEmptyFile) ||
		errors.Is(err, gateway.ErrAttachmentNotFound) || errors.Is(err, context.Canceled) {
		return err
	}
	return unavailable(fmt.Errorf("attachment blob: %w", err))
}

// deleteBlob deletes an object, also when ctx was cancelled; an object it
// cannot delete is left to SweepAttachmentBlobs.
func (s *Store) deleteBlob(ctx context.Context, id string) {
	if s.Blobs == nil {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opTimeout())
	defer cancel()
	s.Blobs.Delete(cctx, id)
}

// blobReaderAt reads an attachment in Blobs at random offsets (ranged
// reads of the object).
type blobReaderAt struct {
	s    *Store
	ctx  context.Context
	id   string
	size int64
}

func (r *blobReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("redisstore: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := p
	if rest := r.size - off; int64(len(p)) > rest {
		want = p[:rest]
	}
	ctx, cancel := r.s.bound(r.ctx)
	defer cancel()
	n, err := r.s.Blobs.ReadAt(ctx, r.id, want, off)
	if err != nil && err != io.EOF {
		return n, blobErr(err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// SweepAttachmentBlobs deletes the objects stored longer ago than age whose
// description is gone from Redis (an abandoned upload expired; a delete
// that failed). age must be at least the upload TTL, so an upload still
// being written (whose description comes last) is never taken. It returns
// how many it deleted.
func (s *Store) SweepAttachmentBlobs(ctx context.Context, l BlobLister, age time.Duration) (int, error) {
	if age <= 0 {
		return 0, errors.New("redisstore: SweepAttachmentBlobs needs an age")
	}
	deleted := 0
	err := l.List(ctx, s.now().Add(-age), func(id string) error {
		if !validID(id) {
			return nil // not ours
		}
		cctx, cancel := s.bound(ctx)
		n, err := s.rdb.Exists(cctx, s.keys.attachmentMeta(id)).Result()
		cancel()
		if err != nil {
			return unavailable(err)
		}
		if n > 0 {
			return nil // live: claimed, or waiting for its fetch
		}
		cctx, cancel = s.bound(ctx)
		defer cancel()
		if err := l.Delete(cctx, id); err != nil {
			return fmt.Errorf("sweep attachment %s: %w", id, err)
		}
		deleted++
		return nil
	})
	return deleted, err
}
