#!/usr/bin/env bash
# Where the proxy path's CPU goes, in figures that do not depend on the
# machine's load: instructions per request (valgrind --tool=callgrind) and
# system calls per request (strace -c), for nginx as a reverse proxy, the
# floor (.bench/floorproxy: fasthttp's server and HostClient alone) and the
# gateway without and with the identity token. The same setup as
# .bench/proxy.sh (the same upstream, services and settings); the
# requests are N sequential requests on one keep-alive connection (curl),
# after a warm-up, counted between callgrind_control --zero and --dump.
#
#   .bench/proxycost.sh                  # N=2000, both tools
#   N=5000 TOOLS=strace TARGETS="floor gateway-open" .bench/proxycost.sh
#   KEEP=/tmp/cg .bench/proxycost.sh     # keep the callgrind.out files there
#   TOOLS=perf .bench/proxycost.sh       # perf samples (cpu-clock) by symbol under wrk at
#                                        # .bench/proxy.sh's rate, target on CPU 0, wrk on CPU 1
#   REV=main .bench/proxycost.sh         # the gateway and floor of another git revision
#
# Needs nginx, redis-server, valgrind, strace, curl (perf, wrk, taskset for TOOLS=perf).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
TOOLS=${TOOLS:-"callgrind strace"}
TARGETS=${TARGETS:-"nginx floor gateway-open gateway-signed"}
KEEP=${KEEP:-}
REV=${REV:-}
W=$(mktemp -d)
UP=18491 NGX=18492 GW=18493 FL=18497 RD=18495
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT

SRC=.
if [ -n "$REV" ]; then # the gateway and floor of another revision
  mkdir -p "$W/src" && git archive "$REV" | tar -x -C "$W/src" && SRC=$W/src
fi
(cd "$SRC" && go build -o "$W/gateway" ./cmd/gateway && go build -o "$W/floorproxy" ./.bench/floorproxy)

