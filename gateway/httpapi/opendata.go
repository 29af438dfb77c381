package httpapi

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/usage"
	"github.com/kommun/servicegateway/locales"
)

// Open data: the usage statistics and the service catalog, under CC0.

// CC0 is the licence of every open dataset.
const CC0 = "http://creativecommons.org/publicdomain/zero/1.0/"

// openDataDays is the default length of the usage dataset, up to today.
const openDataDays = 365

// openDataMaxAge is how long caches may keep a dataset, in seconds.
const openDataMaxAge = 60

func (s *Server) minCount() int {
	if s.Config.OpenDataMinCount > 0 {
		return s.Config.OpenDataMinCount
	}
	return usage.DefaultMinCount
}

// baseURL is the gateway's external base URL for absolute links.
func (s *Server) baseURL(c *fiber.Ctx) string {
	if s.Config.PublicURL != "" {
		return s.Config.PublicURL
	}
	return c.BaseURL()
}

type openDataContent struct {
	MinCount, MaxSuppressed                        int
	UsageCSV, UsageJSON, ServicesCSV, ServicesJSON string
	Catalog, License                               string
	Columns                                        []openDataColumn
	Available                                      bool
}

type openDataColumn struct{ Name, Meaning string }

// openDataPage: GET /open-data/ explains the datasets.
func (s *Server) openDataPage(c *fiber.Ctx) error {
	l := s.localizer(c)
	oc := openDataContent{
		MinCount: s.minCount(), MaxSuppressed: s.minCount() - 1, UsageCSV: "/open-data/usage.csv", UsageJSON: "/open-data/usage.json",
		ServicesCSV: "/open-data/services.csv", ServicesJSON: "/open-data/services.json",
		Catalog: "/open-data/catalog.jsonld", License: CC0, Available: s.UsageReports != nil,
	}
	for _, col := range usage.OpenColumns {
		oc.Columns = append(oc.Columns, openDataColumn{Name: col, Meaning: l.T("usage.column." + col)})
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return s.render(c, fiber.StatusOK, "opendata", l.T("usage.opendata.title"), oc)
}

// openUsageRows reads the usage dataset (daily, suppressed) for ?from=&to=
// (default: the last year up to today).
func (s *Server) openUsageRows(c *fiber.Ctx) (usage.OpenDataset, error) {
	if s.UsageReports == nil {
		return usage.OpenDataset{}, gateway.Errorf(gateway.ENotFound, "usage.error.off", nil)
	}
	q, err := s.usageQuery(c, openDataDays)
	if err != nil {
		return usage.OpenDataset{}, err
	}
	q = usage.Query{From: q.From, To: q.To, Granularity: usage.Day} // the dataset is not filtered
	c.Set(fiber.HeaderCacheControl, "public, max-age="+strconv.Itoa(openDataMaxAge))
	key := fmt.Sprintf("%p|%s|%s", s, q.From, q.To)
	if ds, ok := openCache.get(key, s.Config.Now()); ok {
		return ds, nil
	}
	if err := s.limitOpenData(c); err != nil {
		return usage.OpenDataset{}, err
	}
	ctx, cancel := s.storeCtx(c)
	defer cancel()
	select { // at most openBuilds datasets made at once in this process
	case openBuilds <- struct{}{}:
		defer func() { <-openBuilds }()
	case <-ctx.Done():
		return usage.OpenDataset{}, gateway.Errorf(gateway.EUnavailable, "usage.error.unavailable", ctx.Err())
	}
	rows, err := s.UsageReports.OpenRows(ctx, q.From, q.To)
	if err != nil {
		return usage.OpenDataset{}, usageErr(err)
	}
	ds := usage.OpenDataset{From: q.From, To: q.To, MinCount: s.minCount(), License: CC0, Columns: usage.OpenColumns,
		Rows: usage.OpenRows(rows, s.minCount()), Generated: s.Config.Now().UTC().Format(time.RFC3339)}
	openCache.put(key, cachedDataset{ds: ds, owner: s}, s.Config.Now())
	return ds, nil
}

// Bounds on making open datasets (a request the cache cannot answer): per
// client IP, openDataMisses a minute (shared by the replicas through the
// Counter); per process, openBuilds at once, the others wait within their
// store timeout.
const openDataMisses = 30

var openBuilds = make(chan struct{}, 2)

// limitOpenData counts a dataset made for the client and refuses more than
// openDataMisses a minute with 429.
func (s *Server) limitOpenData(c *fiber.Ctx) error {
	if s.Counter == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 500*time.Millisecond)
	defer cancel()
	n, ttl, err := s.Counter.Hit(ctx, "opendata:"+c.IP(), time.Minute)
	if err != nil {
		s.Logger.Warn("open data limit unavailable", "error", err)
		return nil
	}
	if n > openDataMisses {
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(ttl.Seconds())+1))
		return gateway.Errorf(gateway.ETooMany, "error.rate_limited", errors.New("too many open datasets made for one client"))
	}
	return nil
}

