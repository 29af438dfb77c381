package httpapi

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// LimitConnsPerIP wraps a listener so that one client address (IPv6: one
// /64) holds at most max open connections; further ones are answered 429
// and closed at once, before anything is read. It bounds what slow senders
// can pin (a connection that announces a large body and then sends a byte
// at a time holds a body buffer until the read deadline): with max 64 and
// the 256 KB body limit, one address pins at most 16 MB. Peers in trusted
// (GATEWAY_TRUSTED_PROXIES: the load balancer, many clients on one
// address) are not limited: there the proxy must cap connections per
// client (see the README's security section). max <= 0 returns ln as is.
func LimitConnsPerIP(ln net.Listener, max int, trusted []string) (net.Listener, error) {
	if max <= 0 {
		return ln, nil
	}
	pfx, err := parseTrusted(trusted)
	if err != nil {
		return nil, err
	}
	return &perIPListener{Listener: ln, max: max, trusted: pfx, open: map[string]int{}}, nil
}

type perIPListener struct {
	net.Listener
	max     int
	trusted []netip.Prefix

	mu   sync.Mutex
	open map[string]int // client key -> open connections
}

// tooMany is written to a connection over the limit.
const tooMany = "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 34\r\n\r\nToo many connections from address\n"

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, isTCP := c.(*net.TCPConn)
		if !isTCP {
			return c, nil // not TCP (tests with pipes): nothing to count by
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil {
			return c, nil
		}
		a := ap.Addr().Unmap()
		exempt := false
		for _, p := range l.trusted {
			if p.Contains(a) {
				exempt = true
				break
			}
		}
		if exempt {
			return c, nil
		}
		key := clientKey(a)
		l.mu.Lock()
		if l.open[key] >= l.max {
			l.mu.Unlock()
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(tooMany))
			_ = c.Close()
			continue
		}
		l.open[key]++
		l.mu.Unlock()
		return &countedConn{TCPConn: tc, release: func() {
			l.mu.Lock()
			if l.open[key]--; l.open[key] <= 0 {
				delete(l.open, key)
			}
			l.mu.Unlock()
		}}, nil
	}
}

// countedConn is the *net.TCPConn itself with Close counted: embedding the
// concrete connection (not the net.Conn interface) keeps its ReadFrom, which
// is how a body sent from a file reaches sendfile(2) (bufio.Writer.ReadFrom
// in fasthttp, then TCPConn.ReadFrom). Wrapped in an interface the kept
// catalog bodies were copied through user space on every request.
type countedConn struct {
	*net.TCPConn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.TCPConn.Close()
	c.once.Do(c.release)
	return err
}
