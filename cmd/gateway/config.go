package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/casesim"
	"github.com/kommun/servicegateway/services/fields/location"
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
	{"GATEWAY_AREA", "59.6,17.2;60.2,18.2", "the municipality's area that a location field's coordinates must lie in (WGS84 lat,lon corners separated by ';': two corners are a box, three or more a polygon; default: around Uppsala)"},
	{"GATEWAY_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"GATEWAY_SHUTDOWN_TIMEOUT", "30s", "how long a shutdown waits for requests and deliveries in flight"},
	{"GATEWAY_DRAIN_DELAY", "5s", "at SIGTERM, how long /readyz answers 503 (while requests are still served) before the listener closes, so the load balancer stops sending first; a second SIGTERM ends the wait"},
	{"GATEWAY_READ_TIMEOUT", "15s", "longest time to read one request, headers and body; slower senders are cut off"},
	{"GATEWAY_MAX_CONNS_PER_IP", "64", "open connections per client address (IPv6: per /64), over it 429; peers in GATEWAY_TRUSTED_PROXIES are not limited; 0: no limit"},
	{"GATEWAY_TRUSTED_PROXIES", "", "comma-separated proxy IPs or CIDRs whose X-Forwarded-For is believed"},
	{"GATEWAY_WORKERS", "128", "delivery workers per process (concurrent deliveries; a worker mostly waits for its back-end); 0: this process takes submissions but delivers none (nor follow-ups): processes with workers on the same Redis deliver them"},
	{"GATEWAY_BACKEND_LIMIT", "0", "deliveries in flight to one back-end (case system) per process, so that a slow one cannot hold every worker; over it a job waits up to 1s for a slot, then is put back for about 1s without counting an attempt; 0: half of GATEWAY_WORKERS"},
	{"GATEWAY_RETRY_BASE", "2s", "first retry delay; doubles per attempt, with full jitter"},
	{"GATEWAY_RETRY_MAX", "10m", "longest retry delay"},
	{"GATEWAY_RETRY_ATTEMPTS", "10", "attempts before a submission becomes a dead letter"},
	{"GATEWAY_CLAIM_IDLE", "1m", "how long a delivery, notification or follow-up may sit with a silent process before another process takes it over"},
	{"GATEWAY_DELIVERY_TIMEOUT", "30s", "upper bound of one delivery attempt"},
	{"GATEWAY_BREAKER_FAILURES", "5", "consecutive failed deliveries to one back-end that open its circuit breaker (0: no breakers)"},
	{"GATEWAY_BREAKER_OPEN", "30s", "how long an open circuit breaker pauses deliveries to its back-end before probing it"},
	{"GATEWAY_FAULT", "", "fault injection for tests only: exit-after-deliver (SIGKILL after a back-end accepted a delivery, before it is recorded); refused in production"},
	{"GATEWAY_RATELIMIT", "on", "on or off (off for load tests)"},
	{"GATEWAY_RATELIMIT_SUBMIT", "20", "submissions per client IP per minute"},
	{"GATEWAY_OIDC_ISSUER", "", "issuer URL of the OpenID provider residents and staff sign in with (discovery at ISSUER/.well-known/openid-configuration)"},
	{"GATEWAY_OIDC_CLIENT_ID", "", "the gateway's client id at the OpenID provider"},
	{"GATEWAY_OIDC_CLIENT_SECRET", "", "the client secret (client_secret_basic); empty: a public client with PKCE only"},
	{"GATEWAY_OIDC_SCOPES", "openid profile", "scopes asked for, space-separated"},
	{"GATEWAY_OIDC_ALGORITHMS", "RS256", "ID token signature algorithms accepted, comma-separated (none and HS* are refused)"},
	{"GATEWAY_OIDC_CLAIM_SUBJECT", "sub", "claim with the provider's subject"},
	{"GATEWAY_OIDC_CLAIM_PERSONNUMMER", "https://id.oidc.se/claim/personalIdentityNumber", "claim with the personnummer or samordningsnummer; a person with one is a resident"},
	{"GATEWAY_OIDC_CLAIM_NAME", "name", "claim with the display name"},
	{"GATEWAY_OIDC_CLAIM_ACR", "acr", "claim with the authentication context class (level of assurance)"},
	{"GATEWAY_OIDC_CLAIM_GROUPS", "groups", "claim with the person's groups or roles (string or array)"},
	{"GATEWAY_OIDC_CLAIM_SERVICE_POINT", "service_point", "claim with a staff member's service point id"},
	{"GATEWAY_OIDC_CLAIM_DEPARTMENT", "department", "claim with a staff member's or administrator's department"},
	{"GATEWAY_OIDC_STAFF_GROUP", "staff", "group value that makes a person service-point staff"},
	{"GATEWAY_OIDC_ADMIN_GROUP", "admin", "group value that makes a person an administrator"},
	{"GATEWAY_OIDC_ACR_MAP", "", "extra acr values, comma-separated value=level (level: low, substantial, high); Sweden Connect loa2-4, eIDAS low/substantial/high and the plain words are known"},
	{"GATEWAY_OIDC_ACR_VALUES", "", "acr_values asked for per level, comma-separated level=value (default: Sweden Connect loa2, loa3, loa4)"},
	{"GATEWAY_OIDC_PROVIDERS_FILE", "", "JSON file with further OpenID providers (id, issuer, client_id, client_secret_env, claims, acr), chosen by /auth/login?provider=ID"},
	{"GATEWAY_DEV_IDP", "auto", "the development identity provider under /dev-idp: on, off, or auto (on in development when no GATEWAY_OIDC_ISSUER); refused in production"},
	{"GATEWAY_SESSION_KEY", "", "secret (at least 32 bytes) that signs session cookies; required in production, shared by all replicas (development default: random at start)"},
	{"GATEWAY_SESSION_IDLE", "30m", "a session ends after this long without a request"},
	{"GATEWAY_SESSION_ABSOLUTE", "12h", "a session ends this long after sign-in, whatever happens"},
	{"GATEWAY_SESSION_PRIVILEGED", "1h", "a session with the staff or admin role ends this long after sign-in (roles are read at sign-in, so a role withdrawn at the provider ends with it)"},
	{"GATEWAY_SESSION_CACHE", "5s", "a replica keeps a session it read for this long (0 = off, at most 1m), so a signed-in request skips the Redis round trip; a session ended on any replica is dropped at once (Redis Pub/Sub), and the cache is off while that channel is down"},
	{"GATEWAY_CLIENTS_FILE", "", "JSON file with the departments' machine clients (id, department, algorithm, public_key PEM)"},
	{"GATEWAY_RATELIMIT_LOGIN", "30", "sign-ins per client IP, and per person, per minute"},
	{"GATEWAY_DRAFT_TTL", "720h", "how long a signed-in resident's saved draft is kept after it was last saved (listed on My pages); deleted when it expires or its form is sent"},
	{"GATEWAY_DRAFT_CODE_TTL", "168h", "how long a draft found by a code is kept: an anonymous resident's resume code, and a desk's handover code"},
	{"GATEWAY_DRAFT_MAX_BYTES", "32768", "largest saved draft (its JSON, bytes); only the service's own fields are kept, each cut to the field's maximum length"},
	{"GATEWAY_DRAFTS_PER_PERSON", "20", "saved drafts one signed-in resident may keep"},
	{"GATEWAY_DRAFTS_PER_BROWSER", "5", "drafts with a resume code one browser may keep (anonymous residents)"},
	{"GATEWAY_DRAFTS_PER_ADDRESS", "30", "drafts with a resume code one client address may save per day"},
	{"GATEWAY_DRAFTS_PER_DESK", "200", "handover codes one staff member may have open at a time"},
	{"GATEWAY_RATELIMIT_DRAFT_CODE", "10", "codes tried at /fortsatt per client address, per browser and per signed-in person per 15 minutes (against guessing)"},
	{"GATEWAY_USAGE", "on", "usage statistics (dashboard, /api/v1/usage, open data): on or off"},
	{"GATEWAY_USAGE_BUFFER", "10000", "usage events that may wait in memory for the flusher; more are dropped and counted"},
	{"GATEWAY_USAGE_FLUSH", "1s", "how often usage counters are written to Redis (and always at shutdown)"},
	{"GATEWAY_USAGE_ABANDON_AFTER", "2h", "a form started and not submitted within this time counts as abandoned"},
	{"GATEWAY_OPENDATA_MIN_COUNT", "5", "open data shows counts from this number up; 1 to this minus one are suppressed, 0 stays 0"},
	{"GATEWAY_SERVICE_POINTS_FILE", "", "TOML file with the service points for the staff desk (id, name, address, opening_hours, languages); default: the demo's built-in list"},
	{"GATEWAY_RECEIPT_KEYS", "", "JSON file with the receipt signing keys: a JWK set of Ed25519 keys (kty OKP) with private parts, newest first; rotate by adding a new key at the top and keeping the old ones; required in production (development default: a key generated at start)"},
	{"GATEWAY_ACCESSIBILITY_SERVICE", "feedback", "id of the service that takes the feedback from the accessibility statement's form (/tillganglighet); it must exist when set; unset and missing: the page shows no form"},
	{"GATEWAY_OPEN311_KEYS_FILE", "", "file with the Open311 clients, one \"client-id api-key\" a line (keys of 16 characters or more); unset in development: client demo with api_key open311-demo-key; unset in production: Open311 takes no requests"},
	{"GATEWAY_OPEN311_JURISDICTION", "", "the jurisdiction_id Open311 answers to; a request naming another one gets 404 (unset: jurisdiction_id is ignored)"},
	{"GATEWAY_IDENTITY_KEY_FILE", "", "PEM file with the ECDSA P-256 private key that signs the identity tokens sent to proxied e-services (public key at /.well-known/gateway-keys.json); required in production when a service is proxied, shared by all replicas (development default: random at start)"},
	{"GATEWAY_ATTACHMENT_LINK_SECRET", "", "secret (at least 32 bytes) that signs the expiring download links of attachments handed to back-ends (GET /attachments/{id}); required in production when a service has a file field, shared by all replicas (development default: random at start)"},
	{"GATEWAY_ATTACHMENT_LINK_TTL", "24h", "how long an attachment download link works after the delivery attempt that carried it; after a delivery the bytes are kept at most this long (deleted sooner once fetched); 1m to 168h"},
	{"GATEWAY_UPLOAD_TTL", "2h", "how long an uploaded file is kept until a submission includes it; a form abandoned with files leaves nothing after this"},
	{"GATEWAY_ATTACHMENT_KEEP", "720h", "longest time a submission's files are kept while it waits for delivery (delivery deletes them sooner)"},
	{"GATEWAY_ATTACHMENTS_MAX", "50MB", "largest total size of one submission's files (each file field also has its own max_size and max_files)"},
	{"GATEWAY_UPLOADS_PER_CLIENT", "200", "uploads one browser, signed-in person or API client address may make within GATEWAY_UPLOAD_TTL; more are refused"},
	{"GATEWAY_ATTACHMENT_STORE", "redis", "where the bytes of uploaded files live: redis (chunks in Redis, the default; the demo needs nothing else) or s3 (an S3-compatible object store: MinIO, Ceph, AWS; descriptions, claims and expiry stay in Redis; README \"Attachments\")"},
	{"GATEWAY_S3_ENDPOINT", "", "host:port of the S3-compatible store (with GATEWAY_ATTACHMENT_STORE=s3), e.g. s3.eu-north-1.amazonaws.com or minio:9000"},
	{"GATEWAY_S3_BUCKET", "", "bucket of the attachment objects (it must exist; give it the lifecycle rule in README \"Attachments\")"},
	{"GATEWAY_S3_REGION", "us-east-1", "region of the bucket"},
	{"GATEWAY_S3_PREFIX", "attachments/", "prefix of the attachment objects' names (the sweeper only touches names under it)"},
	{"GATEWAY_S3_ACCESS_KEY", "", "access key id for the store"},
	{"GATEWAY_S3_SECRET_KEY", "", "secret access key for the store"},
	{"GATEWAY_S3_TLS", "on", "https to the store: on or off; production refuses off for an endpoint that is not local (localhost, loopback) unless GATEWAY_S3_ALLOW_PLAIN=on"},
	{"GATEWAY_S3_ALLOW_PLAIN", "off", "on: allow plain http to a non-local store in production (a private network you trust)"},
	{"GATEWAY_S3_TIMEOUT", "10s", "longest time one call to the store may take (ranged read, delete, reply headers); a whole upload, download or sweep listing may take GATEWAY_READ_TIMEOUT plus this"},
	{"GATEWAY_S3_SWEEP", "10m", "how often objects whose description expired in Redis (abandoned uploads; deletes that failed) are looked for and deleted once older than GATEWAY_UPLOAD_TTL"},
	{"GATEWAY_SCANNER", "", "malware scanner for uploads: clamd://host:3310 (ClamAV's clamd, INSTREAM) or an http(s):// URL of an HTTP scanning service (README \"Attachments\"); unset: files are not scanned"},
	{"GATEWAY_SCANNER_TOKEN", "", "bearer token for an HTTP scanner"},
	{"GATEWAY_SCAN_TIMEOUT", "30s", "longest time one scan may take"},
	{"GATEWAY_SCAN_UNAVAILABLE", "refuse", "what happens to an upload the scanner could not check (down, timed out): refuse (the resident is asked to try again later), hold (the file is kept and listed, and the submission waits, \"try again later\", until the scanner finds it clean) or accept (kept unchecked, logged)"},
	{"REDIS_URL", "", "redis:// or rediss:// URL of Redis; unset: an embedded in-memory Redis (demo only, nothing survives a restart)"},
	{"REDIS_ADDRS", "", "comma-separated host:port list: several for Redis Cluster, or Sentinels with REDIS_MASTER_NAME"},
	{"REDIS_MASTER_NAME", "", "Sentinel master name"},
	{"REDIS_USERNAME", "", "Redis ACL user (with REDIS_ADDRS)"},
	{"REDIS_PASSWORD", "", "Redis password (with REDIS_ADDRS)"},
	{"GATEWAY_REDIS_PREFIX", "gw", "prefix of every Redis key, to share a Redis between installations"},
	{"GATEWAY_REDIS_WAIT_REPLICAS", "0", "replicas that must acknowledge a submission (WAIT) before its receipt is shown; fewer within the timeout is a 503 \"outcome unknown\" (single node or Sentinel; not with Cluster)"},
	{"GATEWAY_REDIS_WAIT_TIMEOUT", "500ms", "how long a submission waits for GATEWAY_REDIS_WAIT_REPLICAS"},
	{"CASESIM_URL", "", "URL of the reference case system the example services deliver to; unset in development: started in-process"},
	{"CASESIM_SECRET", "", "HMAC secret shared with the case system (development default: a fixed demo value)"},
	{"DEMO_ESERVICE_URL", "", "URL of the existing e-service the example service book-premises proxies to; unset in development: a small demo e-service started in-process"},
	{"SMTP_HOST", "", "SMTP server of the e-mail routes (the example service feedback); unset in development: an in-process mail catcher that logs each message's reference"},
	{"SMTP_PORT", "587", "SMTP port; the e-mail routes require STARTTLS"},
	{"SMTP_USERNAME", "", "SMTP user for AUTH PLAIN; unset: no authentication"},
	{"SMTP_PASSWORD", "", "SMTP password (with SMTP_USERNAME)"},
	{"SMTP_CA_FILE", "", "PEM file with the certificate authorities that may sign the SMTP server's certificate (default: the system's)"},
	{"MAIL_FROM", "e-tjanster@kommun.example", "From address of the e-mails to departments; its domain is the Message-ID's"},
	{"CITY_OFFICE_MAILBOX", "registrator@kommun.example", "the city office's functional mailbox, where the example service feedback is sent"},
	{"GATEWAY_NOTIFY", "on", "notifications to residents about status changes (e-mail through SMTP_HOST, SMS through GATEWAY_SMS_URL): on or off"},
	{"GATEWAY_NOTIFY_FROM", "", "From address of notifications to residents (default: MAIL_FROM)"},
	{"GATEWAY_NOTIFY_MAX_ATTEMPTS", "8", "attempts to send one notification or department webhook before it becomes a dead letter (waits: capped exponential backoff with full jitter, GATEWAY_RETRY_BASE to GATEWAY_RETRY_MAX)"},
	{"GATEWAY_WEBHOOKS_FILE", "", "JSON file of the departments' webhook subscriptions (events submission.received, submission.delivered, status.changed; secrets as ${ENV}; see README \"Department webhooks\"); unset: none"},
	{"GATEWAY_SMS_URL", "", "SMS provider endpoint (generic JSON contract, see README \"Notifications\"); unset in development: an in-process reference SMS sink listing what it got at /messages; unset in production: no SMS"},
	{"GATEWAY_SMS_TOKEN", "", "bearer token for GATEWAY_SMS_URL"},
	{"GATEWAY_SMS_SENDER", "Kommunen", "sender name or number of SMS notifications"},
}

