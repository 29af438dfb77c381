package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kommun/servicegateway/gateway"
)

// The attachment blob store: the bytes of uploaded files, held until the
// submission they belong to has been delivered. Each attachment is a
// metadata hash and fixed-size chunks, all under the attachment's own hash
// tag (keys.go), so it works the same on one node and in a Cluster, and a
// large file is neither one large Redis value nor one large buffer in the
// gateway: an upload and a download hold one chunk in memory at a time.

// AttachmentChunk is the size of one stored chunk (the last one of a file
// may be shorter). 256 KiB keeps a Redis value well below the size that
// stalls a node while keeping the number of round trips for a 20 MB file
// at 80.
const AttachmentChunk = 256 << 10

// DefaultAttachmentTTL is how long an upload is kept when PutAttachment is
// given no TTL.
const DefaultAttachmentTTL = time.Hour

// DefaultMaxUploadsPerScope is Store.MaxUploadsPerScope when unset.
const DefaultMaxUploadsPerScope = 200

// Attachment metadata hash fields.
const (
	faID     = "id"
	faField  = "field"
	faName   = "name"
	faType   = "type"
	faSize   = "size"
	faSHA256 = "sha256"
	faChunks = "chunks"
	faSub    = "sub"   // the claiming submission
	faScope  = "scope" // who uploaded it (gateway.Attachment.Scope)
	faClean  = "clean" // "1": the malware scanner found it clean
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, AttachmentChunk); return &b }}

// PutAttachment stores the bytes read from r as a new attachment described
// by meta (Field and Type are the caller's: the type is found by sniffing
// before the bytes reach the store; Name is sanitised here) and returns the
// description with the drawn ID, Size and SHA256. It reads r one chunk at
// a time and writes each chunk before reading the next. More than max
// bytes is gateway.ErrAttachmentTooLarge, no bytes
// gateway.ErrAttachmentEmptyFile; on any error, including one from r (an
// upload cut off), whatever was written is removed, and the metadata is
// written only after the last chunk, so an incomplete upload can never be
// opened or claimed. Everything expires after ttl unless claimed.
func (s *Store) PutAttachment(ctx context.Context, meta gateway.Attachment, r io.Reader, max int64, ttl time.Duration) (gateway.Attachment, error) {
	if max <= 0 {
		return gateway.Attachment{}, errors.New("redisstore: PutAttachment needs a size limit")
	}
	if ttl <= 0 {
		ttl = DefaultAttachmentTTL
	}
	a := gateway.Attachment{ID: s.newID(), Field: meta.Field, Name: gateway.SanitizeFilename(meta.Name), Type: meta.Type, Scope: meta.Scope}
	if a.Scope != "" {
		if err := s.uploadSlot(ctx, a.Scope, a.ID, ttl); err != nil {
			return gateway.Attachment{}, err
		}
	}
	chunks := 0
	fail := func(err error) (gateway.Attachment, error) {
		s.removeChunks(ctx, a.ID, chunks)
		if a.Scope != "" {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opTimeout())
			s.rdb.ZRem(cctx, s.keys.uploadScope(a.Scope), a.ID) // the place is free again
			cancel()
		}
		return gateway.Attachment{}, err
	}
	if s.Blobs != nil {
		return s.putBlob(ctx, a, r, max, ttl, fail)
	}
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	h := sha256.New()
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if a.Size+int64(n) > max {
				return fail(gateway.ErrAttachmentTooLarge)
			}
			h.Write(buf[:n])
			cctx, cancel := s.bound(ctx)
			err := s.rdb.Set(cctx, s.keys.attachmentChunk(a.ID, chunks), buf[:n], ttl).Err()
			cancel()
			chunks++ // counted even on error: the write may have landed
			if err != nil {
				return fail(unavailable(err))
			}
			a.Size += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fail(fmt.Errorf("redisstore: read upload: %w", rerr))
		}
	}
	if a.Size == 0 {
		return fail(gateway.ErrAttachmentEmptyFile)
	}
	a.SHA256 = hex.EncodeToString(h.Sum(nil))
	mk := s.keys.attachmentMeta(a.ID)
	cctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.rdb.TxPipelined(cctx, func(p redis.Pipeliner) error {
		p.HSet(cctx, mk, faID, a.ID, faField, a.Field, faName, a.Name, faType, a.Type,
			faSize, a.Size, faSHA256, a.SHA256, faChunks, chunks, faScope, a.Scope)
		p.PExpire(cctx, mk, ttl)
		return nil
	})
	if err != nil {
		return fail(unavailable(err)) // removes the metadata too, should it have landed
	}
	return a, nil
}

