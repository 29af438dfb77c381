// Package number is the "number" field kind: a decimal number (a comma
// is read as the decimal point), optionally within min and max.
package number

import (
	"strconv"
	"strings"
	"time"

	"github.com/kommun/servicegateway/gateway"
)

func init() { gateway.RegisterFieldKind(string(gateway.FieldNumber), kind{}) }

type kind struct{}

func (kind) Check(f *gateway.Field) []gateway.FieldProblem {
	return gateway.CheckSettings(f, gateway.SettingRange|gateway.SettingPattern)
}

func (kind) Validate(_ *gateway.Service, f *gateway.Field, in []string, _ time.Time) (any, *gateway.Message) {
	v, m := gateway.TextValue(f, in, false, gateway.DefaultMaxText)
	if m != nil || v == "" {
		return nil, m
	}
	x, err := strconv.ParseFloat(strings.Replace(v, ",", ".", 1), 64)
	if err != nil || x != x || x > 1e15 || x < -1e15 {
		return nil, gateway.NewMessage(gateway.MsgNumber)
	}
	if f.Min != nil && x < *f.Min {
		return nil, gateway.NewMessage(gateway.MsgMin, "Min", gateway.FormatNumber(*f.Min))
	}
	if f.Max != nil && x > *f.Max {
		return nil, gateway.NewMessage(gateway.MsgMax, "Max", gateway.FormatNumber(*f.Max))
	}
	return x, nil
}

func (kind) Schema(f *gateway.Field) map[string]any {
	p := map[string]any{"type": "number"}
	if f.Min != nil {
		p["minimum"] = *f.Min
	}
	if f.Max != nil {
		p["maximum"] = *f.Max
	}
	return p
}

func (kind) View(f *gateway.Field, _ []string) gateway.FieldView {
	v := gateway.FieldView{InputMode: "decimal"}
	if f.Min != nil {
		v.Min = gateway.FormatNumber(*f.Min)
	}
	if f.Max != nil {
		v.Max = gateway.FormatNumber(*f.Max)
	}
	return v
}

func (kind) Members() []string { return nil }

func (kind) Example(f *gateway.Field) any {
	if f.Min != nil {
		return *f.Min
	}
	return 1.0
}
