package email

import (
	"fmt"
	"html/template"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Stockholm on machines without a zoneinfo database

	"github.com/kommun/servicegateway/gateway"
	"github.com/kommun/servicegateway/gateway/smtpmail"
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
func (c *Connector) Compose(d *gateway.Delivery) *smtpmail.Message {
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

	v := view{
		Lang: c.lang.String(), Subject: l.T("email.subject", data), Intro: l.T("email.intro"),
		Meta: []renderedField{
			{l.T("email.reference"), d.Reference},
			{l.T("email.service"), fmt.Sprintf("%s (%s %s)", title, d.Service, d.ServiceVersion)},
			{l.T("email.received"), received},
			{l.T("email.channel"), channel},
		},
		Fields: c.fields(d.Payload), Footer: l.T("email.footer", data),
	}
	var b strings.Builder
	b.WriteString(v.Intro + "\n\n")
	for _, r := range v.Meta {
		fmt.Fprintf(&b, "%s: %s\n", r.Label, r.Value)
	}
	b.WriteString("\n")
	for _, f := range v.Fields {
		b.WriteString(f.Label + "\n")
		for _, line := range strings.Split(f.Value, "\n") {
			b.WriteString("  " + strings.TrimRight(line, "\r") + "\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("-- \n" + v.Footer + "\n")
	var h strings.Builder
	if err := htmlBody.Execute(&h, v); err != nil {
		h.Reset() // cannot happen with these types; the text alone is complete
	}

	return &smtpmail.Message{
		From:      c.from,
		To:        c.to,
		Subject:   v.Subject,
		Date:      d.SubmittedAt,
		MessageID: MessageID(d.SubmissionID, d.Reference, c.domain),
		Headers: [][2]string{
			{"Auto-Submitted", "auto-generated"}, // RFC 3834: no auto-replies
			{HeaderReference, d.Reference},
			{HeaderService, d.Service},
			{HeaderChannel, string(d.Channel)},
		},
		Text: b.String(),
		HTML: h.String(),
	}
}

// texts returns an optional translation in the connector's language: ""
// when missing.
func (c *Connector) texts() func(id string) string {
	return c.tr.Localizer(c.lang).Optional
}

type renderedField struct{ Label, Value string }

// view is what the e-mail says, rendered as text and as HTML.
type view struct {
	Lang, Subject, Intro string
	Meta, Fields         []renderedField
	Footer               string
}

// htmlBody is the HTML alternative: the same as the text, escaped by
// html/template, light and without images or links.
var htmlBody = template.Must(template.New("email").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family: sans-serif; line-height: 1.4">
<p>{{.Intro}}</p>
<table>
{{range .Meta}}<tr><th scope="row" style="text-align: left; padding-right: 1em">{{.Label}}</th><td>{{.Value}}</td></tr>
{{end}}</table>
<dl>
{{range .Fields}}<dt style="font-weight: bold; margin-top: 1em">{{.Label}}</dt><dd style="white-space: pre-wrap; margin-left: 1em">{{.Value}}</dd>
{{end}}</dl>
<hr>
<p><small>{{.Footer}}</small></p>
</body>
</html>
`))

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
			out = append(out, renderedField{Label: label, Value: c.value(f, v)})
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
		out = append(out, renderedField{Label: k, Value: c.value(nil, payload[k])})
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
