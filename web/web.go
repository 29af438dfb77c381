// Package web holds the gateway's server-rendered pages: html/template files
// and the static assets (one small stylesheet; no JavaScript is required by
// any page).
package web

import (
	"bytes"
	"embed"
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

// Pages parses every page template together with the layout. The map is
// keyed by page name ("catalog" for templates/catalog.html).
func Pages(funcs template.FuncMap) (map[string]*template.Template, error) {
	if _, err := assets(); err != nil {
		return nil, err
	}
	all := template.FuncMap{
		"asset":      AssetURL, // {{asset "site.css"}}: the versioned URL
		"field_kind": noFieldKind,
	}
	for k, f := range funcs {
		all[k] = f
	}
	layout, err := template.New("layout.html").Funcs(all).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/field_*.html")
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
		if name == "layout.html" || name == "partials.html" || strings.HasPrefix(name, "field_") {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, "templates/"+name)
		if err != nil {
			return nil, fmt.Errorf("web: %s: %w", name, err)
		}
		t.Funcs(template.FuncMap{"field_kind": fieldKind(t)})
		pages[strings.TrimSuffix(name, ".html")] = t
	}
	return pages, nil
}

// fieldKind is the template function {{field_kind .Kind .}}: it draws a
// form field with its kind's template, "field-<kind>" (defined in
// templates/field_<kind>.html), from the page's own template set.
// html/template cannot call a template by a computed name, hence this.
func fieldKind(t *template.Template) func(kind string, data any) (template.HTML, error) {
	return func(kind string, data any) (template.HTML, error) {
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, "field-"+kind, data); err != nil {
			return "", fmt.Errorf("web: field kind %q: %w", kind, err)
		}
		return template.HTML(buf.String()), nil // escaped by its own template
	}
}

func noFieldKind(string, any) (template.HTML, error) {
	return "", fmt.Errorf("web: field_kind outside a page")
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
