// Command benchgw is the gateway's benchmark harness (issue 14, goal 7).
//
// It builds the gateway and casesim from this tree (and, with -baseline, the
// gateway of another git revision), starts redis-server (AOF on), casesim,
// nginx serving the very bytes the gateway answers, and one gateway per
// catalog size (the 7 built-in services and a generated catalog of
// -services), pins the servers to core 0 (GOMAXPROCS=1) and everything else
// to core 1 with taskset where there are two cores, drives load with its
// own paced HTTP load generator, and prints the ratio table of the README's
// "Speed" section: CPU time per request read from /proc/<pid>/stat
// (utime+stime deltas divided by requests), never wall-clock time.
//
// Rounds are interleaved: each round measures every target once, so that a
// neighbour's load on a shared machine touches all of them alike; the table
// gives the range over rounds and the ratio within each round.
//
// Usage (from the module root):
//
//	go run ./cmd/benchgw                       # the table for this tree
//	go run ./cmd/benchgw -baseline main        # and for the gateway at git revision main
//	go run ./cmd/benchgw -smoke                # a few seconds: does the harness still work
//	go run ./cmd/benchgw -submit-only -rounds 1 -submit-rate 2000   # plus paced submissions: latency percentiles (paced.go)
//	go run ./cmd/benchgw -channels -baseline 'fdd803c^'  # CPU per submission per channel (channels.go)
//
// It needs go, redis-server, redis-benchmark and nginx on the PATH; taskset
// is used when present.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kommun/servicegateway/services/servicegen"
)

// baselineEnv is extra environment for the baseline's gateways: with
// -baseline HEAD it compares a setting against the default in one run.
var delivererMode = flag.Bool("deliverer", false, "this tree's gateway of 7 services takes submissions only (GATEWAY_WORKERS=0); a process of the same binary on core 1 delivers them: its submit figures are then the intake's alone, \"until delivered\" adds the deliverer's CPU (the baseline's gateway delivers as usual: -baseline HEAD compares both ways in one run)")

var baselineEnv = flag.String("baseline-env", "", "extra environment for the -baseline gateways, space-separated (e.g. -baseline HEAD -baseline-env GOGC=400: a setting against the default, same code)")

type options struct {
	rounds      int
	duration    time.Duration
	rate        float64
	conns       int
	submitConns int
	services    int
	baseline    string
	keep        bool
	smoke       bool
	submitOnly  bool
	submitKeys  bool
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "length of one measurement")
	flag.Float64Var(&o.rate, "rate", 2000, "requests per second offered to each read target (paced)")
	flag.IntVar(&o.conns, "conns", 8, "connections of the load generator for reads")
	flag.IntVar(&o.submitConns, "submit-conns", 32, "connections for submissions (as fast as they go)")
	flag.IntVar(&o.services, "services", 1000, "size of the generated catalog")
	flag.StringVar(&o.baseline, "baseline", "", "git revision whose gateway is measured alongside (e.g. main)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (binaries, logs, nginx root)")
	flag.BoolVar(&o.smoke, "smoke", false, "a short run that only checks the harness works")
	flag.BoolVar(&o.submitOnly, "submit-only", false, "measure only the durable submit (and XADD), not the reads")
	flag.BoolVar(&o.submitKeys, "submit-keys", false, "send each submission with its own Idempotency-Key (as API clients do: the in-flight lock and the idempotency record are written too)")
	flag.Parse()
	if o.smoke {
		o.rounds, o.duration, o.rate, o.services = 1, 500*time.Millisecond, 200, 50
	}
	h := &harness{o: o}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	run := h.run
	if *channelsMode { // channels.go
		run = h.runChannels
	}
	if *extraMode { // extra.go
		run = h.runExtra
	}
	err := run(ctx)
	stop()
	h.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchgw:", err)
		os.Exit(1)
	}
}

type harness struct {
	o      options
	dir    string
	pin    bool
	tck    float64
	procs  []*exec.Cmd
	redis  *exec.Cmd
	rport  int
	client *http.Client
}

// target is one thing measured: a URL answered by one process.
type target struct {
	name   string
	pid    int
	url    string
	client *http.Client // nil: the shared client, no cookies
	idem   bool         // each request with its own Idempotency-Key
}