// openCache keeps computed usage datasets for a few seconds, so that the
// public, unauthenticated open data cannot make Redis read a year of
// counters for every request. It holds at most openCacheMax entries.
var openCache = &datasetCache{m: map[string]cachedDataset{}}

const (
	openCacheTTL = 10 * time.Second
	openCacheMax = 64
)

type cachedDataset struct {
	ds      usage.OpenDataset
	expires time.Time
	owner   *Server // pins the server whose address is in the key, so the address is not reused meanwhile
}

type datasetCache struct {
	mu sync.Mutex
	m  map[string]cachedDataset
}

func (dc *datasetCache) get(key string, now time.Time) (usage.OpenDataset, bool) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	e, ok := dc.m[key]
	if !ok || now.After(e.expires) {
		return usage.OpenDataset{}, false
	}
	return e.ds, true
}

func (dc *datasetCache) put(key string, e cachedDataset, now time.Time) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if len(dc.m) >= openCacheMax {
		for k, old := range dc.m {
			if now.After(old.expires) {
				delete(dc.m, k)
			}
		}
		if len(dc.m) >= openCacheMax {
			dc.m = map[string]cachedDataset{}
		}
	}
	e.expires = now.Add(openCacheTTL)
	dc.m[key] = e
}

// usageErr maps a store failure to "unavailable"; query errors pass.
func usageErr(err error) error {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return err
	}
	return gateway.Errorf(gateway.EUnavailable, "usage.error.unavailable", err)
}

// openUsageCSV: GET /open-data/usage.csv.
func (s *Server) openUsageCSV(c *fiber.Ctx) error {
	ds, err := s.openUsageRows(c)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := usage.WriteCSV(&buf, ds.Rows); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `inline; filename="usage.csv"`)
	return c.Send(buf.Bytes())
}

// openUsageJSON: GET /open-data/usage.json.
func (s *Server) openUsageJSON(c *fiber.Ctx) error {
	ds, err := s.openUsageRows(c)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := usage.WriteJSON(&buf, ds); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	return c.Send(buf.Bytes())
}

// openService is a service in the catalog datasets, in every shipped language.
type openService struct {
	ID             string            `json:"id"`
	Version        string            `json:"version"`
	Title          map[string]string `json:"title"`
	Summary        map[string]string `json:"summary"`
	Department     string            `json:"department"`
	DepartmentName map[string]string `json:"department_name"`
	Category       string            `json:"category"`
	CategoryName   map[string]string `json:"category_name"`
	Assurance      string            `json:"assurance"`
	Channels       []string          `json:"channels"`
	URL            string            `json:"url"`
	APIURL         string            `json:"api_url"`
}

func (s *Server) openServices(c *fiber.Ctx) []openService {
	base := s.baseURL(c)
	var out []openService
	for _, svc := range s.Catalog.All() {
		o := openService{ID: svc.ID, Version: svc.Version, Department: svc.Department, Category: svc.Category,
			Assurance: svc.Assurance.String(), Title: map[string]string{}, Summary: map[string]string{},
			DepartmentName: map[string]string{}, CategoryName: map[string]string{}, Channels: []string{},
			URL: base + "/services/" + svc.ID, APIURL: base + "/api/v1/services/" + svc.ID}
		for _, tag := range locales.Shipped {
			l := s.Translations.Localizer(tag)
			lang := tag.String()
			o.Title[lang] = l.T(svc.MsgTitle())
			o.Summary[lang] = l.T(svc.MsgSummary())
			o.DepartmentName[lang] = l.T(gateway.MsgDepartment(svc.Department))
			o.CategoryName[lang] = l.T(gateway.MsgCategory(svc.Category))
		}
		for _, ch := range svc.Channels {
			o.Channels = append(o.Channels, string(ch))
		}
		out = append(out, o)
	}
	return out
}

// openServicesJSON: GET /open-data/services.json.
func (s *Server) openServicesJSON(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.JSON(fiber.Map{"license": CC0, "services": s.openServices(c)})
}

