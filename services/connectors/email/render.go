package email

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Stockholm on machines without a zoneinfo database

	"github.com/kommun/servicegateway/gateway"
)

// stockholm is the time zone of the received time in the e-mail.
var stockholm = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		return time.UTC
	}
	return loc
}()

// Headers the gateway adds, for mail rules and people who sort mail.
const (
	HeaderReference = "X-Gateway-Reference"
	HeaderService   = "X-Gateway-Service"
	HeaderChannel   = "X-Gateway-Channel"
)

// Compose builds the e-mail of a delivery. The result is the same on every
// attempt (same headers, Message-ID, Date and body), so a repeated send is
// the same message.
func (c *Connector) Compose(d *gateway.Delivery) *Message {
	t := c.texts()
	title := d.Service
	if c.svc != nil {
		if s := t(c.svc.MsgTitle()); s != "" {
			title = s
		}
	}
	received := d.SubmittedAt.In(stockholm).Format("2006-01-02 15:04 MST")
	channel := t("usage.channel." + string(d.Channel))
	if channel == "" {
		channel = string(d.Channel)
	}
	l := c.tr.Localizer(c.lang)
	data := map[string]any{"Title": title, "Reference": d.Reference}

	var b strings.Builder
	b.WriteString(l.T("email.intro") + "\n\n")
	row := func(label, value string) { fmt.Fprintf(&b, "%s: %s\n", label, value) }
	row(l.T("email.reference"), d.Reference)
	row(l.T("email.service"), fmt.Sprintf("%s (%s %s)", title, d.Service, d.ServiceVersion))
	row(l.T("email.received"), received)
	row(l.T("email.channel"), channel)
	b.WriteString("\n")
	for _, f := range c.fields(d.Payload) {
		b.WriteString(f.label + "\n")
		for _, line := range strings.Split(f.value, "\n") {
			b.WriteString("  " + strings.TrimRight(line, "\r") + "\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("-- \n" + l.T("email.footer", data) + "\n")

	return &Message{
		From:      c.from,
		To:        c.to,
		Subject:   l.T("email.subject", data),
		Date:      d.SubmittedAt,
		MessageID: MessageID(d.SubmissionID, d.Reference, c.domain),
		Headers: [][2]string{
			{"Auto-Submitted", "auto-generated"}, // RFC 3834: no auto-replies
			{HeaderReference, d.Reference},
			{HeaderService, d.Service},
			{HeaderChannel, string(d.Channel)},
		},
		Text: b.String(),
	}
}

// texts returns an optional translation in the connector's language: ""
// when missing.
func (c *Connector) texts() func(id string) string {
	return c.tr.Localizer(c.lang).Optional
}

type renderedField struct{ label, value string }

// fields renders the payload in the order of the form, with labels and
// option labels; values without a field in the manifest follow by name.
func (c *Connector) fields(payload map[string]any) []renderedField {
	t := c.texts()
	var out []renderedField
	done := map[string]bool{}
	if c.svc != nil {
		for i := range c.svc.Fields {
			f := &c.svc.Fields[i]
			v, ok := payload[f.Name]
			if !ok {
				continue
			}
			done[f.Name] = true
			label := t(c.svc.MsgLabel(f))
			if label == "" {
				label = f.Name
			}
			out = append(out, renderedField{label, c.value(f, v)})
		}
	}
	var rest []string
	for k := range payload {
		if !done[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		out = append(out, renderedField{k, c.value(nil, payload[k])})
	}
	return out
}

// value renders one value for people: option labels for choices, yes/no for
// check boxes, lists one per line.
func (c *Connector) value(f *gateway.Field, v any) string {
	t := c.texts()
	option := func(s string) string {
		if f != nil && c.svc != nil && slices.Contains(f.Options, s) {
			if l := t(c.svc.MsgOption(f, s)); l != "" {
				return l
			}
		}
		return s
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return option(x)
	case bool:
		if x {
			return c.tr.Localizer(c.lang).T("email.yes")
		}
		return c.tr.Localizer(c.lang).T("email.no")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = "- " + c.value(f, e)
		}
		return strings.Join(parts, "\n")
	case []string:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = "- " + option(e)
		}
		return strings.Join(parts, "\n")
	default:
		return fmt.Sprint(x)
	}
}
