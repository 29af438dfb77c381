package httpapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"strconv"
	"sync"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/kommun/servicegateway/gateway"
)

// AttachmentDownloads is what the download of attachments by back-ends
// needs of the attachment store. *redisstore.Store implements it.
type AttachmentDownloads interface {
	OpenAttachment(ctx context.Context, id string) (io.ReadCloser, gateway.Attachment, error)
	// AttachmentFetched is told that every byte of attachment id was sent
	// to a back-end; once its submission is delivered the bytes go.
	AttachmentFetched(ctx context.Context, id string) error
}

// attachmentDownload: GET /attachments/{id}?exp=&sig= — a back-end fetches
// a file it was handed in a delivery (httpjson.AttachmentRef). No cookies
// or tokens: the link is the credential, signed over the id and its
// expiry. Streamed from the store with bounded memory. A bad signature is
// 403, an expired link 403, a file no longer stored 404, each an RFC 9457
// problem.
func (s *Server) attachmentDownload(c *fiber.Ctx) error {
	if s.Attachments == nil || s.AttachmentLinks == nil {
		return attachmentProblem(c, fiber.StatusNotFound, "not_found", "attachment links are not served")
	}
	id := c.Params("id")
	err := s.AttachmentLinks.Verify(id, c.Query("exp"), c.Query("sig"), s.Config.Now())
	switch {
	case errors.Is(err, gateway.ErrLinkExpired):
		return attachmentProblem(c, fiber.StatusForbidden, "link_expired", "the download link has expired; the next delivery attempt carries a fresh one")
	case err != nil:
		return attachmentProblem(c, fiber.StatusForbidden, "forbidden", "the download link is not valid")
	}
	// The stream outlives the handler (fasthttp reads it after we return):
	// its context is not the request's; each chunk read is bounded by the
	// store, the whole by the server's write timeout, and it ends at Close.
	ctx, cancel := context.WithCancel(context.Background())
	rc, meta, err := s.Attachments.OpenAttachment(ctx, string([]byte(id)))
	if err != nil {
		cancel()
		var ge *gateway.Error
		if errors.Is(err, gateway.ErrAttachmentNotFound) || (errors.As(err, &ge) && ge.Code == gateway.ENotFound) {
			return attachmentProblem(c, fiber.StatusNotFound, "not_found", "the attachment is no longer stored")
		}
		s.Logger.Error("attachment download: store", "error", err)
		return attachmentProblem(c, fiber.StatusServiceUnavailable, "unavailable", "the attachment cannot be read now; try again")
	}
	c.Set(fiber.HeaderContentType, meta.Type)
	c.Set(fiber.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": meta.Name}))
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("X-Content-Type-Options", "nosniff")
	c.Set("X-Content-SHA256", meta.SHA256)
	s.Logger.Info("attachment download", "attachment", meta.ID, "size", meta.Size)
	return c.SendStream(&fetchedReader{rc: rc, want: meta.Size, cancel: cancel, done: func() {
		fctx, fcancel := context.WithTimeout(context.Background(), s.Config.StoreTimeout)
		defer fcancel()
		if err := s.Attachments.AttachmentFetched(fctx, meta.ID); err != nil {
			s.Logger.Warn("attachment download: recording the fetch failed; the bytes expire with their time to live", "error", err)
		}
	}}, int(meta.Size))
}

// fetchedReader calls done once when the whole file was read out (to the
// connection): the back-end has fetched it.
type fetchedReader struct {
	rc     io.ReadCloser
	want   int64
	n      int64
	cancel context.CancelFunc
	done   func()
	once   sync.Once
}

func (r *fetchedReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.n += int64(n)
	if errors.Is(err, io.EOF) && r.n == r.want {
		r.once.Do(r.done)
	}
	return n, err
}

func (r *fetchedReader) Close() error {
	// fasthttp stops after Content-Length bytes without reading EOF.
	if r.n == r.want {
		r.once.Do(r.done)
	}
	err := r.rc.Close()
	r.cancel()
	return err
}

func attachmentProblem(c *fiber.Ctx, status int, code, detail string) error {
	c.Set(fiber.HeaderContentType, "application/problem+json; charset=utf-8")
	c.Set(fiber.HeaderCacheControl, "no-store")
	b, _ := c.App().Config().JSONEncoder(fiber.Map{"type": "about:blank", "title": strconv.Itoa(status) + " " + fiberStatus(status),
		"status": status, "detail": detail, "code": code})
	return c.Status(status).Send(b)
}

func fiberStatus(status int) string { return utils.StatusMessage(status) }
