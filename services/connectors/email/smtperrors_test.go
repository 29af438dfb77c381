package email_test

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommun/servicegateway/services/connectors/email"
)

// scriptedSMTP is a real TCP server speaking just enough SMTP to answer
// with the replies a test wants where mailpit cannot be made to: a 4xx at
// a chosen step, a connection cut after DATA's final dot, a server that
// stops answering. reply maps a step ("greet", "MAIL", "RCPT", "DATA",
// ".") to its reply line, or to "close" or "hang".
type scriptedSMTP struct {
	ln       net.Listener
	reply    map[string]string
	accepted atomic.Int32 // messages answered with 250 after the dot
}

func startScripted(t *testing.T, reply map[string]string) *scriptedSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedSMTP{ln: ln, reply: reply}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(t, c)
		}
	}()
	return s
}

func (s *scriptedSMTP) serve(t *testing.T, c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	// answer writes the scripted reply for step, or def; false: stop.
	answer := func(step, def string) bool {
		rep, ok := s.reply[step]
		if !ok {
			rep = def
		}
		switch rep {
		case "close":
			return false
		case "hang":
			_, _ = r.ReadByte() // until the client gives up and closes
			return false
		}
		if _, err := c.Write([]byte(rep + "\r\n")); err != nil {
			return false
		}
		return step != "greet" || rep[0] == '2' // a refusing greeting ends the session
	}
	if !answer("greet", "220 scripted ESMTP") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO", "HELO":
			c.Write([]byte("250-scripted\r\n250 8BITMIME\r\n"))
		case "MAIL", "RCPT":
			if !answer(verb, "250 ok") {
				return
			}
		case "DATA":
			if !answer("DATA", "354 go ahead") {
				return
			}
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			rep, ok := s.reply["."]
			if !ok || strings.HasPrefix(rep, "250") {
				s.accepted.Add(1)
			}
			if !answer(".", "250 queued") {
				return
			}
		case "QUIT":
			c.Write([]byte("221 bye\r\n"))
			return
		default:
			c.Write([]byte("250 ok\r\n"))
		}
	}
}

// connector sends to the scripted server without TLS (a development
// setting), with a short per-command timeout.
func (s *scriptedSMTP) connector(t *testing.T, tls string) *email.Connector {
	t.Helper()
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	st := &email.Settings{Host: host, Port: port, From: "e-tjanster@kommun.example", To: "registrator@kommun.example",
		TLS: tls, Timeout: "1s"}
	c, err := st.Provision(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return c.(*email.Connector)
}

func TestDeliverClassifiesSMTPReplies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reply     map[string]string
		tls       string
		permanent bool
		want      string
		accepted  int32
	}{
		{"421 at greeting", map[string]string{"greet": "421 busy, try later"}, "none", false, "greeting: the server answered 421", 0},
		{"451 at MAIL FROM", map[string]string{"MAIL": "451 local error"}, "none", false, "MAIL FROM: the server answered 451", 0},
		{"452 at RCPT TO", map[string]string{"RCPT": "452 mailbox full"}, "none", false, "RCPT TO: the server answered 452", 0},
		{"554 after the dot", map[string]string{".": "554 rejected as spam"}, "none", true, "DATA: the server answered 554", 0},
		{"550 at RCPT TO", map[string]string{"RCPT": "550 no such user"}, "none", true, "RCPT TO: the server answered 550", 0},
		// The ambiguous cut: the server may have kept the message. A retry
		// sends it again with the same Message-ID.
		{"cut after the dot", map[string]string{".": "close"}, "none", false, "DATA", 0},
		{"no answer after the dot", map[string]string{".": "hang"}, "none", false, "timeout", 0},
		{"no STARTTLS offered", nil, "starttls", false, "does not offer STARTTLS", 0},
		{"endless reply", map[string]string{"MAIL": "250-" + strings.Repeat("x", 2<<20) + "\r\n250 ok"}, "none", false, "more than 1 MiB", 0},
		{"accepted", nil, "none", false, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startScripted(t, tc.reply)
			_, err := s.connector(t, tc.tls).Deliver(context.Background(), delivery("sub-x", "XYZ-123"))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || permanent(err) != tc.permanent || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want a permanent=%v error with %q, got %v", tc.permanent, tc.want, err)
			}
			if got := s.accepted.Load(); got != tc.accepted {
				t.Errorf("server accepted %d messages, want %d", got, tc.accepted)
			}
		})
	}
}

func TestTargetNamesTheSMTPServer(t *testing.T) {
	s := startScripted(t, nil)
	if got, want := s.connector(t, "none").Target(), "smtp://"+s.ln.Addr().String(); got != want {
		t.Fatalf("Target() = %q, want %q", got, want)
	}
}

// The delivery's context ends a session that hangs.
func TestDeliverStopsWithItsContext(t *testing.T) {
	s := startScripted(t, map[string]string{"MAIL": "hang"})
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	st := &email.Settings{Host: host, Port: port, From: "a@kommun.example", To: "b@kommun.example", TLS: "none", Timeout: "2m"}
	c, err := st.Provision(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	_, err = c.Deliver(ctx, delivery("sub-y", "XYZ-124"))
	if err == nil || permanent(err) || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("want a temporary error naming the cancelled context, got %v", err)
	}
}
