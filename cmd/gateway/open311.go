package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/kommun/servicegateway/gateway/intake"
	"github.com/kommun/servicegateway/gateway/open311"
	"github.com/kommun/servicegateway/gateway/redisstore"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"
)

// demoOpen311Key is the demo's api_key for Open311 (client "demo") when no
// GATEWAY_OPEN311_KEYS_FILE is set; refused in production.
const demoOpen311Key = "open311-demo-key"

// setupOpen311 builds the Open311 GeoReport v2 facade over the catalog, the
// intake and the store.
func setupOpen311(cfg config, catalog *services.Catalog, in *intake.Intake, store *redisstore.Store, tr *locales.Translations) (*open311.Handler, error) {
	keys := map[string]string{}
	switch {
	case cfg.Open311KeysFile != "":
		var err error
		if keys, err = readOpen311Keys(cfg.Open311KeysFile); err != nil {
			return nil, err
		}
	case !cfg.production():
		keys[demoOpen311Key] = "demo"
	}
	base := ""
	if cfg.PublicURL != "" {
		base = cfg.PublicURL + "/open311/v2"
	}
	return open311.New(open311.Deps{
		Services: catalog.All(), Intake: in, Store: store,
		Localizer: func(candidates ...string) (open311.Localizer, string) {
			tag, _ := locales.Match(candidates...)
			return tr.Localizer(tag), tag.String()
		},
		Config: open311.Config{BaseURL: base, Jurisdiction: cfg.Open311Jurisdiction, Keys: keys, Test: !cfg.production()},
	})
}

// readOpen311Keys reads the Open311 clients: one "client-id api-key" a
// line; blank lines and lines starting with # are skipped.
func readOpen311Keys(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("GATEWAY_OPEN311_KEYS_FILE: %w", err)
	}
	keys := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || len(f[1]) < 16 {
			return nil, fmt.Errorf("%s:%d: want \"client-id api-key\" with a key of at least 16 characters", path, n)
		}
		if _, dup := keys[f[1]]; dup {
			return nil, fmt.Errorf("%s:%d: this api_key is already given to another client", path, n)
		}
		keys[f[1]] = f[0]
	}
	return keys, sc.Err()
}