type config struct {
	Addr, Env, PublicURL, ServicesDir, LogLevel string
	ShutdownTimeout, DrainDelay, ReadTimeout    time.Duration
	MaxConnsPerIP                               int
	TrustedProxies                              []string
	Workers, BackendLimit                       int
	RetryBase, RetryMax                         time.Duration
	RetryAttempts                               int
	ClaimIdle, DeliveryTimeout                  time.Duration
	BreakerFailures                             int
	BreakerOpen                                 time.Duration
	Fault                                       string
	RateLimit                                   bool
	SubmitLimit                                 int
	RedisURL                                    string
	RedisAddrs                                  []string
	RedisMaster, RedisUser, RedisPassword       string
	RedisPrefix                                 string
	RedisWaitReplicas                           int
	RedisWaitTimeout                            time.Duration
	CasesimURL, CasesimSecret                   string
	SMTPHost, SMTPPort                          string
	MailFrom, CityOfficeMailbox                 string
	Notify                                      bool
	NotifyFrom                                  string
	NotifyMaxAttempts                           int
	WebhooksFile                                string
	SMSURL, SMSToken, SMSSender                 string
	OIDC                                        oidcConfig
	DevIdP                                      bool
	SessionKey                                  string
	AttachmentLinkSecret                        string
	AttachmentLinkTTL                           time.Duration
	SessionIdle, SessionAbsolute                time.Duration
	SessionPrivileged, SessionCache             time.Duration
	ClientsFile, ProvidersFile                  string
	LoginLimit                                  int
	DraftTTL, DraftCodeTTL                      time.Duration
	DraftMaxBytes, DraftsPerPerson              int
	DraftsPerBrowser, DraftsPerAddress          int
	DraftsPerDesk, DraftCodeLimit               int
	Usage                                       bool
	UsageBuffer, OpenDataMinCount               int
	UsageFlush, UsageAbandon                    time.Duration
	ServicePointsFile                           string
	ReceiptKeys                                 string
	AccessibilityService                        string
	AccessibilitySet                            bool
	Open311KeysFile, Open311Jurisdiction        string
	IdentityKeyFile                             string
	Area                                        location.Area
	UploadTTL, AttachmentKeep, ScanTimeout      time.Duration
	AttachmentsMax                              int64
	UploadsPerClient                            int
	Scanner, ScannerToken, ScanUnavailable      string
	AttachmentStore                             string
	S3                                          s3Config
}

