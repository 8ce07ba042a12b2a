/// The supervisor's live view, served at `GET /`: one self-contained document (inline style and
/// script, no fonts, scripts or styles from elsewhere) that loads the active legs from `/v1/legs`,
/// then follows `/v1/events/stream`. Opened as `/?token=TOKEN` it passes the token on (as the
/// Authorization header to /v1/legs, in the query to the stream, which EventSource allows no header for).
///
/// What tests read in the DOM: each call is `<div class="call" data-call="ID">` (with `data-state`,
/// `data-escalated`, `data-ended`), each leg a `.leg` row with `data-state` and a
/// `<svg class="timeline" data-leg="LEGID" data-points="N">` (N points drawn), and `#status` says
/// "live" while the stream is open.
enum SupervisorPage {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>EmotionTap: live calls</title>
        <style>
        :root { --bg: #f4f5f7; --card: #fff; --ink: #1d2330; --muted: #6b7385; --line: #d9dce3;
          --calm: #2f7d4f; --upset: #c0392b; --upset-soft: rgba(192, 57, 43, .16); --esc: #b3261e; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
          background: var(--bg); }
        header { display: flex; align-items: baseline; gap: 16px; padding: 12px 20px; background: var(--ink);
          color: #fff; }
        header h1 { margin: 0; font-size: 17px; font-weight: 600; }
        #status { padding: 1px 8px; border-radius: 9px; background: #7a7f8c; font-size: 12px; }
        #status[data-state="live"] { background: var(--calm); }
        #status[data-state="closed"] { background: var(--esc); }
        #summary { color: #c9cdd6; font-size: 13px; }
        main { display: flex; flex-direction: column; gap: 12px; padding: 16px 20px; }
        #empty { color: var(--muted); }
        .call { background: var(--card); border: 1px solid var(--line); border-left: 5px solid var(--line);
          border-radius: 6px; padding: 10px 14px; }
        .call[data-state="upset"] { border-left-color: var(--upset); }
        .call[data-escalated="1"] { border-color: var(--esc); border-left-color: var(--esc); background: #fdecea; }
        .call[data-ended="1"] { opacity: .45; filter: grayscale(1); }
        .call-head { display: flex; align-items: center; gap: 10px; margin-bottom: 6px; }
        .call-id { font-weight: 600; font-family: ui-monospace, monospace; }
        .badge { background: var(--esc); color: #fff; border-radius: 4px; padding: 1px 7px; font-size: 11px;
          font-weight: 700; letter-spacing: .05em; }
        .legs { display: flex; flex-direction: column; gap: 6px; }
        .leg { display: grid; grid-template-columns: 280px 1fr; gap: 12px; align-items: center; }
        .leg[data-ended="1"] { opacity: .45; filter: grayscale(1); }
        .leg-info { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px; }
        .role { width: 100px; white-space: nowrap; font-weight: 600; text-transform: capitalize; }
        .state { border-radius: 9px; padding: 0 8px; color: #fff; background: var(--calm); font-size: 12px; }
        .state[data-state="upset"] { background: var(--upset); }
        .upset { font-variant-numeric: tabular-nums; font-weight: 600; min-width: 34px; }
        .label, .leg-id { color: var(--muted); font-size: 12px; }
        .leg-id { width: 100%; font-family: ui-monospace, monospace; font-size: 11px; }
        .leg[data-escalated="1"] .role::after { content: " \26A0"; color: var(--esc); }
        svg.timeline { width: 100%; height: 64px; background: #fafbfc; border: 1px solid var(--line);
          border-radius: 4px; }
        svg.timeline .band { fill: var(--upset-soft); }
        svg.timeline .mid { stroke: var(--line); stroke-dasharray: 4 4; vector-effect: non-scaling-stroke; }
        svg.timeline polyline { fill: none; stroke: #34495e; stroke-width: 1.6; vector-effect: non-scaling-stroke; }
        </style>
        </head>
        <body>
        <header>
          <h1>EmotionTap: live calls</h1>
          <span id="status" data-state="connecting">connecting</span>
          <span id="summary"></span>
        </header>
        <main id="calls">
          <p id="empty">No active calls.</p>
        </main>
        <script>
        (() => {
          'use strict';
          const token = new URLSearchParams(location.search).get('token');
          const streamURL = 'v1/events/stream' + (token ? '?token=' + encodeURIComponent(token) : '');
          const KEEP_ENDED_MS = 30000, MAX_POINTS = 3600, MIN_SPAN_S = 60, W = 600, H = 64;
          const SVG = 'http://www.w3.org/2000/svg';
          const TYPES = ['leg.start', 'emotion', 'state', 'escalate', 'leg.end', 'heartbeat'];
          const calls = new Map(), legs = new Map();
          const callsEl = document.getElementById('calls'), emptyEl = document.getElementById('empty');
          const statusEl = document.getElementById('status'), summaryEl = document.getElementById('summary');
          let lastHeartbeat = null;

          // Built with the DOM, never from markup: call and leg ids come from API clients.
          function el(tag, cls, text) {
            const e = document.createElement(tag);
            if (cls) e.className = cls;
            if (text != null) e.textContent = text;
            return e;
          }
          function svg(tag, attrs) {
            const e = document.createElementNS(SVG, tag);
            for (const [k, v] of attrs) e.setAttribute(k, String(v));
            return e;
          }

          function setStatus(state, text) { statusEl.dataset.state = state; statusEl.textContent = text; }

          function summary() {
            let upset = 0, escalated = 0, active = 0;
            for (const l of legs.values()) {
              if (!l.ended) active++;
              if (!l.ended && l.state === 'upset') upset++;
            }
            for (const c of calls.values()) if (c.root.dataset.escalated === '1') escalated++;
            const parts = [calls.size + (calls.size === 1 ? ' call' : ' calls'), active + ' active legs',
              upset + ' upset', escalated + ' escalated'];
            if (lastHeartbeat) parts.push('heartbeat ' + lastHeartbeat.toLocaleTimeString());
            summaryEl.textContent = parts.join(' \u00b7 ');
            emptyEl.hidden = calls.size > 0;
          }

          function callFor(id) {
            let c = calls.get(id);
            if (c) return c;
            const root = el('div', 'call');
            root.dataset.call = id;
            root.dataset.state = 'calm';
            root.dataset.escalated = '0';
            root.dataset.ended = '0';
            const head = el('div', 'call-head');
            const badge = el('span', 'badge', 'ESCALATED');
            badge.hidden = true;
            head.append(el('span', 'call-id', id), badge);
            const legsEl = el('div', 'legs');
            root.append(head, legsEl);
            callsEl.append(root);
            c = { id, root, badge, legsEl, legs: new Set() };
            calls.set(id, c);
            return c;
          }

          function refreshCall(c) {
            const ls = [...c.legs].map(id => legs.get(id));
            c.root.dataset.state = ls.some(l => !l.ended && l.state === 'upset') ? 'upset' : 'calm';
            c.root.dataset.ended = ls.length > 0 && ls.every(l => l.ended) ? '1' : '0';
            // Escalated calls first.
            c.root.style.order = c.root.dataset.escalated === '1' ? '-1' : '0';
          }

          function legFor(id, callID, role) {
            let l = legs.get(id);
            if (l) return l;
            const c = callFor(callID);
            const row = el('div', 'leg');
            row.dataset.leg = id;
            row.dataset.role = role;
            row.dataset.state = 'calm';
            const stateEl = el('span', 'state', 'calm');
            stateEl.dataset.state = 'calm';
            const upsetEl = el('span', 'upset', '\u2013'), labelEl = el('span', 'label', '');
            const info = el('div', 'leg-info');
            info.append(el('span', 'role', role), stateEl, upsetEl, labelEl, el('span', 'leg-id', id));
            const tl = svg('svg', [['class', 'timeline'], ['data-leg', id], ['data-points', 0], ['data-state', 'calm'],
              ['viewBox', `0 0 ${W} ${H}`], ['preserveAspectRatio', 'none']]);
            const bands = svg('g', [['class', 'bands']]);
            const line = svg('polyline', [['points', '']]);
            tl.append(bands, svg('line', [['class', 'mid'], ['x1', 0], ['x2', W], ['y1', H / 2], ['y2', H / 2]]), line);
            row.append(info, tl);
            // The customer above the agent, whatever came first.
            row.style.order = role === 'customer' ? '0' : '1';
            c.legsEl.append(row);
            l = { id, callID, role, row, stateEl, upsetEl, labelEl, tl, bands, line, points: [], trimmed: false,
              state: 'calm', ended: false, heard: false };
            legs.set(id, l);
            c.legs.add(id);
            refreshCall(c);
            return l;
          }

          function setState(l, state) {
            l.state = state;
            l.row.dataset.state = state;
            l.stateEl.dataset.state = state;
            l.stateEl.textContent = state;
            l.tl.dataset.state = state;
          }

          function setUpset(l, upset) {
            l.upsetEl.textContent = typeof upset === 'number' ? upset.toFixed(2) : '\u2013';
          }

          function escalate(l) {
            l.row.dataset.escalated = '1';
            const c = calls.get(l.callID);
            c.root.dataset.escalated = '1';
            c.badge.hidden = false;
          }

          // x: the leg's media seconds from 0 (from the oldest point kept, once MAX_POINTS were dropped)
          // over at least MIN_SPAN_S, so a page opened mid-call starts its line mid-way; y: upset 0..1.
          // A window whose smoothed state was upset shades its stretch of the timeline.
          function draw(l) {
            const p = l.points;
            const t0 = l.trimmed && p.length ? p[0].start : 0;
            const t1 = Math.max(t0 + MIN_SPAN_S, p.length ? p[p.length - 1].end : 0);
            const x = t => ((t - t0) / (t1 - t0) * W).toFixed(1);
            const y = u => (H - 2 - u * (H - 4)).toFixed(1);
            l.line.setAttribute('points', p.map(q => x(q.end) + ',' + y(q.upset)).join(' '));
            l.bands.replaceChildren();
            let from = null;
            const band = (a, b) => l.bands.append(
              svg('rect', [['class', 'band'], ['x', x(a)], ['y', 0], ['width', Math.max(1, x(b) - x(a))], ['height', H]]));
            for (let i = 0; i < p.length; i++) {
              const before = i > 0 ? p[i - 1].end : p[i].start;
              if (p[i].state === 'upset' && from === null) from = before;
              if (p[i].state !== 'upset' && from !== null) { band(from, before); from = null; }
            }
            if (from !== null) band(from, p[p.length - 1].end);
            l.tl.dataset.points = String(p.length);
          }

          function endLeg(l) {
            if (l.ended) return;
            l.ended = true;
            l.row.dataset.ended = '1';
            const c = calls.get(l.callID);
            refreshCall(c);
            setTimeout(() => {
              l.row.remove();
              legs.delete(l.id);
              c.legs.delete(l.id);
              if (c.legs.size === 0) { c.root.remove(); calls.delete(c.id); } else refreshCall(c);
              summary();
            }, KEEP_ENDED_MS);
          }

          function onEvent(type, e) {
            if (type === 'heartbeat') { lastHeartbeat = new Date(); summary(); return; }
            if (!e.leg_id || !e.call_id) return;
            if (type === 'leg.end') {
              const l = legs.get(e.leg_id);
              if (l) endLeg(l);
              summary();
              return;
            }
            const l = legFor(e.leg_id, e.call_id, e.role || 'leg');
            if (type === 'emotion') {
              l.heard = true;
              l.points.push({ start: e.start, end: e.end, upset: e.upset, state: e.state });
              if (l.points.length > MAX_POINTS) { l.points.shift(); l.trimmed = true; }
              setState(l, e.state);
              setUpset(l, e.upset);
              l.labelEl.textContent = e.label || '';
              draw(l);
            } else if (type === 'state') {
              setState(l, e.to);
            } else if (type === 'escalate') {
              escalate(l);
            }
            refreshCall(calls.get(l.callID));
            summary();
          }

          // The legs as the service has them: seeds a page opened mid-call, and after a reconnect ends
          // the legs that went while the stream was down.
          async function resync() {
            const before = new Set(legs.keys());
            let body;
            try {
              const r = await fetch('v1/legs', { headers: token ? { Authorization: 'Bearer ' + token } : {} });
              if (!r.ok) return;
              body = await r.json();
            } catch (err) {
              return;
            }
            const present = new Set();
            for (const s of body.legs || []) {
              present.add(s.leg_id);
              const l = legFor(s.leg_id, s.call_id, s.role);
              if (!l.heard) {
                setState(l, s.mood === 'upset' ? 'upset' : 'calm');
                setUpset(l, s.upset);
                l.labelEl.textContent = s.label || '';
              }
              if (s.escalated) escalate(l);
              refreshCall(calls.get(l.callID));
            }
            for (const id of before) if (!present.has(id) && legs.has(id)) endLeg(legs.get(id));
            summary();
          }

          const source = new EventSource(streamURL);
          for (const type of TYPES) {
            source.addEventListener(type, m => {
              let e;
              try { e = JSON.parse(m.data); } catch (err) { return; }
              onEvent(type, e);
            });
          }
          source.onopen = () => { setStatus('live', 'live'); resync(); };
          source.onerror = () => {
            if (source.readyState === EventSource.CLOSED) setStatus('closed', 'closed (is the token right?)');
            else setStatus('connecting', 'reconnecting');
          };
          summary();
        })();
        </script>
        </body>
        </html>
        """#
}
