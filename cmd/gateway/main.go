// Command gateway runs the municipality's digital front door: the service
// catalog, the forms, the durable hand-off to the departments' case systems
// and the status pages. With no configuration it starts a demo on an
// embedded Redis with the reference case system; see `gateway --help`.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/casesim"
	"github.com/kommun/servicegateway/gateway/clamav"
	"github.com/kommun/servicegateway/gateway/delivery"
	"github.com/kommun/servicegateway/gateway/httpapi"
	"github.com/kommun/servicegateway/gateway/httpscan"
	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/gateway/s3blob"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"

	// Connector kinds register themselves.
	_ "github.com/kommun/servicegateway/services/connectors/email"
	_ "github.com/kommun/servicegateway/services/connectors/httpjson"
	_ "github.com/kommun/servicegateway/services/connectors/proxy"

	// Field kinds register themselves.
	_ "github.com/kommun/servicegateway/services/fields/all"
	"github.com/kommun/servicegateway/services/fields/location"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		var code exitCode
		if errors.As(err, &code) {
			os.Exit(int(code)) // the subcommand has said why
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// exitCode is an error that only carries a subcommand's exit status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run is the whole program, with its inputs passed in so tests can run it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			printHelp(stdout)
			return nil
		case "check":
			dir := ""
			if len(args) > 1 {
				dir = args[1]
			}
			return check(dir, stdout)
		case "verify-receipt":
			if code := verifyReceipt(ctx, args[1:], getenv, stdout, stderr); code != 0 {
				return exitCode(code)
			}
			return nil
		case "serve":
		default:
			printHelp(stderr)
			return fmt.Errorf("unknown command %q", args[0])
		}
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, getenv, stdout, newLogger(cfg.LogLevel, stderr))
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// loadServices reads the manifests from dir, or the built-in ones, and adds
// their translations to tr.
func loadServices(dir string, tr *locales.Translations) (*services.Loaded, *services.Catalog, error) {
	var fsys fs.FS = services.Builtin
	if dir != "" {
		fsys = os.DirFS(dir)
	}
	return services.LoadCatalog(fsys, tr)
}

// check is `gateway check [DIR]`: report every problem, exit non-zero on any.
func check(dir string, stdout io.Writer) error {
	tr, err := locales.New()
	if err != nil {
		return err
	}
	loaded, _, err := loadServices(dir, tr)
	if err != nil {
		var ps services.Problems
		if errors.As(err, &ps) {
			return fmt.Errorf("%s\n%d problem(s) found", ps.Error(), len(ps))
		}
		return err
	}
	for _, s := range loaded.Services {
		fmt.Fprintf(stdout, "ok  %-32s %s (%s)\n", s.ID, s.Version, s.Source)
	}
	fmt.Fprintf(stdout, "%d services, no problems\n", len(loaded.Services))
	return nil
}