// s3Config is where attachment bytes go with GATEWAY_ATTACHMENT_STORE=s3.
type s3Config struct {
	Endpoint, Bucket, Region, Prefix string
	AccessKey, SecretKey             string
	TLS                              bool
	Timeout, Sweep                   time.Duration
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
		DrainDelay: dur("GATEWAY_DRAIN_DELAY"), ReadTimeout: dur("GATEWAY_READ_TIMEOUT"), MaxConnsPerIP: num("GATEWAY_MAX_CONNS_PER_IP", 0, 1000000),
		Workers: num("GATEWAY_WORKERS", 0, 256), BackendLimit: num("GATEWAY_BACKEND_LIMIT", 0, 256), RetryBase: dur("GATEWAY_RETRY_BASE"), RetryMax: dur("GATEWAY_RETRY_MAX"),
		RetryAttempts: num("GATEWAY_RETRY_ATTEMPTS", 1, 1000), ClaimIdle: dur("GATEWAY_CLAIM_IDLE"),
		DeliveryTimeout: dur("GATEWAY_DELIVERY_TIMEOUT"), BreakerFailures: num("GATEWAY_BREAKER_FAILURES", 0, 1000),
		BreakerOpen: dur("GATEWAY_BREAKER_OPEN"), Fault: get("GATEWAY_FAULT"), SubmitLimit: num("GATEWAY_RATELIMIT_SUBMIT", 1, 1000000),
		RedisURL: get("REDIS_URL"), RedisAddrs: list("REDIS_ADDRS"), RedisMaster: get("REDIS_MASTER_NAME"),
		RedisUser: get("REDIS_USERNAME"), RedisPassword: get("REDIS_PASSWORD"), RedisPrefix: get("GATEWAY_REDIS_PREFIX"),
		CasesimURL: strings.TrimRight(get("CASESIM_URL"), "/"), CasesimSecret: get("CASESIM_SECRET"),
		SMTPHost: get("SMTP_HOST"), SMTPPort: get("SMTP_PORT"), MailFrom: get("MAIL_FROM"), CityOfficeMailbox: get("CITY_OFFICE_MAILBOX"),
	}
	if a, err := location.ParseArea(get("GATEWAY_AREA")); err != nil {
		errs = append(errs, "GATEWAY_AREA: "+err.Error())
	} else {
		c.Area = a
	}
	c.OIDC = oidcConfig{
		Issuer: get("GATEWAY_OIDC_ISSUER"), ClientID: get("GATEWAY_OIDC_CLIENT_ID"),
		ClientSecret: get("GATEWAY_OIDC_CLIENT_SECRET"), Scopes: strings.Fields(get("GATEWAY_OIDC_SCOPES")),
		Algorithms:   list("GATEWAY_OIDC_ALGORITHMS"),
		ClaimSubject: get("GATEWAY_OIDC_CLAIM_SUBJECT"), ClaimPersonnummer: get("GATEWAY_OIDC_CLAIM_PERSONNUMMER"),
		ClaimName: get("GATEWAY_OIDC_CLAIM_NAME"), ClaimACR: get("GATEWAY_OIDC_CLAIM_ACR"), ClaimGroups: get("GATEWAY_OIDC_CLAIM_GROUPS"),
		ClaimServicePoint: get("GATEWAY_OIDC_CLAIM_SERVICE_POINT"), ClaimDepartment: get("GATEWAY_OIDC_CLAIM_DEPARTMENT"),
		StaffGroup: get("GATEWAY_OIDC_STAFF_GROUP"), AdminGroup: get("GATEWAY_OIDC_ADMIN_GROUP"),
		ACRMap: list("GATEWAY_OIDC_ACR_MAP"), ACRValues: list("GATEWAY_OIDC_ACR_VALUES"),
	}
	c.SessionKey, c.ClientsFile = get("GATEWAY_SESSION_KEY"), get("GATEWAY_CLIENTS_FILE")
	c.ProvidersFile = get("GATEWAY_OIDC_PROVIDERS_FILE")
	c.SessionIdle, c.SessionAbsolute = dur("GATEWAY_SESSION_IDLE"), dur("GATEWAY_SESSION_ABSOLUTE")
	c.SessionPrivileged, c.SessionCache = dur("GATEWAY_SESSION_PRIVILEGED"), dur("GATEWAY_SESSION_CACHE")
	c.LoginLimit = num("GATEWAY_RATELIMIT_LOGIN", 1, 1000000)
	c.DraftTTL, c.DraftCodeTTL = dur("GATEWAY_DRAFT_TTL"), dur("GATEWAY_DRAFT_CODE_TTL")
	c.DraftMaxBytes, c.DraftsPerPerson = num("GATEWAY_DRAFT_MAX_BYTES", 1024, 1<<20), num("GATEWAY_DRAFTS_PER_PERSON", 1, 1000)
	c.DraftsPerBrowser, c.DraftsPerAddress = num("GATEWAY_DRAFTS_PER_BROWSER", 1, 1000), num("GATEWAY_DRAFTS_PER_ADDRESS", 1, 1000000)
	c.DraftsPerDesk, c.DraftCodeLimit = num("GATEWAY_DRAFTS_PER_DESK", 1, 100000), num("GATEWAY_RATELIMIT_DRAFT_CODE", 1, 10000)
	if c.DraftTTL < time.Second || c.DraftCodeTTL < time.Second {
		errs = append(errs, "GATEWAY_DRAFT_TTL, GATEWAY_DRAFT_CODE_TTL: want at least 1s")
	}
	errs = append(errs, c.checkIdentity(get("GATEWAY_DEV_IDP"))...)
	c.UsageBuffer, c.OpenDataMinCount = num("GATEWAY_USAGE_BUFFER", 1, 10000000), num("GATEWAY_OPENDATA_MIN_COUNT", 1, 1000)
	c.UsageFlush, c.UsageAbandon = dur("GATEWAY_USAGE_FLUSH"), dur("GATEWAY_USAGE_ABANDON_AFTER")
	c.ServicePointsFile = get("GATEWAY_SERVICE_POINTS_FILE")
	c.ReceiptKeys = get("GATEWAY_RECEIPT_KEYS")
	c.AccessibilityService = get("GATEWAY_ACCESSIBILITY_SERVICE")
	c.AccessibilitySet = strings.TrimSpace(getenv("GATEWAY_ACCESSIBILITY_SERVICE")) != ""
	c.IdentityKeyFile = get("GATEWAY_IDENTITY_KEY_FILE")
	c.AttachmentLinkSecret, c.AttachmentLinkTTL = get("GATEWAY_ATTACHMENT_LINK_SECRET"), dur("GATEWAY_ATTACHMENT_LINK_TTL")
	if c.AttachmentLinkTTL < time.Minute || c.AttachmentLinkTTL > 168*time.Hour {
		errs = append(errs, "GATEWAY_ATTACHMENT_LINK_TTL: want 1m to 168h")
	}
	c.UploadTTL, c.AttachmentKeep, c.ScanTimeout = dur("GATEWAY_UPLOAD_TTL"), dur("GATEWAY_ATTACHMENT_KEEP"), dur("GATEWAY_SCAN_TIMEOUT")
	if n, err := gateway.ParseSize(get("GATEWAY_ATTACHMENTS_MAX")); err != nil || n <= 0 {
		errs = append(errs, fmt.Sprintf("GATEWAY_ATTACHMENTS_MAX: want a size such as 50MB, got %q", get("GATEWAY_ATTACHMENTS_MAX")))
	} else {
		c.AttachmentsMax = n
	}
	c.UploadsPerClient = num("GATEWAY_UPLOADS_PER_CLIENT", 1, 1000000)
	c.Scanner, c.ScannerToken, c.ScanUnavailable = get("GATEWAY_SCANNER"), get("GATEWAY_SCANNER_TOKEN"), get("GATEWAY_SCAN_UNAVAILABLE")
	if c.ScanUnavailable != "refuse" && c.ScanUnavailable != "hold" && c.ScanUnavailable != "accept" {
		errs = append(errs, fmt.Sprintf("GATEWAY_SCAN_UNAVAILABLE: want refuse, hold or accept, got %q", c.ScanUnavailable))
	}
	if c.Scanner != "" && !strings.HasPrefix(c.Scanner, "clamd://") && !strings.HasPrefix(c.Scanner, "http://") && !strings.HasPrefix(c.Scanner, "https://") {
		errs = append(errs, fmt.Sprintf("GATEWAY_SCANNER: want clamd://host:port or an http(s):// URL, got %q", c.Scanner))
	}
	errs = append(errs, c.loadS3(get, dur)...)
	if c.UploadTTL <= 0 || c.AttachmentKeep <= 0 || c.ScanTimeout <= 0 {
		errs = append(errs, "GATEWAY_UPLOAD_TTL, GATEWAY_ATTACHMENT_KEEP and GATEWAY_SCAN_TIMEOUT must be above zero")
	}
	switch get("GATEWAY_NOTIFY") {
	case "on":
		c.Notify = true
	case "off":
	default:
		errs = append(errs, fmt.Sprintf("GATEWAY_NOTIFY: want on or off, got %q", get("GATEWAY_NOTIFY")))
	}
	c.NotifyFrom, c.NotifyMaxAttempts = get("GATEWAY_NOTIFY_FROM"), num("GATEWAY_NOTIFY_MAX_ATTEMPTS", 1, 100)
	c.WebhooksFile = get("GATEWAY_WEBHOOKS_FILE")
	c.SMSURL, c.SMSToken, c.SMSSender = get("GATEWAY_SMS_URL"), get("GATEWAY_SMS_TOKEN"), get("GATEWAY_SMS_SENDER")
	c.RedisWaitReplicas, c.RedisWaitTimeout = num("GATEWAY_REDIS_WAIT_REPLICAS", 0, 16), dur("GATEWAY_REDIS_WAIT_TIMEOUT")
	if c.RedisWaitReplicas > 0 && len(c.RedisAddrs) > 1 && c.RedisMaster == "" {
		errs = append(errs, "GATEWAY_REDIS_WAIT_REPLICAS does not work with Redis Cluster (WAIT cannot be routed to the slot's primary): use min-replicas-to-write on the primaries")
	}
	if c.RedisWaitReplicas > 0 && c.RedisURL == "" && len(c.RedisAddrs) == 0 {
		errs = append(errs, "GATEWAY_REDIS_WAIT_REPLICAS needs REDIS_URL or REDIS_ADDRS: the embedded Redis has no replicas")
	}
	if c.Workers == 0 && c.RedisURL == "" && len(c.RedisAddrs) == 0 {
		errs = append(errs, "GATEWAY_WORKERS=0 needs REDIS_URL or REDIS_ADDRS: with the embedded Redis no other process could deliver the submissions")
	}
	if c.RedisWaitReplicas > 0 && (c.RedisWaitTimeout <= 0 || c.RedisWaitTimeout >= 3*time.Second) {
		errs = append(errs, "GATEWAY_REDIS_WAIT_TIMEOUT must be above zero and below 3s (the Redis read timeout)")
	}
	c.Open311KeysFile, c.Open311Jurisdiction = get("GATEWAY_OPEN311_KEYS_FILE"), get("GATEWAY_OPEN311_JURISDICTION")
	switch get("GATEWAY_USAGE") {
	case "on":
		c.Usage = true
	case "off":
	default:
		errs = append(errs, fmt.Sprintf("GATEWAY_USAGE: want on or off, got %q", get("GATEWAY_USAGE")))
	}
	if c.UsageFlush <= 0 || c.UsageAbandon <= 0 {
		errs = append(errs, "GATEWAY_USAGE_FLUSH and GATEWAY_USAGE_ABANDON_AFTER must be above zero")
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
	switch {
	case c.Fault != "" && c.Fault != "exit-after-deliver":
		errs = append(errs, fmt.Sprintf("GATEWAY_FAULT: want exit-after-deliver or nothing, got %q", c.Fault))
	case c.Fault != "" && c.production():
		errs = append(errs, "GATEWAY_FAULT is for tests only and refused with GATEWAY_ENV=production")
	}
	if c.ReadTimeout <= 0 {
		errs = append(errs, "GATEWAY_READ_TIMEOUT must be above zero")
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				errs = append(errs, fmt.Sprintf("GATEWAY_TRUSTED_PROXIES: want IP addresses or CIDRs, got %q", p))
			}
		}
	}
	if c.SessionCache > time.Minute {
		// A kept session refreshes its idle timeout only when read again.
		errs = append(errs, fmt.Sprintf("GATEWAY_SESSION_CACHE: at most 1m, got %s", c.SessionCache))
	}
	if c.production() {
		errs = append(errs, checkSecret("CASESIM_SECRET", c.CasesimSecret)...)
		errs = append(errs, checkSecret("GATEWAY_SESSION_KEY", c.SessionKey)...)
		errs = append(errs, checkSecret("GATEWAY_ATTACHMENT_LINK_SECRET", c.AttachmentLinkSecret)...)
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = -1 // delivery: negative switches breakers off
	}
	if c.RetryMax < c.RetryBase {
		errs = append(errs, "GATEWAY_RETRY_MAX must not be less than GATEWAY_RETRY_BASE")
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return c, nil
}

