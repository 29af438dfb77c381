package redisstore

import (
	"context"
	"fmt"
	"time"
)

// The hand-off of attachments to back-ends (gateway/delivery and the
// download route): the gateway is a conduit, so the bytes go once the
// back-end has them. Before delivery they live as long as their claim (the
// submission's retry window). After delivery (AttachmentsDelivered) a file
// the back-end already fetched through its link is deleted at once, any
// other at its next complete fetch or when the last link handed out
// expires, whichever is first.

// AttachmentFetched records that every byte of attachment id was sent to a
// back-end; if its submission was delivered already, the bytes go now.
func (s *Store) AttachmentFetched(ctx context.Context, id string) error {
	if !validID(id) {
		return nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	reply, err := attachmentFetchedScript.Run(ctx, s.rdb, []string{s.keys.attachmentMeta(id)}, s.keys.attachmentChunkPrefix(id)).Text()
	if err != nil {
		return unavailable(err)
	}
	switch reply {
	case "deleted":
		s.deleteBlob(ctx, id)
		return nil
	case "missing", "marked":
		return nil
	}
	return unavailable(fmt.Errorf("attachment fetched: unexpected reply %q", reply))
}

// AttachmentsDelivered is told that the back-end took what attachments ids
// came with: fetched ones are deleted now, the others live at most keep
// longer (0: deleted now). See delivery.Attachments.
func (s *Store) AttachmentsDelivered(ctx context.Context, ids []string, keep time.Duration) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	for _, id := range ids {
		if !validID(id) {
			continue
		}
		reply, err := attachmentReleaseScript.Run(ctx, s.rdb, []string{s.keys.attachmentMeta(id)},
			s.keys.attachmentChunkPrefix(id), keep.Milliseconds()).Text()
		if err != nil {
			return unavailable(err)
		}
		switch reply {
		case "deleted":
			s.deleteBlob(ctx, id)
		case "missing", "released":
		default:
			return unavailable(fmt.Errorf("attachment release: unexpected reply %q", reply))
		}
	}
	return nil
}