// idemSeq numbers the Idempotency-Keys of a run.
var idemSeq atomic.Int64

type sample struct {
	reqs, bad int64
	cpu       float64 // seconds of utime+stime of the target's process
	wall      time.Duration
}

func (s sample) perReq() float64 { return s.cpu / float64(max(s.reqs, 1)) }

func (h *harness) run(ctx context.Context) error {
	machine, err := h.begin("go", "redis-server", "redis-cli", "redis-benchmark", "nginx")
	if err != nil {
		return err
	}

	// Build.
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if err := h.build(ctx, root, "gateway", "./cmd/gateway"); err != nil {
		return err
	}
	if err := h.build(ctx, root, "casesim", "./cmd/casesim"); err != nil {
		return err
	}
	if h.o.baseline != "" {
		src := filepath.Join(h.dir, "baseline-src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		arch := exec.CommandContext(ctx, "sh", "-c", "git -C \"$1\" archive \"$2\" | tar -x -C \"$3\"", "sh", root, h.o.baseline, src)
		if out, err := arch.CombinedOutput(); err != nil {
			return fmt.Errorf("git archive %s: %v\n%s", h.o.baseline, err, out)
		}
		if err := h.build(ctx, src, "gateway-baseline", "./cmd/gateway"); err != nil {
			return err
		}
	}
	svcDir := filepath.Join(h.dir, "services")
	if err := servicegen.WriteDir(svcDir, h.o.services); err != nil {
		return err
	}
	// The baseline reads a catalog generated by its own generator from its
	// own example services: this tree's may use field kinds it does not
	// know (it then refuses to start).
	baseSvcDir := svcDir
	if h.o.baseline != "" {
		if dir, err := h.baselineCatalog(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "benchgw: the baseline's own catalog generator did not run, it gets this tree's catalog:", err)
		} else {
			baseSvcDir = dir
		}
	}

	// Redis (AOF everysec to begin with) and casesim on core 1.
	casesimAddr, err := h.startBackends(ctx)
	if err != nil {
		return err
	}

	// The gateways, each alone on core 0 with GOMAXPROCS=1 (only one is
	// under load at a time).
	type gw struct {
		label, bin, services string
		n                    int
		base                 string
		pid                  int
		deliverer            int // -deliverer: the process that delivers its submissions, else 0
	}
	n := h.o.services
	gws := []*gw{{label: "gw", bin: "gateway", n: 7}, {label: "gw", bin: "gateway", n: n, services: svcDir}}
	if h.o.baseline != "" {
		gws = append(gws, &gw{label: "base", bin: "gateway-baseline", n: 7}, &gw{label: "base", bin: "gateway-baseline", n: n, services: baseSvcDir})
	}
	for i, g := range gws {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort())
		g.base = "http://" + addr
		env := []string{"GOMAXPROCS=1", "GATEWAY_ADDR=" + addr, fmt.Sprintf("REDIS_URL=redis://127.0.0.1:%d/0", h.rport),
			fmt.Sprintf("GATEWAY_REDIS_PREFIX=bench%d", i), "CASESIM_URL=http://" + casesimAddr, "GATEWAY_RATELIMIT=off"}
		if g.services != "" {
			env = append(env, "GATEWAY_SERVICES_DIR="+g.services)
		}
		if g.label == "base" && *baselineEnv != "" {
			env = append(env, strings.Fields(*baselineEnv)...)
		}
		if *delivererMode && g.n == 7 && g.label == "gw" {
			// Its deliveries go to a process of their own on core 1 (same
			// binary and Redis prefix, another address, the default workers).
			dAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
			denv := append(slices.Clone(env), "GATEWAY_ADDR="+dAddr) // the later setting wins
			cmd, err := h.start(ctx, fmt.Sprintf("%s-%d-deliverer", g.bin, g.n), 1, denv, filepath.Join(h.dir, g.bin))
			if err != nil {
				return err
			}
			g.deliverer = cmd.Process.Pid
			if err := h.waitHTTP(ctx, "http://"+dAddr+"/readyz"); err != nil {
				return err
			}
			env = append(env, "GATEWAY_WORKERS=0")
		}
		cmd, err := h.start(ctx, fmt.Sprintf("%s-%d", g.bin, g.n), 0, env, filepath.Join(h.dir, g.bin))
		if err != nil {
			return err
		}
		g.pid = cmd.Process.Pid
		if err := h.waitHTTP(ctx, g.base+"/readyz"); err != nil {
			return err
		}
	}

	// nginx serves the bytes this tree's gateway answers.
	www := filepath.Join(h.dir, "www")
	for _, g := range gws[:2] {
		for path, file := range map[string]string{"/api/v1/services": "services.json", "/": "index.html"} {
			b, err := h.fetch(g.base + path)
			if err != nil {
				return err
			}
			p := filepath.Join(www, strconv.Itoa(g.n), file)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return err
			}
		}
	}
	nginxAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
	conf, err := h.nginxConf(nginxAddr, www)
	if err != nil {
		return err
	}
	ngx, err := h.start(ctx, "nginx", 0, nil, "nginx", "-c", conf, "-p", h.dir)
	if err != nil {
		return err
	}
	if err := h.waitHTTP(ctx, "http://"+nginxAddr+"/7/services.json"); err != nil {
		return err
	}

	// Reads: catalog JSON and front page, at 7 and n services.
	type row struct {
		figure  string
		targets []target // nginx first
	}
	var rows []row
	for _, kind := range []struct{ figure, path, file string }{{"Catalog JSON", "/api/v1/services", "services.json"}, {"Front page", "/", "index.html"}} {
		for _, size := range []int{7, n} {
			r := row{figure: fmt.Sprintf("%s, %d services", kind.figure, size)}
			r.targets = append(r.targets, target{"nginx", ngx.Process.Pid, fmt.Sprintf("http://%s/%d/%s", nginxAddr, size, kind.file), nil, false})
			for _, g := range gws {
				if g.n == size {
					r.targets = append(r.targets, target{g.label, g.pid, g.base + kind.path, nil, false})
				}
			}
			rows = append(rows, r)
		}
	}
	results := map[string][]sample{} // row figure + target name -> per round
	if h.o.submitOnly {
		rows = nil
	}
	for round := 0; round < h.o.rounds; round++ {
		for _, r := range rows {
			for _, t := range r.targets {
				if err := ctx.Err(); err != nil {
					return err
				}
				s, err := h.measure(ctx, t, "GET", nil, h.o.rate, h.o.conns)
				if err != nil {
					return fmt.Errorf("%s %s: %w", r.figure, t.name, err)
				}
				results[r.figure+"|"+t.name] = append(results[r.figure+"|"+t.name], s)
				fmt.Fprintf(os.Stderr, "round %d  %-28s %-6s %7.0f req/s  %8.1f µs CPU/req  %d errors\n",
					round+1, r.figure, t.name, float64(s.reqs)/s.wall.Seconds(), s.perReq()*1e6, s.bad)
			}
		}
	}

	// A signed-in visitor against an anonymous one (both returning, with
	// their cookies), front page of the 7 services.
	type sessionRow struct {
		label       string
		anon, signd []sample
	}
	var sessions []sessionRow
	for _, g := range gws {
		if g.n != 7 || h.o.submitOnly {
			continue
		}
		sessions = append(sessions, sessionRow{label: g.label})
	}
	for round := 0; round < h.o.rounds && !h.o.submitOnly; round++ {
		i := 0
		for _, g := range gws {
			if g.n != 7 {
				continue
			}
			for _, signedIn := range []bool{false, true} {
				persona := ""
				if signedIn {
					persona = "resident"
				}
				client, err := h.visitor(ctx, g.base, persona)
				if err != nil {
					return err
				}
				s, err := h.measure(ctx, target{g.label, g.pid, g.base + "/", client, false}, "GET", nil, h.o.rate, h.o.conns)
				if err != nil {
					return fmt.Errorf("front page signed in=%v %s: %w", signedIn, g.label, err)
				}
				if signedIn {
					sessions[i].signd = append(sessions[i].signd, s)
				} else {
					sessions[i].anon = append(sessions[i].anon, s)
				}
				fmt.Fprintf(os.Stderr, "round %d  front page, signed in %-5v %-6s %7.0f req/s  %8.1f µs CPU/req  %d errors\n",
					round+1, signedIn, g.label, float64(s.reqs)/s.wall.Seconds(), s.perReq()*1e6, s.bad)
			}
			i++
		}
	}

	// Submissions against Redis's own XADD, AOF everysec then always; each
	// gateway of 7 services (this tree's, the baseline's) in turn within a
	// round, after the deliveries of the one before have drained.
	type submitResult struct {
		fsync, label           string
		xadd                   float64
		redisXadd              float64 // Redis CPU per XADD
		gw                     []sample
		redisPerSub, receiptsS []float64
		// CPU per receipt from the start of the burst until its deliveries
		// drained: accepting and delivering, gateway and Redis.
		gwDrained, redisDrained []float64
	}
	var subs []*submitResult
	body := []byte(`{"kind":"pothole","description":"Ett djupt hål i cykelbanan vid bron","location":"Storgatan 1"}`)
	for _, fsync := range []string{"everysec", "always"} {
		if err := exec.CommandContext(ctx, "redis-cli", "-p", strconv.Itoa(h.rport), "config", "set", "appendfsync", fsync).Run(); err != nil {
			return fmt.Errorf("redis-cli config set appendfsync: %w", err)
		}
		var these []*submitResult
		for _, g := range gws {
			if g.n == 7 {
				these = append(these, &submitResult{fsync: fsync, label: g.label})
			}
		}
		for round := 0; round < h.o.rounds; round++ {
			x, rc, err := h.xadd(ctx)
			if err != nil {
				return err
			}
			j := 0
			for i, g := range gws {
				if g.n != 7 {
					continue
				}
				sr := these[j]
				j++
				sr.xadd = max(sr.xadd, x)
				sr.redisXadd = rc
				r0 := cpuSeconds(h.redis.Process.Pid, h.tck)
				g0 := cpuSeconds(g.pid, h.tck) + cpuSeconds(g.deliverer, h.tck)
				s, err := h.measure(ctx, target{g.label, g.pid, g.base + "/api/v1/services/street-fault/submissions", nil, h.o.submitKeys}, "POST", body, 0, h.o.submitConns)
				if err != nil {
					return fmt.Errorf("submit: %w", err)
				}
				rcpu := cpuSeconds(h.redis.Process.Pid, h.tck) - r0
				sr.gw = append(sr.gw, s)
				sr.redisPerSub = append(sr.redisPerSub, rcpu/float64(max(s.reqs, 1)))
				sr.receiptsS = append(sr.receiptsS, float64(s.reqs)/s.wall.Seconds())
				fmt.Fprintf(os.Stderr, "round %d  submit (appendfsync %s) %-5s %7.0f receipts/s  %6.1f µs gateway CPU, %6.1f µs Redis CPU per receipt; XADD %7.0f/s  %d errors\n",
					round+1, fsync, g.label, sr.receiptsS[round], s.perReq()*1e6, sr.redisPerSub[round]*1e6, x, s.bad)
				h.drain(ctx, fmt.Sprintf("bench%d:{q}:deliveries", i))
				sr.gwDrained = append(sr.gwDrained, (cpuSeconds(g.pid, h.tck)+cpuSeconds(g.deliverer, h.tck)-g0)/float64(max(s.reqs, 1)))
				sr.redisDrained = append(sr.redisDrained, (cpuSeconds(h.redis.Process.Pid, h.tck)-r0)/float64(max(s.reqs, 1)))
			}
		}
		subs = append(subs, these...)
	}

	// Paced submissions (paced.go), with -submit-rate.
	var pacedGWs []pacedTarget
	for i, g := range gws {
		if g.n == 7 {
			pacedGWs = append(pacedGWs, pacedTarget{target{g.label, g.pid, g.base + "/api/v1/services/street-fault/submissions", nil, h.o.submitKeys}, fmt.Sprintf("bench%d:{q}:deliveries", i)})
		}
	}
	pacedLines, err := h.pacedTable(ctx, pacedGWs, body)
	if err != nil {
		return err
	}

	// The table.
	var out strings.Builder
	fmt.Fprintf(&out, "Machine: %s\n", machine)
	fmt.Fprintf(&out, "Run: %d interleaved rounds of %v per target, reads offered at %.0f req/s over %d connections, submissions over %d connections%s\n\n",
		h.o.rounds, h.o.duration, h.o.rate, h.o.conns, h.o.submitConns, map[bool]string{true: "; gateway and nginx pinned to core 0 (GOMAXPROCS=1), the rest to core 1", false: "; no pinning"}[h.pin]+
			map[bool]string{true: "; this tree's gateway of 7 services takes submissions only, a process of its own on core 1 delivers them (-deliverer)", false: ""}[*delivererMode])
	head := "| Figure | nginx, same bytes: µs CPU/req | Gateway (this tree): µs CPU/req | ratio |"
	sep := "|---|---|---|---|"
	if h.o.baseline != "" {
		head += " Gateway (" + h.o.baseline + "): µs CPU/req | ratio |"
		sep += "---|---|"
	}
	fmt.Fprintln(&out, head)
	fmt.Fprintln(&out, sep)
	for _, r := range rows {
		ref := results[r.figure+"|nginx"]
		line := fmt.Sprintf("| %s | %s | ", r.figure, spread(ref, 1e6, sample.perReq))
		for _, t := range r.targets[1:] {
			ss := results[r.figure+"|"+t.name]
			var ratios []float64
			for i := range ss {
				ratios = append(ratios, ss[i].perReq()/ref[i].perReq())
			}
			line += fmt.Sprintf("%s (%s req/s) | %sx | ", spread(ss, 1e6, sample.perReq), spread(ss, 1, func(s sample) float64 { return float64(s.reqs) / s.wall.Seconds() }), rangeOf(ratios, "%.1f"))
		}
		fmt.Fprintln(&out, strings.TrimSuffix(line, " "))
	}
	fmt.Fprintln(&out)
	fmt.Fprintln(&out, "| Front page, 7 services, returning visitor | anonymous: µs CPU/req | signed in (session in Redis): µs CPU/req | difference, µs |")
	fmt.Fprintln(&out, "|---|---|---|---|")
	for _, sr := range sessions {
		var diff []float64
		for i := range sr.anon {
			diff = append(diff, (sr.signd[i].perReq()-sr.anon[i].perReq())*1e6)
		}
		name := "Gateway (this tree)"
		if sr.label == "base" {
			name = "Gateway (" + h.o.baseline + ")"
		}
		fmt.Fprintf(&out, "| %s | %s | %s | %s |\n", name, spread(sr.anon, 1e6, sample.perReq), spread(sr.signd, 1e6, sample.perReq), rangeOf(diff, "%+.0f"))
	}
	fmt.Fprintln(&out)
	keys := map[bool]string{true: ", each with its own Idempotency-Key", false: ", no Idempotency-Key"}[h.o.submitKeys]
	fmt.Fprintln(&out, "| Durable submit"+keys+" | Redis's own XADD (redis-benchmark) | Gateway receipts/s | share of XADD | gateway µs CPU/receipt | Redis µs CPU/receipt (per XADD) | until delivered: gateway / Redis µs CPU/receipt |")
	fmt.Fprintln(&out, "|---|---|---|---|---|---|---|")
	for _, sr := range subs {
		var share []float64
		for _, r := range sr.receiptsS {
			share = append(share, 100*r/sr.xadd)
		}
		name := "this tree"
		if sr.label == "base" {
			name = h.o.baseline
		}
		fmt.Fprintf(&out, "| AOF %s, %s | %.0f/s | %s | %s %% | %s | %s (%.1f) | %s / %s |\n", sr.fsync, name, sr.xadd, rangeOf(sr.receiptsS, "%.0f"), rangeOf(share, "%.0f"),
			spread(sr.gw, 1e6, sample.perReq), rangeOf(scale(sr.redisPerSub, 1e6), "%.0f"), sr.redisXadd*1e6,
			rangeOf(scale(sr.gwDrained, 1e6), "%.0f"), rangeOf(scale(sr.redisDrained, 1e6), "%.0f"))
	}
	if pacedLines != "" {
		fmt.Fprintln(&out)
		fmt.Fprint(&out, pacedLines)
	}
	fmt.Fprintf(&out, "\nLoad average after the run: %s\n", loadavg())
	fmt.Print(out.String())
	return nil
}

