package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client timeouts. Blocking stream reads get their block time added by
// go-redis, so ReadTimeout does not cut them short.
const (
	DialTimeout  = 5 * time.Second
	ReadTimeout  = 3 * time.Second
	WriteTimeout = 3 * time.Second
)

// ClientConfig says how to reach Redis. Set URL, or Addrs.
//
//   - URL ("redis://user:pass@host:6379/0", "rediss://..." for TLS): one node.
//   - Addrs with MasterName: Sentinel; Addrs are the sentinels and MasterName
//     the monitored primary. Failover is followed automatically.
//   - Several Addrs without MasterName: Cluster; Addrs are seed nodes.
//   - One Addr: one node.
type ClientConfig struct {
	URL        string
	Addrs      []string
	MasterName string
	Username   string // overrides the URL's user when set
	Password   string // overrides the URL's password when set
	// PoolSize is the number of connections per node. Each dispatcher worker
	// holds one while it blocks on the stream, so this must exceed the
	// workers plus the concurrent HTTP requests. Zero means
	// max(32, 10 per CPU).
	PoolSize int
}

// NewClient returns a client for a single node, Sentinel or Cluster as cfg
// says. Context deadlines are honoured by every command (ContextTimeoutEnabled).
// It does not connect; call (*Store).Ping to check the connection.
func NewClient(cfg ClientConfig) (redis.UniversalClient, error) {
	opts := &redis.UniversalOptions{}
	switch {
	case cfg.URL != "" && len(cfg.Addrs) > 0:
		return nil, errors.New("redisstore: set either a URL or addresses, not both")
	case cfg.URL != "":
		o, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: parse URL: %w", err)
		}
		opts.Addrs = []string{o.Addr}
		opts.DB = o.DB
		opts.Username = o.Username
		opts.Password = o.Password
		opts.TLSConfig = o.TLSConfig
		opts.ClientName = o.ClientName
		opts.Protocol = o.Protocol
	case len(cfg.Addrs) > 0:
		opts.Addrs = cfg.Addrs
		opts.MasterName = cfg.MasterName
	default:
		return nil, errors.New("redisstore: no Redis URL or addresses configured")
	}
	if cfg.Username != "" {
		opts.Username = cfg.Username
	}
	if cfg.Password != "" {
		opts.Password = cfg.Password
	}
	opts.DialTimeout = DialTimeout
	opts.ReadTimeout = ReadTimeout
	opts.WriteTimeout = WriteTimeout
	opts.ContextTimeoutEnabled = true
	opts.PoolSize = cfg.PoolSize
	if opts.PoolSize <= 0 {
		opts.PoolSize = max(32, 10*runtime.GOMAXPROCS(0))
	}
	if opts.ClientName == "" {
		opts.ClientName = "servicegateway"
	}
	if opts.MasterName == "" && len(opts.Addrs) > 1 {
		return newClusterClient(opts.Cluster()), nil
	}
	return redis.NewUniversalClient(opts), nil
}

// Cluster topology. go-redis reloads the slot map on MOVED and ASK and
// otherwise only every ClusterStateReloadInterval (60 s by default): with
// a primary dead and failed over, commands kept going to the dead address
// (connection refused) and the gateway answered 503 for 40 s after the
// cluster itself had failed over in 3 s. So a connection error (or
// timeout) on any command reloads the slot map, at most once per
// ClusterReloadMinGap, and the periodic reload runs every
// ClusterReloadInterval.
const (
	ClusterReloadInterval = 10 * time.Second
	ClusterReloadMinGap   = 250 * time.Millisecond
)

func newClusterClient(o *redis.ClusterOptions) *redis.ClusterClient {
	o.ClusterStateReloadInterval = ClusterReloadInterval
	c := redis.NewClusterClient(o)
	c.AddHook(&reloadOnError{c: c})
	return c
}

// reloadOnError is a go-redis hook that reloads a Cluster's slot map when
// a command fails on the connection, rate-limited.
type reloadOnError struct {
	c    *redis.ClusterClient
	last atomic.Int64 // unix nanoseconds of the last reload asked for
}

func (h *reloadOnError) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *reloadOnError) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(ctx, err)
		return err
	}
}

func (h *reloadOnError) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(ctx, err)
		return err
	}
}

func (h *reloadOnError) check(ctx context.Context, err error) {
	if !connectionError(err) {
		return
	}
	now := time.Now().UnixNano()
	last := h.last.Load()
	if now-last < int64(ClusterReloadMinGap) || !h.last.CompareAndSwap(last, now) {
		return
	}
	h.c.ReloadState(ctx) // asynchronous in go-redis; coalesces reloads
}

// connectionError reports whether err is about the connection (refused,
// reset, closed, timed out) rather than an answer from Redis.
func connectionError(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		// CLUSTERDOWN and friends: the cluster is reorganising.
		msg := rerr.Error()
		return strings.HasPrefix(msg, "CLUSTERDOWN") || strings.HasPrefix(msg, "READONLY") || strings.HasPrefix(msg, "MASTERDOWN")
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, redis.ErrClosed) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET)
}
