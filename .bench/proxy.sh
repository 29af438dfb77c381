#!/usr/bin/env bash
# CPU per request (a page below the entry page, as most requests are) of the gateway's proxy path against nginx as a reverse
# proxy to the same upstream, side by side in one run, at about the same
# rate (wrk with a per-connection delay). CPU time is utime+stime from
# /proc/<pid>/stat, before and after, divided by the requests served.
#
#   .bench/proxy.sh                 # defaults: 3 rounds of 10 s per target, 16 connections, 5 ms pause
#   DURATION=20 CONNS=32 DELAY_MS=5 ROUNDS=5 .bench/proxy.sh
#   BASELINE=main .bench/proxy.sh   # also the gateway of another git revision, in the same rounds
#   FLOOR=0 .bench/proxy.sh         # without the floor: fasthttp's server and client alone
#                                   # (.bench/floorproxy), what any Go proxy on them costs
#
# Rounds are interleaved (every target once per round); the ratios are
# within a round.
#
# Needs nginx (apt nginx-light), wrk, redis-server, taskset, curl.
# The proxies are pinned to CPU 0 (GOMAXPROCS=1, one nginx worker); the
# upstream (a second nginx), redis-server and wrk to CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
DELAY_MS=${DELAY_MS:-5}
ROUNDS=${ROUNDS:-3}
BASELINE=${BASELINE:-}
FLOOR=${FLOOR:-1}
W=$(mktemp -d)
UP=18481 NGX=18482 GW=18483 BASEGW=18486 FL=18487
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT

go build -o "$W/gateway" ./cmd/gateway
[ "$FLOOR" = 1 ] && go build -o "$W/floorproxy" ./.bench/floorproxy
if [ -n "$BASELINE" ]; then
  mkdir -p "$W/base-src"
  git archive "$BASELINE" | tar -x -C "$W/base-src"
  (cd "$W/base-src" && go build -o "$W/gateway-base" ./cmd/gateway)
fi

