#!/usr/bin/env bash
# Interop test against real peers: Kamailio (sip-examples/kamailio-rtpengine/kamailio.cfg) and
# rtpengine (userspace, sip-examples/kamailio-rtpengine/rtpengine.conf, ports overridden) relay
# calls, one after the other, between a caller (the customer) and a callee (the agent) that both
# stream speech. At each 200 OK Kamailio runs the fork helper (emotiontap_rtpengine_fork.py),
# which subscribes one EmotionTap leg per direction; at BYE it deletes them. The calls
# (INTEROP_CALLS, default "sipp baresip"):
#   sipp     a sipp caller (uac-talk.xml) and a sipp callee (uas-talk.xml), G.711 PCMU
#   baresip  two baresip UAs (Debian baresip-core, headless: aufile source, aubridge null player,
#            ctrl_tcp for the hangup), offering only Opus: the media is Opus both ways, on a
#            dynamic payload type, between peers this project did not write
# Each call passes when EmotionTap's event log has, for both roles and only that call's Call-ID,
# leg.start with the call's codec and payload type (for Opus, the dynamic type baresip offered)
# from rtpengine's ports, at least one emotion event, and leg.end with reason api (the helper's
# DELETE at BYE) within 5 s of the hangup, without undecodable packets.
#
#   tools/interop_kamailio.sh [EMOTIONTAP_BINARY]       (default .build/release/emotiontap)
#
# Everything runs on 127.0.0.1 on free ports, as the current user, in a temporary directory that
# is removed on success and kept (its path printed) on failure; INTEROP_KEEP=1 always keeps it.
# INTEROP_CALL_MS sets how long each caller stays in its call (default 9000 ms), INTEROP_CALLS
# which calls run, INTEROP_LOG_LEVEL EmotionTap's log level (default debug: a few dozen lines, and
# it names any signal it gets).
# Needs kamailio (5.6: exec_cmd in a reply route), rtpengine (10.x: subscribe request/answer),
# sipp (Debian sip-tester), baresip (Debian baresip-core 1.0, for the baresip call), python3, curl.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-.build/release/emotiontap}
EXAMPLE=$REPO/sip-examples/kamailio-rtpengine
FIXTURES=$REPO/Tests/EmotionTestSupport/Fixtures
CALL_MS=${INTEROP_CALL_MS:-9000}
CALLS=${INTEROP_CALLS:-sipp baresip}
STARTED=$(date +%s.%N)

say() { printf 'interop: %s\n' "$*"; }
fail() {
    printf 'interop: FAIL: %s\n' "$*" >&2
    FAILED=1
    exit 1
}

