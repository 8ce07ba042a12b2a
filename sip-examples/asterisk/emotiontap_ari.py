#!/usr/bin/env python3
"""EmotionTap fork for Asterisk, as an ARI (Stasis) application.

What it does, per call:

  dialplan: Stasis(emotiontap)            the caller's channel enters this app
      |
      |  for each direction (default: in -> "customer", out -> "agent"):
      |    1. POST /channels/{id}/snoop?spy=in|out&app=emotiontap   a Snoop channel that hears
      |       one direction of the caller's channel (spy=in: what the caller says; spy=out: what
      |       the caller hears, i.e. the agent, prompts and music on hold)
      |    2. POST http://emotiontap/v1/legs {"call_id", "role", "codec"}  -> rtp.host:rtp.port
      |    3. POST /channels/externalMedia?external_host=<rtp.host>:<rtp.port>&format=ulaw
      |       a UnicastRTP channel that sends the bridge's audio as plain RTP (PT 0) to the leg
      |    4. POST /bridges?type=mixing + addChannel(snoop, externalMedia)
      |
      |  then POST /channels/{id}/continue      the caller goes on in the dialplan at the next
      |                                         priority; the forks live on beside the call
      v
  hangup: the Snoop channels die with the channel they spy on (StasisEnd), and the app also
  subscribes to the caller's channel so ChannelDestroyed reaches it after it left Stasis.
  Either one tears the call's forks down: hang up the ExternalMedia and Snoop channels, destroy
  the bridges, DELETE /v1/legs/{leg_id} (EmotionTap emits leg.end with the call summary).

The call never depends on this app: when it is not connected, Stasis() returns at once with
STASISSTATUS=FAILED and the dialplan continues; when a fork step fails, the error is logged, what
was created is removed, and the caller is still continued. Legs that are somehow leaked end by
themselves in EmotionTap after 30 s without RTP.

The EmotionTap call_id is the caller channel's uniqueid (the ARI channel id, ${UNIQUEID} in the
dialplan), or with --call-id linkedid the call's ${CHANNEL(linkedid)}; the dialplan looks the
call up with the same value: ${CURL(<emotiontap>/v1/calls/${UNIQUEID}?format=text&field=escalate)}.

Requirements: Python 3.8+, `requests` and `websocket-client` 1.x (pip install requests websocket-client;
Debian 12: python3-requests python3-websocket, 1.2.3, works),
Asterisk 16.6+ (ExternalMedia), with res_ari, res_stasis_snoop and chan_rtp loaded (default).

Example (Asterisk's HTTP server on 8088, so EmotionTap's control API moved to 8090):
  ARI_PASSWORD=secret ./emotiontap_ari.py --ari-url http://127.0.0.1:8088/ari --ari-user emotiontap \
      --emotiontap-url http://127.0.0.1:8090
"""

import argparse
import base64
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import requests
import websocket  # the websocket-client package

LOG = logging.getLogger("emotiontap-ari")

# Prefix of every channel and bridge id this app creates, so their own StasisStart events are
# recognised and never treated as a new call to fork.
OWN_PREFIX = "emotiontap-"

# ExternalMedia format -> EmotionTap codec name (the RTP payload type follows: ulaw 0, alaw 8).
FORMAT_TO_CODEC = {"ulaw": "pcmu", "alaw": "pcma"}

HTTP_TIMEOUT = (3.05, 10)  # (connect, read) seconds for every REST call


class ApiError(Exception):
    """A REST call that failed: carries the HTTP status (None for a transport error)."""

    def __init__(self, what, status=None, body=""):
        super().__init__(f"{what}: {status if status is not None else 'no response'} {body}".strip())
        self.status = status


