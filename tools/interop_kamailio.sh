#!/usr/bin/env bash
# Interop test against real peers: Kamailio (sip-examples/kamailio-rtpengine/kamailio.cfg) and
# rtpengine (userspace, sip-examples/kamailio-rtpengine/rtpengine.conf, ports overridden)
# relay one call between a sipp caller (uac-talk.xml, the customer) and a sipp callee
# (uas-talk.xml, the agent) that both stream speech. At the 200 OK Kamailio runs the fork helper
# (emotiontap_rtpengine_fork.py), which subscribes one EmotionTap leg per direction; at BYE it
# deletes them. Passes when EmotionTap's event log has, for both roles, leg.start, at least one
# emotion event and leg.end with reason api (the helper's DELETE at BYE).
#
#   tools/interop_kamailio.sh [EMOTIONTAP_BINARY]       (default .build/release/emotiontap)
#
# Everything runs on 127.0.0.1 on free ports, as the current user, in a temporary directory that
# is removed on success and kept (its path printed) on failure; INTEROP_KEEP=1 always keeps it.
# INTEROP_CALL_MS sets how long the caller stays in the call (default 9000 ms), INTEROP_LOG_LEVEL
# EmotionTap's log level (default debug: a few dozen lines, and it names any signal it gets).
# Needs kamailio (5.6: exec_cmd in a reply route), rtpengine (10.x: subscribe request/answer),
# sipp (Debian sip-tester), python3, curl.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-.build/release/emotiontap}
EXAMPLE=$REPO/sip-examples/kamailio-rtpengine
FIXTURES=$REPO/Tests/EmotionTestSupport/Fixtures
CALL_MS=${INTEROP_CALL_MS:-9000}
STARTED=$(date +%s.%N)

say() { printf 'interop: %s\n' "$*"; }
fail() {
    printf 'interop: FAIL: %s\n' "$*" >&2
    FAILED=1
    exit 1
}