// measure drives load at t for the configured duration and reads the CPU
// time its process spent. rate 0: every connection as fast as it goes.
func (h *harness) measure(ctx context.Context, t target, method string, body []byte, rate float64, conns int) (sample, error) {
	var ok, bad atomic.Int64
	var firstErr atomic.Value
	cpu0 := cpuSeconds(t.pid, h.tck)
	start := time.Now()
	deadline := start.Add(h.o.duration)
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var interval time.Duration
			next := start
			if rate > 0 {
				interval = time.Duration(float64(conns) / rate * float64(time.Second))
				next = start.Add(time.Duration(w) * interval / time.Duration(conns))
			}
			for ctx.Err() == nil {
				if rate > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					next = next.Add(interval)
				}
				if time.Now().After(deadline) {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, method, t.url, bytes.NewReader(body))
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				if t.idem {
					req.Header.Set("Idempotency-Key", fmt.Sprintf("benchgw-%d-%d", start.UnixNano(), idemSeq.Add(1)))
				}
				client := h.client
				if t.client != nil {
					client = t.client
				}
				res, err := client.Do(req)
				if err != nil {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode/100 == 2 {
					ok.Add(1)
				} else {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, res.Status)
				}
			}
		}(w)
	}
	wg.Wait()
	s := sample{reqs: ok.Load(), bad: bad.Load(), wall: time.Since(start), cpu: cpuSeconds(t.pid, h.tck) - cpu0}
	if s.reqs == 0 {
		return s, fmt.Errorf("no successful request to %s (%v)", t.url, firstErr.Load())
	}
	return s, ctx.Err()
}

