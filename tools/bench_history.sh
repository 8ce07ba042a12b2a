#!/usr/bin/env bash
# How fast the history store takes events: a synthetic event log of BENCH_HISTORY_EVENTS lines (real
# event lines from the sample call, renumbered over BENCH_HISTORY_LEGS legs), replayed by `serve`'s
# ingestor at start into SQLite and, when PostgreSQL is installed, into a throwaway server on
# loopback. Prints events per second stored and the store's bytes per event.
# Usage: tools/bench_history.sh [BINARY]   (default .build/release/emotiontap)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/release/emotiontap}
EVENTS=${BENCH_HISTORY_EVENTS:-200000}
LEGS=${BENCH_HISTORY_LEGS:-2000}
work=$(mktemp -d /tmp/emotiontap-bench-history.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${pgdata:-}" ]; then run_pg pg_ctl -D "$pgdata" -m fast stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Real lines: the sample call analysed offline into events, then renumbered over many legs.
"$BIN" analyze config/samples/sample-call.wav --format jsonl > "$work/windows.jsonl"
python3 - "$work/windows.jsonl" "$work/events.jsonl" "$EVENTS" "$LEGS" <<'PY'
import json, sys
windows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
windows = [w for w in windows if w.get("upset") is not None] or windows
total, legs = int(sys.argv[3]), int(sys.argv[4])
per_leg = max(3, total // legs)
rtp = {k: 0 for k in ["packets", "received", "expected", "lost", "reordered", "duplicates", "late", "jitter_ms",
    "ssrc_changes", "concealed_ms", "comfort_noise", "telephone_events", "unknown_payload_type", "undecodable",
    "source_not_allowed", "wrong_source", "malformed", "queue_overflow", "srtp_auth_failed"]}
out = open(sys.argv[2], "w")
seq = 0
for leg in range(legs):
    lid, cid, role = f"leg-{leg:016x}", f"call-{leg // 2}", "customer" if leg % 2 == 0 else "agent"
    head = {"v": 1, "seq": 0, "ts": "2026-12-01T10:00:00.000Z", "call_id": cid, "leg_id": lid, "role": role}
    def emit(kind, body):
        global seq
        seq += 1
        out.write(json.dumps({**head, "type": kind, "seq": seq, **body}, separators=(",", ":")) + "\n")
    emit("leg.start", {"agent_id": f"agent-{leg % 50}", "codec": "pcmu", "payload_type": 0, "ssrc": 1, "source": "127.0.0.1:4000", "port": 40000})
    for i in range(per_leg - 2):
        w = windows[i % len(windows)]
        emit("emotion", {"start": w["start"], "end": w["end"], "speech": w["speech"], "upset": w["upset"], "state": "calm", "label": w.get("label"), "scores": w.get("scores")})
    emit("leg.end", {"agent_id": f"agent-{leg % 50}", "reason": "bye", "summary": {"duration_s": 60, "media_s": 60, "speech_s": 30, "upset_fraction": 0.1, "peak_upset": 0.8, "emotion_mix": {"angry": 0.1, "disgust": 0.1, "fear": 0.1, "happy": 0.1, "neutral": 0.4, "sad": 0.1, "surprise": 0.1}, "start_upset": 0.3, "end_upset": 0.2, "ended_calmer": True, "escalations": 0}, "rtp": rtp})
PY
lines=$(wc -l < "$work/events.jsonl")

# Replays the log into STORE; prints "seconds events".
replay() {
  local store=$1 port=$((20000 + RANDOM % 20000))
  local start end stored=0
  start=$(date +%s.%N)
  "$BIN" serve --http "127.0.0.1:$port" --rtp-ports 39000-39010 --event-target 127.0.0.1:9 \
    --event-log "$work/events.jsonl" --history "$store" --log-level error &
  pids+=($!)
  for _ in $(seq 1 1200); do
    stored=$( (curl -sf "http://127.0.0.1:$port/metrics" 2>/dev/null || true) | sed -n 's/^emotiontap_history_events_stored_total \([0-9]*\).*/\1/p')
    [ -n "$stored" ] && [ "$stored" -ge "$lines" ] && break
    sleep 0.25
  done
  end=$(date +%s.%N)
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  echo "$(echo "$end - $start" | bc) ${stored:-0}"
}

echo "history ingest: $lines event lines over $LEGS legs (the sample call's windows)"
read -r secs stored < <(replay "$work/h.sqlite")
bytes=$(du -cb "$work"/h.sqlite* | tail -1 | cut -f1)
printf '  sqlite:     %s events in %.1f s = %.0f events/s, %.0f bytes per event on disk\n' \
  "$stored" "$secs" "$(echo "$stored / $secs" | bc -l)" "$(echo "$bytes / $stored" | bc -l)"

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -n "$pgbin" ] && [ -x "$pgbin/postgres" ]; then
  run_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$pgbin/$@"; else "$pgbin/$@"; fi; }
  pgdata="$work/pg"; mkdir -p "$pgdata"; [ "$(id -u)" -eq 0 ] && chown -R postgres "$work"
  pgport=$((30000 + RANDOM % 20000))
  run_pg initdb -D "$pgdata" -A trust -U postgres >/dev/null
  run_pg pg_ctl -D "$pgdata" -o "-p $pgport -k $work -c listen_addresses=127.0.0.1" -l "$work/pg.log" -w start >/dev/null
  read -r secs stored < <(replay "postgres://postgres@127.0.0.1:$pgport/postgres")
  size=$(psql -h 127.0.0.1 -p "$pgport" -U postgres -Atc "select pg_database_size('postgres')")
  printf '  postgresql: %s events in %.1f s = %.0f events/s, %.0f bytes per event (database size)\n' \
    "$stored" "$secs" "$(echo "$stored / $secs" | bc -l)" "$(echo "$size / $stored" | bc -l)"
else
  echo "  postgresql: skipped (Debian package postgresql not installed)"
fi
