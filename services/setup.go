package services

import (
	"io/fs"

	"golang.org/x/text/language"

	"github.com/kommun/servicegateway/locales"
)

// LoadCatalog loads the services in fsys for the shipped languages, adds
// their translations to tr and builds the searchable catalog: what the
// gateway does at start-up, and tests do to get the same catalog.
func LoadCatalog(fsys fs.FS, tr *locales.Translations) (*Loaded, *Catalog, error) {
	loaded, err := Load(fsys, Options{Locales: locales.Shipped, Known: tr.Has})
	if err != nil {
		return nil, nil, err
	}
	if err := tr.Add(loaded.Translations...); err != nil {
		return nil, nil, err
	}
	for _, svc := range loaded.Services {
		if b, ok := loaded.Modules[svc.ID].(ServiceBinder); ok {
			b.BindService(svc, tr)
		}
	}
	cat := NewCatalog(loaded.Services, locales.Shipped, func(l language.Tag, id string) string {
		return tr.Localizer(l).Optional(id)
	})
	return loaded, cat, nil
}