// xadd runs redis-benchmark's XADD on the same Redis: requests per second,
// and Redis CPU seconds per XADD.
func (h *harness) xadd(ctx context.Context) (float64, float64, error) {
	n := 100000
	if h.o.smoke {
		n = 2000
	}
	pid := h.redis.Process.Pid
	c0 := cpuSeconds(pid, h.tck)
	args := []string{"-p", strconv.Itoa(h.rport), "-c", strconv.Itoa(h.o.submitConns), "-n", strconv.Itoa(n), "-q", "XADD", "benchgw:xadd", "MAXLEN", "~", "10000", "*", "field", "value"}
	if h.pin {
		args = append([]string{"-c", "1", "redis-benchmark"}, args...)
	}
	name := "redis-benchmark"
	if h.pin {
		name = "taskset"
	}
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("redis-benchmark: %v\n%s", err, out)
	}
	rcpu := cpuSeconds(pid, h.tck) - c0
	m := regexp.MustCompile(`([0-9.]+) requests per second`).FindAllSubmatch(out, -1)
	if len(m) == 0 {
		return 0, 0, fmt.Errorf("redis-benchmark: no rate in %q", out)
	}
	rate, _ := strconv.ParseFloat(string(m[len(m)-1][1]), 64)
	_ = exec.CommandContext(ctx, "redis-cli", "-p", strconv.Itoa(h.rport), "del", "benchgw:xadd").Run()
	return rate, rcpu / float64(n), nil
}