class Ari:
    """The few ARI REST calls the app needs, over one keep-alive session."""

    def __init__(self, base_url, user, password):
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = (user, password)

    def _call(self, method, path, ok_missing=False, **kwargs):
        url = self.base + path
        try:
            r = self.session.request(method, url, timeout=HTTP_TIMEOUT, **kwargs)
        except requests.RequestException as e:
            raise ApiError(f"ARI {method} {path}", None, str(e)) from e
        if ok_missing and r.status_code == 404:
            return None  # already gone: fine while cleaning up
        if r.status_code >= 300:
            raise ApiError(f"ARI {method} {path}", r.status_code, r.text[:300])
        return r.json() if r.content and "json" in r.headers.get("Content-Type", "") else None

    def subscribe_channel(self, app, channel_id):
        # Keeps the channel's events (ChannelDestroyed) coming after it leaves Stasis.
        return self._call("POST", f"/applications/{app}/subscription", params={"eventSource": f"channel:{channel_id}"})

    def unsubscribe_channel(self, app, channel_id):
        return self._call("DELETE", f"/applications/{app}/subscription",
                          params={"eventSource": f"channel:{channel_id}"}, ok_missing=True)

    def channel_var(self, channel_id, name):
        body = self._call("GET", f"/channels/{channel_id}/variable", params={"variable": name})
        return (body or {}).get("value", "")

    def snoop(self, channel_id, spy, app, snoop_id):
        return self._call("POST", f"/channels/{channel_id}/snoop",
                          params={"spy": spy, "whisper": "none", "app": app,
                                  "appArgs": "emotiontap-snoop", "snoopId": snoop_id})

    def external_media(self, app, channel_id, external_host, fmt):
        return self._call("POST", "/channels/externalMedia",
                          params={"app": app, "channelId": channel_id, "external_host": external_host,
                                  "format": fmt, "encapsulation": "rtp", "transport": "udp",
                                  "connection_type": "client", "direction": "both"})

    def create_bridge(self, bridge_id, name):
        return self._call("POST", "/bridges", params={"type": "mixing", "bridgeId": bridge_id, "name": name})

    def add_to_bridge(self, bridge_id, channel_ids):
        return self._call("POST", f"/bridges/{bridge_id}/addChannel", params={"channel": ",".join(channel_ids)})

    def hangup(self, channel_id):
        return self._call("DELETE", f"/channels/{channel_id}", ok_missing=True)

    def destroy_bridge(self, bridge_id):
        return self._call("DELETE", f"/bridges/{bridge_id}", ok_missing=True)

    def continue_in_dialplan(self, channel_id):
        return self._call("POST", f"/channels/{channel_id}/continue")

    def get_channel(self, channel_id):
        return self._call("GET", f"/channels/{channel_id}", ok_missing=True)


class EmotionTap:
    """POST /v1/legs and DELETE /v1/legs/{id} on EmotionTap's control API."""

    def __init__(self, base_url, token=None):
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def create_leg(self, call_id, role, codec):
        try:
            r = self.session.post(f"{self.base}/v1/legs", json={"call_id": call_id, "role": role, "codec": codec},
                                  timeout=HTTP_TIMEOUT)
        except requests.RequestException as e:
            raise ApiError("EmotionTap POST /v1/legs", None, str(e)) from e
        if r.status_code != 201:
            # 400 bad body, 401 token, 409 port in use, 503 no free port or leg slot
            raise ApiError("EmotionTap POST /v1/legs", r.status_code, r.text[:300])
        return r.json()

    def delete_leg(self, leg_id):
        try:
            r = self.session.delete(f"{self.base}/v1/legs/{leg_id}", timeout=HTTP_TIMEOUT)
        except requests.RequestException as e:
            raise ApiError(f"EmotionTap DELETE /v1/legs/{leg_id}", None, str(e)) from e
        if r.status_code not in (200, 404):  # 404: already ended (timeout or shutdown)
            raise ApiError(f"EmotionTap DELETE /v1/legs/{leg_id}", r.status_code, r.text[:300])


class Fork:
    """One direction of one call: snoop -> bridge -> ExternalMedia -> EmotionTap leg."""

    def __init__(self, spy, role):
        self.spy, self.role = spy, role
        self.snoop_id = self.ext_id = self.bridge_id = self.leg_id = None


class Call:
    def __init__(self, channel_id, call_id):
        self.channel_id = channel_id
        self.call_id = call_id
        self.forks = []
        self.continued = False  # set before /continue, so the StasisEnd it causes is not a hangup


