package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// setting is one environment variable. The list below is the only place
// they are defined: --help and the README table are made from it.
type setting struct {
	Name, Default, Help string
}

var settings = []setting{
	{"GATEWAY_ADDR", ":8080", "address to listen on"},
	{"GATEWAY_ENV", "development", "development or production (production refuses the embedded Redis, the demo case system and demo secrets)"},
	{"GATEWAY_PUBLIC_URL", "", "external base URL for absolute links, e.g. https://e-tjanster.example.se (default: relative links)"},
	{"GATEWAY_SERVICES_DIR", "", "folder with service manifests (default: the services built into the binary)"},
	{"GATEWAY_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"GATEWAY_SHUTDOWN_TIMEOUT", "30s", "how long a shutdown waits for requests and deliveries in flight"},
	{"GATEWAY_TRUSTED_PROXIES", "", "comma-separated proxy IPs or CIDRs whose X-Forwarded-For is believed"},
	{"GATEWAY_WORKERS", "4", "delivery workers per process"},
	{"GATEWAY_RETRY_BASE", "2s", "first retry delay; doubles per attempt, with full jitter"},
	{"GATEWAY_RETRY_MAX", "10m", "longest retry delay"},
	{"GATEWAY_RETRY_ATTEMPTS", "10", "attempts before a submission becomes a dead letter"},
	{"GATEWAY_CLAIM_IDLE", "1m", "how long a delivery may sit with a silent process before another process takes it over"},
	{"GATEWAY_DELIVERY_TIMEOUT", "30s", "upper bound of one delivery attempt"},
	{"GATEWAY_RATELIMIT", "on", "on or off (off for load tests)"},
	{"GATEWAY_RATELIMIT_SUBMIT", "20", "submissions per client IP per minute"},
	{"REDIS_URL", "", "redis:// or rediss:// URL of Redis; unset: an embedded in-memory Redis (demo only, nothing survives a restart)"},
	{"REDIS_ADDRS", "", "comma-separated host:port list: several for Redis Cluster, or Sentinels with REDIS_MASTER_NAME"},
	{"REDIS_MASTER_NAME", "", "Sentinel master name"},
	{"REDIS_USERNAME", "", "Redis ACL user (with REDIS_ADDRS)"},
	{"REDIS_PASSWORD", "", "Redis password (with REDIS_ADDRS)"},
	{"GATEWAY_REDIS_PREFIX", "gw", "prefix of every Redis key, to share a Redis between installations"},
	{"CASESIM_URL", "", "URL of the reference case system the example services deliver to; unset in development: started in-process"},
	{"CASESIM_SECRET", "", "HMAC secret shared with the case system (development default: a fixed demo value)"},
}

type config struct {
	Addr, Env, PublicURL, ServicesDir, LogLevel string
	ShutdownTimeout                             time.Duration
	TrustedProxies                              []string
	Workers                                     int
	RetryBase, RetryMax                         time.Duration
	RetryAttempts                               int
	ClaimIdle, DeliveryTimeout                  time.Duration
	RateLimit                                   bool
	SubmitLimit                                 int
	RedisURL                                    string
	RedisAddrs                                  []string
	RedisMaster, RedisUser, RedisPassword       string
	RedisPrefix                                 string
	CasesimURL, CasesimSecret                   string
}

func (c config) production() bool { return c.Env == "production" }

// loadConfig reads every setting, collecting all errors at once.
func loadConfig(getenv func(string) string) (config, error) {
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		for _, s := range settings {
			if s.Name == name {
				return s.Default
			}
		}
		panic("unknown setting " + name)
	}
	var errs []string
	dur := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d < 0 {
			errs = append(errs, fmt.Sprintf("%s: want a duration such as 30s or 5m, got %q", name, get(name)))
		}
		return d
	}
	num := func(name string, min, max int) int {
		n, err := strconv.Atoi(get(name))
		if err != nil || n < min || n > max {
			errs = append(errs, fmt.Sprintf("%s: want a whole number from %d to %d, got %q", name, min, max, get(name)))
		}
		return n
	}
	list := func(name string) []string {
		var out []string
		for _, p := range strings.Split(get(name), ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	c := config{
		Addr: get("GATEWAY_ADDR"), Env: get("GATEWAY_ENV"), PublicURL: strings.TrimRight(get("GATEWAY_PUBLIC_URL"), "/"),
		ServicesDir: get("GATEWAY_SERVICES_DIR"), LogLevel: get("GATEWAY_LOG_LEVEL"),
		ShutdownTimeout: dur("GATEWAY_SHUTDOWN_TIMEOUT"), TrustedProxies: list("GATEWAY_TRUSTED_PROXIES"),
		Workers: num("GATEWAY_WORKERS", 1, 256), RetryBase: dur("GATEWAY_RETRY_BASE"), RetryMax: dur("GATEWAY_RETRY_MAX"),
		RetryAttempts: num("GATEWAY_RETRY_ATTEMPTS", 1, 1000), ClaimIdle: dur("GATEWAY_CLAIM_IDLE"),
		DeliveryTimeout: dur("GATEWAY_DELIVERY_TIMEOUT"), SubmitLimit: num("GATEWAY_RATELIMIT_SUBMIT", 1, 1000000),
		RedisURL: get("REDIS_URL"), RedisAddrs: list("REDIS_ADDRS"), RedisMaster: get("REDIS_MASTER_NAME"),
		RedisUser: get("REDIS_USERNAME"), RedisPassword: get("REDIS_PASSWORD"), RedisPrefix: get("GATEWAY_REDIS_PREFIX"),
		CasesimURL: strings.TrimRight(get("CASESIM_URL"), "/"), CasesimSecret: get("CASESIM_SECRET"),
	}
	switch get("GATEWAY_RATELIMIT") {
	case "on":
		c.RateLimit = true
	case "off":
	default:
		errs = append(errs, fmt.Sprintf("GATEWAY_RATELIMIT: want on or off, got %q", get("GATEWAY_RATELIMIT")))
	}
	if c.Env != "development" && c.Env != "production" {
		errs = append(errs, fmt.Sprintf("GATEWAY_ENV: want development or production, got %q", c.Env))
	}
	if c.production() && c.RedisURL == "" && len(c.RedisAddrs) == 0 {
		errs = append(errs, "GATEWAY_ENV=production needs REDIS_URL or REDIS_ADDRS: the embedded Redis keeps nothing")
	}
	if c.RetryMax < c.RetryBase {
		errs = append(errs, "GATEWAY_RETRY_MAX must not be less than GATEWAY_RETRY_BASE")
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return c, nil
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `gateway: the municipality's front door for e-services.

Usage:
  gateway            start the gateway (with no configuration: the demo, on an embedded Redis)
  gateway check [DIR] check the service manifests in DIR (default: the built-in services) and exit
  gateway --help     show this text

Environment:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range settings {
		def := s.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Name, def, s.Help)
	}
	tw.Flush()
}
