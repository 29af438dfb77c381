// Package clamav is a malware scanner adapter for ClamAV's daemon, clamd,
// over TCP with the zINSTREAM command: the file is sent in chunks of at
// most ChunkSize bytes, each prefixed with its length (4 bytes, network
// order), ended by a zero length; clamd answers "stream: OK" or
// "stream: <signature> FOUND". Every step has a deadline (the context's,
// else Timeout), so a stalled clamd cannot hold an upload.
package clamav

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// ChunkSize is the largest chunk sent to clamd (its StreamMaxLength
// applies to the whole file; its default is 25 MB, raise it to the largest
// attachment accepted).
const ChunkSize = 64 << 10

// Timeout bounds a scan whose context has no deadline.
const Timeout = 30 * time.Second

// Scanner scans files with the clamd at Addr ("host:port").
type Scanner struct {
	Addr        string
	DialTimeout time.Duration // default 5s
}

// New returns a scanner for the clamd at addr.
func New(addr string) *Scanner { return &Scanner{Addr: addr, DialTimeout: 5 * time.Second} }

// ErrUnavailable wraps every failure to get an answer from clamd.
var ErrUnavailable = errors.New("clamav: clamd unavailable")

// Scan sends r to clamd. nil: clean; an error wrapping
// gateway.ErrAttachmentInfected (with the signature's name): infected; an
// error wrapping ErrUnavailable: no answer (down, timed out, refused the
// stream as too large, or an answer it does not understand). A read error
// of r itself is returned as is.
func (s *Scanner) Scan(ctx context.Context, r io.Reader) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, Timeout)
		defer cancel()
	}
	d := net.Dialer{Timeout: s.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) }) // cancellation, not only the deadline
	defer stop()
	w := bufio.NewWriterSize(conn, ChunkSize+4)
	if _, err := w.WriteString("zINSTREAM\x00"); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	buf := make([]byte, ChunkSize)
	var size [4]byte
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			binary.BigEndian.PutUint32(size[:], uint32(n))
			w.Write(size[:])
			if _, err := w.Write(buf[:n]); err != nil {
				return s.early(conn, err)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	binary.BigEndian.PutUint32(size[:], 0)
	w.Write(size[:])
	if err := w.Flush(); err != nil {
		return s.early(conn, err)
	}
	return answer(conn)
}

// early: clamd may close the connection while the file is still being
// sent (size limit exceeded); its answer says why.
func (s *Scanner) early(conn net.Conn, werr error) error {
	if err := answer(conn); err != nil && !errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, werr)
}

// answer reads clamd's reply (ended by NUL with the z prefix).
func answer(conn net.Conn) error {
	b, err := bufio.NewReader(io.LimitReader(conn, 4096)).ReadString(0)
	if err != nil && b == "" {
		return fmt.Errorf("%w: no answer: %v", ErrUnavailable, err)
	}
	reply := strings.TrimSpace(strings.TrimRight(b, "\x00"))
	switch {
	case reply == "stream: OK":
		return nil
	case strings.HasPrefix(reply, "stream: ") && strings.HasSuffix(reply, " FOUND"):
		name := strings.TrimSuffix(strings.TrimPrefix(reply, "stream: "), " FOUND")
		return fmt.Errorf("%w: %s", gateway.ErrAttachmentInfected, name)
	}
	return fmt.Errorf("%w: %q", ErrUnavailable, reply)
}