class App:
    def __init__(self, args):
        self.args = args
        self.ari = Ari(args.ari_url, args.ari_user, args.ari_password)
        self.tap = EmotionTap(args.emotiontap_url, args.emotiontap_token)
        self.directions = args.direction  # list of (spy, role)
        self.lock = threading.Lock()
        self.calls = {}    # caller channel id -> Call
        self.owned = {}    # our snoop / ExternalMedia channel id -> caller channel id
        self.pool = ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="fork")
        self.stopping = threading.Event()
        self.ws = None

    def submit(self, fn, *args):
        try:
            self.pool.submit(fn, *args)
        except RuntimeError:
            pass  # shutting down: shutdown() removes every fork itself

    # ---- websocket event loop -----------------------------------------------------------------

    def events_url(self):
        parts = urlsplit(self.args.ari_url.rstrip("/"))
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path + "/events", f"app={self.args.app}&subscribeAll=false", ""))

    def run(self):
        backoff = 1
        auth = base64.b64encode(f"{self.args.ari_user}:{self.args.ari_password}".encode()).decode()
        while not self.stopping.is_set():
            LOG.info("connecting to %s", self.events_url())
            self.ws = websocket.WebSocketApp(
                self.events_url(), header=[f"Authorization: Basic {auth}"],
                on_open=self.on_open, on_message=self.on_message,
                on_error=lambda ws, e: LOG.warning("websocket error: %s", e),
                on_close=lambda ws, code, msg: LOG.warning("websocket closed (%s %s)", code, msg))
            connected_at = time.monotonic()
            # Blocks until the socket closes; pings keep NATs and proxies from dropping it.
            # suppress_origin: websocket-client otherwise sends "Origin: http://<ari host:port>",
            # which Asterisk checks against ari.conf allowed_origins (empty here: no browser
            # clients) and logs as not allowed on every connect. A non-browser client needs none.
            self.ws.run_forever(ping_interval=30, ping_timeout=10, suppress_origin=True)
            if self.stopping.is_set():
                break
            if time.monotonic() - connected_at > 60:
                backoff = 1  # it had been up for a while: reconnect promptly
            LOG.info("reconnecting in %d s", backoff)
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, 30)

    def on_open(self, ws):
        LOG.info("ARI app '%s' registered", self.args.app)
        # Events may have been missed while disconnected: drop forks whose call is gone.
        self.submit(self.reconcile)

    def on_message(self, ws, message):
        try:
            event = json.loads(message)
        except ValueError:
            LOG.warning("not JSON: %.200s", message)
            return
        kind = event.get("type")
        channel = event.get("channel") or {}
        cid = channel.get("id", "")
        if kind == "StasisStart":
            if cid.startswith(OWN_PREFIX) or cid in self.owned:
                return  # our own snoop / ExternalMedia channel entering the app
            # Forking makes several HTTP calls: do it off the websocket thread.
            self.submit(self.start_call, channel)
        elif kind == "StasisEnd":
            owner = self.owned.get(cid)
            if owner:  # a snoop dies when the spied channel hangs up: the call is over
                self.submit(self.end_call, owner, f"{channel.get('name', cid)} left Stasis")
            else:
                call = self.calls.get(cid)
                if call and not call.continued:
                    self.submit(self.end_call, cid, "caller left Stasis")
        elif kind == "ChannelDestroyed":
            if cid in self.calls:
                self.submit(self.end_call, cid, f"hangup cause {event.get('cause_txt', event.get('cause'))}")

    # ---- per call -----------------------------------------------------------------------------

    def call_id_for(self, channel):
        if self.args.call_id == "linkedid":
            try:
                linked = self.ari.channel_var(channel["id"], "CHANNEL(linkedid)")
                if linked:
                    return linked
            except ApiError as e:
                LOG.warning("linkedid of %s unavailable (%s); using the uniqueid", channel["id"], e)
        return channel["id"]  # the ARI channel id is the channel's uniqueid

    def start_call(self, channel):
        cid, name = channel["id"], channel.get("name", channel["id"])
        call = Call(cid, self.call_id_for(channel))
        with self.lock:
            if cid in self.calls:
                return
            self.calls[cid] = call
        LOG.info("%s: forking call_id=%s", name, call.call_id)
        try:
            self.ari.subscribe_channel(self.args.app, cid)
        except ApiError as e:
            LOG.warning("%s: no channel subscription (%s); cleanup relies on the snoops' StasisEnd", name, e)
        try:
            for spy, role in self.directions:
                fork = Fork(spy, role)
                with self.lock:
                    call.forks.append(fork)
                try:
                    self.start_fork(call, fork, name)
                except ApiError as e:
                    LOG.error("%s: %s fork (spy=%s) failed: %s", name, role, spy, e)
                    self.stop_fork(fork, name)
                    with self.lock:
                        call.forks.remove(fork)
        finally:
            # Whatever happened to the forks, the caller must go on.
            call.continued = True
            try:
                self.ari.continue_in_dialplan(cid)
            except ApiError as e:
                if e.status == 404:  # hung up meanwhile
                    self.end_call(cid, "caller gone before continue")
                else:
                    LOG.error("%s: continue failed (%s); hanging up so the caller is not stuck", name, e)
                    self.ari.hangup(cid)
        with self.lock:
            ended_meanwhile = self.calls.get(cid) is not call
            forks = list(call.forks)
        if ended_meanwhile:
            # The caller hung up while the forks were being made: end_call already ran and could
            # not see the last ones, so remove them here (every step tolerates 'already gone').
            for fork in forks:
                self.stop_fork(fork, name)
        elif not forks:
            LOG.warning("%s: no direction could be forked", name)

    def start_fork(self, call, fork, name):
        tag = uuid.uuid4().hex[:12]
        codec = FORMAT_TO_CODEC[self.args.format]
        # 1. EmotionTap leg first: if it refuses (503: no free port), nothing is left behind in Asterisk.
        leg = self.tap.create_leg(call.call_id, fork.role, codec)
        fork.leg_id = leg["leg_id"]
        host = self.args.rtp_host or leg["rtp"]["host"]
        target = f"{host}:{leg['rtp']['port']}"
        # 2. Snoop channel on one direction of the caller's channel.
        fork.snoop_id = f"{OWN_PREFIX}snoop-{fork.spy}-{tag}"
        with self.lock:
            self.owned[fork.snoop_id] = call.channel_id
        self.ari.snoop(call.channel_id, fork.spy, self.args.app, fork.snoop_id)
        # 3. ExternalMedia channel: Asterisk sends RTP (ulaw PT 0 / alaw PT 8) to the leg.
        fork.ext_id = f"{OWN_PREFIX}ext-{fork.spy}-{tag}"
        with self.lock:
            self.owned[fork.ext_id] = call.channel_id
        ext = self.ari.external_media(self.args.app, fork.ext_id, target, self.args.format)
        src = (ext or {}).get("channelvars") or {}
        if not src.get("UNICASTRTP_LOCAL_PORT"):
            try:
                src = {v: self.ari.channel_var(fork.ext_id, v)
                       for v in ("UNICASTRTP_LOCAL_ADDRESS", "UNICASTRTP_LOCAL_PORT")}
            except ApiError:
                src = {}
        # 4. Mixing bridge joining them: the snoop's audio flows out through ExternalMedia.
        fork.bridge_id = f"{OWN_PREFIX}bridge-{fork.spy}-{tag}"
        self.ari.create_bridge(fork.bridge_id, f"emotiontap {call.call_id} {fork.role}")
        self.ari.add_to_bridge(fork.bridge_id, [fork.snoop_id, fork.ext_id])
        # The source address is what EmotionTap reports in leg.start ("source"): handy for firewalls.
        LOG.info("%s: %s (spy=%s) -> %s leg %s, RTP from %s:%s", name, fork.role, fork.spy, target, fork.leg_id,
                 src.get("UNICASTRTP_LOCAL_ADDRESS", "?"), src.get("UNICASTRTP_LOCAL_PORT", "?"))

    def stop_fork(self, fork, name):
        """Removes what a fork created; every step tolerates 'already gone'."""
        for what, fn, ident in (("ExternalMedia", self.ari.hangup, fork.ext_id),
                                ("snoop", self.ari.hangup, fork.snoop_id),
                                ("bridge", self.ari.destroy_bridge, fork.bridge_id),
                                ("leg", self.tap.delete_leg, fork.leg_id)):
            if not ident:
                continue
            try:
                fn(ident)
            except ApiError as e:
                LOG.warning("%s: removing %s %s: %s", name, what, ident, e)
        with self.lock:
            self.owned.pop(fork.snoop_id, None)
            self.owned.pop(fork.ext_id, None)

    def end_call(self, channel_id, reason):
        with self.lock:
            call = self.calls.pop(channel_id, None)  # pop: the first trigger wins, later ones no-op
            forks = list(call.forks) if call else []
        if not call:
            return
        LOG.info("%s: ending %d fork(s) of call_id=%s (%s)", channel_id, len(forks), call.call_id, reason)
        for fork in forks:
            self.stop_fork(fork, channel_id)
        try:
            self.ari.unsubscribe_channel(self.args.app, channel_id)
        except ApiError:
            pass  # the channel is usually gone already, and with it the subscription

    def reconcile(self):
        with self.lock:
            ids = list(self.calls)
        for cid in ids:
            try:
                if self.ari.get_channel(cid) is None:
                    self.end_call(cid, "channel gone while the websocket was down")
            except ApiError as e:
                LOG.warning("reconcile %s: %s", cid, e)

    def shutdown(self):
        """SIGTERM/SIGINT: stop listening and remove every fork; callers' calls are untouched."""
        self.stopping.set()
        if self.ws:
            self.ws.close()
        with self.lock:
            ids = list(self.calls)
        for cid in ids:
            self.end_call(cid, "shutdown")
        self.pool.shutdown(wait=True)