// uploadSlot takes a place among the scope's pending uploads; full is
// gateway.ErrAttachmentTooMany.
func (s *Store) uploadSlot(ctx context.Context, scope, id string, ttl time.Duration) error {
	max := s.MaxUploadsPerScope
	if max <= 0 {
		max = DefaultMaxUploadsPerScope
	}
	now := s.now()
	ctx, cancel := s.bound(ctx)
	defer cancel()
	ok, err := uploadSlotScript.Run(ctx, s.rdb, []string{s.keys.uploadScope(scope)},
		now.UnixMilli(), now.Add(ttl).UnixMilli(), max, id, ttl.Milliseconds()).Int()
	if err != nil {
		return unavailable(err)
	}
	if ok == 0 {
		return fmt.Errorf("%d uploads pending for this uploader: %w", max, gateway.ErrAttachmentTooMany)
	}
	return nil
}

// removeChunks deletes the metadata and chunks 0..n-1 of attachment id,
// also when ctx was cancelled (the client went away): with its own short
// deadline. What it cannot delete expires with its TTL.
func (s *Store) removeChunks(ctx context.Context, id string, n int) {
	if n == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opTimeout())
	defer cancel()
	s.rdb.Del(cctx, s.keys.attachmentMeta(id))
	keys := make([]string, 0, min(n, 64))
	for i := range n {
		keys = append(keys, s.keys.attachmentChunk(id, i))
		if len(keys) == cap(keys) || i == n-1 {
			s.rdb.Del(cctx, keys...) // one slot: the attachment's tag
			keys = keys[:0]
		}
	}
}

// Attachment returns the description of a stored, complete attachment and
// the submission that claimed it ("" when not yet claimed); a missing or
// expired one is gateway.ErrAttachmentNotFound.
func (s *Store) Attachment(ctx context.Context, id string) (gateway.Attachment, string, error) {
	a, _, sub, err := s.attachmentMeta(ctx, id)
	return a, sub, err
}

func (s *Store) attachmentMeta(ctx context.Context, id string) (a gateway.Attachment, chunks int, sub string, err error) {
	a, chunks, sub, _, err = s.attachmentMetaBlob(ctx, id)
	return
}

// attachmentMetaBlob is attachmentMeta that also tells whether the bytes
// are in Blobs.
func (s *Store) attachmentMetaBlob(ctx context.Context, id string) (a gateway.Attachment, chunks int, sub string, blob bool, err error) {
	if !validID(id) {
		return a, 0, "", false, gateway.ErrAttachmentNotFound
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, s.keys.attachmentMeta(id)).Result()
	if err != nil {
		return a, 0, "", false, unavailable(err)
	}
	if m[faID] == "" {
		return a, 0, "", false, gateway.ErrAttachmentNotFound
	}
	a = gateway.Attachment{ID: m[faID], Field: m[faField], Name: m[faName], Type: m[faType], SHA256: m[faSHA256], Scope: m[faScope], Scanned: m[faClean] == "1"}
	a.Size, err = strconv.ParseInt(m[faSize], 10, 64)
	if err == nil {
		chunks, err = strconv.Atoi(m[faChunks])
	}
	if err != nil {
		return a, 0, "", false, unavailable(fmt.Errorf("attachment %s: bad metadata: %w", id, err))
	}
	return a, chunks, m[faSub], m[faBlob] == "1", nil
}

