package services

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/locales"
)

// ConnectorModule is one kind of connector, configured by a manifest's
// [route.settings] table. The manifest decoder decodes the settings strictly
// into the value New returns (use `toml` struct tags), then calls Validate;
// the gateway calls Provision when it starts. This is Caddy's module
// pattern: a kind registers itself in init and is provisioned per use.
type ConnectorModule interface {
	// Validate checks the decoded settings without touching the network or
	// the environment, so that `gateway check` can run anywhere.
	Validate() error
	// Provision resolves secrets and references through getenv and returns
	// a connector that is ready to deliver.
	Provision(getenv func(string) string) (gateway.Connector, error)
}

// ServiceBinder is implemented by connector modules that render a
// submission for people (the e-mail connector): LoadCatalog gives them their
// service and its translations before they are provisioned.
type ServiceBinder interface {
	BindService(svc *gateway.Service, tr *locales.Translations)
}

// Frontend is implemented by connector modules that serve an existing
// e-service under a path prefix instead of receiving submissions (the
// proxy connector). A service routed to one has no form fields; the
// manifest decoder sets gateway.Service.Prefix from ServePrefix.
type Frontend interface {
	ServePrefix() string
}

// Cleaner is implemented by connectors that hold resources.
type Cleaner interface{ Cleanup() error }

// ConnectorInfo registers a connector kind.
type ConnectorInfo struct {
	Kind string                 // the value of route.kind in manifests
	New  func() ConnectorModule // returns a pointer to a zero settings struct
}

var (
	registryMu sync.RWMutex
	registry   = map[string]ConnectorInfo{}
)

// RegisterConnector makes a connector kind available to manifests. It is
// meant to be called from the init function of the connector's package, and
// panics when the kind is registered twice.
func RegisterConnector(info ConnectorInfo) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if info.Kind == "" || info.New == nil {
		panic("services: connector kind and New are required")
	}
	if _, dup := registry[info.Kind]; dup {
		panic("services: connector kind registered twice: " + info.Kind)
	}
	registry[info.Kind] = info
}

// ConnectorKinds lists the registered kinds, sorted.
func ConnectorKinds() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	kinds := make([]string, 0, len(registry))
	for k := range registry {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

func lookupConnector(kind string) (ConnectorInfo, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	info, ok := registry[kind]
	return info, ok
}

// Secret is a setting that must be a reference to an environment variable,
// written "${NAME}", never a literal value, so that no secret is committed
// with a manifest.
type Secret string

var secretRef = regexp.MustCompile(`^\$\{[A-Z][A-Z0-9_]*\}$`)

// UnmarshalText implements encoding.TextUnmarshaler and refuses literals.
func (s *Secret) UnmarshalText(b []byte) error {
	if !secretRef.Match(b) {
		return fmt.Errorf("a secret must be a reference to an environment variable such as ${MY_SECRET}, not a literal value")
	}
	*s = Secret(b)
	return nil
}

// Resolve returns the secret's value from the environment; an empty value is
// an error.
func (s Secret) Resolve(getenv func(string) string) (string, error) {
	name := strings.TrimSuffix(strings.TrimPrefix(string(s), "${"), "}")
	v := getenv(name)
	if v == "" {
		return "", fmt.Errorf("environment variable %s is empty", name)
	}
	return v, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)\}`)

// Expand replaces ${NAME} references in s with values from getenv. It
// returns an error naming the first variable that is empty.
func Expand(s string, getenv func(string) string) (string, error) {
	var missing string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v := getenv(name)
		if v == "" && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("environment variable %s is empty", missing)
	}
	return out, nil
}
