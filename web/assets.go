package web

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"path"
	"strings"
	"sync"
)

// An Asset is a static file with the hash of its content. Pages link it by
// URL, which carries the hash ("/static/site.3f2a9c1d0b7e.css"), so that
// it can be cached for good: new content is a new URL.
type Asset struct {
	Name    string // "site.css"
	Hash    string // hex, 12 digits of SHA-256
	URL     string // "/static/site.<hash>.css"
	Content []byte
}

var assets = sync.OnceValues(func() (map[string]*Asset, error) {
	out := map[string]*Asset{}
	err := fs.WalkDir(Static(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Static(), p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:6])
		ext := path.Ext(p)
		out[p] = &Asset{Name: p, Hash: h, URL: "/static/" + strings.TrimSuffix(p, ext) + "." + h + ext, Content: b}
		return nil
	})
	return out, err
})

// AssetURL is the versioned URL of a static file (the template function
// "asset"); a name that is not a static file gives "/static/<name>", which
// answers 404.
func AssetURL(name string) string {
	m, _ := assets()
	if a, ok := m[name]; ok {
		return a.URL
	}
	return "/static/" + name
}

// LookupAsset finds the static file a path under /static/ names: the
// plain name ("site.css") or a versioned one ("site.<hash>.css").
// current reports whether the path carries the hash of today's content
// (it may be cached for good); a plain name or an older hash is not.
func LookupAsset(p string) (a *Asset, current, ok bool) {
	m, _ := assets()
	if a, ok := m[p]; ok {
		return a, false, true
	}
	ext := path.Ext(p)
	stem := strings.TrimSuffix(p, ext)
	i := strings.LastIndexByte(stem, '.')
	if i < 0 {
		return nil, false, false
	}
	a, ok = m[stem[:i]+ext]
	if !ok {
		return nil, false, false
	}
	return a, stem[i+1:] == a.Hash, true
}
