package main

// The -channels mode (issue 10, "Measured"): gateway CPU per accepted
// submission for each submit channel, for this tree and, with -baseline,
// the gateway of another revision (the intake refactor landed in fdd803c:
// -baseline 'fdd803c^' is the tree before it), interleaved in one run.
//
// Each channel posts what its real client posts, to street-fault (it takes
// every channel in both revisions):
//
//   - resident form: an anonymous browser that has drawn the form once
//     (CSRF cookie and the form's hidden inputs), a fresh form token per
//     post, as a new page load would give; accepted = 303 to /s/{id}.
//   - JSON API: anonymous, a fresh Idempotency-Key per request; 202.
//   - desk form: a staff persona signed in through the development
//     identity provider, the desk form's hidden inputs and the visitor's
//     personnummer, identity check and consent; 303 to /desk/receipt/{id}.
//   - desk API: the same staff session, X-CSRF-Token, on_behalf_of; 202.
//   - Open311: POST /open311/v2/requests.json with the demo api_key; 200
//     (this tree only: Open311 did not exist before the refactor).
//
// A sample's CPU runs from the first request until the gateway has gone
// quiet after the last one, so that the delivery to casesim that each
// submission sets off (the delivery workers run in the gateway process) is
// counted with the channel that caused it, not with the next one measured.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var channelsMode = flag.Bool("channels", false, "measure gateway CPU per accepted submission for each submit channel (resident form, JSON API, desk form, desk API, Open311), this tree and -baseline; nothing else")

var channelOnly = flag.String("channel", "", "with -channels: only the channels whose name contains this (e.g. Desk)")

var channelsAfter = flag.String("after", "", "with -channels: build the \"after\" gateway from this git revision instead of this tree (e.g. fdd803c, the intake refactor alone); channels new since -baseline are then left out")

var channelsEnv = flag.String("after-env", "", "with -channels: extra environment for the \"after\" gateway, space-separated (e.g. GATEWAY_NOTIFY=off)")

const channelService = "street-fault"

// channel is one way of submitting: prepare signs in and draws forms for a
// gateway, and returns a function that makes one fresh request.
type channel struct {
	name    string
	newOnly bool // did not exist before the intake refactor
	prepare func(ctx context.Context, base string) (func() (*http.Request, error), *http.Client, error)
	ok      func(res *http.Response) bool
}