[[ $BIN == /* ]] || BIN=$PWD/$BIN
[[ -x $BIN ]] || { echo "interop: FAIL: emotiontap binary not found: $BIN (make build, or pass its path)" >&2; exit 1; }
tools=(kamailio rtpengine python3 curl setsid timeout)
for call in $CALLS; do
    case $call in
    sipp) tools+=(sipp) ;;
    baresip) tools+=(baresip) ;;
    *) echo "interop: FAIL: unknown call '$call' in INTEROP_CALLS (sipp, baresip)" >&2; exit 1 ;;
    esac
done
for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || {
        echo "interop: FAIL: $tool is not installed (Debian: apt-get install --no-install-recommends kamailio rtpengine-daemon sip-tester baresip-core; INTEROP_CALLS=sipp skips baresip)" >&2
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
        for log in emotiontap.log rtpengine.log kamailio.log helper.log uac/sipp.log uas/sipp.log \
            baresip/caller.log baresip/callee.log; do
            [[ -s $T/$log ]] || continue
            echo "----- last lines of $log -----" >&2
            # (baresip redraws a status line with carriage returns, and its SIP trace has CRLFs:
            # without those lines and the blank ones)
            tr '\r' '\n' <"$T/$log" | grep -av -e '^\[[0-9:]*\] audio=' -e '^$' | tail -n 25 >&2
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
        base = random.randrange(10000, 20000 - n) & ~1  # below the tests' bands (Tests/EmotionTestSupport/TestPorts.swift)
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
    BS_CALLEE_SIP BS_CALLER_SIP BS_CTRL BS_CALLEE_RTP BS_CALLER_RTP \
    <<<"$(free_ports 1 1 1 1 1 1 10 10 20 40 1 1 1 10 10)"
TAP_RANGE=$TAP_BASE-$((TAP_BASE + 19))
say "temp dir $T; calls: $CALLS"
say "ports: api $HTTP_PORT, events $EVENT_PORT, kamailio $SIP_PORT, rtpengine ng $NG_PORT, sipp uas $UAS_PORT uac $UAC_PORT,"
say "       baresip callee $BS_CALLEE_SIP caller $BS_CALLER_SIP (ctrl_tcp $BS_CTRL)"
say "       rtp: emotiontap $TAP_RANGE, rtpengine $RTPE_BASE-$((RTPE_BASE + 39)), sipp media $UAC_MEDIA/$UAS_MEDIA,"
say "       baresip $BS_CALLER_RTP-$((BS_CALLER_RTP + 9))/$BS_CALLEE_RTP-$((BS_CALLEE_RTP + 9))"

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

now() { date +%s.%N; }
since() { python3 -c "import sys; print(round($(now) - float(sys.argv[1]), 1))" "$1"; }

# The relays must outlive every call.
relays_alive() {
    local name
    for name in emotiontap:$TAP_PID rtpengine:$RTPE_PID kamailio:$KAM_PID; do
        kill -0 "${name#*:}" 2>/dev/null ||
            fail "${name%:*} exited during the $1 call (killed from outside? see ${name%:*}.log)"
    done
}

# ---- call 1: sipp callee (agent), sipp caller (customer) through Kamailio, G.711 ---------------
call_sipp() {
    mkdir -p "$T/uas" "$T/uac"
    cp "$FIXTURES/crema-1011_IEO_NEU_XX.wav" "$T/uas/agent.wav"
    cp "$FIXTURES/crema-1009_DFA_ANG_XX.wav" "$T/uac/customer.wav"
    start uas/sipp "$T/uas" timeout 60 sipp -sf "$EXAMPLE/uas-talk.xml" -i 127.0.0.1 -p "$UAS_PORT" \
        -mi 127.0.0.1 -mp "$UAS_MEDIA" -m 1 -nostdin -timeout 50s -trace_err -trace_msg \
        -message_file "$T/uas/messages.log" -error_file "$T/uas/errors.log"
    local uas=$LAST_PID uac status call_start i
    sleep 0.3
    alive "$uas" uas/sipp
    say "sipp call: the caller stays in the call for $CALL_MS ms"
    call_start=$(now)
    start uac/sipp "$T/uac" timeout 60 sipp "127.0.0.1:$UAS_PORT" -sf "$EXAMPLE/uac-talk.xml" -rsa "127.0.0.1:$SIP_PORT" \
        -i 127.0.0.1 -p "$UAC_PORT" -mi 127.0.0.1 -mp "$UAC_MEDIA" -m 1 -d "$CALL_MS" -nostdin -timeout 50s \
        -trace_err -trace_msg -message_file "$T/uac/messages.log" -error_file "$T/uac/errors.log"
    uac=$LAST_PID
    # (wait, not a foreground run: a signal to this script is handled at once, not after the call)
    wait "$uac" && status=0 || status=$?
    HANGUP=$(now)
    say "sipp caller finished (exit $status) after $(since "$call_start") s"
    ((status == 0)) || fail "the sipp caller's call failed (exit $status, see uac/messages.log)"
    relays_alive sipp
    for i in $(seq 1 50); do
        kill -0 "$uas" 2>/dev/null || break
        sleep 0.2
    done
    wait "$uas" && status=0 || status=$?
    ((status == 0)) || fail "the sipp callee did not complete its call (exit $status, see uas/messages.log)"
    EXPECT_CODEC=pcmu EXPECT_PT=0
}

# ---- call 2: baresip callee (agent, auto-answer), baresip caller (customer), Opus only -----------
# baresip 1.0 (Debian 12's baresip-core): the account offers only Opus (audio_codecs=opus/48000/1:
# 1.0 names it so with opus_stereo no, and reads a bare "opus" as opus/8000/1; g711 is loaded too), aufile sends a 48 kHz WAV, aubridge with a device nobody sources is a null
# player, and the caller sends its INVITE to Kamailio as outbound proxy (the Request-URI names the
# callee: this Kamailio config routes on the Request-URI and has no registrar). aufile ends the call
# at the end of its file, so both files outlast the call; the script hangs up through ctrl_tcp.
# -s logs the SIP messages (the offer is checked), -t is a backstop.

# make_wav OUT SECONDS CLIP...: the G.711 mu-law fixture clips, decoded, upsampled to 48 kHz
# (linear interpolation), 0.25 s of silence after each, repeated to SECONDS; 16-bit mono PCM.
make_wav() {
    python3 - "$@" <<'EOF'
import array, struct, sys, wave
def ulaw(b):
    b = ~b & 0xFF
    t = (((b & 0x0F) << 3) + 0x84) << ((b & 0x70) >> 4)
    return (0x84 - t) if b & 0x80 else (t - 0x84)
TABLE = [ulaw(b) for b in range(256)]
def read_ulaw(path):
    data = open(path, "rb").read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        sys.exit(f"{path}: not a WAV file")
    i, fmt, payload = 12, None, None
    while i + 8 <= len(data):
        cid, size = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])[0]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHI", data[i + 8:i + 16])
        elif cid == b"data":
            payload = data[i + 8:i + 8 + size]
        i += 8 + size + (size & 1)
    if fmt is None or payload is None or fmt[0] != 7 or fmt[1] != 1 or fmt[2] != 8000:
        sys.exit(f"{path}: want 8 kHz mono mu-law, got format/channels/rate {fmt}")
    return [TABLE[b] for b in payload]
out, seconds, rate, factor = sys.argv[1], float(sys.argv[2]), 48000, 6
clips = [read_ulaw(p) for p in sys.argv[3:]]
pcm, k = array.array("h"), 0
while len(pcm) < seconds * rate:
    clip = clips[k % len(clips)] + [0]
    k += 1
    for a, b in zip(clip, clip[1:]):
        pcm.extend(a + (b - a) * j // factor for j in range(factor))
    pcm.extend([0] * (rate // 4))
if sys.byteorder != "little":
    pcm.byteswap()
with wave.open(out, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(pcm.tobytes())
EOF
}

# baresip_dir DIR SIP_PORT RTP_BASE WAV ACCOUNT [extra config line...]
baresip_dir() {
    local dir=$1 sip=$2 rtp=$3 wav=$4 account=$5 line
    shift 5
    mkdir -p "$dir"
    {
        printf '%s\n' "poll_method epoll" "sip_listen 127.0.0.1:$sip" "net_interface 127.0.0.1" \
            "rtp_ports $rtp-$((rtp + 9))" "audio_source aufile,$wav" "audio_player aubridge,nowhere" \
            "audio_alert aubridge,nowhere" "ausrc_srate 48000" "ausrc_channels 1" \
            "opus_stereo no" "opus_sprop_stereo no" "module_path /usr/lib/baresip/modules" \
            "module aufile.so" "module aubridge.so" "module opus.so" "module g711.so" \
            "module_app account.so" "module_app menu.so"
        for line in "$@"; do printf '%s\n' "$line"; done
    } >"$dir/config"
    printf '%s\n' "$account" >"$dir/accounts"
    : >"$dir/contacts"
}

# ctrl_tcp: one netstring-framed JSON command; succeeds when baresip answers it (ok) or reports
# the call closed.
baresip_command() {
    python3 - "$BS_CTRL" "$1" <<'EOF'
import json, socket, sys, time
message = json.dumps({"command": sys.argv[2], "token": "interop"}).encode()
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3) as s:
    s.sendall(b"%d:%s," % (len(message), message))
    buf, deadline = b"", time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
        while b":" in buf:
            n, _, rest = buf.partition(b":")
            if len(rest) < int(n) + 1:
                break
            frame, buf = json.loads(rest[:int(n)]), rest[int(n) + 1:]
            if frame.get("response") and frame.get("token") == "interop":
                sys.exit(0 if frame.get("ok") else f"baresip: {frame.get('data')}")
            if frame.get("event") and frame.get("type") == "CALL_CLOSED":
                sys.exit(0)
sys.exit("baresip: no answer on ctrl_tcp")
EOF
}

in_log() { tr '\r' '\n' <"$T/$1.log" 2>/dev/null | grep -aq -- "$2"; }

call_baresip() {
    local d=$T/baresip call_s=$(((CALL_MS + 999) / 1000)) callee caller call_start i
    mkdir -p "$d"
    make_wav "$d/agent.wav" $((call_s + 10)) "$FIXTURES/crema-1011_IEO_NEU_XX.wav" "$FIXTURES/crema-1022_IWW_NEU_XX.wav" ||
        fail "could not make the callee's WAV"
    make_wav "$d/customer.wav" $((call_s + 5)) "$FIXTURES/crema-1009_DFA_ANG_XX.wav" "$FIXTURES/crema-1015_ITH_SAD_XX.wav" ||
        fail "could not make the caller's WAV"
    baresip_dir "$d/callee" "$BS_CALLEE_SIP" "$BS_CALLEE_RTP" "$d/agent.wav" \
        "<sip:callee@127.0.0.1>;regint=0;answermode=auto;audio_codecs=opus/48000/1"
    baresip_dir "$d/caller" "$BS_CALLER_SIP" "$BS_CALLER_RTP" "$d/customer.wav" \
        "<sip:caller@127.0.0.1>;regint=0;audio_codecs=opus/48000/1;outbound=\"sip:127.0.0.1:$SIP_PORT;lr\"" \
        "module_app ctrl_tcp.so" "ctrl_tcp_listen 127.0.0.1:$BS_CTRL"
    start baresip/callee "$d" timeout 90 baresip -f "$d/callee" -s -t $((call_s + 60))
    callee=$LAST_PID
    for i in $(seq 1 50); do
        in_log baresip/callee "baresip is ready" && break
        alive "$callee" baresip/callee
        ((i < 50)) || fail "the baresip callee was not ready in 10 s"
        sleep 0.2
    done
    say "baresip call (Opus): the caller stays in the call for $CALL_MS ms"
    call_start=$(now)
    start baresip/caller "$d" timeout 90 baresip -f "$d/caller" -s -t $((call_s + 60)) \
        -e "/dial sip:callee@127.0.0.1:$BS_CALLEE_SIP"
    caller=$LAST_PID
    for i in $(seq 1 75); do
        in_log baresip/caller "Call established" && in_log baresip/callee "Call established" && break
        in_log baresip/caller "terminated" && fail "the baresip call was not established (see baresip/caller.log)"
        alive "$caller" baresip/caller
        alive "$callee" baresip/callee
        ((i < 75)) || fail "the baresip call was not established in 15 s (see baresip/caller.log, kamailio.log)"
        sleep 0.2
    done
    for i in $(seq 1 $((CALL_MS / 200))); do
        in_log baresip/caller "terminated" && fail "the baresip call ended before the hangup (see baresip/*.log)"
        alive "$caller" baresip/caller
        sleep 0.2
    done
    baresip_command hangup || fail "the baresip caller did not take the hangup command"
    HANGUP=$(now)
    for i in $(seq 1 50); do
        in_log baresip/caller "terminated" && in_log baresip/callee "terminated" && break
        ((i < 50)) || fail "the baresip call did not end at both UAs within 10 s of the hangup"
        sleep 0.2
    done
    say "baresip caller hung up after $(since "$call_start") s"
    relays_alive baresip
    stop_group "$caller"
    stop_group "$callee"
    # The offer the caller sent (its SIP trace): only Opus, plus telephone-event at most.
    EXPECT_CODEC=opus
    EXPECT_PT=$(tr '\r' '\n' <"$T/baresip/caller.log" | python3 -c '
import re, sys
text = sys.stdin.read()
invite = text[text.index("INVITE sip:"):] if "INVITE sip:" in text else ""
m = re.search(r"^m=audio \d+ \S+ ([\d ]+)$", invite, re.M)
if not m:
    sys.exit("no m=audio line in the INVITE in baresip/caller.log")
names = {pt: re.search(rf"^a=rtpmap:{pt} ([^/\s]+)", invite, re.M) for pt in m.group(1).split()}
names = {pt: (n.group(1).lower() if n else "static") for pt, n in names.items()}
opus = [pt for pt, n in names.items() if n == "opus"]
other = [f"{pt} {n}" for pt, n in names.items() if n not in ("opus", "telephone-event")]
if len(opus) != 1 or other:
    sys.exit(f"baresip offered {names}: want Opus only")
print(opus[0])
') || fail "the baresip caller's offer is not Opus only"
    say "baresip offered Opus only, on payload type $EXPECT_PT"
}

# ---- the events: both legs of the call started, were analysed, and ended at BYE ------------------
# check_events wait|final NAME: the legs of call ids not yet in $T/checked-calls (the calls before
# this one); final prints them and adds their call id to that file.
check_events() {
    python3 - "$EVENTS" "$1" "$RTPE_BASE" "$HANGUP" "$EXPECT_CODEC" "$EXPECT_PT" "$T/checked-calls" "$2" <<'EOF'
import collections, datetime, json, sys
path, final, relay = sys.argv[1], sys.argv[2] == "final", range(int(sys.argv[3]), int(sys.argv[3]) + 40)
hangup, want_codec, want_pt, checked_path, name = float(sys.argv[4]), sys.argv[5], int(sys.argv[6]), sys.argv[7], sys.argv[8]
try:
    with open(checked_path) as f:
        checked = {line.strip() for line in f if line.strip()}
except FileNotFoundError:
    checked = set()
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
    if "leg_id" not in e or e.get("call_id") in checked:
        continue
    leg = legs.setdefault(e["leg_id"], {"role": e.get("role"), "call_id": e.get("call_id"), "types": collections.Counter(), "end": None, "start": {}})
    leg["types"][e["type"]] += 1
    if e["type"] == "leg.start":
        leg["start"] = e
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
    t, start = leg["types"], leg["start"]
    if not t["leg.start"]:
        problems.append(f"{role}: no leg.start (no RTP reached the leg)")
    else:
        host, _, port = start.get("source", "").rpartition(":")
        if host != "127.0.0.1" or int(port or 0) not in relay:
            problems.append(f"{role}: RTP came from {start.get('source')}, not from rtpengine's ports")
        if start.get("codec") != want_codec or start.get("payload_type") != want_pt:
            problems.append(f"{role}: leg.start codec {start.get('codec')} payload type {start.get('payload_type')}"
                            f" (want {want_codec} on {want_pt})")
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
            problems.append(f"{role}: leg.end {ts - hangup:.1f} s after the caller's BYE (want within 5 s)")
        undecodable = leg["end"].get("rtp", {}).get("undecodable")
        if undecodable != 0:
            problems.append(f"{role}: {undecodable} undecodable packets")
calls = {leg["call_id"] for leg in legs.values()}
if len(calls) > 1:
    problems.append(f"legs of {len(calls)} calls: {sorted(calls)}")
if not final:
    sys.exit(1 if problems else 0)
with open(checked_path, "a") as f:
    f.writelines(f"{c}\n" for c in calls)
for leg_id, leg in legs.items():
    end, start = leg["end"] or {}, leg["start"]
    rtp, summary = end.get("rtp", {}), end.get("summary", {})
    print(f"  {name} {leg['role']:8} {leg_id} call {leg['call_id']} from {start.get('source')}:"
          f" codec {start.get('codec')} PT {start.get('payload_type')}; "
          + ", ".join(f"{k} {v}" for k, v in sorted(leg['types'].items()))
          + f"; leg.end reason {end.get('reason')} {leg.get('after_bye', float('nan')):+.2f} s from hangup,"
          + f" rtp received {rtp.get('received')} lost {rtp.get('lost')} undecodable {rtp.get('undecodable')}"
          + f" unknown_pt {rtp.get('unknown_payload_type')}, speech {summary.get('speech_s')} s")
for p in problems:
    print("  PROBLEM: " + p)
sys.exit(1 if problems else 0)
EOF
}

for call in $CALLS; do
    "call_$call"
    deadline=$((SECONDS + 10)) # leg.end follows the BYE within a second; a failed run waits this long
    until check_events wait "$call" || ((SECONDS >= deadline)); do sleep 0.3; done
    say "$call call: events in $EVENTS:"
    check_events final "$call" || fail "$call call: EmotionTap's events do not show both legs analysed ($EXPECT_CODEC) and ended at BYE"
done
grep -q "ERROR" "$T/helper.log" && fail "the fork helper logged errors: $(grep ERROR "$T/helper.log" | head -3)"
say "PASS ($CALLS) in $(since "$STARTED") s"