// OpenAttachment returns a reader of the attachment's bytes and its
// description. The reader fetches one chunk at a time as it is read
// (each fetch bounded by OpTimeout unless ctx has a deadline); a chunk
// that expired meanwhile, or bytes that do not add up to the recorded
// size, is an error from Read. A missing or expired attachment is
// gateway.ErrAttachmentNotFound.
func (s *Store) OpenAttachment(ctx context.Context, id string) (io.ReadCloser, gateway.Attachment, error) {
	a, chunks, _, blob, err := s.attachmentMetaBlob(ctx, id)
	if err != nil {
		return nil, gateway.Attachment{}, err
	}
	if blob {
		if s.Blobs == nil {
			return nil, gateway.Attachment{}, unavailable(fmt.Errorf("attachment %s is in an object store this gateway is not configured for", id))
		}
		rc, err := s.Blobs.Open(ctx, id)
		if err != nil {
			return nil, gateway.Attachment{}, blobErr(err)
		}
		return rc, a, nil
	}
	return &attachmentReader{s: s, ctx: ctx, id: id, chunks: chunks, size: a.Size}, a, nil
}

type attachmentReader struct {
	s      *Store
	ctx    context.Context
	id     string
	chunks int
	next   int
	size   int64 // recorded size
	read   int64 // bytes fetched so far
	buf    []byte
	closed bool
}

func (r *attachmentReader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errors.New("redisstore: read of a closed attachment")
	}
	for len(r.buf) == 0 {
		if r.next == r.chunks {
			if r.read != r.size {
				return 0, fmt.Errorf("redisstore: attachment %s: %d bytes stored, %d recorded", r.id, r.read, r.size)
			}
			return 0, io.EOF
		}
		ctx, cancel := r.s.bound(r.ctx)
		b, err := r.s.rdb.Get(ctx, r.s.keys.attachmentChunk(r.id, r.next)).Bytes()
		cancel()
		if errors.Is(err, redis.Nil) {
			return 0, fmt.Errorf("redisstore: attachment %s chunk %d: %w", r.id, r.next, gateway.ErrAttachmentNotFound)
		}
		if err != nil {
			return 0, unavailable(err)
		}
		r.next++
		r.read += int64(len(b))
		r.buf = b
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *attachmentReader) Close() error {
	r.closed, r.buf = true, nil
	return nil
}

// ClaimAttachments marks uploaded attachments as belonging to submission
// submissionID and makes them, metadata and chunks, live for ttl from now
// (the time the submission may wait for delivery). Claiming again for the
// same submission is a no-op apart from the TTL, so a retried submit is
// safe. An id that is missing, expired or incomplete, or already claimed by
// another submission, is gateway.ErrAttachmentNotFound; the ids before it
// in the list stay claimed (an unclaimed upload is not handed to anyone
// else, and they expire with ttl).
func (s *Store) ClaimAttachments(ctx context.Context, submissionID string, ids []string, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("redisstore: ClaimAttachments needs a TTL")
	}
	if submissionID == "" {
		return errors.New("redisstore: ClaimAttachments needs a submission id")
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	for _, id := range ids {
		if !validID(id) {
			return fmt.Errorf("attachment %q: %w", id, gateway.ErrAttachmentNotFound)
		}
		reply, err := claimAttachmentScript.Run(ctx, s.rdb, []string{s.keys.attachmentMeta(id)},
			submissionID, ttl.Milliseconds(), s.keys.attachmentChunkPrefix(id)).Text()
		if err != nil {
			return unavailable(err)
		}
		switch reply {
		case "ok":
		case "missing", "taken":
			return fmt.Errorf("attachment %s %s: %w", id, reply, gateway.ErrAttachmentNotFound)
		default:
			return unavailable(fmt.Errorf("claim attachment: unexpected reply %q", reply))
		}
	}
	return nil
}

