// Command casesim runs the reference case management system: it receives
// signed deliveries from the gateway's "http" connector, assigns case numbers
// and lists what it received at GET /cases.
//
// Usage:
//
//	casesim [--help]
//
// It is configured by environment variables; see --help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kommun/servicegateway/gateway/casesim"
)

const usage = `casesim: a reference case management system for the service gateway.

It receives signed JSON deliveries at POST /cases, deduplicates them by
Idempotency-Key, answers with a case reference such as KS-2026-000001, and
lists what it received at GET /cases (GET /cases/{ref} for one case).
Its read endpoints have no authentication: bind it to a trusted network.

Usage: casesim [--help]

Environment:
  CASESIM_ADDR    address to listen on (default ":8090"; "127.0.0.1:0" picks a free port)
  CASESIM_SECRET  shared signing secret (default: the public demo value %q)
  CASESIM_DATA    optional JSON-lines file that keeps cases across restarts
  CASESIM_GATEWAY_URL  the gateway's base URL, where status updates are sent
                  (POST /cases/{ref}/status {"status","message"} forwards one, signed)
  CASESIM_AUTO_STATUS  optional duration such as 10s: move every new case to
                  in_progress that long after it arrived and tell the gateway
`

// shutdownTimeout bounds the graceful shutdown.
const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "casesim:", err)
		os.Exit(1)
	}
}

// run starts casesim and serves until ctx is done, then shuts down
// gracefully. Once listening, it prints one line
// "casesim listening on http://HOST:PORT" to stdout.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("casesim", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run reports parse errors itself
	fs.Usage = func() {}     // --help is printed to stdout below; errors name themselves
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, usage, casesim.DemoSecret)
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	}

	log := slog.New(slog.NewJSONHandler(stderr, nil))
	addr := getenv("CASESIM_ADDR")
	if addr == "" {
		addr = ":8090"
	}
	secret := getenv("CASESIM_SECRET")
	if secret == "" {
		secret = casesim.DemoSecret
		log.Warn("CASESIM_SECRET is not set: using the public demo secret; anyone can sign deliveries")
	}
	dataFile := getenv("CASESIM_DATA")
	if dataFile == "" {
		log.Info("CASESIM_DATA is not set: cases are kept in memory and lost when casesim stops")
	}

	var auto time.Duration
	if v := getenv("CASESIM_AUTO_STATUS"); v != "" {
		var perr error
		if auto, perr = time.ParseDuration(v); perr != nil || auto < 0 {
			return fmt.Errorf("CASESIM_AUTO_STATUS: want a duration such as 10s, got %q", v)
		}
	}
	srv, err := casesim.New(casesim.Config{Secret: []byte(secret), DataFile: dataFile, Logger: log,
		GatewayURL: getenv("CASESIM_GATEWAY_URL"), AutoStatus: auto})
	if err != nil {
		return err
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	fmt.Fprintf(stdout, "casesim listening on http://%s\n", displayAddr(ln.Addr()))
	log.Info("casesim started", "addr", ln.Addr().String(), "cases", srv.Count())

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("casesim stopping")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return srv.Close()
}

// displayAddr turns a listener's address into one a client can dial: the
// loopback address when listening on all interfaces.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	host := "127.0.0.1"
	if !tcp.IP.IsUnspecified() && tcp.IP != nil {
		host = tcp.IP.String()
	}
	return net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}
