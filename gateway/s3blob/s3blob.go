// Package s3blob keeps the bytes of attachments in an S3-compatible object
// store (MinIO, Ceph RGW, AWS S3, ...): one object per attachment, named
// Prefix + attachment id. It satisfies redisstore.Blobs and
// redisstore.BlobLister; the descriptions, claims and TTLs of attachments
// stay in Redis.
package s3blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/kommun/servicegateway/gateway"
)

// PartSize is the size of one part of a multipart upload, and so the
// memory one upload holds: the S3 minimum (5 MiB). A file smaller than one
// part is sent as one PutObject.
const PartSize = 5 << 20

// Config says where the objects are.
type Config struct {
	Endpoint  string // host:port
	Bucket    string
	Region    string
	AccessKey string
	SecretKey string
	TLS       bool
	Prefix    string // object name prefix ("attachments/")

	// Timeout bounds each call other than an upload or a download
	// (ranged read, delete, one page of a listing); Transfer bounds a whole
	// upload or download.
	Timeout, Transfer time.Duration

	// Transport, when set, is the HTTP transport (tests).
	Transport http.RoundTripper
}

// Store is a bucket of attachment objects.
type Store struct {
	c   *minio.Client
	cfg Config
}

// New returns a Store; it does not contact the server.
func New(cfg Config) (*Store, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3blob: endpoint and bucket are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Transfer <= 0 {
		cfg.Transfer = 10 * time.Minute
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: cfg.Timeout,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
		}
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.TLS,
		Region:    cfg.Region,
		Transport: tr,
	})
	if err != nil {
		return nil, fmt.Errorf("s3blob: %w", err)
	}
	return &Store{c: c, cfg: cfg}, nil
}

func (s *Store) name(id string) string { return s.cfg.Prefix + id }

// Ready checks that the bucket exists (start-up and readiness).
func (s *Store) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	ok, err := s.c.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("s3blob: bucket %s: %w", s.cfg.Bucket, err)
	}
	if !ok {
		return fmt.Errorf("s3blob: bucket %s does not exist", s.cfg.Bucket)
	}
	return nil
}

// Put streams r into object id: a multipart upload of PartSize parts (one
// part buffered at a time), or one PutObject when r ends within the first
// part. More than max bytes is gateway.ErrAttachmentTooLarge; on any error
// the multipart upload is aborted and nothing is stored.
func (s *Store) Put(ctx context.Context, id string, r io.Reader, max int64) (int64, error) {
	// An empty file stores nothing (some stores refuse an empty
	// streaming upload): look at the first byte.
	var first [1]byte
	if n, err := io.ReadFull(r, first[:]); n == 0 {
		if err == io.EOF {
			return 0, nil
		}
		return 0, fmt.Errorf("s3blob: read upload: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Transfer)
	defer cancel()
	lr := &limitReader{r: io.MultiReader(bytes.NewReader(first[:]), r), left: max}
	info, err := s.c.PutObject(ctx, s.cfg.Bucket, s.name(id), lr, -1, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    PartSize,
		NumThreads:  1,
		// Each part carries its MD5 (the store checks it) rather than the
		// aws-chunked streaming signature minio-go uses over plain HTTP,
		// which not every S3-compatible store decodes in UploadPart.
		SendContentMd5:       true,
		DisableContentSha256: true,
	})
	if err != nil {
		s.Delete(context.WithoutCancel(ctx), id) // should the last part have landed
		if lr.err != nil {
			return 0, lr.err // the reader's error: too large, or the upload cut off
		}
		return 0, fmt.Errorf("s3blob: put %s: %w", id, err)
	}
	if lr.err != nil { // cannot happen: PutObject fails when its reader does
		s.Delete(context.WithoutCancel(ctx), id)
		return 0, lr.err
	}
	return info.Size, nil
}

// limitReader fails with gateway.ErrAttachmentTooLarge past left bytes
// and remembers the error it returned, so Put can tell it from the store's.
type limitReader struct {
	r    io.Reader
	left int64
	err  error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		l.err = gateway.ErrAttachmentTooLarge
		return 0, l.err
	}
	if err != nil && err != io.EOF {
		l.err = fmt.Errorf("s3blob: read upload: %w", err)
		return n, l.err
	}
	return n, err
}

// Open reads object id; the read as a whole is bounded by Transfer. A
// missing object is gateway.ErrAttachmentNotFound.
func (s *Store) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Transfer)
	o, err := s.c.GetObject(ctx, s.cfg.Bucket, s.name(id), minio.GetObjectOptions{})
	if err == nil {
		// Send the GET now: a missing object is an error of Open (a 404
		// of the download route), not of the first Read after a 200.
		_, err = o.Stat()
		if err != nil {
			o.Close()
		}
	}
	if err != nil {
		cancel()
		return nil, s.err("get", id, err)
	}
	return &object{o: o, cancel: cancel, s: s, id: id}, nil
}

type object struct {
	o      *minio.Object
	cancel context.CancelFunc
	s      *Store
	id     string
}

func (o *object) Read(p []byte) (int, error) {
	n, err := o.o.Read(p)
	if err != nil && err != io.EOF {
		err = o.s.err("get", o.id, err)
	}
	return n, err
}

func (o *object) Close() error {
	defer o.cancel()
	return o.o.Close()
}

// ReadAt reads len(p) bytes at off with one ranged GET.
func (s *Store) ReadAt(ctx context.Context, id string, p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(off, off+int64(len(p))-1); err != nil {
		return 0, err
	}
	o, err := s.c.GetObject(ctx, s.cfg.Bucket, s.name(id), opts)
	if err != nil {
		return 0, s.err("get range", id, err)
	}
	defer o.Close()
	n, err := io.ReadFull(o, p)
	if err == io.ErrUnexpectedEOF {
		return n, io.EOF
	}
	if err != nil {
		return n, s.err("get range", id, err)
	}
	return n, nil
}

// Delete deletes object id; a missing one is no error (S3 semantics).
func (s *Store) Delete(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.c.RemoveObject(ctx, s.cfg.Bucket, s.name(id), minio.RemoveObjectOptions{}); err != nil {
		return s.err("delete", id, err)
	}
	return nil
}

// List calls fn with the id of every object under Prefix last modified
// before before. The listing as a whole is bounded by Transfer; fn's
// errors stop it.
func (s *Store) List(ctx context.Context, before time.Time, fn func(id string) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Transfer)
	defer cancel() // stops the lister goroutine
	for info := range s.c.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.cfg.Prefix, Recursive: true}) {
		if info.Err != nil {
			return fmt.Errorf("s3blob: list: %w", info.Err)
		}
		if !info.LastModified.Before(before) {
			continue
		}
		id := strings.TrimPrefix(info.Key, s.cfg.Prefix)
		if id == "" || strings.Contains(id, "/") {
			continue
		}
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// err makes a missing object gateway.ErrAttachmentNotFound.
func (s *Store) err(op, id string, err error) error {
	if minio.ToErrorResponse(err).Code == "NoSuchKey" {
		return fmt.Errorf("s3blob: %s %s: %w", op, id, gateway.ErrAttachmentNotFound)
	}
	return fmt.Errorf("s3blob: %s %s: %w", op, id, err)
}
