#!/usr/bin/env python3
"""Fork a call's media from rtpengine to EmotionTap (Python 3 standard library only).

rtpengine already relays the call's RTP. Its ng control protocol can add a *subscription*: a new
participant that receives a copy of what one existing participant sends. The exchange is an SDP
offer/answer made with two ng commands:

  fork:  for the caller (SIP From-tag) and, with --to-tag, the callee (SIP To-tag):
    1. "subscribe request" {call-id, from-tag: <participant>, to-tag: <our subscription tag>}
         -> reply {"result": "ok", "sdp": <sendonly offer mirroring that participant's media>,
                   "to-tag": ...}
    2. POST http://emotiontap/v1/legs {"call_id", "role", "codec"[, "payload_type" when dynamic, e.g.
         Opus]} -> {"leg_id", "rtp": {host, port}}
    3. "subscribe answer" {call-id, to-tag, sdp: <recvonly answer whose c=/m= point at host:port>}
         -> rtpengine starts sending that participant's RTP to the leg
  stop:  DELETE /v1/legs/{leg_id} for each leg of the call (EmotionTap emits leg.end), then
         "unsubscribe" {call-id, to-tag} (ignored when rtpengine already deleted the call at BYE).

A small JSON state file (default /run/emotiontap/rtpengine-forks.json, under an flock) maps each
SIP Call-ID to its legs and subscription tags, so the `stop` run, a separate process started at
BYE, knows what to remove. `fork` is idempotent per Call-ID (a re-INVITE's 200 OK or a
retransmission does not fork twice). Legs missed by `stop` (proxy restarted, BYE lost) end by
themselves in EmotionTap after 30 s without RTP; `gc` removes their state entries.

The EmotionTap call_id is the SIP Call-ID, so anything downstream (a FreeSWITCH or Asterisk
behind this proxy) can look the call up with its own copy of the Call-ID.

Usage (kamailio.cfg runs it through exec_cmd, in the background):
  emotiontap_rtpengine_fork.py fork --call-id CID --from-tag FT [--to-tag TT] [--role customer] [--callee-role agent]
  emotiontap_rtpengine_fork.py stop --call-id CID
  emotiontap_rtpengine_fork.py status [--call-id CID]
  emotiontap_rtpengine_fork.py gc [--max-age 86400]
Settings: --rtpengine 127.0.0.1:2223, --emotiontap-url http://127.0.0.1:8088, --token (or
EMOTIONTAP_TOKEN), --sdp-host (address put in the answer SDP instead of the leg's rtp.host).
Exit status: 0 done, 1 failed (the call itself is never affected), 2 bad arguments.
"""

import argparse
import fcntl
import json
import logging
import logging.handlers
import os
import secrets
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

LOG = logging.getLogger("emotiontap-rtpengine")


# ---- bencode (BitTorrent encoding, what the ng protocol speaks) -----------------------------------

def bencode(value):
    """Encodes dict (keys sorted, as bencode requires), list, int, str (UTF-8) and bytes."""
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans: use 'yes'/'no' strings or flags")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, (bytes, bytearray)):
        return b"%d:%s" % (len(value), bytes(value))
    if isinstance(value, (list, tuple)):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode("utf-8") if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(f"cannot bencode {type(value).__name__}")


def bdecode(data):
    """Decodes one bencoded value; byte strings come back as str (UTF-8, invalid bytes replaced)."""
    value, end = _bdecode_at(data, 0)
    if end != len(data):
        raise ValueError(f"trailing bytes after offset {end}")
    return value


