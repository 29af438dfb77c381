// Package smtpmail writes e-mail (RFC 5322, MIME, RFC 2047 headers) and
// sends it over SMTP with STARTTLS and AUTH. It is shared by the e-mail
// connector (submissions to a department's mailbox) and the notification
// outbox (gateway/notify: messages to residents), so both speak SMTP the
// same way: one session per message, a deadline on every step, 5xx replies
// permanent and everything else temporary.
package smtpmail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

// MaxServerBytes is what one session reads from the server at most: replies
// are a few lines, so a broken or hostile server cannot make the sender
// read without end.
const MaxServerBytes = 1 << 20

// Client sends messages through one SMTP server. It is safe for concurrent
// use; every Send is its own session.
type Client struct {
	Addr     string // host:port
	Host     string // for TLS verification and AUTH
	Domain   string // EHLO name
	Username string // empty: no AUTH
	Password string
	// TLSConfig, when set, makes STARTTLS required.
	TLSConfig *tls.Config
	Timeout   time.Duration // per step
	Dial      func(ctx context.Context, network, addr string) (net.Conn, error)
}

func temporary(err error) error { return &gateway.DeliveryError{Err: err} }
func permanent(err error) error { return &gateway.DeliveryError{Permanent: true, Err: err} }

// Send runs one SMTP session that hands body (the message, CRLF lines) to
// the server for the recipients. Errors are *gateway.DeliveryError: SMTP 5xx
// replies permanent, 4xx replies and network errors temporary. Every step
// has its own deadline of Timeout; the context's end closes the connection.
func (c *Client) Send(ctx context.Context, from string, to []string, body []byte) (err error) {
	dial := c.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	raw, err := dial(dctx, "tcp", c.Addr)
	cancel()
	if err != nil {
		return temporary(fmt.Errorf("smtp %s: connect: %w", c.Addr, unwrapOp(err)))
	}
	conn := &limitedConn{Conn: raw, left: MaxServerBytes}
	// The context's end (shutdown, the caller's deadline) closes the
	// connection, which ends whatever step is waiting.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
		if err != nil && ctx.Err() != nil {
			err = temporary(fmt.Errorf("smtp %s: %w (%v)", c.Addr, ctx.Err(), err))
		}
	}()
	step := func(what string, f func() error) error {
		_ = conn.SetDeadline(time.Now().Add(timeout))
		if err := f(); err != nil {
			return c.classify(what, err)
		}
		return nil
	}
	var cl *smtp.Client
	if err := step("greeting", func() (err error) { cl, err = smtp.NewClient(conn, c.Host); return err }); err != nil {
		return err
	}
	if err := step("EHLO", func() error { return cl.Hello(c.Domain) }); err != nil {
		return err
	}
	if c.TLSConfig != nil {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			// A misconfigured (or tampered-with) server: keep the
			// message until someone fixes it.
			return temporary(fmt.Errorf("smtp %s: the server does not offer STARTTLS, which is required", c.Addr))
		}
		if err := step("STARTTLS", func() error { return cl.StartTLS(c.TLSConfig) }); err != nil {
			return err
		}
	}
	if c.Username != "" {
		if ok, _ := cl.Extension("AUTH"); !ok {
			return temporary(fmt.Errorf("smtp %s: the server does not offer AUTH", c.Addr))
		}
		if err := step("AUTH", func() error { return cl.Auth(smtp.PlainAuth("", c.Username, c.Password, c.Host)) }); err != nil {
			return err
		}
	}
	if err := step("MAIL FROM", func() error { return cl.Mail(from) }); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := step("RCPT TO", func() error { return cl.Rcpt(rcpt) }); err != nil {
			return err
		}
	}
	if err := step("DATA", func() error {
		w, err := cl.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write(body); err != nil {
			return err
		}
		// Close sends the final dot and reads the server's answer: only a
		// 250 here means the server took the message.
		return w.Close()
	}); err != nil {
		return err
	}
	// The message is accepted; a failing QUIT changes nothing.
	_ = conn.SetDeadline(time.Now().Add(timeout))
	_ = cl.Quit()
	return nil
}

// limitedConn ends a session when the server sends more than a session
// needs.
type limitedConn struct {
	net.Conn
	left int64
}

var errTooChatty = errors.New("the server sent more than 1 MiB of replies")

func (c *limitedConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errTooChatty
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

// classify turns an SMTP or network error into a delivery error: 5xx
// replies are permanent, 4xx replies and everything else temporary.
func (c *Client) classify(what string, err error) error {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		e := fmt.Errorf("smtp %s: %s: the server answered %d %s", c.Addr, what, tp.Code, oneLine(tp.Msg))
		if tp.Code >= 500 && tp.Code < 600 {
			return permanent(e)
		}
		return temporary(e)
	}
	return temporary(fmt.Errorf("smtp %s: %s: %w", c.Addr, what, unwrapOp(err)))
}

// oneLine shortens a server's reply text for logs.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return fmt.Errorf("%s: %w", op.Op, op.Err)
	}
	return err
}
