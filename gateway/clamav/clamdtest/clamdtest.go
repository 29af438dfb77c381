// Package clamdtest runs a real TCP server that speaks clamd's INSTREAM
// protocol (zINSTREAM and nINSTREAM, and PING) for tests: it reads the
// length-prefixed chunks and answers "stream: Eicar-Test-Signature FOUND"
// when the stream contains the EICAR test string, "stream: OK" otherwise,
// and "INSTREAM size limit exceeded. ERROR" past MaxStream bytes, as clamd
// does. It holds at most one chunk and the EICAR string's length of the
// stream in memory.
package clamdtest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// EICAR is the EICAR anti-malware test string: harmless, and flagged by
// every scanner.
const EICAR = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

// Server is a running clamd stand-in.
type Server struct {
	ln        net.Listener
	MaxStream int64
	// Scans counts the streams answered.
	Scans atomic.Int64
	// Down, while true, makes the server close every connection without
	// an answer (a clamd that is restarting or overloaded).
	Down atomic.Bool
	wg   sync.WaitGroup
}

// Start listens on a free loopback port; the server stops with the test.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{ln: ln, MaxStream: 100 << 20}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server (a scanner that is down: connections refused).
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			s.handle(conn)
		}()
	}
}

func (s *Server) handle(conn net.Conn) {
	if s.Down.Load() {
		return
	}
	r := bufio.NewReader(conn)
	cmd, err := r.ReadString(0)
	if err != nil {
		cmd, err = r.ReadString('\n')
		if err != nil {
			return
		}
	}
	end := "\x00"
	if len(cmd) > 0 && cmd[0] == 'n' {
		end = "\n"
	}
	switch cmd[1 : len(cmd)-1] {
	case "PING":
		io.WriteString(conn, "PONG"+end)
		return
	case "INSTREAM":
	default:
		io.WriteString(conn, "UNKNOWN COMMAND"+end)
		return
	}
	var total int64
	found := false
	var tail []byte // the end of the previous chunk, for a string split between chunks
	var size [4]byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n == 0 {
			break
		}
		total += int64(n)
		if total > s.MaxStream {
			io.WriteString(conn, "INSTREAM size limit exceeded. ERROR"+end)
			return
		}
		chunk := make([]byte, n)
		if _, err := io.ReadFull(r, chunk); err != nil {
			return
		}
		window := append(tail, chunk...)
		if bytes.Contains(window, []byte(EICAR)) {
			found = true
		}
		keep := min(len(window), len(EICAR)-1)
		tail = append([]byte(nil), window[len(window)-keep:]...)
	}
	s.Scans.Add(1)
	if found {
		io.WriteString(conn, "stream: Eicar-Test-Signature FOUND"+end)
		return
	}
	io.WriteString(conn, "stream: OK"+end)
}