func (h *harness) runChannels(ctx context.Context) error {
	machine, err := h.begin("go", "redis-server")
	if err != nil {
		return err
	}

	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if err := h.build(ctx, root, "casesim", "./cmd/casesim"); err != nil {
		return err
	}
	afterName := "this tree"
	for _, b := range []struct{ rev, out string }{{*channelsAfter, "gateway"}, {h.o.baseline, "gateway-baseline"}} {
		if b.rev == "" {
			if b.out == "gateway" {
				if err := h.build(ctx, root, "gateway", "./cmd/gateway"); err != nil {
					return err
				}
			}
			continue
		}
		if b.out == "gateway" {
			afterName = b.rev
		}
		src := filepath.Join(h.dir, b.out+"-src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		arch := exec.CommandContext(ctx, "sh", "-c", "git -C \"$1\" archive \"$2\" | tar -x -C \"$3\"", "sh", root, b.rev, src)
		if out, err := arch.CombinedOutput(); err != nil {
			return fmt.Errorf("git archive %s: %v\n%s", b.rev, err, out)
		}
		if err := h.build(ctx, src, b.out, "./cmd/gateway"); err != nil {
			return err
		}
	}

	casesimAddr, err := h.startBackends(ctx)
	if err != nil {
		return err
	}
	type gw struct {
		label, bin, base, prefix string
		pid                      int
	}
	gws := []*gw{{label: "after", bin: "gateway"}}
	if h.o.baseline != "" {
		gws = append(gws, &gw{label: "before", bin: "gateway-baseline"})
	}
	for i, g := range gws {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort())
		g.base, g.prefix = "http://"+addr, fmt.Sprintf("chan%d", i)
		env := []string{"GOMAXPROCS=1", "GATEWAY_ADDR=" + addr, fmt.Sprintf("REDIS_URL=redis://127.0.0.1:%d/0", h.rport),
			"GATEWAY_REDIS_PREFIX=" + g.prefix, "CASESIM_URL=http://" + casesimAddr, "GATEWAY_RATELIMIT=off"}
		if g.label == "after" {
			env = append(env, strings.Fields(*channelsEnv)...)
			if *channelsEnv != "" {
				afterName += ", " + *channelsEnv
			}
		}
		cmd, err := h.start(ctx, "channels-"+g.bin, 0, env, filepath.Join(h.dir, g.bin))
		if err != nil {
			return err
		}
		g.pid = cmd.Process.Pid
		if err := h.waitHTTP(ctx, g.base+"/readyz"); err != nil {
			return err
		}
	}

	chans := h.channels()
	results := map[string][]sample{} // channel|label -> per round
	for round := 0; round < h.o.rounds; round++ {
		for _, ch := range chans {
			if !strings.Contains(ch.name, *channelOnly) {
				continue
			}
			for _, g := range gws {
				if ch.newOnly && (g.label == "before" || *channelsAfter != "") {
					continue
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				next, client, err := ch.prepare(ctx, g.base)
				if err != nil {
					return fmt.Errorf("%s (%s): %w", ch.name, g.label, err)
				}
				s, tail, err := h.measureSubmits(ctx, g.pid, g.prefix, client, next, ch.ok, h.o.submitConns)
				if err != nil {
					return fmt.Errorf("%s (%s): %w", ch.name, g.label, err)
				}
				results[ch.name+"|"+g.label] = append(results[ch.name+"|"+g.label], s)
				fmt.Fprintf(os.Stderr, "round %d  %-22s %-6s %6.0f accepted/s  %7.1f µs CPU/submission (%5.1f of it after the last answer)  %d refused or failed\n",
					round+1, ch.name, g.label, float64(s.reqs)/s.wall.Seconds(), s.perReq()*1e6, tail*1e6, s.bad)
			}
		}
	}

	var out strings.Builder
	fmt.Fprintf(&out, "Machine: %s\n", machine)
	fmt.Fprintf(&out, "Run: %d interleaved rounds of %v per channel and gateway, %d connections as fast as they go, service %s%s\n\n",
		h.o.rounds, h.o.duration, h.o.submitConns, channelService,
		map[bool]string{true: "; gateways pinned to core 0 (GOMAXPROCS=1), Redis, casesim and the load to core 1", false: "; no pinning"}[h.pin])
	if h.o.baseline == "" {
		fmt.Fprintf(&out, "| Channel | after (%s): µs CPU/submission | accepted/s |\n", afterName)
		fmt.Fprintln(&out, "|---|---|---|")
	} else {
		fmt.Fprintf(&out, "| Channel | before (%s): µs CPU/submission | after (%s): µs CPU/submission | after/before |\n", h.o.baseline, afterName)
		fmt.Fprintln(&out, "|---|---|---|---|")
	}
	for _, ch := range chans {
		if !strings.Contains(ch.name, *channelOnly) || (ch.newOnly && *channelsAfter != "") {
			continue
		}
		after := results[ch.name+"|after"]
		if h.o.baseline == "" {
			fmt.Fprintf(&out, "| %s | %s | %s |\n", ch.name, spread(after, 1e6, sample.perReq), spread(after, 1, func(s sample) float64 { return float64(s.reqs) / s.wall.Seconds() }))
			continue
		}
		before := results[ch.name+"|before"]
		if ch.newOnly {
			fmt.Fprintf(&out, "| %s | – (no such channel) | %s | – |\n", ch.name, spread(after, 1e6, sample.perReq))
			continue
		}
		var ratios []float64
		for i := range after {
			ratios = append(ratios, after[i].perReq()/before[i].perReq())
		}
		fmt.Fprintf(&out, "| %s | %s | %s | %sx |\n", ch.name, spread(before, 1e6, sample.perReq), spread(after, 1e6, sample.perReq), rangeOf(ratios, "%.2f"))
	}
	fmt.Fprintf(&out, "\nLoad average after the run: %s\n", loadavg())
	fmt.Print(out.String())
	return nil
}

