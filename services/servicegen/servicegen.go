// Package servicegen makes large service catalogs at run time, for
// benchmarks and the benchmark harness (cmd/benchgw): n services, each a
// renamed copy of one of the built-in services with its own title and a
// made-up search word, valid like any department's manifest. Nothing it
// makes is committed.
package servicegen

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing/fstest"

	"github.com/kommun/servicegateway/services"
)

// syllables make a distinct word per service ("bykalo"), so that the
// index grows with the catalog as real texts would.
var syllables = []string{"by", "ka", "lo", "mer", "sti", "gå", "vä", "ren", "tor", "ul", "sen", "dal", "ö", "hem", "bro", "lund"}

// Word is the made-up search word of generated service k.
func Word(k int) string {
	var b strings.Builder
	for i := 0; i < 3; i++ {
		b.WriteString(syllables[k%len(syllables)])
		k /= len(syllables)
	}
	return b.String()
}

// ID is the id of generated service k made from the built-in service base.
func ID(base string, k int) string { return fmt.Sprintf("%s-%04d", base, k) }

type template struct {
	dir, id string            // department folder and service id of the built-in service
	files   map[string][]byte // file name -> content
}

// idLine is the manifest's id line; the first is the service's (top-level
// keys come before any table in TOML; steps have ids too).
var idLine = regexp.MustCompile(`(?m)^id = "([a-z0-9-]+)"`)

// templates reads the built-in services.
func templates() ([]template, error) {
	var out []template
	err := fs.WalkDir(services.Builtin, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != services.ManifestName {
			return err
		}
		dir := path.Dir(p)
		entries, err := fs.ReadDir(services.Builtin, dir)
		if err != nil {
			return err
		}
		t := template{dir: path.Dir(dir), files: map[string][]byte{}}
		for _, e := range entries {
			b, err := fs.ReadFile(services.Builtin, path.Join(dir, e.Name()))
			if err != nil {
				return err
			}
			t.files[e.Name()] = b
		}
		m := idLine.FindSubmatch(t.files[services.ManifestName])
		if m == nil {
			return fmt.Errorf("servicegen: no id in %s", p)
		}
		t.id = string(m[1])
		if bytes.Contains(t.files[services.ManifestName], []byte(`kind = "proxy"`)) {
			return nil // an existing e-service has a prefix of its own: one is enough
		}
		out = append(out, t)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, err
}

// FS returns a catalog of n services as files, laid out like services/.
func FS(n int) (fstest.MapFS, error) {
	ts, err := templates()
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("servicegen: no built-in services")
	}
	out := fstest.MapFS{}
	for k := 0; k < n; k++ {
		t := ts[k%len(ts)]
		id := ID(t.id, k)
		for name, b := range t.files {
			s := string(b)
			if name == services.ManifestName {
				loc := idLine.FindStringIndex(s)
				s = s[:loc[0]] + `id = "` + id + `"` + s[loc[1]:]
			} else {
				s = strings.ReplaceAll(s, `"`+t.id+`.`, `"`+id+`.`)
				s = appendTo(s, id+".title", fmt.Sprintf(" %d", k))
				s = appendTo(s, id+".keywords", ", "+Word(k))
			}
			out[path.Join(t.dir, id, name)] = &fstest.MapFile{Data: []byte(s), Mode: 0o644}
		}
	}
	return out, nil
}

// appendTo appends text to the value of the message id in a message file
// (`"id" = "value"` on one line).
func appendTo(file, id, text string) string {
	key := `"` + id + `" = "`
	i := strings.Index(file, key)
	if i < 0 {
		return file
	}
	end := strings.Index(file[i+len(key):], "\"\n")
	if end < 0 {
		return file
	}
	j := i + len(key) + end
	return file[:j] + text + file[j:]
}

// WriteDir writes a catalog of n services into dir (for
// GATEWAY_SERVICES_DIR).
func WriteDir(dir string, n int) error {
	fsys, err := FS(n)
	if err != nil {
		return err
	}
	for name, f := range fsys {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
