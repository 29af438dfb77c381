package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/smtpmail"
)

// Limits of the message size (setting max_message_bytes). Many mail
// servers refuse messages over 20-25 MB, and attachments grow by a third
// in base64.
const (
	DefaultMaxMessageBytes = 20 << 20
	MaxMaxMessageBytes     = 100 << 20
)

// partOverhead is a generous bound of the headers and boundary of one
// attachment part.
const partOverhead = 1024

// ErrMessageTooLarge is wrapped by the permanent error of a message that
// would exceed max_message_bytes: retrying cannot help, so the submission
// becomes a dead letter for a person (who can send the files another way).
var ErrMessageTooLarge = errors.New("e-mail with its attachments would exceed the route's max_message_bytes")

// attach reads atts through files into msg as MIME parts (multipart/mixed,
// base64), after checking that the whole message stays within the size
// limit. It checks every file's size and SHA-256 against the record, so a
// mailbox never gets other bytes than the resident sent. Errors are
// *gateway.DeliveryError: permanent for a message too large and for files
// gone or changed, temporary when the store cannot be read now.
func (c *Connector) attach(ctx context.Context, msg *smtpmail.Message, atts []gateway.Attachment, files gateway.AttachmentFiles) error {
	if len(atts) == 0 {
		return nil
	}
	if files == nil {
		return temporary(errors.New("attachments but no way to read them"))
	}
	var base bytes.Buffer
	if _, err := msg.WriteTo(&base); err != nil {
		return permanent(err)
	}
	size := int64(base.Len())
	for _, a := range atts {
		size += smtpmail.EncodedSize(a.Size) + partOverhead
	}
	if size > c.maxMessage {
		return permanent(fmt.Errorf("%w: %d attachments make about %d bytes, the limit is %d", ErrMessageTooLarge, len(atts), size, c.maxMessage))
	}
	for i, a := range atts {
		data, err := readChecked(ctx, files, a)
		if err != nil {
			return fmt.Errorf("attachment %d of %d: %w", i+1, len(atts), err)
		}
		msg.Attachments = append(msg.Attachments, smtpmail.Attachment{Filename: a.Name, ContentType: a.Type, Data: data})
	}
	return nil
}

// readChecked reads one attachment and checks its size and digest.
func readChecked(ctx context.Context, files gateway.AttachmentFiles, a gateway.Attachment) ([]byte, error) {
	rc, err := files.Open(ctx, a)
	if errors.Is(err, gateway.ErrAttachmentNotFound) {
		return nil, permanent(err)
	}
	if err != nil {
		return nil, temporary(err)
	}
	defer rc.Close()
	buf := bytes.NewBuffer(make([]byte, 0, a.Size))
	if _, err := io.Copy(buf, io.LimitReader(rc, a.Size+1)); err != nil {
		return nil, temporary(fmt.Errorf("reading the file: %w", err))
	}
	sum := sha256.Sum256(buf.Bytes())
	if int64(buf.Len()) != a.Size || hex.EncodeToString(sum[:]) != a.SHA256 {
		return nil, permanent(errors.New("the stored file differs from the one recorded (size or SHA-256)"))
	}
	return buf.Bytes(), nil
}
