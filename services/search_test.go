package services_test

import (
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/locales"
	"github.com/kommun/servicegateway/services"
	"github.com/kommun/servicegateway/services/servicegen"
)

func loadCatalog(t testing.TB, fsys fs.FS) (*services.Catalog, *locales.Translations) {
	t.Helper()
	tr, err := locales.New()
	if err != nil {
		t.Fatal(err)
	}
	_, cat, err := services.LoadCatalog(fsys, tr)
	if err != nil {
		t.Fatal(err)
	}
	return cat, tr
}

var big struct {
	sync.Once
	cat *services.Catalog
	tr  *locales.Translations
}

// generated loads a generated catalog of n services; the one of 1,000 is
// loaded once for every test and benchmark.
func generated(t testing.TB, n int) (*services.Catalog, *locales.Translations) {
	t.Helper()
	if n == 1000 {
		big.Do(func() { big.cat, big.tr = load(t, 1000) })
		if big.cat == nil {
			t.Fatal("no generated catalog")
		}
		return big.cat, big.tr
	}
	return load(t, n)
}

func load(t testing.TB, n int) (*services.Catalog, *locales.Translations) {
	fsys, err := servicegen.FS(n)
	if err != nil {
		t.Fatal(err)
	}
	return loadCatalog(t, fsys)
}

// scanner is how search worked before the index: fold every service's
// texts and look for each query word inside them. The index must agree.
func scanner(cat *services.Catalog, tr *locales.Translations) func(query string) []string {
	texts := make([]string, len(cat.All()))
	for i, s := range cat.All() {
		parts := []string{s.ID, strings.Join(s.Keywords, " ")}
		for _, l := range locales.Shipped {
			for _, id := range []string{s.MsgTitle(), s.MsgSummary(), s.MsgKeywords(), gateway.MsgDepartment(s.Department), gateway.MsgCategory(s.Category)} {
				parts = append(parts, tr.Localizer(l).Optional(id))
			}
		}
		texts[i] = services.Fold(strings.Join(parts, " | "))
	}
	return func(query string) []string {
		words := services.QueryWords(query)
		var out []string
		for i, s := range cat.All() {
			match := true
			for _, w := range words {
				match = match && strings.Contains(texts[i], w)
			}
			if match {
				out = append(out, s.ID)
			}
		}
		return out
	}
}

func ids(list []*gateway.Service) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.ID)
	}
	return out
}

// The index finds exactly what a scan of every folded text finds, for
// whole words, parts of words, several words, diacritics and misses, on the
// built-in catalog and on a generated one of 1,000 services.
func TestSearchIndexAgreesWithScan(t *testing.T) {
	queries := []string{"", "forskola", "FÖRSKOLA", "skola", "belysning", "gatubelysning", "allmän handling",
		"home care", "hem", "e", "parkering tillstånd", "pothole street", "zzzqqq", "a b", "felanmälan park",
		"livsmedel", "  Ä  ", servicegen.Word(3), servicegen.Word(500) + " " + servicegen.Word(501), "bykalo", "0042", "street-fault",
		strings.Repeat("x ", 40) + "skola"}
	for _, n := range []int{0, 1000} {
		var cat *services.Catalog
		var tr *locales.Translations
		if n == 0 {
			cat, tr = loadCatalog(t, services.Builtin)
		} else {
			cat, tr = generated(t, n)
		}
		scan := scanner(cat, tr)
		for _, q := range queries {
			got, want := ids(cat.Search(q)), scan(q)
			if q == "" {
				want = ids(cat.All())
			}
			if !slices.Equal(got, want) {
				t.Errorf("%d services: Search(%q) = %d %v,\nscan finds %d %v", len(cat.All()), q, len(got), head(got), len(want), head(want))
			}
		}
	}
}

func head(l []string) []string { return l[:min(len(l), 5)] }

// A long query is cut to MaxQueryBytes and MaxQueryWords.
func TestSearchQueryLimits(t *testing.T) {
	if w := services.QueryWords(strings.Repeat("ab ", 100)); len(w) != services.MaxQueryWords {
		t.Errorf("%d words kept", len(w))
	}
	if w := services.QueryWords(strings.Repeat("a", 1000)); len(w) != 1 || len(w[0]) != services.MaxQueryBytes {
		t.Errorf("long word kept as %d bytes", len(w[0]))
	}
	// A cut in the middle of a rune does not make a broken word.
	q := strings.Repeat("a", services.MaxQueryBytes-1) + "ö"
	if w := services.QueryWords(q); len(w) != 1 || len(w[0]) != services.MaxQueryBytes-1 {
		t.Errorf("cut rune: %q", w)
	}
}

// The generator makes valid, distinct services; the version names the content.
func TestGeneratedCatalog(t *testing.T) {
	cat, _ := generated(t, 1000)
	if len(cat.All()) != 1000 {
		t.Fatalf("%d services", len(cat.All()))
	}
	got := ids(cat.Search(servicegen.Word(777)))
	if len(got) != 1 || !strings.HasSuffix(got[0], "-0777") {
		t.Fatalf("the word of service 777 finds %v", got)
	}
	a, _ := generated(t, 20)
	b, _ := generated(t, 21)
	c, _ := generated(t, 20)
	if a.Version() == b.Version() || a.Version() != c.Version() || a.Version() == "" {
		t.Fatalf("versions: 20 services %q, 21 %q, 20 again %q", a.Version(), b.Version(), c.Version())
	}
}

func BenchmarkSearch(b *testing.B) {
	for _, n := range []int{7, 1000} {
		var cat *services.Catalog
		if n == 7 {
			cat, _ = loadCatalog(b, services.Builtin)
		} else {
			cat, _ = generated(b, n)
		}
		for _, q := range []string{"forskola", "skola", "allmän handling"} {
			b.Run(fmt.Sprintf("services=%d/q=%s", n, q), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					cat.Search(q)
				}
			})
		}
	}
}
