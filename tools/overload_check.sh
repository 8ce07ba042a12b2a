#!/usr/bin/env bash
# Graceful overload, checked: offer about twice the capacity for 60 s, then drop back to a load the box
# holds, against one service. Passes when no leg is lost under the overload (each gets events and its
# leg.end), resident memory stays under OVERLOAD_MAX_KB_PER_LEG per leg, the service says it is behind
# (backlog, skipped windows), and afterwards events flow again at normal latency with memory back.
#   OVERLOAD_LEGS=6000 OVERLOAD_SECONDS=60 RECOVER_LEGS=400 RECOVER_SECONDS=20 tools/overload_check.sh
# (fails when the overload step was not one: no window skipped. Raise OVERLOAD_LEGS on a faster box)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/emotiontap}
OVER=${OVERLOAD_LEGS:-6000}
OVER_S=${OVERLOAD_SECONDS:-60}
CALM=${RECOVER_LEGS:-400}
CALM_S=${RECOVER_SECONDS:-20}
MAX_KB=${OVERLOAD_MAX_KB_PER_LEG:-200}
. tools/lib/load_service.sh
config=$(mktemp)
samples=$(mktemp)
trap 'rm -f "$config" "$samples"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
printf 'rtp:\n  max_legs: 20000\n' > "$config"

start_service "$config" --event-log none
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
metric() { curl -s "http://$HTTP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
get() { printf '%s' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
base=$(rss_kb)

# Sample memory and health every 2 s while the overload runs.
( while kill -0 "$pid" 2>/dev/null; do
    h=$(curl -s -o /dev/null -w '%{http_code}' "http://$HTTP/healthz" || true)
    b=$(curl -s "http://$HTTP/healthz" | sed -n 's/.*"worker_backlog_ms":\([0-9]*\).*/\1/p')
    echo "$(rss_kb) $h ${b:-0}" >> "$samples"; sleep 2
  done ) &
sampler=$!
over=$("$BIN" loadgen --legs "$OVER" --duration "$OVER_S" --codec pcmu --via-api "http://$HTTP" \
  --listen "$EVENTS" --report-pid "$pid" 2>/dev/null | grep '^bench:' || true)
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
peak=$(sort -n "$samples" | tail -1 | cut -d' ' -f1)
maxBacklog=$(cut -d' ' -f3 "$samples" | sort -n | tail -1)
skipped=$(metric emotiontap_windows_skipped_total)
overflow=$(curl -s "http://$HTTP/metrics" | awk '/emotiontap_rtp_packets_dropped_total\{reason="queue_overflow"\}/ {print $2}')
# Past the workers' malloc_trim interval (5 s): the recovery step's memory per leg is then measured
# from a settled baseline, not from what the overload left resident.
sleep 7
calm=$("$BIN" loadgen --legs "$CALM" --duration "$CALM_S" --codec pcmu --via-api "http://$HTTP" \
  --listen "$EVENTS" --report-pid "$pid" 2>/dev/null | grep '^bench:' || true)
after=$(rss_kb)
health=$(curl -s "http://$HTTP/healthz")
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
pid=

echo "overload: $OVER legs for $OVER_S s: $over"
echo "overload: peak RSS $((peak / 1024)) MB ($((peak / OVER)) kB per leg; idle $((base / 1024)) MB), largest backlog ${maxBacklog} ms, windows skipped ${skipped:-0}, queue_overflow ${overflow:-0}"
echo "recovery: $CALM legs for $CALM_S s: $calm"
echo "recovery: RSS after $((after / 1024)) MB; health after: $health"
fail=0
check() { if ! eval "$2"; then echo "overload check FAILED: $1"; fail=1; fi; }
check "the overload step printed no result" '[ -n "$over" ] && [ -n "$calm" ]'
if [ -n "$over" ] && [ -n "$calm" ]; then
  check "no overload: no window was skipped (offer more legs, OVERLOAD_LEGS)" '[ "${skipped:-0}" -gt 0 ]'
  check "a leg got no events under overload" '[ "$(get "$over" legs_with_events)" = "$OVER" ]'
  check "a leg got no leg.end under overload" '[ "$(get "$over" leg_ends)" = "$OVER" ]'
  check "memory over ${MAX_KB} kB per leg" '[ $((peak / OVER)) -le "$MAX_KB" ]'
  check "every recovery leg gets its events and leg.end" \
    '[ "$(get "$calm" legs_with_events)" = "$CALM" ] && [ "$(get "$calm" leg_ends)" = "$CALM" ]'
  check "recovery latency p99 over 100 ms" \
    'awk -v v="$(get "$calm" latency_p99_ms)" "BEGIN{exit !(v < 100)}"'
  check "memory did not come back (after the recovery step it is above the overload peak)" '[ "$after" -le "$peak" ]'
fi
[ $fail -eq 0 ] && echo "overload check: PASS"
exit $fail