def _bdecode_at(data, i):
    if i >= len(data):
        raise ValueError("truncated bencode")
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if c == b"l":
        i, out = i + 1, []
        while data[i:i + 1] != b"e":
            v, i = _bdecode_at(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i, out = i + 1, {}
        while data[i:i + 1] != b"e":
            k, i = _bdecode_at(data, i)
            v, i = _bdecode_at(data, i)
            out[k] = v
        return out, i + 1
    if c.isdigit():
        colon = data.index(b":", i)
        n = int(data[i:colon])
        start = colon + 1
        if start + n > len(data):
            raise ValueError("truncated string")
        return data[start:start + n].decode("utf-8", "replace"), start + n
    raise ValueError(f"bad bencode byte {c!r} at {i}")


# ---- rtpengine ng control protocol over UDP -------------------------------------------------------

class NgError(Exception):
    pass


class NgClient:
    """Datagram = <cookie> <space> <bencoded dict>; the reply carries the same cookie."""

    def __init__(self, address, timeout=2.0, retries=3):
        host, _, port = address.rpartition(":")
        self.address = (host.strip("[]"), int(port))
        self.timeout, self.retries = timeout, retries

    def command(self, name, **fields):
        message = dict(fields, command=name)
        cookie = secrets.token_hex(8).encode()
        datagram = cookie + b" " + bencode(message)
        family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(self.timeout)
            for attempt in range(1, self.retries + 1):
                sock.sendto(datagram, self.address)  # same cookie on a resend: rtpengine answers it from its cache
                deadline = time.monotonic() + self.timeout
                while time.monotonic() < deadline:
                    try:
                        reply = sock.recv(65535)
                    except socket.timeout:
                        break
                    got_cookie, _, body = reply.partition(b" ")
                    if got_cookie != cookie:
                        continue  # a late reply to an earlier attempt of someone else's: ignore
                    answer = bdecode(body)
                    if answer.get("result") == "error":
                        raise NgError(f"{name}: {answer.get('error-reason', 'error')}")
                    if answer.get("warning"):
                        LOG.warning("rtpengine %s: %s", name, answer["warning"])
                    return answer
                LOG.debug("no reply to %s (attempt %d)", name, attempt)
        raise NgError(f"{name}: no reply from rtpengine at {self.address[0]}:{self.address[1]}")


# ---- SDP: read the subscription's offer, write our answer -----------------------------------------

# Payload formats EmotionTap decodes (by rtpmap encoding name), plus what it ignores without harm.
DECODABLE = {"PCMU": "pcmu", "PCMA": "pcma", "G722": "g722", "OPUS": "opus"}
HARMLESS = {"TELEPHONE-EVENT", "CN"}
STATIC_NAMES = {"0": "PCMU", "8": "PCMA", "9": "G722", "13": "CN"}


def parse_offer(sdp):
    """Returns the media sections: [{"media", "port", "proto", "fmts", "rtpmap", "fmtp", "rtcp_mux"}]."""
    sections = []
    for raw in sdp.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            sections.append({"media": parts[0], "port": parts[1], "proto": parts[2], "fmts": parts[3:],
                             "rtpmap": {}, "fmtp": {}, "rtcp_mux": False})
        elif sections and line.startswith("a=rtpmap:"):
            pt, _, enc = line[9:].partition(" ")
            sections[-1]["rtpmap"][pt] = enc
        elif sections and line.startswith("a=fmtp:"):
            pt, _, params = line[7:].partition(" ")
            sections[-1]["fmtp"][pt] = params
        elif sections and line == "a=rtcp-mux":
            sections[-1]["rtcp_mux"] = True
    return sections


def encoding_name(section, pt):
    enc = section["rtpmap"].get(pt) or STATIC_NAMES.get(pt, "")
    return enc.split("/")[0].upper()


def build_answer(sections, host, port):
    """A recvonly answer: the first audio section goes to host:port with the formats EmotionTap
    decodes (plus telephone-event and CN); every other section is rejected (port 0).
    Returns (sdp, codec for the leg, its payload type as offered, whether some offered formats
    were left out)."""
    family = "IP6" if ":" in host else "IP4"
    session = str(int(time.time()))
    lines = ["v=0", f"o=emotiontap {session} {session} IN {family} {host}", "s=EmotionTap",
             f"c=IN {family} {host}", "t=0 0"]
    codec, payload_type, dropped, used_audio = None, None, False, False
    for s in sections:
        if s["media"] != "audio" or used_audio:
            lines.append(f"m={s['media']} 0 {s['proto']} {s['fmts'][0] if s['fmts'] else '0'}")
            continue
        keep = []
        for pt in s["fmts"]:
            name = encoding_name(s, pt)
            if name in DECODABLE:
                keep.append(pt)
                if codec is None:  # the first one offered is what will flow
                    codec, payload_type = DECODABLE[name], pt
            elif name in HARMLESS:
                keep.append(pt)
        if not any(encoding_name(s, pt) in DECODABLE for pt in keep):
            return None, None, None, True
        dropped = dropped or len(keep) != len(s["fmts"])
        used_audio = True
        lines.append(f"m=audio {port} RTP/AVP {' '.join(keep)}")
        for pt in keep:
            if pt in s["rtpmap"]:
                lines.append(f"a=rtpmap:{pt} {s['rtpmap'][pt]}")
            if pt in s["fmtp"]:
                lines.append(f"a=fmtp:{pt} {s['fmtp'][pt]}")
        if s["rtcp_mux"]:
            lines.append("a=rtcp-mux")  # EmotionTap ignores muxed RTCP (payload types 72-76)
        lines.append("a=recvonly")
    if not used_audio:
        return None, None, None, True
    return "\r\n".join(lines) + "\r\n", codec, payload_type, dropped


# ---- EmotionTap control API ----------------------------------------------------------------------

class EmotionTap:
    def __init__(self, base_url, token=None, timeout=5.0):
        self.base, self.token, self.timeout = base_url.rstrip("/"), token, timeout

    def _request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read()[:300].decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as e:
            raise RuntimeError(f"EmotionTap {method} {path}: {e}") from e

    def create_leg(self, call_id, role, codec, payload_type=None):
        body = {"call_id": call_id, "role": role, "codec": codec}
        if payload_type is not None and 96 <= int(payload_type) <= 127:
            # Opus (or L16) on a dynamic type: bind it, so that another dynamic type on the stream
            # (telephone-event on other than 101, a second codec) is not decoded as this codec.
            body["payload_type"] = int(payload_type)
        status, body = self._request("POST", "/v1/legs", body)
        if status != 201:
            raise RuntimeError(f"EmotionTap POST /v1/legs: {status} {body}")
        return body

    def delete_leg(self, leg_id):
        status, body = self._request("DELETE", f"/v1/legs/{urllib.parse.quote(leg_id, safe='')}")
        if status not in (200, 404):  # 404: it already ended (timeout, shutdown)
            raise RuntimeError(f"EmotionTap DELETE /v1/legs/{leg_id}: {status} {body}")


# ---- state file ----------------------------------------------------------------------------------

class State:
    """{call_id: {"created": epoch, "legs": [{"leg_id", "role", "participant", "sub_tag"}]}} under an
    exclusive flock on <path>.lock; written atomically (temp file + rename)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        self.lock = open(self.path + ".lock", "a")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            with open(self.path) as f:
                self.data = json.load(f)
        except FileNotFoundError:
            self.data = {}
        except ValueError:
            LOG.error("state file %s is not JSON; starting afresh", self.path)
            self.data = {}
        return self

    def save(self):
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def __exit__(self, *exc):
        fcntl.flock(self.lock, fcntl.LOCK_UN)
        self.lock.close()


# ---- commands ------------------------------------------------------------------------------------

def quiet_unsubscribe(ng, call_id, sub_tag):
    """Undoes a subscription while handling another error: its own failure is only logged."""
    try:
        ng.command("unsubscribe", **{"call-id": call_id, "to-tag": sub_tag})
    except (NgError, OSError) as e:
        LOG.debug("call %s: unsubscribe %s: %s", call_id, sub_tag, e)


def subscribe_one(ng, tap, args, participant, role):
    """Subscribes EmotionTap to what `participant` (a SIP tag) sends. Returns the state entry."""
    sub_tag = f"emotiontap-{role}-{secrets.token_hex(4)}"
    request = {"call-id": args.call_id, "from-tag": participant, "to-tag": sub_tag,
               # plain RTP towards EmotionTap, even when the call itself uses ICE/DTLS/SRTP:
               "transport-protocol": "RTP/AVP", "ICE": "remove", "DTLS": "off"}
    if args.transcode_pcmu:
        # Offer only PCMU; rtpengine transcodes when the participant sends something else.
        request["codec"] = {"mask": ["all"], "transcode": ["PCMU"]}
    offer = ng.command("subscribe request", **request)
    sub_tag = offer.get("to-tag", sub_tag)
    sections = parse_offer(offer.get("sdp", ""))
    LOG.debug("call %s: %s offer: %s", args.call_id, role, "; ".join(
        line for line in offer.get("sdp", "").splitlines() if line.startswith(("m=", "a=rtpmap:", "a=fmtp:"))))
    # Leg first, so the answer SDP can carry its port; the host is rtp.host unless overridden.
    answer, codec, payload_type, dropped = build_answer(sections, "0.0.0.0", 9)  # dry run: is any codec usable?
    if answer is None:
        quiet_unsubscribe(ng, args.call_id, sub_tag)
        raise RuntimeError(f"{role}: rtpengine offered no PCMU/PCMA/Opus for tag {participant}; "
                           "retry with --transcode-pcmu (needs rtpengine transcoding)")
    try:
        leg = tap.create_leg(args.call_id, role, codec, payload_type)
    except Exception:
        quiet_unsubscribe(ng, args.call_id, sub_tag)
        raise
    host = args.sdp_host or leg["rtp"]["host"]
    answer, codec, payload_type, dropped = build_answer(sections, host, leg["rtp"]["port"])
    fields = {"call-id": args.call_id, "to-tag": sub_tag, "sdp": answer}
    if dropped:
        # By default rtpengine rejects an answer that does not accept every offered codec.
        fields["flags"] = ["allow transcoding"]
    try:
        ng.command("subscribe answer", **fields)
    except Exception:
        try:
            tap.delete_leg(leg["leg_id"])
        except RuntimeError as e:
            LOG.warning("call %s: %s", args.call_id, e)
        quiet_unsubscribe(ng, args.call_id, sub_tag)
        raise
    LOG.info("call %s: %s (tag %s, %s PT %s) -> %s:%s leg %s", args.call_id, role, participant, codec,
             payload_type, host, leg["rtp"]["port"], leg["leg_id"])
    return {"leg_id": leg["leg_id"], "role": role, "participant": participant, "sub_tag": sub_tag}


def cmd_fork(args, ng, tap):
    wanted = [(args.from_tag, args.role)]
    if args.to_tag:
        wanted.append((args.to_tag, args.callee_role))
    # The lock is held for the whole fork so that two runs for the same call cannot both fork;
    # it is per host, and a fork takes a few milliseconds.
    with State(args.state) as st:
        entry = st.data.setdefault(args.call_id, {"created": int(time.time()), "legs": []})
        done = {leg["participant"] for leg in entry["legs"]}
        failures = 0
        for participant, role in wanted:
            if participant in done:
                LOG.info("call %s: %s already forked", args.call_id, role)
                continue
            try:
                entry["legs"].append(subscribe_one(ng, tap, args, participant, role))
            except (NgError, RuntimeError, KeyError, ValueError) as e:
                failures += 1
                LOG.error("call %s: %s fork failed: %s", args.call_id, role, e)
        if not entry["legs"]:
            del st.data[args.call_id]
        st.save()
    return 1 if failures else 0


def stop_entry(ng, tap, call_id, entry):
    failures = 0
    for leg in entry.get("legs", []):
        try:
            tap.delete_leg(leg["leg_id"])
        except RuntimeError as e:
            failures += 1
            LOG.error("call %s: %s", call_id, e)
        try:
            ng.command("unsubscribe", **{"call-id": call_id, "to-tag": leg["sub_tag"]})
        except NgError as e:
            LOG.debug("call %s: unsubscribe %s: %s (normal once rtpengine deleted the call)", call_id, leg["sub_tag"], e)
    LOG.info("call %s: stopped %d leg(s)", call_id, len(entry.get("legs", [])))
    return failures


def cmd_stop(args, ng, tap):
    with State(args.state) as st:
        entry = st.data.pop(args.call_id, None)
        st.save()
    if entry is None:
        LOG.info("call %s: nothing forked", args.call_id)
        return 0
    return 1 if stop_entry(ng, tap, args.call_id, entry) else 0


def cmd_status(args, ng, tap):
    with State(args.state) as st:
        data = {args.call_id: st.data.get(args.call_id)} if args.call_id else st.data
    json.dump(data, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


def cmd_gc(args, ng, tap):
    cutoff = time.time() - args.max_age
    with State(args.state) as st:
        old = {cid: e for cid, e in st.data.items() if e.get("created", 0) < cutoff}
        for cid in old:
            del st.data[cid]
        st.save()
    for cid, entry in old.items():
        stop_entry(ng, tap, cid, entry)
    LOG.info("gc: removed %d call(s) older than %d s", len(old), args.max_age)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description="Fork rtpengine media to EmotionTap legs (subscribe request/answer).")
    p.add_argument("--rtpengine", default=os.environ.get("RTPENGINE_NG", "127.0.0.1:2223"),
                   help="rtpengine listen-ng address HOST:PORT")
    p.add_argument("--emotiontap-url", default=os.environ.get("EMOTIONTAP_URL", "http://127.0.0.1:8088"))
    p.add_argument("--token", default=os.environ.get("EMOTIONTAP_TOKEN"), help="EmotionTap bearer token")
    p.add_argument("--sdp-host", help="address rtpengine sends to, instead of the leg's rtp.host")
    p.add_argument("--state", default=os.environ.get("EMOTIONTAP_FORK_STATE", "/run/emotiontap/rtpengine-forks.json"))
    p.add_argument("--log", choices=("stderr", "syslog"), default="stderr")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fork", help="subscribe EmotionTap to the caller (and callee) of a call")
    f.add_argument("--call-id", required=True, help="SIP Call-ID (rtpengine's call-id; EmotionTap's call_id)")
    f.add_argument("--from-tag", required=True, help="SIP From-tag: the caller, whose voice becomes --role")
    f.add_argument("--to-tag", help="SIP To-tag: the callee, whose voice becomes --callee-role")
    f.add_argument("--role", default="customer", help="role of the caller's leg")
    f.add_argument("--callee-role", default="agent", help="role of the callee's leg (with --to-tag)")
    f.add_argument("--transcode-pcmu", action="store_true",
                   help="have rtpengine transcode to PCMU when the call uses another codec")
    s = sub.add_parser("stop", help="end a call's legs")
    s.add_argument("--call-id", required=True)
    st = sub.add_parser("status", help="print the state file (or one call)")
    st.add_argument("--call-id")
    g = sub.add_parser("gc", help="stop and forget calls older than --max-age seconds")
    g.add_argument("--max-age", type=int, default=86400)
    args = p.parse_args(argv)

    handler = (logging.handlers.SysLogHandler(address="/dev/log") if args.log == "syslog"
               else logging.StreamHandler())
    handler.setFormatter(logging.Formatter("emotiontap-fork: %(levelname)s %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.DEBUG if args.verbose else logging.INFO)

    ng = NgClient(args.rtpengine)
    tap = EmotionTap(args.emotiontap_url, args.token)
    commands = {"fork": cmd_fork, "stop": cmd_stop, "status": cmd_status, "gc": cmd_gc}
    try:
        return commands[args.cmd](args, ng, tap)
    except (OSError, RuntimeError, NgError) as e:
        LOG.error("%s failed: %s", args.cmd, e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