// drain waits (at most a minute) until the deliveries stream key is empty:
// the gateway that was just measured has delivered what it accepted, so
// its deliveries do not run on core 0 while the next one is measured.
func (h *harness) drain(ctx context.Context, key string) {
	for range 600 {
		out, err := exec.CommandContext(ctx, "redis-cli", "-p", strconv.Itoa(h.rport), "xlen", key).Output()
		if err != nil || strings.TrimSpace(string(out)) == "0" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// visitor returns a client with a cookie jar that has visited base once
// (so it holds the CSRF cookie, like a returning browser) and, with a
// role, signed in through the development identity provider as its first
// persona with that role.
func (h *harness) visitor(ctx context.Context, base, role string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: h.client.Timeout, Transport: h.client.Transport}
	if _, err := h.fetchWith(c, base+"/"); err != nil {
		return nil, err
	}
	if role == "" {
		return c, nil
	}
	b, err := h.fetchWith(c, base+"/dev-idp/personas")
	if err != nil {
		return nil, err
	}
	var list struct {
		Personas []struct {
			ID    string   `json:"id"`
			Roles []string `json:"roles"`
		} `json:"personas"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, err
	}
	for _, p := range list.Personas {
		if slices.Contains(p.Roles, role) {
			if _, err := h.fetchWith(c, base+"/auth/login?return_to=%2Fmy&login_hint="+p.ID); err != nil {
				return nil, err
			}
			if _, err := h.fetchWith(c, base+"/api/v1/me"); err != nil {
				return nil, fmt.Errorf("not signed in after the login: %w", err)
			}
			return c, ctx.Err()
		}
	}
	return nil, fmt.Errorf("no persona with role %s", role)
}

func (h *harness) build(ctx context.Context, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(h.dir, out), pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %v\n%s", pkg, root, err, b)
	}
	return nil
}

// start runs a process pinned to core (with taskset, which execs it: the
// pid is the process's), its output in <dir>/<name>.log.
// begin checks the tools, makes the work directory and the load
// generator's client, and pins the harness to core 1; it returns the
// machine's description.
func (h *harness) begin(tools ...string) (string, error) {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s is not on the PATH (Debian: apt-get install redis-server redis-tools nginx-light)", tool)
		}
	}
	_, err := exec.LookPath("taskset")
	h.pin = err == nil && runtime.NumCPU() >= 2
	h.tck = clockTicks()
	if h.dir, err = os.MkdirTemp("", "benchgw-"); err != nil {
		return "", err
	}
	if h.pin {
		_ = exec.Command("taskset", "-a", "-p", "-c", "1", strconv.Itoa(os.Getpid())).Run()
	}
	h.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256, DisableCompression: true, IdleConnTimeout: time.Minute}}
	fmt.Fprintln(os.Stderr, "benchgw: work directory", h.dir)
	return describeMachine(), nil
}

// startBackends starts Redis (AOF everysec) and casesim on core 1 and
// returns casesim's address.
func (h *harness) startBackends(ctx context.Context) (string, error) {
	h.rport = freePort()
	var err error
	h.redis, err = h.start(ctx, "redis", 1, nil, "redis-server", "--port", strconv.Itoa(h.rport), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", h.dir)
	if err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort())
	if _, err := h.start(ctx, "casesim", 1, []string{"CASESIM_ADDR=" + addr}, filepath.Join(h.dir, "casesim")); err != nil {
		return "", err
	}
	return addr, h.waitHTTP(ctx, "http://"+addr+"/cases")
}

func (h *harness) start(ctx context.Context, name string, core int, env []string, argv ...string) (*exec.Cmd, error) {
	if h.pin {
		argv = append([]string{"taskset", "-c", strconv.Itoa(core)}, argv...)
	}
	log, err := os.Create(filepath.Join(h.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	h.procs = append(h.procs, cmd)
	go func() { _ = cmd.Wait(); log.Close() }()
	return cmd, ctx.Err()
}

// cleanup ends the processes the harness started, by their pids.
func (h *harness) cleanup() {
	for _, p := range slices.Backward(h.procs) {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	time.Sleep(500 * time.Millisecond)
	for _, p := range h.procs {
		_ = p.Process.Kill()
	}
	if h.dir != "" && !h.o.keep {
		_ = os.RemoveAll(h.dir)
	}
}

func (h *harness) waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if res, err := h.client.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer 200 within two minutes (logs in %s)", url, h.dir)
}

func (h *harness) fetch(url string) ([]byte, error) { return h.fetchWith(h.client, url) }

func (h *harness) fetchWith(c *http.Client, url string) ([]byte, error) {
	res, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return io.ReadAll(res.Body)
}

// nginxConf writes a configuration for one nginx process (no master)
// serving www, with everything it writes inside the work directory.
func (h *harness) nginxConf(addr, www string) (string, error) {
	v, _ := exec.Command("nginx", "-V").CombinedOutput()
	temps := ""
	for _, m := range []struct{ flag, directive, without string }{
		{"--http-client-body-temp-path", "client_body_temp_path", ""},
		{"--http-proxy-temp-path", "proxy_temp_path", "--without-http_proxy_module"},
		{"--http-fastcgi-temp-path", "fastcgi_temp_path", "--without-http_fastcgi_module"},
		{"--http-uwsgi-temp-path", "uwsgi_temp_path", "--without-http_uwsgi_module"},
		{"--http-scgi-temp-path", "scgi_temp_path", "--without-http_scgi_module"},
	} {
		if bytes.Contains(v, []byte(m.flag)) && (m.without == "" || !bytes.Contains(v, []byte(m.without))) {
			temps += fmt.Sprintf("  %s %s;\n", m.directive, filepath.Join(h.dir, "nginx-"+m.directive))
		}
	}
	mime := ""
	if _, err := os.Stat("/etc/nginx/mime.types"); err == nil {
		mime = "  include /etc/nginx/mime.types;\n"
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log;
events { worker_connections 1024; }
http {
%[2]s%[3]s  default_type application/octet-stream;
  access_log %[1]s/nginx-access.log;
  sendfile on;
  keepalive_requests 1000000;
  server {
    listen %[4]s;
    root %[5]s;
  }
}
`, h.dir, mime, temps, addr, www)
	p := filepath.Join(h.dir, "nginx.conf")
	return p, os.WriteFile(p, []byte(conf), 0o644)
}

// cpuSeconds is utime+stime of a process (all its threads) from
// /proc/<pid>/stat.
func cpuSeconds(pid int, tck float64) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / tck
}

func clockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", errors.New("run benchgw inside the module (go run ./cmd/benchgw)")
	}
	return filepath.Dir(gomod), nil
}

func describeMachine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	nginx, _ := exec.Command("nginx", "-v").CombinedOutput()
	redis, _ := exec.Command("redis-server", "--version").Output()
	rv := regexp.MustCompile(`v=([0-9.]+)`).FindSubmatch(redis)
	rvs := "?"
	if rv != nil {
		rvs = string(rv[1])
	}
	return fmt.Sprintf("%d × %s, Linux %s, %s, %s, redis %s; load average before the run: %s", runtime.NumCPU(), model,
		strings.TrimSpace(string(kernel)), runtime.Version(), strings.TrimPrefix(strings.TrimSpace(string(nginx)), "nginx version: "), rvs, loadavg())
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// spread is "min-max" of f over the samples, times scale.
func spread(ss []sample, scale float64, f func(sample) float64) string {
	var v []float64
	for _, s := range ss {
		v = append(v, f(s)*scale)
	}
	return rangeOf(v, "%.0f")
}

func rangeOf(v []float64, format string) string {
	if len(v) == 0 {
		return "–"
	}
	lo, hi := slices.Min(v), slices.Max(v)
	if fmt.Sprintf(format, lo) == fmt.Sprintf(format, hi) {
		return fmt.Sprintf(format, lo)
	}
	return fmt.Sprintf(format+"-"+format, lo, hi)
}

