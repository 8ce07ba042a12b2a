#!/usr/bin/env bash
# The demo: start the service on loopback, create a leg, stream the bundled sample call to it over
# RTP in real time (a calm stretch, then an angry one), and print the events as they arrive.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.build/release/emotiontap}
HTTP=${DEMO_HTTP:-127.0.0.1:8088}
EVENTS=${DEMO_EVENTS:-127.0.0.1:9099}
SAMPLE=${DEMO_SAMPLE:-config/samples/sample-call.wav}
work=$(mktemp -d)
serve_pid=""
events_pid=""
cleanup() {
  [ -n "$events_pid" ] && kill "$events_pid" 2>/dev/null || true
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$BIN" serve --http "$HTTP" --event-target "$EVENTS" --event-log "$work/events.jsonl" \
  --history "$work/history.sqlite" --log-level warning &
serve_pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://$HTTP/healthz" >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || { echo "demo: the service did not start (is $HTTP in use? set DEMO_HTTP)" >&2; exit 1; }
  sleep 0.2
done
curl -sf "http://$HTTP/healthz" >/dev/null || { echo "demo: the service did not answer on $HTTP" >&2; exit 1; }

"$BIN" events --listen "$EVENTS" --until-leg-ends 1 --idle-timeout 20 &
events_pid=$!

leg=$(curl -sf -X POST "http://$HTTP/v1/legs" -H 'Content-Type: application/json' \
        -d '{"call_id":"demo-call","role":"customer","codec":"pcmu","agent_id":"agent-1001"}')
leg_id=$(printf '%s' "$leg" | sed -n 's/.*"leg_id":"\([^"]*\)".*/\1/p')
port=$(printf '%s' "$leg" | sed -n 's/.*"port":\([0-9]*\).*/\1/p')
echo "demo: leg $leg_id listens on RTP port $port; streaming $SAMPLE in real time (about 26 s: calm, then angry)"
echo

"$BIN" send "$SAMPLE" --to "127.0.0.1:$port" --codec pcmu
sleep 1.2
echo
echo "demo: what a dialplan would read now (GET /v1/calls/demo-call?format=text):"
curl -sf "http://$HTTP/v1/calls/demo-call?format=text" | sed 's/^/  /'
curl -sf -X DELETE "http://$HTTP/v1/legs/$leg_id" >/dev/null
wait "$events_pid" || true
events_pid=""
kill -TERM "$serve_pid"
wait "$serve_pid" || true
serve_pid=""
echo
echo "demo: the call as the history store kept it ($BIN report --call demo-call):"
"$BIN" report --call demo-call --store "$work/history.sqlite" | sed 's/^/  /'
echo
echo "demo: done. The same analysis offline: $BIN analyze $SAMPLE --format text"