[[ $BIN == /* ]] || BIN=$PWD/$BIN
[[ -x $BIN ]] || { echo "interop: FAIL: emotiontap binary not found: $BIN (make build, or pass its path)" >&2; exit 1; }
for tool in kamailio rtpengine sipp python3 curl setsid timeout; do
    command -v "$tool" >/dev/null || {
        echo "interop: FAIL: $tool is not installed (Debian: apt-get install kamailio rtpengine-daemon sip-tester)" >&2
        exit 1
    }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/emotiontap-interop.XXXXXX")
FAILED=0
PIDS=()

# Every child is started with setsid, so it leads its own process group: killing the group also
# ends what it forked (Kamailio's workers, the helper runs, sipp's threads).
stop_group() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$? i
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_group "${PIDS[i]}"; done
    if ((status != 0 || FAILED)); then
        for log in emotiontap.log rtpengine.log kamailio.log helper.log uac/sipp.log uas/sipp.log; do
            [[ -s $T/$log ]] || continue
            echo "----- last lines of $log -----" >&2
            tail -n 25 "$T/$log" >&2
        done
        echo "interop: logs kept in $T" >&2
    elif [[ ${INTEROP_KEEP:-0} == 1 ]]; then
        echo "interop: logs kept in $T"
    else
        rm -rf "$T"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'echo "interop: FAIL: interrupted (SIGINT)" >&2; FAILED=1; exit 130' INT
trap 'echo "interop: FAIL: terminated (SIGTERM)" >&2; FAILED=1; exit 143' TERM

# start NAME DIR CMD...: runs CMD in DIR in its own session, output to $T/NAME.log; sets LAST_PID.
start() {
    local name=$1 dir=$2
    shift 2
    (cd "$dir" && exec setsid "$@") >"$T/$name.log" 2>&1 </dev/null &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

alive() { kill -0 "$1" 2>/dev/null || fail "$2 exited early (see $2.log)"; }

# Free ports: single UDP/TCP ports, and blocks of consecutive free UDP ports (for RTP ranges).
free_ports() {
    python3 - "$@" <<'EOF'
import random, socket, sys
taken = set()
def free(port, kinds):
    for kind in kinds:
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True
out = []
for spec in sys.argv[1:]:       # N: a block of N consecutive ports (UDP and TCP free); prints the base
    n = int(spec)
    for _ in range(2000):
        base = random.randrange(20000, 60000 - n) & ~1
        block = range(base, base + n)
        if not taken.intersection(block) and all(free(p, (socket.SOCK_DGRAM, socket.SOCK_STREAM)) for p in block):
            taken.update(block)
            out.append(str(base))
            break
    else:
        sys.exit("no free port block of %d" % n)
print(" ".join(out))
EOF
}

read -r HTTP_PORT EVENT_PORT SIP_PORT NG_PORT UAS_PORT UAC_PORT UAS_MEDIA UAC_MEDIA TAP_BASE RTPE_BASE \
    <<<"$(free_ports 1 1 1 1 1 1 10 10 20 40)"
TAP_RANGE=$TAP_BASE-$((TAP_BASE + 19))
say "temp dir $T"
say "ports: api $HTTP_PORT, events $EVENT_PORT, kamailio $SIP_PORT, rtpengine ng $NG_PORT, sipp uas $UAS_PORT uac $UAC_PORT"
say "       rtp: emotiontap $TAP_RANGE, rtpengine $RTPE_BASE-$((RTPE_BASE + 39)), sipp media $UAC_MEDIA/$UAS_MEDIA"

# ---- EmotionTap --------------------------------------------------------------------------------
EVENTS=$T/events.jsonl
start emotiontap "$T" "$BIN" serve --http "127.0.0.1:$HTTP_PORT" --rtp-host 127.0.0.1 --rtp-ports "$TAP_RANGE" \
    --event-target "127.0.0.1:$EVENT_PORT" --event-log "$EVENTS" --log-level "${INTEROP_LOG_LEVEL:-debug}"
TAP_PID=$LAST_PID
for i in $(seq 1 100); do
    curl -sf -m 1 "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break
    alive "$TAP_PID" emotiontap
    ((i < 100)) || fail "emotiontap did not answer /healthz in 20 s"
    sleep 0.2
done
say "emotiontap up (pid $TAP_PID)"

# ---- rtpengine (userspace only: no kernel table) ------------------------------------------------
start rtpengine "$T" rtpengine --config-file="$EXAMPLE/rtpengine.conf" --foreground --log-stderr --table=-1 \
    --pidfile="$T/rtpengine.pid" --listen-ng="127.0.0.1:$NG_PORT" \
    --port-min="$RTPE_BASE" --port-max="$((RTPE_BASE + 39))" --delete-delay=0
RTPE_PID=$LAST_PID
ng_ping() {
    python3 - "$NG_PORT" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
s.sendto(b"ping1 d7:command4:pinge", ("127.0.0.1", int(sys.argv[1])))
try:
    sys.exit(0 if b"pong" in s.recv(1000) else 1)
except OSError:
    sys.exit(1)
EOF
}
for i in $(seq 1 50); do
    ng_ping && break
    alive "$RTPE_PID" rtpengine
    ((i < 50)) || fail "rtpengine did not answer an ng ping in 15 s"
    sleep 0.2
done
say "rtpengine up (pid $RTPE_PID)"

# ---- Kamailio with the example config, the helper run through a logging wrapper -----------------
HELPER=$T/helper.sh
cat >"$HELPER" <<EOF
#!/bin/sh
exec python3 "$EXAMPLE/emotiontap_rtpengine_fork.py" --rtpengine 127.0.0.1:$NG_PORT \\
    --emotiontap-url http://127.0.0.1:$HTTP_PORT --state "$T/forks.json" --log stderr -v "\$@" 2>>"$T/helper.log"
EOF
chmod +x "$HELPER"
mkdir -p "$T/kamailio-run"
kamailio -c -f "$EXAMPLE/kamailio.cfg" >"$T/kamailio-check.log" 2>&1 || fail "kamailio -c rejects the example config: $(tail -3 "$T/kamailio-check.log")"
start kamailio "$T" kamailio -DD -E -f "$EXAMPLE/kamailio.cfg" -A "SIP_LISTEN=udp:127.0.0.1:$SIP_PORT" -Y "$T/kamailio-run" \
    -m 32 -M 8 -A "EMOTIONTAP_HELPER=\"$HELPER\"" -A "RTPENGINE_SOCK=\"udp:127.0.0.1:$NG_PORT\""
KAM_PID=$LAST_PID
udp_bound() { ! python3 -c 'import socket,sys; socket.socket(socket.AF_INET,socket.SOCK_DGRAM).bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null; }
for i in $(seq 1 100); do
    udp_bound "$SIP_PORT" && break
    alive "$KAM_PID" kamailio
    ((i < 100)) || fail "kamailio did not bind 127.0.0.1:$SIP_PORT in 20 s"
    sleep 0.2
done
sleep 0.5 # its workers and the rtpengine connection
alive "$KAM_PID" kamailio
say "kamailio up (pid $KAM_PID)"

# ---- the call: sipp callee (agent), sipp caller (customer) through Kamailio -------------------
mkdir -p "$T/uas" "$T/uac"
cp "$FIXTURES/crema-1011_IEO_NEU_XX.wav" "$T/uas/agent.wav"
cp "$FIXTURES/crema-1009_DFA_ANG_XX.wav" "$T/uac/customer.wav"
start uas/sipp "$T/uas" timeout 60 sipp -sf "$EXAMPLE/uas-talk.xml" -i 127.0.0.1 -p "$UAS_PORT" \
    -mi 127.0.0.1 -mp "$UAS_MEDIA" -m 1 -nostdin -timeout 50s -trace_err -trace_msg \
    -message_file "$T/uas/messages.log" -error_file "$T/uas/errors.log"
UAS_PID=$LAST_PID
sleep 0.3
alive "$UAS_PID" uas/sipp
say "calling: caller stays in the call for $CALL_MS ms"
CALL_START=$(date +%s.%N)
start uac/sipp "$T/uac" timeout 60 sipp "127.0.0.1:$UAS_PORT" -sf "$EXAMPLE/uac-talk.xml" -rsa "127.0.0.1:$SIP_PORT" \
    -i 127.0.0.1 -p "$UAC_PORT" -mi 127.0.0.1 -mp "$UAC_MEDIA" -m 1 -d "$CALL_MS" -nostdin -timeout 50s \
    -trace_err -trace_msg -message_file "$T/uac/messages.log" -error_file "$T/uac/errors.log"
UAC_PID=$LAST_PID
# (wait, not a foreground run: a signal to this script is handled at once, not after the call)
wait "$UAC_PID" && UAC_STATUS=0 || UAC_STATUS=$?
HANGUP=$(date +%s.%N)
say "caller finished (exit $UAC_STATUS) after $(python3 -c "import sys; print(round($(date +%s.%N) - $CALL_START, 1))") s"
((UAC_STATUS == 0)) || fail "the sipp caller's call failed (exit $UAC_STATUS, see uac/messages.log)"
for name in emotiontap:$TAP_PID rtpengine:$RTPE_PID kamailio:$KAM_PID; do
    kill -0 "${name#*:}" 2>/dev/null ||
        fail "${name%:*} exited during the call (killed from outside? see ${name%:*}.log)"
done
for i in $(seq 1 50); do
    kill -0 "$UAS_PID" 2>/dev/null || break
    sleep 0.2
done
wait "$UAS_PID" && UAS_STATUS=0 || UAS_STATUS=$?
((UAS_STATUS == 0)) || fail "the sipp callee did not complete its call (exit $UAS_STATUS, see uas/messages.log)"

# ---- the events: both legs started, were analysed, and ended at BYE ------------------------------
check_events() {
    python3 - "$EVENTS" "$1" "$RTPE_BASE" "$HANGUP" <<'EOF'
import collections, datetime, json, sys
hangup = float(sys.argv[4])
path, final, relay = sys.argv[1], sys.argv[2] == "final", range(int(sys.argv[3]), int(sys.argv[3]) + 40)
events = []
try:
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                events.append(json.loads(line))
except FileNotFoundError:
    pass
legs = collections.OrderedDict()
for e in events:
    if "leg_id" not in e:
        continue
    leg = legs.setdefault(e["leg_id"], {"role": e.get("role"), "call_id": e.get("call_id"), "types": collections.Counter(), "end": None})
    leg["types"][e["type"]] += 1
    if e["type"] == "leg.start":
        leg["source"] = e.get("source", "")
    if e["type"] == "leg.end":
        leg["end"] = e
by_role = {}
for leg_id, leg in legs.items():
    by_role.setdefault(leg["role"], []).append((leg_id, leg))
problems = []
for role in ("customer", "agent"):
    found = by_role.get(role, [])
    if len(found) != 1:
        problems.append(f"{role}: {len(found)} legs (want 1)")
        continue
    leg_id, leg = found[0]
    t = leg["types"]
    if not t["leg.start"]:
        problems.append(f"{role}: no leg.start (no RTP reached the leg)")
    else:
        host, _, port = leg["source"].rpartition(":")
        if host != "127.0.0.1" or int(port or 0) not in relay:
            problems.append(f"{role}: RTP came from {leg['source']}, not from rtpengine's ports")
    if not t["emotion"]:
        problems.append(f"{role}: no emotion event")
    if leg["end"] is None:
        problems.append(f"{role}: no leg.end")
    elif leg["end"].get("reason") != "api":
        problems.append(f"{role}: leg.end reason {leg['end'].get('reason')} (want api: the helper's DELETE at BYE)")
    else:
        ts = datetime.datetime.fromisoformat(leg["end"]["ts"].replace("Z", "+00:00")).timestamp()
        leg["after_bye"] = ts - hangup
        if not -2 < ts - hangup < 5:
            problems.append(f"{role}: leg.end {ts - hangup:.1f} s after the caller's BYE completed (want within 5 s)")
calls = {leg["call_id"] for leg in legs.values()}
if len(calls) > 1:
    problems.append(f"legs of {len(calls)} calls: {sorted(calls)}")
if not final:
    sys.exit(1 if problems else 0)
for leg_id, leg in legs.items():
    end = leg["end"] or {}
    rtp, summary = end.get("rtp", {}), end.get("summary", {})
    print(f"  {leg['role']:8} {leg_id} call {leg['call_id']} from {leg.get('source')}: "
          + ", ".join(f"{k} {v}" for k, v in sorted(leg['types'].items()))
          + f"; leg.end reason {end.get('reason')} {leg.get('after_bye', float('nan')):+.2f} s from hangup, rtp received {rtp.get('received')} lost {rtp.get('lost')},"
          + f" speech {summary.get('speech_s')} s")
for p in problems:
    print("  PROBLEM: " + p)
sys.exit(1 if problems else 0)
EOF
}
deadline=$((SECONDS + 10)) # leg.end follows the BYE within a second; a failed run waits this long
until check_events wait || ((SECONDS >= deadline)); do sleep 0.3; done
say "events in $EVENTS:"
check_events final || fail "EmotionTap's events do not show both legs analysed and ended at BYE"
grep -q "ERROR" "$T/helper.log" && fail "the fork helper logged errors: $(grep ERROR "$T/helper.log" | head -3)"
say "PASS in $(python3 -c "print(round($(date +%s.%N) - $STARTED, 1))") s"
