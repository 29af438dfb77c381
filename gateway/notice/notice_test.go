package notice

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	langs := []string{"sv", "en"}
	yes := func(string) bool { return true }
	no := func(string) bool { return false }
	good := func() Notice {
		return Notice{Severity: Crisis, Start: now, End: now.Add(time.Hour),
			Texts: map[string]Text{"sv": {" Rubrik ", "Text"}, "en": {"Heading", "Text"}, "de": {"x", "y"}}}
	}
	n := good()
	if errs := n.Validate(langs, yes, yes, now); len(errs) != 0 {
		t.Fatalf("good notice: %v", errs)
	}
	if n.Texts["sv"].Title != "Rubrik" || len(n.Texts) != 2 {
		t.Fatalf("texts not trimmed to the shipped languages: %v", n.Texts)
	}
	cases := map[string]struct {
		change func(*Notice)
		field  string
	}{
		"severity":       {func(n *Notice) { n.Severity = "panic" }, "severity"},
		"missing en":     {func(n *Notice) { delete(n.Texts, "en") }, "title_en"},
		"long body":      {func(n *Notice) { n.Texts["sv"] = Text{"R", strings.Repeat("x", MaxBody+1)} }, "body_sv"},
		"end before":     {func(n *Notice) { n.End = n.Start }, "end"},
		"ended":          {func(n *Notice) { n.Start, n.End = now.Add(-2*time.Hour), now.Add(-time.Hour) }, "end"},
		"too long":       {func(n *Notice) { n.End = n.Start.Add(MaxDuration + time.Hour) }, "end"},
		"unknown target": {func(n *Notice) { n.Services = []string{"nope"} }, "services"},
	}
	for name, tc := range cases {
		n := good()
		tc.change(&n)
		known := yes
		if tc.field == "services" {
			known = no
		}
		if errs := n.Validate(langs, known, yes, now); errs[tc.field].ID == "" {
			t.Errorf("%s: no error on %s: %v", name, tc.field, errs)
		}
	}
}

func TestSelect(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	all := []Notice{
		{ID: "a", Severity: Maintenance, Start: now.Add(-time.Hour), End: now.Add(time.Hour)},
		{ID: "b", Severity: Crisis, Start: now.Add(-time.Hour), End: now.Add(time.Hour), Services: []string{"s1"}},
		{ID: "c", Severity: Disruption, Start: now.Add(-time.Hour), End: now.Add(time.Hour), Departments: []string{"d2"}},
		{ID: "d", Severity: Crisis, Start: now.Add(-2 * time.Hour), End: now},             // ended
		{ID: "e", Severity: Crisis, Start: now.Add(time.Minute), End: now.Add(time.Hour)}, // not begun
	}
	ids := func(ns []Notice) string {
		var s []string
		for _, n := range ns {
			s = append(s, n.ID)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct{ svc, dept, want string }{
		{"", "", "a"}, {"s1", "d1", "b,a"}, {"s2", "d2", "c,a"},
	} {
		if got := ids(Select(all, now, tc.svc, tc.dept)); got != tc.want {
			t.Errorf("Select(%s,%s) = %s, want %s", tc.svc, tc.dept, got, tc.want)
		}
	}
}
