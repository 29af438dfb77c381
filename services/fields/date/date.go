// Package date is the "date" field kind: a day (YYYY-MM-DD), optionally
// between min_date and max_date, drawn as day, month and year inputs.
package date

import (
	"time"

	"github.com/kommun/servicegateway/gateway"
)

func init() { gateway.RegisterFieldKind(string(gateway.FieldDate), kind{}) }

type kind struct{}

func (kind) Check(f *gateway.Field) []gateway.FieldProblem {
	return gateway.CheckSettings(f, gateway.SettingDates|gateway.SettingPattern)
}

func (kind) Validate(s *gateway.Service, f *gateway.Field, in []string, now time.Time) (any, *gateway.Message) {
	v, m := gateway.TextValue(f, in, false, gateway.DefaultMaxText)
	if m != nil || v == "" {
		return nil, m
	}
	d, err := time.Parse(gateway.DateLayout, v)
	if err != nil {
		return nil, gateway.NewMessage(gateway.MsgDate)
	}
	if min, ok := gateway.ResolveDate(f.MinDate, now); ok && d.Before(min) {
		return nil, gateway.NewMessage(gateway.MsgMinDate, "Date", min.Format(gateway.DateLayout))
	}
	if max, ok := gateway.ResolveDate(f.MaxDate, now); ok && d.After(max) {
		return nil, gateway.NewMessage(gateway.MsgMaxDate, "Date", max.Format(gateway.DateLayout))
	}
	if m := gateway.MatchPattern(s, f, v); m != nil {
		return nil, m
	}
	return v, nil
}

func (kind) Schema(f *gateway.Field) map[string]any {
	p := gateway.StringSchema(f, 0)
	p["format"] = "date"
	return p
}

func (kind) View(*gateway.Field, []string) gateway.FieldView {
	return gateway.FieldView{DateParts: true}
}

func (kind) Members() []string { return nil }

func (kind) Example(*gateway.Field) any {
	return "2030-01-15"
}
