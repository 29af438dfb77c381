// Package multiselect is the "multi-select" field kind: any number of the
// field's options, drawn as a group of check boxes.
package multiselect

import (
	"slices"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

func init() { gateway.RegisterFieldKind(string(gateway.FieldMultiSelect), kind{}) }

type kind struct{}

func (kind) Check(f *gateway.Field) []gateway.FieldProblem {
	return gateway.CheckSettings(f, gateway.SettingOptions)
}

func (kind) Validate(_ *gateway.Service, f *gateway.Field, in []string, _ time.Time) (any, *gateway.Message) {
	if m := gateway.CheckInput(in, false); m != nil {
		return nil, m
	}
	var out []string
	for _, v := range in {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if !slices.Contains(f.Options, v) {
			return nil, gateway.NewMessage(gateway.MsgOption)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		if f.Required {
			return nil, gateway.NewMessage(gateway.MsgRequired)
		}
		return nil, nil
	}
	return out, nil
}

func (kind) Schema(f *gateway.Field) map[string]any {
	p := map[string]any{
		"type":        "array",
		"items":       map[string]any{"type": "string", "enum": f.Options},
		"uniqueItems": true,
	}
	if f.Required {
		p["minItems"] = 1
	}
	return p
}

func (kind) View(*gateway.Field, []string) gateway.FieldView { return gateway.FieldView{Group: true} }

func (kind) Members() []string { return nil }

func (kind) Example(f *gateway.Field) any {
	return []string{f.Options[0]}
}