// measureSubmits runs conns workers, each sending next() as fast as it is
// answered, for the configured duration; then waits until the gateway's
// CPU time stops growing (its deliveries done) and counts that too.
func (h *harness) measureSubmits(ctx context.Context, pid int, prefix string, client *http.Client, next func() (*http.Request, error), ok func(*http.Response) bool, conns int) (s sample, tail float64, err error) {
	var good, bad atomic.Int64
	var firstErr atomic.Value
	cpu0 := cpuSeconds(pid, h.tck)
	start := time.Now()
	deadline := start.Add(h.o.duration)
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				req, err := next()
				if err != nil {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				res, err := client.Do(req.WithContext(ctx))
				if err != nil {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
				res.Body.Close()
				if ok(res) {
					good.Add(1)
				} else {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s %s: %.300s", res.Status, res.Header.Get("Location"), b))
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	// Done: every consumer group of the gateway's streams (deliveries,
	// notifications, ...) has read everything and acknowledged it, and
	// then two readings 300 ms apart without a clock tick; at most 60 s.
	last, still := cpuSeconds(pid, h.tck), 0
	loadEnd := last
	for quiet := time.Now().Add(60 * time.Second); still < 2 && time.Now().Before(quiet) && ctx.Err() == nil; {
		time.Sleep(300 * time.Millisecond)
		now := cpuSeconds(pid, h.tck)
		if now == last && h.streamsDone(ctx, prefix) {
			still++
		} else {
			still = 0
		}
		last = now
	}
	if still < 2 {
		fmt.Fprintln(os.Stderr, "  the gateway did not finish its deliveries within 60 s: the next figure carries some of them")
	}
	s = sample{reqs: good.Load(), bad: bad.Load(), wall: wall, cpu: last - cpu0}
	tail = (last - loadEnd) / float64(max(s.reqs, 1))
	if s.reqs == 0 {
		return s, tail, fmt.Errorf("no submission accepted (%v)", firstErr.Load())
	}
	if s.bad > 0 {
		fmt.Fprintf(os.Stderr, "  first refusal or failure: %v\n", firstErr.Load())
	}
	return s, tail, ctx.Err()
}

func (h *harness) channels() []channel {
	const (
		kind        = "pothole"
		description = "Ett djupt hål i cykelbanan vid bron"
		address     = "Storgatan 1"
	)
	payload := `{"kind":"` + kind + `","description":"` + description + `","location":"` + address + `"`
	status := func(code int) func(*http.Response) bool {
		return func(res *http.Response) bool { return res.StatusCode == code }
	}
	redirect := func(prefix string) func(*http.Response) bool {
		return func(res *http.Response) bool {
			return res.StatusCode == http.StatusSeeOther && strings.HasPrefix(res.Header.Get("Location"), prefix)
		}
	}
	jsonReq := func(u, body string, hdr map[string]string) (*http.Request, error) {
		req, err := http.NewRequest("POST", u, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", freshToken(24))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return req, nil
	}
	formReq := func(u string, v url.Values) (*http.Request, error) {
		req, err := http.NewRequest("POST", u, strings.NewReader(v.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	}
	// formPost draws the form at path once with c and returns a maker of
	// posts: its hidden inputs, a fresh form token each time, and fields.
	formPost := func(c *http.Client, base, path string, fields url.Values) (func() (*http.Request, error), error) {
		b, err := h.fetchWith(c, base+path)
		if err != nil {
			return nil, err
		}
		hidden, err := hiddenInputs(string(b), path)
		if err != nil {
			return nil, err
		}
		return func() (*http.Request, error) {
			v := url.Values{}
			for k, vs := range hidden {
				v[k] = vs
			}
			if _, has := v["_form"]; has {
				v.Set("_form", freshToken(18)) // 24 characters, like a fresh page's token
			}
			for k, vs := range fields {
				v[k] = vs
			}
			return formReq(base+path, v)
		}, nil
	}
	fields := url.Values{"kind": {kind}, "description": {description}, "location": {address}}
	return []channel{
		{name: "Resident form (HTML)", ok: redirect("/s/"),
			prepare: func(ctx context.Context, base string) (func() (*http.Request, error), *http.Client, error) {
				c, err := h.visitor(ctx, base, "")
				if err != nil {
					return nil, nil, err
				}
				c = noRedirects(c)
				next, err := formPost(c, base, "/services/"+channelService, fields)
				return next, c, err
			}},
		{name: "JSON API (anonymous)", ok: status(http.StatusAccepted),
			prepare: func(ctx context.Context, base string) (func() (*http.Request, error), *http.Client, error) {
				u := base + "/api/v1/services/" + channelService + "/submissions"
				return func() (*http.Request, error) { return jsonReq(u, payload+"}", nil) }, noRedirects(h.client), nil
			}},
		{name: "Desk form (staff)", ok: redirect("/desk/receipt/"),
			prepare: func(ctx context.Context, base string) (func() (*http.Request, error), *http.Client, error) {
				c, err := h.visitor(ctx, base, "staff")
				if err != nil {
					return nil, nil, err
				}
				c = noRedirects(c)
				desk := url.Values{"_identity_check": {"id_document"}, "_consent": {"true"}, "_visitor_lang": {"sv"}}
				for k, vs := range fields {
					desk[k] = vs
				}
				post, err := formPost(c, base, "/desk/services/"+channelService, desk)
				if err != nil {
					return nil, nil, err
				}
				return func() (*http.Request, error) { // a new visitor each time, as at a real desk
					req, err := post()
					if err == nil {
						req, err = formReq(req.URL.String(), withVisitor(req, freshPersonnummer()))
					}
					return req, err
				}, c, nil
			}},
		{name: "Desk API (staff)", ok: status(http.StatusAccepted),
			prepare: func(ctx context.Context, base string) (func() (*http.Request, error), *http.Client, error) {
				c, err := h.visitor(ctx, base, "staff")
				if err != nil {
					return nil, nil, err
				}
				b, err := h.fetchWith(c, base+"/api/v1/me")
				if err != nil {
					return nil, nil, err
				}
				var me struct {
					CSRF string `json:"csrf_token"`
				}
				if err := json.Unmarshal(b, &me); err != nil || me.CSRF == "" {
					return nil, nil, fmt.Errorf("no csrf_token in /api/v1/me: %v", err)
				}
				u := base + "/api/v1/services/" + channelService + "/submissions"
				return func() (*http.Request, error) { // a new visitor each time, as at a real desk
					body := payload + `,"on_behalf_of":{"personnummer":"` + freshPersonnummer() + `","identity_check":"id_document","consent":true}}`
					return jsonReq(u, body, map[string]string{"X-CSRF-Token": me.CSRF})
				}, noRedirects(c), nil
			}},
		{name: "Open311 POST", newOnly: true, ok: status(http.StatusOK),
			prepare: func(ctx context.Context, base string) (func() (*http.Request, error), *http.Client, error) {
				v := url.Values{"api_key": {"open311-demo-key"}, "service_code": {channelService}, "attribute[kind]": {kind},
					"description": {description}, "address_string": {address}}
				return func() (*http.Request, error) { return formReq(base+"/open311/v2/requests.json", v) }, noRedirects(h.client), nil
			}},
	}
}

// noRedirects is c answering redirects to the caller (a form's 303 is its
// answer; following it would measure the receipt page too).
func noRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

var (
	formTag  = regexp.MustCompile(`(?s)<form\b[^>]*>.*?</form>`)
	inputTag = regexp.MustCompile(`<input\b[^>]*>`)
	attr     = regexp.MustCompile(`\b(type|name|value|action)="([^"]*)"`)
)

// hiddenInputs are the hidden inputs of the form in page that posts to
// action.
func hiddenInputs(page, action string) (url.Values, error) {
	for _, form := range formTag.FindAllString(page, -1) {
		open := form[:strings.IndexByte(form, '>')+1]
		if attrs(open)["action"] != action {
			continue
		}
		v := url.Values{}
		for _, in := range inputTag.FindAllString(form, -1) {
			a := attrs(in)
			if a["type"] == "hidden" && a["name"] != "" {
				v.Add(a["name"], a["value"])
			}
		}
		return v, nil
	}
	return nil, fmt.Errorf("no form posting to %s in the page", action)
}

func attrs(tag string) map[string]string {
	m := map[string]string{}
	for _, a := range attr.FindAllStringSubmatch(tag, -1) {
		if _, seen := m[a[1]]; !seen {
			m[a[1]] = html.UnescapeString(a[2])
		}
	}
	return m
}

// freshToken is n random bytes, base64url (4n/3 characters).
func freshToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// withVisitor is the form values of req with the visitor's personnummer.
func withVisitor(req *http.Request, pnr string) url.Values {
	b, _ := io.ReadAll(req.Body)
	v, _ := url.ParseQuery(string(b))
	v.Set("_visitor", pnr)
	return v
}

// freshPersonnummer is a valid personnummer (YYYYMMDD-NNNC, Luhn check
// digit) of a random adult born 1940-1999.
func freshPersonnummer() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	y, m, d, serial := 1940+n%60, 1+(n/60)%12, 1+(n/720)%28, (n/20160)%1000
	ten := fmt.Sprintf("%02d%02d%02d%03d", y%100, m, d, serial)
	sum := 0
	for i, c := range ten {
		x := int(c-'0') * (2 - i%2)
		sum += x/10 + x%10
	}
	return fmt.Sprintf("%04d%02d%02d-%03d%d", y, m, d, serial, (10-sum%10)%10)
}

// streamsDone is true when no consumer group of the gateway's streams has
// entries pending or unread (redis-cli XINFO GROUPS: pending 0, lag 0; a
// lag Redis cannot tell, after trimming, counts as read).
func (h *harness) streamsDone(ctx context.Context, prefix string) bool {
	cli := func(args ...string) ([]string, error) {
		out, err := exec.CommandContext(ctx, "redis-cli", append([]string{"-p", strconv.Itoa(h.rport)}, args...)...).Output()
		return strings.Split(strings.TrimSpace(string(out)), "\n"), err
	}
	// The streams with consumer groups (gateway/redisstore/keys.go); the
	// revision before the refactor has only the first.
	for _, k := range []string{"deliveries", "nout", "fup"} {
		info, err := cli("XINFO", "GROUPS", prefix+":{q}:"+k)
		if err != nil {
			return false
		}
		if strings.HasPrefix(info[0], "ERR") { // no such stream
			continue
		}
		for i := 0; i+1 < len(info); i++ {
			if (info[i] == "pending" || info[i] == "lag") && info[i+1] != "0" && info[i+1] != "" {
				return false
			}
		}
	}
	return true
}