mkdir -p "$W/up" "$W/ngx"
cat >"$W/up/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $W/up/pid; error_log $W/up/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP; location / { default_type text/html; return 200 "<!doctype html><title>Boka lokal</title><p>Du har inga bokningar just nu.</p>\n"; } } }
CONF
# One process (master_process off), so that valgrind and strace see the
# worker; otherwise the configuration of .bench/proxy.sh.
cat >"$W/ngx/nginx.conf" <<CONF
master_process off; daemon off; pid $W/ngx/pid; error_log $W/ngx/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$NGX;
    location /e/open/ { proxy_pass http://app/; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Gateway-Identity ""; proxy_set_header X-Forwarded-For \$remote_addr; } } }
CONF
nginx -c "$W/up/nginx.conf" -p "$W/up" & pids+=($!)
redis-server --port $RD --save '' --appendonly no >/dev/null & pids+=($!)

for s in open signed; do
  level=none; [ "$s" = signed ] && level=substantial
  mkdir -p "$W/services/$s"
  cat >"$W/services/$s/service.toml" <<CONF
id = "bench-$s"
version = "1.0.0"
department = "city-office"
category = "democracy"
assurance = "$level"
channels = ["digital"]
retention_days = 1
[route]
kind = "proxy"
[route.settings]
prefix = "/e/$s/"
upstream = "http://127.0.0.1:$UP"
CONF
  for l in sv en fi ar so uk; do
    printf '"bench-%s.title" = "Bench"\n"bench-%s.summary" = "Bench"\n' "$s" "$s" >"$W/services/$s/messages.$l.toml"
  done
done
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
genv=(GATEWAY_ADDR=127.0.0.1:$GW REDIS_URL=redis://127.0.0.1:$RD GATEWAY_SERVICES_DIR="$W/services" GATEWAY_SESSION_KEY=$KEY
  GATEWAY_RATELIMIT=off GATEWAY_MAX_CONNS_PER_IP=0 GATEWAY_LOG_LEVEL=error GOMAXPROCS=1)

# urls name url: a curl config of N requests (and a warm-up of 200).
urls() {
  local f=$W/$1 i
  : >"$f"; : >"$f.warm"
  for ((i = 0; i < N; i++)); do printf 'url = "%s"\noutput = /dev/null\n' "$2" >>"$f"; done
  for ((i = 0; i < 200; i++)); do printf 'url = "%s"\noutput = /dev/null\n' "$2" >>"$f.warm"; done
}
wait_up() { local i; for i in $(seq 1500); do curl -fs -o /dev/null "$1" && return 0; sleep 0.2; done; echo "not up: $1"; tail -20 "$W"/*.log; exit 1; }
session() {
  curl -fs -c "$W/jar" -b "$W/jar" -L -o /dev/null "http://127.0.0.1:$GW/auth/login?login_hint=bertil&return_to=/e/signed/"
  awk '$6=="gw_session"{print $7}' "$W/jar"
}

# start target: sets PID; the program under the tool $1 (none, callgrind).
start() { # tool target
  local tool=$1 t=$2 pre=()
  # Go's asynchronous preemption (SIGURG) trips callgrind 3.19's signal
  # bookkeeping: off under callgrind, for the floor and the gateway alike.
  [ "$tool" = callgrind ] && pre=(env GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$W/cg.$t.%p" --dump-line=no --compress-strings=no)
  case $t in
  nginx) "${pre[@]}" nginx -c "$W/ngx/nginx.conf" -p "$W/ngx" >"$W/$t.log" 2>&1 & PID=$!; URL=http://127.0.0.1:$NGX/e/open/bookings ;;
  floor) GOMAXPROCS=1 "${pre[@]}" "$W/floorproxy" "127.0.0.1:$FL" "127.0.0.1:$UP" >"$W/$t.log" 2>&1 & PID=$!; URL=http://127.0.0.1:$FL/e/open/bookings ;;
  gateway-open | gateway-signed)
    env "${genv[@]}" "${pre[@]}" "$W/gateway" >"$W/$t.log" 2>&1 & PID=$!
    URL=http://127.0.0.1:$GW/e/${t#gateway-}/bookings ;;
  esac
  pids+=("$PID")
  wait_up "$URL"
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }

HDR=()
prep() { # target: the URL files, and the session cookie for the signed one
  HDR=()
  if [ "$1" = gateway-signed ]; then
    local s; s=$(session); [ -n "$s" ] || { echo "no session"; exit 1; }
    HDR=(-H "Cookie: gw_session=$s")
  fi
  urls "$1" "$URL"
  curl -fs -o /dev/null "${HDR[@]}" "$URL" || { echo "$1: $URL does not answer 200"; exit 1; }
}

echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg); $N sequential requests on one keep-alive connection"
for tool in $TOOLS; do
  for t in $TARGETS; do
    case $tool in
    callgrind)
      start callgrind "$t"
      prep "$t"
      curl -s "${HDR[@]}" --config "$W/$t.warm"
      callgrind_control --zero "$PID" >/dev/null
      curl -s "${HDR[@]}" --config "$W/$t"
      callgrind_control --dump="measured" "$PID" >/dev/null
      sleep 1
      stop
      f=$(grep -l '^desc: Trigger: dump measured' "$W"/cg."$t".*) # not the dump at exit
      ir=$(awk '/^summary:/{print $2}' "$f")
      printf '%-16s %10.0f instructions/request\n' "$t" "$(echo "$ir / $N" | bc -l)"
      [ -n "$KEEP" ] && mkdir -p "$KEEP" && cp "$f" "$KEEP/callgrind.out.$t"
      ;;
    perf) # where the CPU goes at the rate of .bench/proxy.sh: samples by symbol, kernel ([k]) and user, under wrk
      start none "$t"
      prep "$t"
      taskset -a -p -c 0 "$PID" >/dev/null
      printf 'function delay() return 5 end\n' >"$W/delay.lua"
      taskset -c 1 wrk -t1 -c16 -d2s -s "$W/delay.lua" ${HDR[@]:+-H "${HDR[1]}"} "$URL" >/dev/null
      perf record -q -e cpu-clock -F 10000 -p "$PID" -o "$W/perf.$t" -- sleep 8 >/dev/null 2>&1 &
      PP=$!
      out=$(taskset -c 1 wrk -t1 -c16 -d8s -s "$W/delay.lua" ${HDR[@]:+-H "${HDR[1]}"} "$URL")
      wait $PP || true
      stop
      reqs=$(echo "$out" | awk '/requests in/{print $1}')
      # Shares only: perf -p does not follow every thread a Go program
      # starts later, so its sample count is no measure of CPU per request.
      echo "$t: $(echo "$out" | awk '/Requests\/sec/{print $2}') requests/s, $reqs requests; share of the samples by group, then the top symbols"
      perf report -i "$W/perf.$t" --stdio --no-children --sort sym 2>/dev/null | awk '/^ *[0-9.]+%/ {
          p = $1; sub("%", "", p); sym = $3; for (i = 4; i <= NF; i++) sym = sym " " $i
          g = "other user"
          if ($2 == "[k]") g = "kernel"
          else if (sym ~ /^runtime\.|^internal\/runtime|^gcWriteBarrier|^aeshash|^memeqbody|^indexbytebody|^cmpbody/) g = "go runtime"
          else if (sym ~ /servicegateway/) g = "gateway code"
          else if (sym ~ /gofiber/) g = "fiber"
          else if (sym ~ /fasthttp/) g = "fasthttp"
          else if (sym ~ /^syscall\.|^internal\/poll|^net\.|^os\./) g = "go net/syscall"
          else if (sym ~ /prometheus/) g = "prometheus"
          else if (sym ~ /^log\/slog/) g = "slog"
          else if (sym ~ /^crypto|^hash|^encoding/) g = "crypto/encoding"
          share[g] += p; n++; if (n <= 25) top = top sprintf("    %6.2f%% %s %s\n", p, $2, sym) }
        END { for (g in share) printf "  %-16s %6.2f%%\n", g, share[g] | "sort -k2 -rn"; close("sort -k2 -rn"); printf "%s", top }'
      ;;
    strace)
      start none "$t"
      prep "$t"
      curl -s "${HDR[@]}" --config "$W/$t.warm"
      strace -c -f -p "$PID" -o "$W/strace.$t" & SP=$!
      sleep 1
      curl -s "${HDR[@]}" --config "$W/$t"
      sleep 0.5
      kill -INT $SP; wait $SP 2>/dev/null || true
      t0=$(date +%s%N)
      strace -c -f -p "$PID" -o "$W/strace.$t.idle" & SP=$! # no requests: the background, per second
      sleep 3
      kill -INT $SP; wait $SP 2>/dev/null || true
      secs=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN{print (b-a)/1e9}')
      stop
      printf '%-16s syscalls/request:' "$t"
      awk -v n="$N" '$4 ~ /^[0-9]+$/ && $NF != "total" && $4/n >= 0.01 {e = (NF == 6) ? sprintf(" (%.2f failed)", $5/n) : ""; printf " %s %.2f%s", $NF, $4/n, e} $NF == "total" {printf " | total %.2f", $4/n}' "$W/strace.$t"
      echo
      printf '%-16s idle, syscalls/second:' "$t"
      awk -v s="$secs" '$4 ~ /^[0-9]+$/ && $NF != "total" && $4/s >= 1 {printf " %s %.0f", $NF, $4/s} $NF == "total" {printf " | total %.0f", $4/s}' "$W/strace.$t.idle"
      echo
      ;;
    esac
  done
done
