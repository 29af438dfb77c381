package redisstore

import (
	"errors"
	"fmt"
	"runtime"
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
	return redis.NewUniversalClient(opts), nil
}