# The upstream: a small static answer, as an e-service's page would be.
mkdir -p "$W/up" "$W/ngx"
cat >"$W/up/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $W/up/pid; error_log $W/up/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP; location / { default_type text/html; return 200 "<!doctype html><title>Boka lokal</title><p>Du har inga bokningar just nu.</p>\n"; } } }
CONF
# nginx as the reverse proxy, keep-alive to the upstream.
cat >"$W/ngx/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $W/ngx/pid; error_log $W/ngx/error.log;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$NGX;
    location /e/open/ { proxy_pass http://app/; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Gateway-Identity ""; proxy_set_header X-Forwarded-For \$remote_addr; } } }
CONF
taskset -c 1 nginx -c "$W/up/nginx.conf" -p "$W/up" & pids+=($!)
taskset -c 0 nginx -c "$W/ngx/nginx.conf" -p "$W/ngx" & pids+=($!)
taskset -c 1 redis-server --port 18485 --save '' --appendonly no >/dev/null & pids+=($!)

# Two services on the gateway: open to everyone, and at level substantial.
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
# The same session key for both gateways: one sign-in serves both.
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
gateway() { # binary port log
  GATEWAY_ADDR=127.0.0.1:$2 REDIS_URL=redis://127.0.0.1:18485 GATEWAY_SERVICES_DIR="$W/services" GATEWAY_SESSION_KEY=$KEY \
    GATEWAY_RATELIMIT=off GATEWAY_MAX_CONNS_PER_IP=0 GATEWAY_LOG_LEVEL=error GOMAXPROCS=1 \
    taskset -c 0 "$1" >"$3" 2>&1 &
}
gateway "$W/gateway" "$GW" "$W/gateway.log"; pids+=($!); GWPID=$!
BASEPID=
if [ -n "$BASELINE" ]; then gateway "$W/gateway-base" "$BASEGW" "$W/gateway-base.log"; pids+=($!); BASEPID=$!; fi
FLPID=
if [ "$FLOOR" = 1 ]; then GOMAXPROCS=1 taskset -c 0 "$W/floorproxy" "127.0.0.1:$FL" "127.0.0.1:$UP" >"$W/floor.log" 2>&1 & pids+=($!); FLPID=$!; fi
for port in $GW ${BASEPID:+$BASEGW}; do
  for i in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
done
sleep 0.5
NGXPIDS=$(pgrep -f "nginx -c $W/ngx/nginx.conf" | tr '\n' ' ')
NGXPIDS="$NGXPIDS $(pgrep -P "$(cat "$W/ngx/pid")" | tr '\n' ' ')"

# A resident signed in at level substantial (development identity provider).
curl -fs -c "$W/jar" -b "$W/jar" -L -o /dev/null "http://127.0.0.1:$GW/auth/login?login_hint=bertil&return_to=/e/signed/"
SESSION=$(awk '$6=="gw_session"{print $7}' "$W/jar")
[ -n "$SESSION" ] || { echo "no session"; exit 1; }
curl -fs -H "Cookie: gw_session=$SESSION" "http://127.0.0.1:$GW/e/signed/" | grep -q bokningar

cat >"$W/delay.lua" <<LUA
function delay() return $DELAY_MS end
LUA

ticks() { local t=0; for p in $1; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo $t; }
HZ=$(getconf CLK_TCK)
run() { # name pids url [header]
  local name=$1 pids=$2 url=$3 hdr=${4:-}
  taskset -c 1 wrk -t1 -c"$CONNS" -d2s -s "$W/delay.lua" ${hdr:+-H "$hdr"} "$url" >/dev/null # warm-up
  local before; before=$(ticks "$pids")
  local out; out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$W/delay.lua" ${hdr:+-H "$hdr"} "$url")
  local after; after=$(ticks "$pids")
  local reqs; reqs=$(echo "$out" | awk '/requests in/{print $1}')
  local rate; rate=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  local errs; errs=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
  local us; us=$(awk -v t=$((after - before)) -v hz="$HZ" -v n="$reqs" 'BEGIN{printf "%.1f", t/hz*1e6/n}')
  printf '%-36s %8s req/s %9s requests %8s us CPU/request %s\n' "$name" "$rate" "$reqs" "$us" "$errs"
  echo "$us" >"$W/$(echo "$name" | cut -d' ' -f1)"
}
echo "machine: $(nproc) cores shared with other work, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: $CONNS connections, ${DELAY_MS} ms pause between a connection's requests, ${DURATION} s, $ROUNDS rounds"
for r in $(seq "$ROUNDS"); do
  echo "round $r"
  run "nginx (reverse proxy)"              "$NGXPIDS" "http://127.0.0.1:$NGX/e/open/bookings"
  if [ -n "$FLPID" ]; then
    run "floor (fasthttp alone)"           "$FLPID"   "http://127.0.0.1:$FL/e/open/bookings"
    awk -v n="$(cat "$W/nginx")" -v f="$(cat "$W/floor")" 'BEGIN{printf "ratio to nginx: floor %.2fx\n", f/n}'
  fi
  run "gateway-open (no identity)"         "$GWPID"   "http://127.0.0.1:$GW/e/open/bookings"
  run "gateway-signed (identity token)"    "$GWPID"   "http://127.0.0.1:$GW/e/signed/bookings" "Cookie: gw_session=$SESSION"
  awk -v n="$(cat "$W/nginx")" -v o="$(cat "$W/gateway-open")" -v s="$(cat "$W/gateway-signed")" \
    'BEGIN{printf "ratio to nginx: no identity %.2fx (target 1.2x), with identity %.2fx (target 1.5x)\n", o/n, s/n}'
  if [ -n "$BASEPID" ]; then
    run "base-open ($BASELINE, no identity)"       "$BASEPID" "http://127.0.0.1:$BASEGW/e/open/bookings"
    run "base-signed ($BASELINE, identity token)"  "$BASEPID" "http://127.0.0.1:$BASEGW/e/signed/bookings" "Cookie: gw_session=$SESSION"
    awk -v n="$(cat "$W/nginx")" -v o="$(cat "$W/base-open")" -v s="$(cat "$W/base-signed")" -v b="$BASELINE" \
      'BEGIN{printf "ratio to nginx (%s): no identity %.2fx, with identity %.2fx\n", b, o/n, s/n}'
  fi
done
