package delivery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/redisstore"
)

// Attachments is what delivery needs of the attachment store.
// *redisstore.Store implements it.
type Attachments interface {
	// OpenAttachment streams the bytes of attachment id and returns its
	// stored description.
	OpenAttachment(ctx context.Context, id string) (io.ReadCloser, gateway.Attachment, error)
	// AttachmentsDelivered is told that the back-end took what the
	// attachments ids came with (a submission or an answer). The store
	// deletes at once the bytes a back-end already fetched through a link,
	// and keeps the others at most keep longer, the lifetime of the last
	// link handed out, so the back-end can still fetch them; a fetch after
	// this deletes them too. Before delivery the bytes are kept for the
	// whole retry window (they were claimed for it at submit).
	AttachmentsDelivered(ctx context.Context, ids []string, keep time.Duration) error
}

// files is the gateway.AttachmentFiles of a delivery.
type files struct {
	store Attachments
	links *gateway.AttachmentLinks
}

// Open streams a's bytes; a description in the store that does not match
// the record's (another digest) is an error rather than the wrong file.
func (f files) Open(ctx context.Context, a gateway.Attachment) (io.ReadCloser, error) {
	if f.store == nil {
		return nil, fmt.Errorf("%w: no attachment store", gateway.ErrAttachmentNotFound)
	}
	rc, meta, err := f.store.OpenAttachment(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	if meta.SHA256 != "" && a.SHA256 != "" && meta.SHA256 != a.SHA256 {
		rc.Close()
		return nil, fmt.Errorf("attachment %s: stored digest differs from the record's", a.ID)
	}
	return rc, nil
}

func (f files) Link(a gateway.Attachment) (string, time.Time) { return f.links.Link(a) }

// files returns the AttachmentFiles for a delivery of atts, nil when there
// are none.
func (d *Dispatcher) files(atts []gateway.Attachment) gateway.AttachmentFiles {
	return filesFor(atts, d.cfg.Attachments, d.cfg.Links)
}

func filesFor(atts []gateway.Attachment, store Attachments, links *gateway.AttachmentLinks) gateway.AttachmentFiles {
	if len(atts) == 0 {
		return nil
	}
	return files{store: store, links: links}
}

// linkTTL is how long links handed out may still be used.
func linkTTL(l *gateway.AttachmentLinks) time.Duration {
	if l == nil {
		return 0
	}
	return l.TTL
}

// attachmentsDelivered tells the store the back-end has atts' submission.
// A failure only delays the deletion: the bytes expire with their TTL.
func (d *Dispatcher) attachmentsDelivered(ctx context.Context, log *slog.Logger, atts []gateway.Attachment) {
	releaseAttachments(ctx, log, d.cfg.Attachments, d.cfg.Links, atts)
}

func releaseAttachments(ctx context.Context, log *slog.Logger, store Attachments, links *gateway.AttachmentLinks, atts []gateway.Attachment) {
	if store == nil || len(atts) == 0 {
		return
	}
	ids := make([]string, len(atts))
	for i, a := range atts {
		ids[i] = a.ID
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := store.AttachmentsDelivered(sctx, ids, linkTTL(links)); err != nil {
		log.Warn("releasing delivered attachments failed; they expire with their time to live", "error", err)
	}
}

// The store is the attachment store.
var _ Attachments = (*redisstore.Store)(nil)