func serve(ctx context.Context, cfg config, getenv func(string) string, stdout io.Writer, log *slog.Logger) error {
	tr, err := locales.New()
	if err != nil {
		return err
	}
	location.Configure(cfg.Area) // the location field kind's area, before any form is checked
	loaded, catalog, err := loadServices(cfg.ServicesDir, tr)
	if err != nil {
		return fmt.Errorf("services:\n%w", err)
	}
	points, err := loadServicePoints(cfg.ServicePointsFile) // the staff desk's service points
	if err != nil {
		return err
	}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()

	// Redis: the configured one, or an embedded one for the demo.
	rcfg := redisstore.ClientConfig{URL: cfg.RedisURL, Addrs: cfg.RedisAddrs, MasterName: cfg.RedisMaster,
		Username: cfg.RedisUser, Password: cfg.RedisPassword, PoolSize: cfg.Workers + 32}
	if cfg.RedisURL == "" && len(cfg.RedisAddrs) == 0 {
		addr, stop, err := redisstore.StartEmbedded()
		if err != nil {
			return err
		}
		cleanups = append(cleanups, stop)
		rcfg.URL = "redis://" + addr
		log.Warn("no REDIS_URL: using an embedded in-memory Redis; NOTHING SURVIVES A RESTART. Set REDIS_URL for real use.")
	}
	rdb, err := redisstore.NewClient(rcfg)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { rdb.Close() })
	store := redisstore.New(rdb, cfg.RedisPrefix)
	store.IndexKeep = redisstore.IndexKeepFor(longestRetention(loaded.Services))
	store.WaitReplicas, store.WaitTimeout = cfg.RedisWaitReplicas, cfg.RedisWaitTimeout
	store.MaxUploadsPerScope = cfg.UploadsPerClient
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = store.EnsureGroup(pingCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if err := setupBlobs(ctx, cfg, store, log); err != nil {
		return err
	}

	// The demo's reference case system, when none is configured.
	env := map[string]string{}
	lookup := func(name string) string {
		if v, ok := env[name]; ok {
			return v
		}
		return getenv(name)
	}
	if cfg.CasesimSecret == "" && !cfg.production() {
		env["CASESIM_SECRET"] = casesim.DemoSecret
		log.Warn("CASESIM_SECRET unset: using the public demo secret")
	}
	var demoCasesim *casesim.Server // told the gateway's address once it listens
	if cfg.CasesimURL == "" && !cfg.production() {
		url, cs, stop, err := startCasesim(lookup("CASESIM_SECRET"), log)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, stop)
		demoCasesim = cs
		env["CASESIM_URL"] = url
		log.Info("reference case system started in-process", "url", url)
	}

	// E-mail routes: the configured SMTP server, or the demo's mail catcher.
	stopMail, err := setupMail(cfg, env, log)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, stopMail)

	// Existing e-services behind the front door: the key of their identity
	// tokens, and the demo's e-service.
	identityKeys, err := setupIdentityKeys(cfg, loaded)
	if err != nil {
		return err
	}
	if lookup("DEMO_ESERVICE_URL") == "" && !cfg.production() {
		url, stop, err := startDemoEService(identityKeys, log)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, stop)
		env["DEMO_ESERVICE_URL"] = url
	}

	// Connectors, one per service.
	upstreams := map[string]httpapi.Upstream{}
	routes := map[string]delivery.Route{}
	callbacks := map[string]httpapi.CallbackVerifier{} // verify status updates signed by back-ends
	for _, svc := range loaded.Services {
		conn, err := loaded.Modules[svc.ID].Provision(lookup)
		if err != nil {
			return fmt.Errorf("service %s (%s): route: %w", svc.ID, svc.Source, err)
		}
		if c, ok := conn.(services.Cleaner); ok {
			cleanups = append(cleanups, func() { _ = c.Cleanup() })
		}
		routes[svc.ID] = delivery.Route{Connector: conn, Retention: svc.Retention}
		if v, ok := conn.(httpapi.CallbackVerifier); ok {
			callbacks[svc.ID] = v
		}
		if up, ok := conn.(httpapi.Upstream); ok && svc.Prefix != "" {
			upstreams[svc.ID] = up
		}
	}

	var counter httpapi.Counter
	if cfg.RateLimit {
		counter = store
	}
	// Listen before the HTTP layer is built: the development identity
	// provider's issuer is this process's address.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, func() { _ = ln.Close() })
	addr := ln.Addr()
	if ln, err = httpapi.LimitConnsPerIP(ln, cfg.MaxConnsPerIP, cfg.TrustedProxies); err != nil {
		return err
	}
	identity, err := setupIdentity(cfg, store, "http://"+displayAddr(addr), log)
	if err != nil {
		return err
	}
	if identity != nil && identity.Sessions != nil {
		// Sessions ended on any replica leave this one's cache (Pub/Sub).
		go identity.Sessions.WatchEnded(ctx)
	}
	metrics := httpapi.NewMetrics(func(ctx context.Context) (httpapi.QueueStats, error) {
		st, err := store.Stats(ctx)
		return httpapi.QueueStats{Stream: st.Stream, Pending: st.Pending, Retrying: st.Retrying, Dead: st.Dead, OldestAge: st.OldestAge}, err
	})
	// Usage statistics: events buffered in memory, flushed to Redis.
	use := setupUsage(ctx, cfg, store, metrics.Registry(), log)
	// The one intake: every channel's submit rules. The store takes the
	// writes, the idempotency lock and the desk's records.
	in, err := intake.New(intake.Deps{Store: store, Locker: store, Desk: store, Events: use.events, Answers: store, Logger: log,
		Attachments: store, Scanner: scannerOf(cfg),
		Config: intake.Config{UploadTTL: cfg.UploadTTL, AttachmentKeep: cfg.AttachmentKeep, MaxSubmissionAttachments: cfg.AttachmentsMax,
			ScanTimeout: cfg.ScanTimeout, ScanUnavailable: cfg.ScanUnavailable}})
	if err != nil {
		return err
	}
	// Save and resume, desk -> home: drafts in the same store.
	drafts, err := intake.NewDrafts(store, store, log, intake.DraftConfig{TTL: cfg.DraftTTL, CodeTTL: cfg.DraftCodeTTL,
		MaxBytes: cfg.DraftMaxBytes, PerPerson: cfg.DraftsPerPerson, PerBrowser: cfg.DraftsPerBrowser, PerDesk: cfg.DraftsPerDesk})
	if err != nil {
		return err
	}
	receipts, err := setupReceipts(cfg, log)
	if err != nil {
		return err
	}
	if _, ok := catalog.Get(cfg.AccessibilityService); !ok {
		if cfg.AccessibilitySet {
			return fmt.Errorf("GATEWAY_ACCESSIBILITY_SERVICE: no service %q", cfg.AccessibilityService)
		}
		log.Warn("no feedback service for the accessibility statement: /tillganglighet shows no form", "service", cfg.AccessibilityService)
	}
	o311, err := setupOpen311(cfg, catalog, in, store, tr) // Open311 GeoReport v2 over the same intake
	if err != nil {
		return err
	}
	// Download links of attachments for back-ends (http connector).
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = "http://" + displayAddr(addr)
	}
	links, err := attachmentLinks(cfg, publicURL, hasFileField(loaded.Services), log)
	if err != nil {
		return err
	}
	var draining atomic.Bool // set at SIGTERM: /readyz answers 503
	app, err := httpapi.NewServer(httpapi.Deps{
		Intake: in, Drafts: drafts, Desk: store, DeadLetters: store, Statuses: store, Open311: o311, NotifyPrefs: store, MessageDeadLetters: store,
		ServicePoints: points,
		Usage:         use.tracker, UsageReports: use.reports, // nil interfaces when switched off
		Metrics:   metrics,
		Callbacks: func(id string) httpapi.CallbackVerifier { return callbacks[id] },
		Catalog:   catalog, Store: store, Translations: tr, Logger: log, Counter: counter,
		Ready: identityReady(func(ctx context.Context) error {
			if draining.Load() {
				return errDraining
			}
			return store.Ready(ctx) // a write: Redis out of memory is not ready
		}, identity),
		Auth: identity, Receipts: receipts, Notices: store, Satisfaction: store,
		Upstreams: upstreams, IdentityKeys: identityKeys,
		Attachments: store, AttachmentLinks: links,
		Config: httpapi.Config{PublicURL: cfg.PublicURL, Production: cfg.production(), ReadTimeout: cfg.ReadTimeout,
			SubmitLimit: cfg.SubmitLimit, TrustedProxies: cfg.TrustedProxies, OpenDataMinCount: cfg.OpenDataMinCount,
			AccessibilityService: cfg.AccessibilityService,
			DraftResumeLimit:     cfg.DraftCodeLimit, DraftsPerAddress: cfg.DraftsPerAddress},
	})
	if err != nil {
		return err
	}

	disp := delivery.New(store, func(id string) (delivery.Route, bool) { r, ok := routes[id]; return r, ok }, delivery.Config{
		Workers: cfg.Workers, BackendLimit: cfg.BackendLimit, RetryBase: cfg.RetryBase, RetryMax: cfg.RetryMax, MaxAttempts: cfg.RetryAttempts,
		ClaimIdle: cfg.ClaimIdle, Timeout: cfg.DeliveryTimeout, Logger: log,
		BreakerFailures: cfg.BreakerFailures, BreakerOpen: cfg.BreakerOpen, Observer: metrics,
		AfterDeliver: faultAfterDeliver(cfg.Fault, log), Usage: use.delivery,
		Attachments: store, Links: links,
	})
	dispCtx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	delivers := cfg.Workers > 0
	if delivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := disp.Run(dispCtx); err != nil {
				log.Error("dispatcher stopped", "error", err)
			}
		}()
	} else {
		// Intake only: the submissions wait in the stream (nothing is
		// lost) for a process with workers.
		log.Warn("GATEWAY_WORKERS=0: this process delivers no submissions and no follow-ups; run at least one process with workers on the same Redis")
	}
	// Notifications to residents: the outbox the status scripts write.
	notifier, stopSMS, err := setupNotify(cfg, lookup, store, tr, publicURL, notifyConsumer(), metrics, log)
	if err != nil {
		stopDispatch()
		return err
	}
	cleanups = append(cleanups, stopSMS)
	// Answers to completion requests, to the case systems as follow-ups.
	followUps := &delivery.FollowUps{Queue: store, Routes: func(id string) (delivery.Route, bool) { r, ok := routes[id]; return r, ok },
		Consumer: notifyConsumer(), ClaimIdle: cfg.ClaimIdle, Timeout: cfg.DeliveryTimeout, MaxAttempts: cfg.RetryAttempts,
		RetryBase: cfg.RetryBase, RetryMax: cfg.RetryMax, Observer: metrics, Logger: log.With("component", "followups"),
		Attachments: store, Links: links}
	if delivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = followUps.Run(dispCtx)
		}()
	}
	if notifier != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = notifier.Run(dispCtx)
		}()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- app.Listener(ln) }()
	fmt.Fprintf(stdout, "gateway listening on http://%s\n", displayAddr(addr))
	if demoCasesim != nil {
		demoCasesim.SetGatewayURL("http://" + displayAddr(addr))
	}
	log.Info("gateway started", "addr", addr.String(), "services", len(loaded.Services), "env", cfg.Env)
	go checkProviders(ctx, identity, log)

	select {
	case <-ctx.Done():
		drain(cfg.DrainDelay, &draining, log)
	case err = <-serveErr:
	}
	// Stop taking requests, finish those in flight, then the deliveries.
	log.Info("shutting down")
	if serr := app.ShutdownWithTimeout(cfg.ShutdownTimeout); serr != nil {
		log.Warn("http shutdown", "error", serr)
	}
	stopDispatch()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(cfg.ShutdownTimeout):
		log.Warn("deliveries still in flight at shutdown; another process will take them over")
	}
	// Then the usage counters the requests and deliveries left in memory.
	usageCtx, cancelUsage := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	use.stop(usageCtx)
	cancelUsage()
	log.Info("stopped")
	return err
}

