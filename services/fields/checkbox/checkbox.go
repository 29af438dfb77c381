// Package checkbox is the "checkbox" field kind: one box, ticked or not; a
// required one must be ticked (a consent).
package checkbox

import (
	"time"

	"github.com/kommun/servicegateway/gateway"
)

func init() { gateway.RegisterFieldKind(string(gateway.FieldCheckbox), kind{}) }

type kind struct{}

func (kind) Check(f *gateway.Field) []gateway.FieldProblem { return gateway.CheckSettings(f, 0) }

func (kind) Validate(_ *gateway.Service, f *gateway.Field, in []string, _ time.Time) (any, *gateway.Message) {
	if m := gateway.CheckInput(in, false); m != nil {
		return nil, m
	}
	checked := len(in) > 0 && gateway.IsTrue(in[len(in)-1])
	if f.Required && !checked {
		return nil, gateway.NewMessage(gateway.MsgCheckbox)
	}
	return checked, nil
}

func (kind) Schema(f *gateway.Field) map[string]any {
	p := map[string]any{"type": "boolean"}
	if f.Required {
		p["const"] = true
	}
	return p
}

func (kind) View(_ *gateway.Field, vals []string) gateway.FieldView {
	return gateway.FieldView{Checked: len(vals) > 0 && vals[len(vals)-1] != "" && vals[len(vals)-1] != "false"}
}

func (kind) Members() []string { return nil }

func (kind) Example(*gateway.Field) any {
	return true
}