def parse_direction(text):
    spy, sep, role = text.partition("=")
    if not sep or spy not in ("in", "out") or not role:
        raise argparse.ArgumentTypeError("expected in=ROLE or out=ROLE, e.g. in=customer")
    return spy, role


def main():
    p = argparse.ArgumentParser(description="Fork Asterisk calls to EmotionTap through ARI snoop + ExternalMedia.")
    p.add_argument("--ari-url", default=os.environ.get("ARI_URL", "http://127.0.0.1:8088/ari"),
                   help="Asterisk ARI base URL (http.conf bindaddr:bindport + /ari)")
    p.add_argument("--ari-user", default=os.environ.get("ARI_USER", "emotiontap"), help="ari.conf user")
    p.add_argument("--ari-password", default=os.environ.get("ARI_PASSWORD"), help="ari.conf password (or ARI_PASSWORD)")
    p.add_argument("--app", default="emotiontap", help="Stasis application name used in Stasis(...)")
    p.add_argument("--emotiontap-url", default=os.environ.get("EMOTIONTAP_URL", "http://127.0.0.1:8090"),
                   help="EmotionTap control API (8088 is Asterisk's own HTTP port by default, so EmotionTap "
                        "runs with --http 127.0.0.1:8090 here)")
    p.add_argument("--emotiontap-token", default=os.environ.get("EMOTIONTAP_TOKEN"),
                   help="bearer token when EmotionTap has auth_token set (or EMOTIONTAP_TOKEN)")
    p.add_argument("--direction", action="append", type=parse_direction,
                   help="spy direction and role, repeatable (default: in=customer out=agent)")
    p.add_argument("--call-id", choices=("uniqueid", "linkedid"), default="uniqueid",
                   help="EmotionTap call_id: the caller channel's uniqueid or the call's linkedid")
    p.add_argument("--format", choices=sorted(FORMAT_TO_CODEC), default="ulaw", help="ExternalMedia format")
    p.add_argument("--rtp-host", help="address Asterisk sends RTP to, instead of the leg's rtp.host "
                                      "(when EmotionTap binds 0.0.0.0 or sits behind NAT)")
    p.add_argument("--workers", type=int, default=8, help="threads setting up and tearing down forks")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args()
    if not args.ari_password:
        p.error("--ari-password or ARI_PASSWORD is required")
    args.direction = args.direction or [("in", "customer"), ("out", "agent")]
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(threadName)s %(message)s")

    app = App(args)

    def on_signal(signum, frame):
        LOG.info("signal %d: shutting down", signum)
        threading.Thread(target=app.shutdown, name="shutdown").start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    app.run()
    app.pool.shutdown(wait=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
