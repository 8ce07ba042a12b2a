# Sourced by the load tools (bench_live, bench_sipp, profile_stages, overload_check, soak): the service
# under load, on loopback, started the same way by each (RTP ports 20000-39999: room for 10,000 legs, so
# that the overload check can offer twice the capacity). Set BIN (and HTTP, EVENTS to move the ports)
# before sourcing.
HTTP=${HTTP:-127.0.0.1:${BENCH_HTTP_PORT:-8488}}
EVENTS=${EVENTS:-127.0.0.1:${BENCH_EVENTS_PORT:-9499}}

# start_service CONFIG [serve ARGS...]: starts `serve` in the background with its RTP range, event
# target and CONFIG (BENCH_MODEL=FILE serves that model), sets $pid, and returns once /healthz answers;
# fails with a message after 10 s.
start_service() {
  local config=$1
  shift
  "$BIN" serve --http "$HTTP" --rtp-ports 20000-39999 --event-target "$EVENTS" --log-level error \
    --config "$config" ${BENCH_MODEL:+--model "$BENCH_MODEL"} "$@" &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://$HTTP/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$(basename "$0"): the service did not answer on http://$HTTP/healthz" >&2
  return 1
}
