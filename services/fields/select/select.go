// Package selectkind is the "select" field kind: one of the field's
// options, drawn as a drop-down list.
package selectkind

import (
	"slices"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

func init() { gateway.RegisterFieldKind(string(gateway.FieldSelect), kind{}) }

type kind struct{}

func (kind) Check(f *gateway.Field) []gateway.FieldProblem {
	return gateway.CheckSettings(f, gateway.SettingOptions)
}

func (kind) Validate(_ *gateway.Service, f *gateway.Field, in []string, _ time.Time) (any, *gateway.Message) {
	v, m := gateway.TextValue(f, in, false, gateway.DefaultMaxText)
	if m != nil || v == "" {
		return nil, m
	}
	if !slices.Contains(f.Options, v) {
		return nil, gateway.NewMessage(gateway.MsgOption)
	}
	return v, nil
}

func (kind) Schema(f *gateway.Field) map[string]any {
	p := gateway.StringSchema(f, 0)
	p["enum"] = f.Options
	return p
}

func (kind) View(*gateway.Field, []string) gateway.FieldView { return gateway.FieldView{} }

func (kind) Members() []string { return nil }

func (kind) Example(f *gateway.Field) any {
	return f.Options[0]
}
