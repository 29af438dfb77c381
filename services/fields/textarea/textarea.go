// Package textarea is the "textarea" field kind: text of several lines.
package textarea

import (
	"time"

	"github.com/kommun/servicegateway/gateway"
)

func init() { gateway.RegisterFieldKind(string(gateway.FieldTextarea), kind{}) }

type kind struct{}

func (kind) Check(f *gateway.Field) []gateway.FieldProblem {
	return gateway.CheckSettings(f, gateway.SettingPattern)
}

func (kind) Validate(s *gateway.Service, f *gateway.Field, in []string, _ time.Time) (any, *gateway.Message) {
	v, m := gateway.TextValue(f, in, true, gateway.DefaultMaxTextarea)
	if m != nil || v == "" {
		return nil, m
	}
	if m := gateway.MatchPattern(s, f, v); m != nil {
		return nil, m
	}
	return v, nil
}

func (kind) Schema(f *gateway.Field) map[string]any {
	return gateway.StringSchema(f, gateway.DefaultMaxTextarea)
}

func (kind) View(*gateway.Field, []string) gateway.FieldView { return gateway.FieldView{} }

func (kind) Members() []string { return nil }

func (kind) Example(f *gateway.Field) any {
	return gateway.ExampleText(f)
}
