#!/usr/bin/env bash
# The cross-check of one benchmark step with a load generator nobody here wrote: sipp (Debian's
# sip-tester) opens SIPP_LEGS SIPREC sessions to `serve --sip`, each with one PCMU stream that sipp's
# own RTP streamer fills from the sample call, held SIPP_HOLD_S seconds. Over the steady middle it
# prints the service's and sipp's CPU (from /proc), CPU per leg-second and events per leg-second, to
# set beside `tools/bench_live.sh`'s row for the same leg count.
#   SIPP_LEGS=300 SIPP_HOLD_S=40 tools/bench_sipp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/emotiontap}
LEGS=${SIPP_LEGS:-300}
HOLD=${SIPP_HOLD_S:-40}
SIP_PORT=${SIPP_SIP_PORT:-15070}
. tools/lib/load_service.sh
command -v sipp >/dev/null || { echo "bench_sipp: needs sipp (apt-get install sip-tester)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT
cp config/samples/sample-call.wav "$work/call.wav"
printf 'rtp:\n  max_legs: 20000\n' > "$work/config.yaml"
start_service "$work/config.yaml" --sip "127.0.0.1:$SIP_PORT" --event-log none
# All calls up within about 5 s; then the steady window.
rate=$(( LEGS / 5 + 1 ))
scenario=$PWD/sip-examples/siprec/siprec-load.xml
(cd "$work" && exec sipp -sf "$scenario" -mi 127.0.0.1 -i 127.0.0.1 -p $((SIP_PORT + 1)) \
   -l "$LEGS" -m "$LEGS" -r "$rate" -d $((HOLD * 1000)) \
   -nostdin -trace_err "127.0.0.1:$SIP_PORT" > "$work/sipp.out" 2>&1) &
sipp_pid=$!
sleep 1
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
events() { curl -s "http://$HTTP/metrics" | awk '$1 == "emotiontap_events_sent_total" {print $2}'; }
sleep 10
window=$(( HOLD - 20 ))
s0=$(ticks "$pid"); g0=$( [ -n "$sipp_pid" ] && ticks "$sipp_pid" || echo 0); e0=$(events); t0=$(date +%s.%N)
active=$(curl -s "http://$HTTP/healthz" | sed -n 's/.*"legs":\([0-9]*\).*/\1/p')
sleep "$window"
s1=$(ticks "$pid"); g1=$( [ -n "$sipp_pid" ] && ticks "$sipp_pid" || echo 0); e1=$(events); t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
sipp_rc=0
wait "$sipp_pid" || sipp_rc=$?
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
awk -v s=$((s1 - s0)) -v g=$((g1 - g0)) -v e=$((e1 - e0)) -v t0="$t0" -v t1="$t1" -v hz="$hz" -v n="${active:-0}" 'BEGIN {
  dt = t1 - t0; sc = s / hz / dt; gc = g / hz / dt
  per = n > 0 ? 1000 * sc / n : 0; rate = n > 0 ? e / n / dt : 0
  printf "sipp: legs=%d service_cores=%.3f sipp_cores=%.3f ms_per_leg_s=%.3f events_per_leg_s=%.2f (over %.0f s)\n", n, sc, gc, per, rate, dt }'
echo "sipp: rc $sipp_rc; $(grep -E "Successful call" "$work/sipp.out" | tail -1 | tr -s ' ')"
echo "sipp: $(grep -E "Failed call" "$work/sipp.out" | tail -1 | tr -s ' ')"
