package services_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kommun/servicegateway/services"
	_ "github.com/kommun/servicegateway/services/connectors/proxy"
)

const proxyManifest = `id = "ID"
version = "1.0.0"
department = "city-office"
category = "democracy"
assurance = "substantial"
retention_days = 1

[route]
kind = "proxy"

[route.settings]
prefix = "PREFIX"
upstream = "${APP_URL}"
`

func proxyFS(services ...[2]string) fstest.MapFS {
	m := fstest.MapFS{}
	for _, s := range services {
		id, prefix := s[0], s[1]
		m["dept/"+id+"/service.toml"] = &fstest.MapFile{Data: []byte(strings.NewReplacer("ID", id, "PREFIX", prefix).Replace(proxyManifest))}
		for _, l := range []string{"sv", "en"} {
			m["dept/"+id+"/messages."+l+".toml"] = &fstest.MapFile{Data: []byte(`"` + id + `.title" = "T"` + "\n" + `"` + id + `.summary" = "S"` + "\n")}
		}
	}
	return m
}

// A service routed to the proxy kind serves an existing e-service: it has
// no fields (and may not have any), and its prefix is its own.
func TestProxyManifest(t *testing.T) {
	loaded, err := services.Load(proxyFS([2]string{"app-one", "/e/app-one/"}), options(t))
	if err != nil {
		t.Fatal(err)
	}
	if s := loaded.Services[0]; s.Prefix != "/e/app-one/" || len(s.Fields) != 0 {
		t.Fatalf("decoded: prefix %q, %d fields", s.Prefix, len(s.Fields))
	}

	withField := proxyFS([2]string{"app-one", "/e/app-one/"})
	f := withField["dept/app-one/service.toml"]
	f.Data = append(f.Data, []byte("\n[[fields]]\nname = \"what\"\ntype = \"text\"\n")...)
	if _, err := services.Load(withField, options(t)); err == nil || !strings.Contains(err.Error(), `serves an existing e-service and has no [[fields]]`) {
		t.Errorf("a proxied service with fields: %v", err)
	}

	_, err = services.Load(proxyFS([2]string{"app-one", "/e/app/"}, [2]string{"app-two", "/e/app/"}), options(t))
	if err == nil || !strings.Contains(err.Error(), `prefix "/e/app/" is already served by dept/app-one/service.toml`) {
		t.Errorf("two services on one prefix: %v", err)
	}

	_, err = services.Load(proxyFS([2]string{"app-one", "/services/app-one/"}), options(t))
	if err == nil || !strings.Contains(err.Error(), "prefix must look like /e/my-service/") {
		t.Errorf("a prefix outside /e/: %v", err)
	}

	// Any other kind still needs a form.
	http := strings.Replace(string(goodManifest), "[[fields]]", "[[unused]]", -1)
	if i := strings.Index(http, "[[unused]]"); i >= 0 {
		http = http[:i] + http[strings.Index(http, "[route]"):]
	}
	if _, err := services.Load(fsWith(http, goodSV, goodEN), options(t)); err == nil || !strings.Contains(err.Error(), "a service needs at least one [[fields]] entry") {
		t.Errorf("an http service without fields: %v", err)
	}
}
