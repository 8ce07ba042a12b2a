#!/usr/bin/env bash
# Where the live service's CPU goes, per stage (receive, decode, features, window statistics, model,
# decisions, publishing), in ms of CPU per leg-second: the service and `loadgen` on loopback as in
# tools/bench_live.sh, perf sampling the service's threads for PROFILE_SECONDS in the steady middle.
#   PROFILE_LEGS=800 PROFILE_CODEC=pcmu tools/profile_stages.sh
# PROFILE_STREAM=twilio streams the legs over /v1/stream/twilio instead of RTP.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/emotiontap}
LEGS=${PROFILE_LEGS:-800}
CODEC=${PROFILE_CODEC:-pcmu}
SECONDS_PROFILED=${PROFILE_SECONDS:-10}
. tools/lib/load_service.sh
command -v perf >/dev/null || { echo "profile_stages: needs perf (apt-get install linux-perf)"; exit 1; }
work=$(mktemp -d)
# PROFILE_KEEP=FILE keeps the perf data there (for perf report).
trap '[ -n "${PROFILE_KEEP:-}" ] && cp "$work/perf.data" "$PROFILE_KEEP"; rm -rf "$work"' EXIT
printf 'rtp:\n  max_legs: 20000\n' > "$work/config.yaml"
start_service "$work/config.yaml" --event-log none
"$BIN" loadgen --legs "$LEGS" --duration $((SECONDS_PROFILED + 15)) --codec "$CODEC" --via-api "http://$HTTP" \
  ${PROFILE_STREAM:+--stream "$PROFILE_STREAM"} \
  --listen "$EVENTS" --report-pid "$pid" 2>/dev/null | grep '^bench:' > "$work/bench" &
gen=$!
sleep 10  # past the staggered starts
perf record -F 499 -g -p "$pid" -o "$work/perf.data" -- sleep "$SECONDS_PROFILED" >/dev/null 2>&1
wait "$gen" || true
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
cat "$work/bench"
cores=$(tr ' ' '\n' < "$work/bench" | sed -n 's/^cores=//p')
python3 tools/profile_stages.py "$work/perf.data" "${cores:-0}" "$LEGS"