func scale(v []float64, k float64) []float64 {
	out := make([]float64, len(v))
	for i := range v {
		out[i] = v[i] * k
	}
	return out
}

// baselineCatalog writes the generated catalog of h.o.services services
// with the baseline's own services/servicegen (a small program added to
// its exported tree and run there) and returns its folder.
func (h *harness) baselineCatalog(ctx context.Context) (string, error) {
	src := filepath.Join(h.dir, "baseline-src")
	if _, err := os.Stat(filepath.Join(src, "services", "servicegen")); err != nil {
		return "", err
	}
	gen := filepath.Join(src, "cmd", "benchgw-catalog")
	if err := os.MkdirAll(gen, 0o755); err != nil {
		return "", err
	}
	prog := `package main

import (
	"os"
	"strconv"

	"github.com/kommun/servicegateway/services/servicegen"
)

func main() {
	n, _ := strconv.Atoi(os.Args[2])
	if err := servicegen.WriteDir(os.Args[1], n); err != nil {
		panic(err)
	}
}
`
	if err := os.WriteFile(filepath.Join(gen, "main.go"), []byte(prog), 0o644); err != nil {
		return "", err
	}
	dir := filepath.Join(h.dir, "services-baseline")
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/benchgw-catalog", dir, strconv.Itoa(h.o.services))
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	return dir, nil
}
