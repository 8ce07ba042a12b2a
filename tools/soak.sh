#!/usr/bin/env bash
# The soak: many legs for a long time with loss and a stream of hostile packets mixed in.
# Passes when the service stays up, its resident memory grows by under 5 % after warm-up, every leg
# gets emotion events and every leg gets its leg.end. Prints the service's drop counters by reason.
#   SOAK_LEGS=500 SOAK_SECONDS=600 SOAK_LOSS=0.05 SOAK_MALFORMED=0.01 tools/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/emotiontap}
LEGS=${SOAK_LEGS:-500}
SECONDS_TOTAL=${SOAK_SECONDS:-600}
LOSS=${SOAK_LOSS:-0.05}
MALFORMED=${SOAK_MALFORMED:-0.01}
HTTP=127.0.0.1:${SOAK_HTTP_PORT:-8489}
EVENTS=127.0.0.1:${SOAK_EVENTS_PORT:-9497}
. tools/lib/load_service.sh
SAMPLE_EVERY=$(( SECONDS_TOTAL >= 300 ? 30 : (SECONDS_TOTAL >= 20 ? SECONDS_TOTAL / 10 : 1) ))

workdir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$workdir"' EXIT
printf 'rtp:\n  max_legs: %d\n' $((LEGS + 100)) > "$workdir/config.yaml"
start_service "$workdir/config.yaml" --event-log "$workdir/events.jsonl" 2>"$workdir/service.log"

echo "soak: $LEGS legs, $SECONDS_TOTAL s, loss $LOSS, hostile packets after $MALFORMED of packets, RSS sampled every $SAMPLE_EVERY s"
"$BIN" loadgen --legs "$LEGS" --duration "$SECONDS_TOTAL" --loss "$LOSS" --malformed "$MALFORMED" --via-api "http://$HTTP" \
  --listen "$EVENTS" --report-pid "$pid" --rss-every "$SAMPLE_EVERY" | tee "$workdir/loadgen.out"

alive=yes; kill -0 "$pid" 2>/dev/null || alive=no
echo "soak: service drop counters (Prometheus):"
curl -sf "http://$HTTP/metrics" | grep -E '^emotiontap_(rtp_packets|legs_(created|ended)|events_sent)' | sed 's/^/  /' || true
line=$(grep '^bench:' "$workdir/loadgen.out" || true)
get() { printf '%s' "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
growth=$(get rss_growth_pct); with_events=$(get legs_with_events); ends=$(get leg_ends)
kill -TERM "$pid"; wait "$pid" 2>/dev/null && exit_code=0 || exit_code=$?
pass=yes
[ "$alive" = yes ] || { echo "soak: FAIL the service died"; pass=no; }
[ -n "$growth" ] && awk -v g="$growth" 'BEGIN { exit !(g < 5) }' || { echo "soak: FAIL RSS growth after warm-up ${growth:-unknown} % (limit 5 %)"; pass=no; }
[ "$with_events" = "$LEGS" ] || { echo "soak: FAIL only $with_events of $LEGS legs had emotion events"; pass=no; }
[ "$ends" = "$LEGS" ] || { echo "soak: FAIL only $ends of $LEGS leg.end events"; pass=no; }
[ "$exit_code" = 0 ] || { echo "soak: FAIL the service exited $exit_code on SIGTERM"; pass=no; }
if [ "$pass" = yes ]; then
  echo "soak: PASS service up, RSS growth after warm-up $growth %, emotion events on $with_events/$LEGS legs, leg.end $ends/$LEGS, exit $exit_code"
else
  exit 1
fi