// demoSecrets are secrets published with the project (the demo, the
// README, the tests): production refuses them under any name.
var demoSecrets = []string{casesim.DemoSecret, "0123456789abcdef0123456789abcdef"}

// isDemoSecret: a published secret, or one that says it is a placeholder.
func isDemoSecret(v string) bool {
	low := strings.ToLower(v)
	for _, d := range demoSecrets {
		if v == d {
			return true
		}
	}
	return strings.Contains(low, "change-me") || strings.Contains(low, "changeme")
}

// checkSecret refuses, in production, a set secret that is a known demo
// value or shorter than 32 bytes (an HMAC key that short can be guessed
// offline from one signed request). Unset secrets are checked where they
// are required.
func checkSecret(name, v string) []string {
	switch {
	case v == "":
		return nil
	case isDemoSecret(v):
		return []string{name + ": a published demo value, refused with GATEWAY_ENV=production"}
	case len(v) < 32:
		return []string{name + ": want at least 32 bytes with GATEWAY_ENV=production (e.g. openssl rand -base64 48)"}
	}
	return nil
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `gateway: the municipality's front door for e-services.

Usage:
  gateway            start the gateway (with no configuration: the demo, on an embedded Redis)
  gateway check [DIR] check the service manifests in DIR (default: the built-in services) and exit
  gateway verify-receipt [--keys FILE|URL] FILE
                     check a signed receipt (and the payload in FILE, if any); exit 1 if forged or changed
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

// loadS3 reads the object store settings of attachments.
func (c *config) loadS3(get func(string) string, dur func(string) time.Duration) []string {
	var errs []string
	c.AttachmentStore = get("GATEWAY_ATTACHMENT_STORE")
	switch c.AttachmentStore {
	case "redis":
		return nil
	case "s3":
	default:
		return []string{fmt.Sprintf("GATEWAY_ATTACHMENT_STORE: want redis or s3, got %q", c.AttachmentStore)}
	}
	c.S3 = s3Config{Endpoint: get("GATEWAY_S3_ENDPOINT"), Bucket: get("GATEWAY_S3_BUCKET"), Region: get("GATEWAY_S3_REGION"),
		Prefix: get("GATEWAY_S3_PREFIX"), AccessKey: get("GATEWAY_S3_ACCESS_KEY"), SecretKey: get("GATEWAY_S3_SECRET_KEY"),
		Timeout: dur("GATEWAY_S3_TIMEOUT"), Sweep: dur("GATEWAY_S3_SWEEP")}
	if c.S3.Endpoint == "" || c.S3.Bucket == "" {
		errs = append(errs, "GATEWAY_ATTACHMENT_STORE=s3 needs GATEWAY_S3_ENDPOINT and GATEWAY_S3_BUCKET")
	}
	if strings.Contains(c.S3.Endpoint, "/") {
		errs = append(errs, fmt.Sprintf("GATEWAY_S3_ENDPOINT: want host:port without a scheme (TLS is GATEWAY_S3_TLS), got %q", c.S3.Endpoint))
	}
	if c.S3.Timeout <= 0 || c.S3.Sweep <= 0 {
		errs = append(errs, "GATEWAY_S3_TIMEOUT and GATEWAY_S3_SWEEP must be above zero")
	}
	plain := false
	for _, n := range []string{"GATEWAY_S3_TLS", "GATEWAY_S3_ALLOW_PLAIN"} {
		switch get(n) {
		case "on":
			if n == "GATEWAY_S3_TLS" {
				c.S3.TLS = true
			} else {
				plain = true
			}
		case "off":
		default:
			errs = append(errs, fmt.Sprintf("%s: want on or off, got %q", n, get(n)))
		}
	}
	if c.production() && !c.S3.TLS && !plain && !localHost(c.S3.Endpoint) {
		errs = append(errs, fmt.Sprintf("GATEWAY_S3_TLS=off to %s: production sends attachments in clear text only to a local store, or with GATEWAY_S3_ALLOW_PLAIN=on", c.S3.Endpoint))
	}
	if c.production() && (c.S3.AccessKey == "" || c.S3.SecretKey == "") {
		errs = append(errs, "GATEWAY_S3_ACCESS_KEY and GATEWAY_S3_SECRET_KEY are required in production")
	}
	return errs
}

// localHost: the endpoint's host is localhost or a loopback address.
func localHost(endpoint string) bool {
	host := endpoint
	if h, _, err := net.SplitHostPort(endpoint); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
