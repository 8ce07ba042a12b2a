#!/usr/bin/env bash
# The live benchmark: the service and the load generator side by side on loopback, one step per
# leg count, real-time pace. Prints, per step, the service's CPU (cores), packets dropped at its
# sockets, events per second, event latency (end of a window's audio -> datagram), resident memory,
# and the generator's own CPU (it shares the machine).
#   BENCH_LEGS="100 500 1000" BENCH_SECONDS=30 BENCH_CODEC=pcmu tools/bench_live.sh
# LOADGEN_BIN runs the generator from another build (default: BIN), so two service builds can be
# compared with the same generator: BIN=old/emotiontap LOADGEN_BIN=.build/release/emotiontap ...
# BENCH_MODEL=FILE serves another model file (e.g. .build/model/fusion-leg.json from make model).
# BENCH_STREAM=twilio streams the legs over WebSockets (/v1/stream/twilio) instead of RTP.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/emotiontap}
LOADGEN_BIN=${LOADGEN_BIN:-$BIN}
LEGS=${BENCH_LEGS:-"100 500 1000 2000 3000"}
SECONDS_PER_STEP=${BENCH_SECONDS:-30}
CODEC=${BENCH_CODEC:-pcmu}
HTTP=127.0.0.1:${BENCH_HTTP_PORT:-8488}
EVENTS=127.0.0.1:${BENCH_EVENTS_PORT:-9499}

config=$(mktemp)
trap 'rm -f "$config"' EXIT
printf 'rtp:\n  max_legs: 20000\n' > "$config"

printf '%-6s %-6s %8s %13s %10s %11s %11s %9s %11s %15s\n' legs codec cores socket_drops events/s p50_ms p99_ms rss_mb rss/leg_kB generator_cores
for n in $LEGS; do
  "$BIN" serve --http "$HTTP" --rtp-ports 30000-39999 --event-target "$EVENTS" --event-log none --log-level error \
    --config "$config" ${BENCH_MODEL:+--model "$BENCH_MODEL"} &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://$HTTP/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  line=$("$LOADGEN_BIN" loadgen --legs "$n" --duration "$SECONDS_PER_STEP" --codec "$CODEC" --via-api "http://$HTTP" \
           ${BENCH_STREAM:+--stream "$BENCH_STREAM"} \
           --listen "$EVENTS" --report-pid "$pid" 2>/dev/null | grep '^bench:' || true)
  kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  if [ -z "$line" ]; then echo "$n: no result (see loadgen's output)"; continue; fi
  get() { printf '%s' "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  printf '%-6s %-6s %8s %13s %10s %11s %11s %9s %11s %15s\n' "$(get legs)" "$(get codec)" "$(get cores)" "$(get socket_drops)" \
    "$(get events_per_s)" "$(get latency_p50_ms)" "$(get latency_p99_ms)" "$(get rss_mb)" "$(get rss_per_leg_kb)" "$(get generator_cores)"
done
