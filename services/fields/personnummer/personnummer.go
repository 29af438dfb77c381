// Package personnummer is the "personnummer" field kind: a Swedish
// personal identity number, stored in its 12-digit form.
package personnummer

import (
	"errors"
	"time"

	"github.com/kommun/servicegateway/gateway"
	pnr "github.com/kommun/servicegateway/gateway/personnummer"
)

func init() { gateway.RegisterFieldKind(string(gateway.FieldPersonnummer), kind{}) }

type kind struct{}

func (kind) Check(f *gateway.Field) []gateway.FieldProblem {
	return gateway.CheckSettings(f, gateway.SettingPattern)
}

func (kind) Validate(_ *gateway.Service, f *gateway.Field, in []string, now time.Time) (any, *gateway.Message) {
	v, m := gateway.TextValue(f, in, false, gateway.DefaultMaxText)
	if m != nil || v == "" {
		return nil, m
	}
	p, err := pnr.ParseAt(v, now)
	switch {
	case errors.Is(err, pnr.ErrChecksum):
		return nil, gateway.NewMessage(gateway.MsgPnrChecksum)
	case errors.Is(err, pnr.ErrDate):
		return nil, gateway.NewMessage(gateway.MsgPnrDate)
	case err != nil:
		return nil, gateway.NewMessage(gateway.MsgPersonnummer)
	}
	return p.String(), nil
}

func (kind) Schema(f *gateway.Field) map[string]any {
	p := gateway.StringSchema(f, 0)
	if f.Pattern == "" {
		p["pattern"] = `^(\d{2})?\d{6}[-+]?\d{4}$`
	}
	return p
}

func (kind) View(*gateway.Field, []string) gateway.FieldView {
	return gateway.FieldView{InputMode: "numeric", Autocomplete: "off"}
}

func (kind) Members() []string { return nil }

func (kind) Example(*gateway.Field) any {
	return "19121212-1212"
}
