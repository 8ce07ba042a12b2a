#!/usr/bin/env bash
# The live benchmark: the service and the load generator side by side on loopback, one step per row
# of one table, real-time pace. Per step: the service's CPU (cores) and the generator's beside it,
# CPU per leg-second, emotion events per leg-second, event latency (end of a window's audio ->
# datagram: p50/p99 from when that audio was due by the generator's schedule, and the p99 from when its
# last packet actually left, which leaves out the generator's own lag on a full box), resident memory
# per leg, and what was dropped: at the sockets (kernel) and as queue_overflow (too late to analyse,
# rtp.max_delay_ms, or a full queue).
#   BENCH_STEPS="1000:pcmu 500:opus 500:pcmu:twilio" BENCH_SECONDS=30 tools/bench_live.sh
# A step is LEGS:CODEC[:STREAM] (STREAM=twilio streams the legs over /v1/stream/twilio instead of RTP).
# Without BENCH_STEPS, BENCH_LEGS x BENCH_CODEC (and BENCH_STREAM) make the steps.
# LOADGEN_BIN runs the generator from another build (default: BIN), so two service builds can be
# compared with the same generator: BIN=old/emotiontap LOADGEN_BIN=.build/release/emotiontap ...
# BENCH_READ_INTERVAL_MS=N serves with rtp.read_interval_ms N.
# BENCH_MODEL=FILE serves another model file (e.g. .build/model/fusion-leg.json from make model).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/emotiontap}
LOADGEN_BIN=${LOADGEN_BIN:-$BIN}
SECONDS_PER_STEP=${BENCH_SECONDS:-30}
. tools/lib/load_service.sh
if [ -z "${BENCH_STEPS:-}" ]; then
  BENCH_STEPS=""
  for n in ${BENCH_LEGS:-"100 500 1000 2000 3000"}; do
    BENCH_STEPS+="$n:${BENCH_CODEC:-pcmu}${BENCH_STREAM:+:$BENCH_STREAM} "
  done
fi

config=$(mktemp)
trap 'rm -f "$config"' EXIT
printf 'rtp:\n  max_legs: 20000\n' > "$config"
# BENCH_READ_INTERVAL_MS sets rtp.read_interval_ms (how often each leg's socket is read in full).
[ -n "${BENCH_READ_INTERVAL_MS:-}" ] && printf '  read_interval_ms: %s\n' "$BENCH_READ_INTERVAL_MS" >> "$config"
# BENCH_WORKERS sets rtp.workers (RTP worker threads; default one per core).
[ -n "${BENCH_WORKERS:-}" ] && printf '  workers: %s\n' "$BENCH_WORKERS" >> "$config"
# BENCH_WORKER_NICE sets rtp.worker_nice (e.g. -10: the service's RTP workers before the generator on
# the shared cores, as media threads are run in production; needs root or CAP_SYS_NICE).
[ -n "${BENCH_WORKER_NICE:-}" ] && printf '  worker_nice: %s\n' "$BENCH_WORKER_NICE" >> "$config"

# p50_ms, p99_ms, p99_sent_ms: to the event datagram's arrival at the listener's socket (the kernel's stamp);
# p99_read_ms: to when the listener's thread read it (its own scheduling lag on a full box included).
row() { printf '%-6s %-12s %8s %10s %12s %10s %8s %8s %13s %13s %8s %11s %13s\n' "$@"; }
row legs way service gen_cores ms/leg-s ev/leg-s p50_ms p99_ms p99_sent_ms p99_read_ms kB/leg socket_drops queue_overflow
for step in $BENCH_STEPS; do
  IFS=: read -r n codec stream <<< "$step"
  start_service "$config" --event-log none
  line=$("$LOADGEN_BIN" loadgen --legs "$n" --duration "$SECONDS_PER_STEP" --codec "$codec" --via-api "http://$HTTP" \
           ${stream:+--stream "$stream"} \
           --listen "$EVENTS" --report-pid "$pid" 2>/dev/null | grep '^bench:' || true)
  overflow=$(curl -s "http://$HTTP/metrics" | awk '/emotiontap_rtp_packets_dropped_total\{reason="queue_overflow"\}/ {print $2}')
  kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  if [ -z "$line" ]; then echo "$step: no result (see loadgen's output)"; continue; fi
  get() { printf '%s' "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  cores=$(get cores)
  row "$n" "$codec${stream:+/$stream}" "$cores" "$(get generator_cores)" \
    "$(awk -v c="$cores" -v n="$n" 'BEGIN{printf "%.3f", 1000 * c / n}')" \
    "$(awk -v e="$(get events_per_s)" -v n="$n" 'BEGIN{printf "%.2f", e / n}')" \
    "$(get latency_p50_ms)" "$(get latency_p99_ms)" "$(get latency_sent_p99_ms)" "$(get latency_read_p99_ms)" \
    "$(get rss_per_leg_kb)" \
    "$(get socket_drops)" "${overflow:-0}"
done
