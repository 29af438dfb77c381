package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// setupMail gives the e-mail routes their settings: the configured SMTP
// server, or in development without SMTP_HOST the demo's mail catcher, an
// in-process SMTP server (STARTTLS with a throw-away certificate) that logs
// each message's reference and Message-ID and keeps nothing.
func setupMail(cfg config, env map[string]string, log *slog.Logger) (stop func(), err error) {
	env["SMTP_PORT"], env["MAIL_FROM"], env["CITY_OFFICE_MAILBOX"] = cfg.SMTPPort, cfg.MailFrom, cfg.CityOfficeMailbox
	if cfg.SMTPHost != "" || cfg.production() {
		return func() {}, nil
	}
	sink, err := startMailCatcher(log.With("component", "mail-catcher"))
	if err != nil {
		return nil, err
	}
	env["SMTP_HOST"], env["SMTP_PORT"], env["SMTP_CA_FILE"] = "127.0.0.1", sink.port, sink.caFile
	env["SMTP_USERNAME"], env["SMTP_PASSWORD"] = "", ""
	log.Info("no SMTP_HOST: e-mail routes deliver to an in-process mail catcher that only logs", "addr", sink.ln.Addr().String())
	return sink.stop, nil
}

// Limits of the mail catcher.
const (
	catcherMaxMessage = 10 << 20 // bytes of one message
	catcherMaxConns   = 16
	catcherIdle       = time.Minute
)

type mailCatcher struct {
	ln     net.Listener
	port   string
	caFile string
	tls    *tls.Config
	log    *slog.Logger
	sem    chan struct{}
	wg     sync.WaitGroup
}

func startMailCatcher(log *slog.Logger) (*mailCatcher, error) {
	cert, certPEM, err := throwAwayCert()
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "gateway-mail-catcher-*.pem")
	if err != nil {
		return nil, err
	}
	_, werr := f.Write(certPEM)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(f.Name())
		return nil, werr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	m := &mailCatcher{ln: ln, port: strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), caFile: f.Name(), log: log,
		tls: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		sem: make(chan struct{}, catcherMaxConns)}
	m.wg.Add(1)
	go m.serve()
	return m, nil
}

func (m *mailCatcher) stop() {
	m.ln.Close()
	m.wg.Wait()
	os.Remove(m.caFile)
}

func (m *mailCatcher) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		select {
		case m.sem <- struct{}{}:
		default:
			c.Write([]byte("421 too many connections\r\n"))
			c.Close()
			continue
		}
		go func() {
			defer func() { <-m.sem }()
			m.session(c)
		}()
	}
}

// session speaks the little SMTP the gateway's connector needs.
func (m *mailCatcher) session(c net.Conn) {
	defer func() { c.Close() }()
	r, w := bufio.NewReader(c), c.(io.Writer)
	say := func(s string) bool {
		_ = c.SetDeadline(time.Now().Add(catcherIdle))
		_, err := io.WriteString(w, s+"\r\n")
		return err == nil
	}
	secure := false
	say("220 localhost gateway demo mail catcher")
	for {
		_ = c.SetDeadline(time.Now().Add(catcherIdle))
		line, err := readLine(r, 1000)
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO", "HELO":
			if secure {
				say("250-localhost\r\n250-8BITMIME\r\n250 SIZE " + strconv.Itoa(catcherMaxMessage))
			} else {
				say("250-localhost\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SIZE " + strconv.Itoa(catcherMaxMessage))
			}
		case "STARTTLS":
			if secure {
				say("503 already secure")
				continue
			}
			say("220 go ahead")
			tc := tls.Server(c, m.tls)
			_ = tc.SetDeadline(time.Now().Add(catcherIdle))
			if err := tc.Handshake(); err != nil {
				return
			}
			c, r, w, secure = tc, bufio.NewReader(tc), tc, true
		case "MAIL", "RCPT", "RSET", "NOOP":
			say("250 ok")
		case "DATA":
			if !secure {
				say("530 STARTTLS first")
				continue
			}
			say("354 end with <CRLF>.<CRLF>")
			msg, err := readData(r, catcherMaxMessage)
			if errors.Is(err, errTooBig) {
				say("552 message too big")
				continue
			}
			if err != nil {
				return
			}
			m.received(msg)
			say("250 ok, caught")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 not implemented")
		}
	}
}

// received logs what a person needs to find the message, never its body.
func (m *mailCatcher) received(raw []byte) {
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		m.log.Warn("mail catcher: not an RFC 5322 message", "bytes", len(raw))
		return
	}
	m.log.Info("mail catcher received a message", "reference", msg.Header.Get("X-Gateway-Reference"),
		"service", msg.Header.Get("X-Gateway-Service"), "message_id", msg.Header.Get("Message-ID"), "bytes", len(raw))
}

var errTooBig = errors.New("message too big")

func readLine(r *bufio.Reader, limit int) (string, error) {
	var b []byte
	for {
		part, more, err := r.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, part...)
		if len(b) > limit {
			return "", errTooBig
		}
		if !more {
			return string(b), nil
		}
	}
}

// readData reads a DATA section up to the lone dot, undoing dot-stuffing.
// Past limit it reads on to the dot and reports errTooBig.
func readData(r *bufio.Reader, limit int) ([]byte, error) {
	var out []byte
	tooBig, atStart := false, true
	for {
		line, err := r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		start := atStart
		atStart = err == nil // the next chunk starts a line
		if start && string(line) == ".\r\n" {
			break
		}
		if start && len(line) > 1 && line[0] == '.' {
			line = line[1:]
		}
		if len(out)+len(line) > limit {
			tooBig = true
			out = out[:0]
		}
		if !tooBig {
			out = append(out, line...)
		}
	}
	if tooBig {
		return nil, errTooBig
	}
	return out, nil
}

// throwAwayCert makes a self-signed certificate for 127.0.0.1, valid for a
// day: the demo's mail catcher trusts nobody and nobody trusts it but the
// gateway that started it.
func throwAwayCert() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "gateway demo mail catcher"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
