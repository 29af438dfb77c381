// Package email is the "email" field kind: one e-mail address.
package email

import (
	"net/mail"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

func init() { gateway.RegisterFieldKind(string(gateway.FieldEmail), kind{}) }

type kind struct{}

func (kind) Check(f *gateway.Field) []gateway.FieldProblem {
	return gateway.CheckSettings(f, gateway.SettingPattern)
}

func (kind) Validate(s *gateway.Service, f *gateway.Field, in []string, _ time.Time) (any, *gateway.Message) {
	v, m := gateway.TextValue(f, in, false, gateway.DefaultMaxEmail)
	if m != nil || v == "" {
		return nil, m
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Address != v || a.Name != "" || !strings.Contains(v[strings.LastIndexByte(v, '@'):], ".") {
		return nil, gateway.NewMessage(gateway.MsgEmail)
	}
	if m := gateway.MatchPattern(s, f, v); m != nil {
		return nil, m
	}
	return v, nil
}

func (kind) Schema(f *gateway.Field) map[string]any {
	p := gateway.StringSchema(f, 0)
	p["format"] = "email"
	return p
}

func (kind) View(*gateway.Field, []string) gateway.FieldView {
	return gateway.FieldView{InputType: "email", Autocomplete: "email"}
}

func (kind) Members() []string { return nil }

func (kind) Example(*gateway.Field) any {
	return "namn@example.se"
}