// DeleteAttachments deletes attachments (metadata and chunks); ids that
// are already gone are skipped.
func (s *Store) DeleteAttachments(ctx context.Context, ids ...string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	for _, id := range ids {
		if !validID(id) {
			continue
		}
		if err := deleteAttachmentScript.Run(ctx, s.rdb, []string{s.keys.attachmentMeta(id)},
			s.keys.attachmentChunkPrefix(id)).Err(); err != nil {
			return unavailable(err)
		}
		s.deleteBlob(ctx, id) // after the description: never an object without bytes described
	}
	return nil
}

// SetAttachmentType records the media type found by looking inside a
// stored attachment (a zip container holding an office document); a
// missing attachment is gateway.ErrAttachmentNotFound.
func (s *Store) SetAttachmentType(ctx context.Context, id, mediaType string) error {
	if !validID(id) {
		return gateway.ErrAttachmentNotFound
	}
	return s.setAttachmentField(ctx, id, faType, mediaType)
}

// setAttachmentField sets one field of an attachment's metadata if the
// attachment exists.
func (s *Store) setAttachmentField(ctx context.Context, id, field, value string) error {
	if !validID(id) {
		return gateway.ErrAttachmentNotFound
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, err := setAttachmentFieldScript.Run(ctx, s.rdb, []string{s.keys.attachmentMeta(id)}, field, value).Int()
	if err != nil {
		return unavailable(err)
	}
	if n == 0 {
		return gateway.ErrAttachmentNotFound
	}
	return nil
}

// AttachmentReaderAt reads a stored attachment at random offsets (a zip
// container's directory is at its end): each ReadAt fetches only the
// ranges of the chunks it covers (GETRANGE). It returns the size too.
func (s *Store) AttachmentReaderAt(ctx context.Context, id string) (io.ReaderAt, int64, error) {
	a, chunks, _, blob, err := s.attachmentMetaBlob(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	if blob {
		if s.Blobs == nil {
			return nil, 0, unavailable(fmt.Errorf("attachment %s is in an object store this gateway is not configured for", id))
		}
		return &blobReaderAt{s: s, ctx: ctx, id: id, size: a.Size}, a.Size, nil
	}
	return &attachmentReaderAt{s: s, ctx: ctx, id: id, size: a.Size, chunks: chunks}, a.Size, nil
}

type attachmentReaderAt struct {
	s      *Store
	ctx    context.Context
	id     string
	size   int64
	chunks int
}

func (r *attachmentReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("redisstore: negative offset")
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= r.size {
			return n, io.EOF
		}
		chunk := int(pos / AttachmentChunk)
		start := pos % AttachmentChunk
		end := min(start+int64(len(p)-n), AttachmentChunk) - 1
		ctx, cancel := r.s.bound(r.ctx)
		b, err := r.s.rdb.GetRange(ctx, r.s.keys.attachmentChunk(r.id, chunk), start, end).Bytes()
		cancel()
		if err != nil {
			return n, unavailable(err)
		}
		if len(b) == 0 {
			return n, fmt.Errorf("redisstore: attachment %s chunk %d: %w", r.id, chunk, gateway.ErrAttachmentNotFound)
		}
		n += copy(p[n:], b)
	}
	return n, nil
}

// MarkAttachmentScanned records that the malware scanner found an
// attachment clean; a missing one is gateway.ErrAttachmentNotFound.
func (s *Store) MarkAttachmentScanned(ctx context.Context, id string) error {
	return s.setAttachmentField(ctx, id, faClean, "1")
}

// IdempotentSubmission returns the id of the submission an idempotency key
// made, "" when none (or no key).
func (s *Store) IdempotentSubmission(ctx context.Context, idem gateway.Idempotency) (string, error) {
	if idem.Key == "" {
		return "", nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	id, err := s.rdb.HGet(ctx, s.keys.idem(idem.Scope, idem.Key), "id").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", unavailable(err)
	}
	return id, nil
}