var errDraining = errors.New("draining: shutting down")

// drain marks the process as draining (/readyz answers 503) and keeps
// serving for delay, so the load balancer takes this replica out before
// its listener closes and no request meets a closed port. A second
// SIGTERM or interrupt ends the wait.
func drain(delay time.Duration, draining *atomic.Bool, log *slog.Logger) {
	if delay <= 0 {
		return
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	draining.Store(true)
	log.Info("draining: /readyz answers 503 until the listener closes", "delay", delay.String())
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-again:
		log.Info("second signal: closing the listener now")
	}
}

// demoAutoStatus is how long after a case arrives the demo's case system
// moves it to in_progress and tells the gateway, so statuses flow back.
const demoAutoStatus = 15 * time.Second

// startCasesim serves the reference case system on a loopback port.
func startCasesim(secret string, log *slog.Logger) (url string, cs *casesim.Server, stop func(), err error) {
	cs, err = casesim.New(casesim.Config{Secret: []byte(secret), Logger: log.With("component", "casesim"), AutoStatus: demoAutoStatus})
	if err != nil {
		return "", nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	srv := &http.Server{Handler: cs, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), cs, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = cs.Close()
	}, nil
}

func displayAddr(a net.Addr) string {
	s := a.String()
	if strings.HasPrefix(s, "[::]:") {
		return "localhost:" + strings.TrimPrefix(s, "[::]:")
	}
	if strings.HasPrefix(s, "0.0.0.0:") {
		return "localhost:" + strings.TrimPrefix(s, "0.0.0.0:")
	}
	return s
}

