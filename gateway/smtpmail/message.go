package smtpmail

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Message is one RFC 5322 e-mail with a UTF-8 text body. WriteTo renders it
// as MIME: a single text/plain part when there are no attachments, and
// multipart/mixed (the text first, then each attachment, base64) when there
// are. With HTML the text becomes multipart/alternative (plain text first,
// then the HTML). A file name is written twice: RFC 2231 (filename*=) in
// Content-Disposition, and an RFC 2047 encoded-word in Content-Type's name
// parameter for mail programs that read only that.
type Message struct {
	From      *mail.Address
	To        []*mail.Address
	Subject   string
	Date      time.Time
	MessageID string      // without angle brackets: "local@domain"
	Headers   [][2]string // extra headers (names must be ASCII tokens), values may be UTF-8
	Text      string
	// HTML is an optional rendering of Text for mail programs that prefer
	// it; it must say the same as Text.
	HTML string
	// Attachments are added as parts of a multipart/mixed message.
	Attachments []Attachment
}

// Attachment is a file sent with the message.
type Attachment struct {
	Filename    string // UTF-8; encoded per RFC 2231 in the header
	ContentType string // e.g. "application/pdf"; application/octet-stream when empty
	Data        []byte
}

// maxLine is the line length the writer keeps to (RFC 5322 asks for at most
// 78 characters, and never more than 998).
const maxLine = 76

// WriteTo writes the message with CRLF line endings, as SMTP's DATA wants.
func (m *Message) WriteTo(dst io.Writer) (int64, error) {
	if m.From == nil || len(m.To) == 0 || m.MessageID == "" {
		return 0, errors.New("email: a message needs From, To and a Message-ID")
	}
	cw := &countWriter{w: dst}
	w := bufio.NewWriter(cw)
	to := make([]string, len(m.To))
	for i, a := range m.To {
		to[i] = a.String()
	}
	header(w, "From", m.From.String())
	header(w, "To", strings.Join(to, ", "))
	header(w, "Subject", encodeWords(m.Subject))
	header(w, "Date", m.Date.Format(time.RFC1123Z))
	header(w, "Message-ID", "<"+m.MessageID+">")
	for _, h := range m.Headers {
		header(w, h[0], encodeWords(h[1]))
	}
	header(w, "MIME-Version", "1.0")
	if len(m.Attachments) == 0 {
		m.content(w)
	} else {
		b := m.boundary("mixed")
		header(w, "Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": b}))
		w.WriteString("\r\nThis is a multipart message in MIME format.\r\n")
		w.WriteString("\r\n--" + b + "\r\n")
		m.content(w)
		for _, a := range m.Attachments {
			w.WriteString("\r\n--" + b + "\r\n")
			attachmentPart(w, a)
		}
		w.WriteString("\r\n--" + b + "--\r\n")
	}
	if err := w.Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

// content writes the message's text: text/plain, or multipart/alternative
// with the HTML.
func (m *Message) content(w *bufio.Writer) {
	if m.HTML == "" {
		textPart(w, "text/plain", m.Text)
		return
	}
	b := m.boundary("alt")
	header(w, "Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": b}))
	w.WriteString("\r\n--" + b + "\r\n")
	textPart(w, "text/plain", m.Text)
	w.WriteString("\r\n--" + b + "\r\n")
	textPart(w, "text/html", m.HTML)
	w.WriteString("\r\n--" + b + "--\r\n")
}

// boundary derives a multipart boundary from the message's content, so
// that every attempt writes the same bytes. Content cannot contain a
// boundary made from a hash of itself.
func (m *Message) boundary(kind string) string {
	h := sha256.New()
	for _, s := range []string{kind, m.MessageID, m.Text, m.HTML} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	for _, a := range m.Attachments {
		fmt.Fprintf(h, "%d:%s%d:%s%d:", len(a.Filename), a.Filename, len(a.ContentType), a.ContentType, len(a.Data))
		h.Write(a.Data)
	}
	return "gw-" + kind + "-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// textPart writes the headers and the quoted-printable body of a UTF-8
// text part.
func textPart(w *bufio.Writer, mediaType, text string) {
	header(w, "Content-Type", mediaType+"; charset=utf-8")
	header(w, "Content-Transfer-Encoding", "quoted-printable")
	w.WriteString("\r\n")
	qp := quotedprintable.NewWriter(w)
	// quotedprintable turns "\n" into CRLF; bare "\r" would be encoded.
	qp.Write([]byte(strings.ReplaceAll(text, "\r\n", "\n")))
	qp.Close()
	w.WriteString("\r\n")
}

// attachmentPart writes one attachment, base64 in lines of 76 characters.
func attachmentPart(w *bufio.Writer, a Attachment) {
	ct := a.ContentType
	if _, _, err := mime.ParseMediaType(ct); ct == "" || err != nil {
		ct = "application/octet-stream"
	}
	name := a.Filename
	if name == "" {
		name = "attachment"
	}
	name = noControls(name)
	// The encoded-word stands in a quoted string: it has no '"' or '\\'.
	legacy := strings.NewReplacer(`"`, "", `\\`, "").Replace(encodeWords(name))
	header(w, "Content-Type", ct+"; name=\""+legacy+"\"")
	header(w, "Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	header(w, "Content-Transfer-Encoding", "base64")
	w.WriteString("\r\n")
	enc := base64.StdEncoding.EncodeToString(a.Data)
	for len(enc) > maxLine {
		w.WriteString(enc[:maxLine] + "\r\n")
		enc = enc[maxLine:]
	}
	if enc != "" {
		w.WriteString(enc + "\r\n")
	}
}

// header writes "Name: value", folded at spaces so that lines stay short.
// Control characters in the value (a CR or LF would inject headers) are
// replaced by spaces.
func header(w *bufio.Writer, name, value string) {
	value = noControls(value)
	line := name + ":"
	width := len(line)
	for _, word := range strings.Split(value, " ") {
		if width+1+len(word) > maxLine {
			line += "\r\n"
			width = 0
		}
		line += " " + word
		width += 1 + len(word)
	}
	w.WriteString(line + "\r\n")
}

// encodeWords returns s unchanged when it is printable ASCII, else as RFC
// 2047 encoded-words (Q encoding, UTF-8), which mime splits so that each
// word stays within 75 characters.
func encodeWords(s string) string {
	s = noControls(s)
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 || (s[i] < 0x20 && s[i] != '\t') {
			ascii = false
			break
		}
	}
	if ascii && !strings.Contains(s, "=?") {
		return s
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return mime.QEncoding.Encode("utf-8", s)
}

// noControls replaces control characters (a CR or LF would end a header)
// with spaces.
func noControls(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// EncodedSize is the number of bytes an attachment of n bytes takes in
// the message body: base64 in lines of 76 characters and CRLF, without its
// part headers.
func EncodedSize(n int64) int64 {
	enc := (n + 2) / 3 * 4
	return enc + (enc+maxLine-1)/maxLine*2
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// String is the message as text, for tests and debugging.
func (m *Message) String() string {
	var b strings.Builder
	if _, err := m.WriteTo(&b); err != nil {
		return fmt.Sprintf("invalid message: %v", err)
	}
	return b.String()
}
