// Package web holds the gateway's server-rendered pages: html/template files
// and the static assets (one small stylesheet; no JavaScript is required by
// any page).
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Static is the file system served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	return sub
}

// versions are the static files' content hashes, for URLs that change
// when the file does (so they can be cached for long).
var versions = func() map[string]string {
	out := map[string]string{}
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(staticFS, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, "static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
	return out
}()

// AssetURL is the address of a static file with its content hash
// ("/static/site.css?v=3f2a..."); templates call it as {{asset "site.css"}}.
func AssetURL(name string) string {
	return "/static/" + name + "?v=" + versions[name]
}

// AssetVersion is the content hash of a static file, "" for none.
func AssetVersion(name string) string { return versions[name] }

// Pages parses every page template together with the layout. The map is
// keyed by page name ("catalog" for templates/catalog.html).
func Pages(funcs template.FuncMap) (map[string]*template.Template, error) {
	all := template.FuncMap{"asset": AssetURL}
	for k, v := range funcs {
		all[k] = v
	}
	layout, err := template.New("layout.html").Funcs(all).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, e := range entries {
		name := e.Name()
		if name == "layout.html" || name == "partials.html" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, "templates/"+name)
		if err != nil {
			return nil, fmt.Errorf("web: %s: %w", name, err)
		}
		pages[strings.TrimSuffix(name, ".html")] = t
	}
	return pages, nil
}

// TemplateSources returns the text of every template, for tests that check
// that each message ID a page uses is translated.
func TemplateSources() (map[string]string, error) {
	out := map[string]string{}
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(templateFS, p)
		out[p] = string(b)
		return err
	})
	return out, err
}