// faultAfterDeliver returns the fault-injection hook GATEWAY_FAULT asks
// for, or nil. "exit-after-deliver" kills the process with SIGKILL right
// after the first delivery a back-end accepted, before it is acknowledged
// in Redis: the crash the delivery guarantee must survive. For tests only;
// loadConfig refuses it in production.
func faultAfterDeliver(fault string, log *slog.Logger) func() {
	if fault != "exit-after-deliver" {
		return nil
	}
	log.Warn("GATEWAY_FAULT=exit-after-deliver: this process kills itself after its first delivery (tests only)")
	return func() {
		log.Warn("fault injection: killing the process between delivery and acknowledgement")
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

// longestRetention is the longest retention of any service, or 0 when a
// service keeps its submissions (retention 0): the store's indexes keep an
// entry that long (see redisstore.IndexKeepFor).
func longestRetention(svcs []*gateway.Service) time.Duration {
	var longest time.Duration
	for _, s := range svcs {
		if s.Retention <= 0 {
			return 0
		}
		longest = max(longest, s.Retention)
	}
	return longest
}

// attachmentLinks signs the download links of attachments for back-ends:
// GATEWAY_ATTACHMENT_LINK_SECRET, or else a random secret (links then work
// only on this process, until it restarts), which production refuses when
// a service takes files (needed).
func attachmentLinks(cfg config, publicURL string, needed bool, log *slog.Logger) (*gateway.AttachmentLinks, error) {
	secret := []byte(cfg.AttachmentLinkSecret)
	if len(secret) == 0 {
		if cfg.production() && needed {
			return nil, errors.New("GATEWAY_ATTACHMENT_LINK_SECRET is required in production when a service has a file field (replicas must verify each other's links)")
		}
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		log.Warn("GATEWAY_ATTACHMENT_LINK_SECRET unset: attachment links are signed with a random key of this process")
	}
	return &gateway.AttachmentLinks{BaseURL: publicURL, Secret: secret, TTL: cfg.AttachmentLinkTTL}, nil
}

// hasFileField reports whether a service takes files.
func hasFileField(svcs []*gateway.Service) bool {
	for _, s := range svcs {
		for i := range s.Fields {
			if s.Fields[i].Type == gateway.FieldFile {
				return true
			}
		}
	}
	return false
}

// scannerOf is the malware scanner GATEWAY_SCANNER names (nil: none).
func scannerOf(cfg config) intake.Scanner {
	switch {
	case strings.HasPrefix(cfg.Scanner, "clamd://"):
		return clamav.New(strings.TrimPrefix(cfg.Scanner, "clamd://"))
	case cfg.Scanner != "":
		return httpscan.New(cfg.Scanner, cfg.ScannerToken)
	}
	return nil
}

// setupBlobs puts attachment bytes in an S3-compatible store when
// GATEWAY_ATTACHMENT_STORE=s3 (checking the bucket at start) and sweeps
// the objects whose description expired in Redis, every GATEWAY_S3_SWEEP
// until ctx ends.
func setupBlobs(ctx context.Context, cfg config, store *redisstore.Store, log *slog.Logger) error {
	if cfg.AttachmentStore != "s3" {
		return nil
	}
	b, err := s3blob.New(s3blob.Config{Endpoint: cfg.S3.Endpoint, Bucket: cfg.S3.Bucket, Region: cfg.S3.Region,
		AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey, TLS: cfg.S3.TLS, Prefix: cfg.S3.Prefix,
		Timeout: cfg.S3.Timeout, Transfer: cfg.ReadTimeout + cfg.S3.Timeout})
	if err != nil {
		return err
	}
	if err := b.Ready(ctx); err != nil {
		return fmt.Errorf("GATEWAY_ATTACHMENT_STORE=s3: %w", err)
	}
	store.Blobs = b
	log.Info("attachment bytes in an S3-compatible store", "endpoint", cfg.S3.Endpoint, "bucket", cfg.S3.Bucket, "tls", cfg.S3.TLS)
	go func() {
		t := time.NewTicker(cfg.S3.Sweep)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n, err := store.SweepAttachmentBlobs(ctx, b, cfg.UploadTTL)
			if err != nil {
				log.Warn("attachment object sweep", "error", err, "deleted", n)
			} else if n > 0 {
				log.Info("attachment object sweep", "deleted", n)
			}
		}
	}()
	return nil
}
