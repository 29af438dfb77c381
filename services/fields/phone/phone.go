// Package phone is the "phone" field kind: a telephone number of 6 to 15
// digits, with an optional leading + and spaces, dashes and brackets.
package phone

import (
	"time"

	"github.com/kommun/servicegateway/gateway"
)

func init() { gateway.RegisterFieldKind(string(gateway.FieldPhone), kind{}) }

type kind struct{}

func (kind) Check(f *gateway.Field) []gateway.FieldProblem {
	return gateway.CheckSettings(f, gateway.SettingPattern)
}

func (kind) Validate(s *gateway.Service, f *gateway.Field, in []string, _ time.Time) (any, *gateway.Message) {
	v, m := gateway.TextValue(f, in, false, gateway.DefaultMaxPhone)
	if m != nil || v == "" {
		return nil, m
	}
	digits := 0
	for i, r := range v {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '-', r == '(', r == ')':
		default:
			return nil, gateway.NewMessage(gateway.MsgPhone)
		}
	}
	if digits < 6 || digits > 15 {
		return nil, gateway.NewMessage(gateway.MsgPhone)
	}
	if m := gateway.MatchPattern(s, f, v); m != nil {
		return nil, m
	}
	return v, nil
}

func (kind) Schema(f *gateway.Field) map[string]any { return gateway.StringSchema(f, 0) }

func (kind) View(*gateway.Field, []string) gateway.FieldView {
	return gateway.FieldView{InputType: "tel", Autocomplete: "tel"}
}

func (kind) Members() []string { return nil }

func (kind) Example(*gateway.Field) any {
	return "070-123 45 67"
}