// openServicesCSV: GET /open-data/services.csv, one row per service, a
// title and summary column per language.
func (s *Server) openServicesCSV(c *fiber.Ctx) error {
	head := []string{"id", "version", "department", "category", "assurance", "channels", "url"}
	for _, tag := range locales.Shipped {
		head = append(head, "title_"+tag.String(), "summary_"+tag.String(), "department_name_"+tag.String())
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(head)
	for _, o := range s.openServices(c) {
		rec := []string{o.ID, o.Version, o.Department, o.Category, o.Assurance, strings.Join(o.Channels, " "), o.URL}
		for _, tag := range locales.Shipped {
			rec = append(rec, o.Title[tag.String()], o.Summary[tag.String()], o.DepartmentName[tag.String()])
		}
		_ = w.Write(rec)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `inline; filename="services.csv"`)
	return c.Send(buf.Bytes())
}

// langValues is a text in every shipped language, as JSON-LD language maps.
func (s *Server) langValues(id string, data ...any) []map[string]string {
	var out []map[string]string
	for _, tag := range locales.Shipped {
		out = append(out, map[string]string{"@value": s.Translations.Localizer(tag).T(id, data...), "@language": tag.String()})
	}
	return out
}

// langList is a comma-separated list in every shipped language, one
// language-tagged value per item.
func (s *Server) langList(id string) []map[string]string {
	var out []map[string]string
	for _, tag := range locales.Shipped {
		for _, item := range strings.Split(s.Translations.Localizer(tag).T(id), ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, map[string]string{"@value": item, "@language": tag.String()})
			}
		}
	}
	return out
}

// openCatalog: GET /open-data/catalog.jsonld, DCAT-AP metadata of the
// datasets (JSON-LD), for harvesting by a national data portal.
func (s *Server) openCatalog(c *fiber.Ctx) error {
	base := s.baseURL(c)
	ref := func(u string) map[string]string { return map[string]string{"@id": u} }
	license := ref(CC0)
	media := map[string]string{"csv": "https://www.iana.org/assignments/media-types/text/csv", "json": "https://www.iana.org/assignments/media-types/application/json"}
	format := map[string]string{"csv": "http://publications.europa.eu/resource/authority/file-type/CSV", "json": "http://publications.europa.eu/resource/authority/file-type/JSON"}
	today := s.Config.Now().UTC().Format(time.DateOnly)
	dist := func(path, kind string) map[string]any {
		u := base + path
		return map[string]any{
			"@id": u + "#distribution", "@type": "dcat:Distribution",
			"dct:title":      s.langValues("usage.dcat.distribution_title", "Format", strings.ToUpper(kind)),
			"dcat:accessURL": ref(u), "dcat:downloadURL": ref(u),
			"dcat:mediaType": ref(media[kind]), "dct:format": ref(format[kind]), "dct:license": license,
		}
	}
	publisher := map[string]any{"@type": "foaf:Agent", "foaf:name": s.langValues("usage.dcat.publisher")}
	theme := ref("http://publications.europa.eu/resource/authority/data-theme/GOVE")
	dataset := func(id, titleID, descID, freq string, keywords string, dists ...map[string]any) map[string]any {
		return map[string]any{
			"@id": base + "/open-data/#" + id, "@type": "dcat:Dataset",
			"dct:identifier": id,
			"dct:title":      s.langValues(titleID), "dct:description": s.langValues(descID, "Max", s.minCount()-1),
			"dcat:keyword": s.langList(keywords), "dcat:theme": theme, "dct:publisher": publisher,
			"dct:license": license, "dct:accessRights": ref("http://publications.europa.eu/resource/authority/access-right/PUBLIC"),
			"dct:accrualPeriodicity": ref("http://publications.europa.eu/resource/authority/frequency/" + freq),
			"dct:modified":           map[string]string{"@value": today, "@type": "xsd:date"},
			"dcat:landingPage":       ref(base + "/open-data/"),
			"dcat:distribution":      dists,
		}
	}
	doc := map[string]any{
		"@context": map[string]string{
			"dcat": "http://www.w3.org/ns/dcat#", "dct": "http://purl.org/dc/terms/", "foaf": "http://xmlns.com/foaf/0.1/",
			"xsd": "http://www.w3.org/2001/XMLSchema#",
		},
		"@id": base + "/open-data/catalog.jsonld", "@type": "dcat:Catalog",
		"dct:title": s.langValues("usage.dcat.catalog_title"), "dct:description": s.langValues("usage.dcat.catalog_description"),
		"dct:publisher": publisher, "dct:license": license, "foaf:homepage": ref(base + "/open-data/"),
		"dct:language": []map[string]string{
			ref("http://publications.europa.eu/resource/authority/language/SWE"),
			ref("http://publications.europa.eu/resource/authority/language/ENG"),
		},
		"dcat:dataset": []map[string]any{
			dataset("usage", "usage.dcat.usage_title", "usage.dcat.usage_description", "DAILY", "usage.dcat.usage_keywords",
				dist("/open-data/usage.csv", "csv"), dist("/open-data/usage.json", "json")),
			dataset("services", "usage.dcat.services_title", "usage.dcat.services_description", "IRREG", "usage.dcat.services_keywords",
				dist("/open-data/services.csv", "csv"), dist("/open-data/services.json", "json")),
		},
	}
	b, err := c.App().Config().JSONEncoder(doc)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	c.Set(fiber.HeaderContentType, "application/ld+json; charset=utf-8")
	return c.Send(b)
}
