/* Ops dashboard: polls the admin-only GET /ops/stats (every replica's heartbeat in Redis) and draws
   rates and delivery latency by hand on canvas. */
(function () {
  'use strict';
  const R = window.Relay;
  const $ = (id) => document.getElementById(id);
  const POLL_MS = Number(new URLSearchParams(window.location.search).get('interval')) || 2000;
  const WINDOW_S = 180;
  const COLORS = ['#0b57d0', '#b3261e', '#116329', '#8a4b00', '#6f42c1', '#00639b'];
  const setStatus = R.connectionBadge($('connection'));
  const state = { last: null, timer: null };

  function fmt(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    return Number(v).toFixed(digits === undefined ? 1 : digits);
  }

  function tile(label, value, id) {
    return R.el('div', { className: 'tile', id },
      R.el('div', { className: 'value', text: value }),
      R.el('div', { className: 'label', text: label }));
  }

  function table(node, headers, rows) {
    R.clear(node);
    const head = R.el('tr', {});
    for (const h of headers) head.append(R.el('th', { scope: 'col', text: h }));
    node.append(R.el('thead', {}, head));
    const body = R.el('tbody', {});
    for (const row of rows) {
      const tr = R.el('tr', {});
      for (const cell of row) tr.append(R.el('td', { text: cell }));
      body.append(tr);
    }
    if (rows.length === 0) body.append(R.el('tr', {}, R.el('td', { colspan: headers.length, text: 'None' })));
    node.append(body);
  }

  /** series: [{label, color, points: [{t (s), v}]}]; a null v breaks the line. */
  function drawChart(canvas, series, unit) {
    const ratio = window.devicePixelRatio || 1;
    const cssW = canvas.clientWidth || 1000;
    const cssH = canvas.clientHeight || 260;
    canvas.width = Math.round(cssW * ratio);
    canvas.height = Math.round(cssH * ratio);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    const pad = { l: 56, r: 12, t: 12, b: 28 };
    const w = cssW - pad.l - pad.r;
    const h = cssH - pad.t - pad.b;
    const now = Date.now() / 1000;
    const t0 = now - WINDOW_S;
    let max = 0;
    for (const s of series) for (const p of s.points) if (p.v !== null && p.t >= t0) max = Math.max(max, p.v);
    max = max <= 0 ? 1 : max * 1.15;
    const x = (t) => pad.l + ((t - t0) / WINDOW_S) * w;
    const y = (v) => pad.t + h - (v / max) * h;

    ctx.font = '12px system-ui, sans-serif';
    ctx.strokeStyle = '#c9d1d9';
    ctx.fillStyle = '#4a5561';
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const v = (max / 4) * i;
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(pad.l, yy); ctx.lineTo(pad.l + w, yy); ctx.stroke();
      ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
      ctx.fillText(fmt(v, max < 10 ? 1 : 0) + (i === 4 ? ' ' + unit : ''), pad.l - 6, yy);
    }
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    for (let s = WINDOW_S; s >= 0; s -= 60) {
      ctx.fillText(s === 0 ? 'now' : '-' + s + 's', x(now - s), pad.t + h + 6);
    }
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      let drawing = false;
      for (const p of s.points) {
        if (p.t < t0 || p.v === null) { drawing = false; continue; }
        if (!drawing) { ctx.moveTo(x(p.t), y(p.v)); drawing = true; } else ctx.lineTo(x(p.t), y(p.v));
      }
      ctx.stroke();
      // every sample as a dot, so a lone sample between gaps is still visible
      ctx.fillStyle = s.color;
      for (const p of s.points) {
        if (p.t < t0 || p.v === null) continue;
        ctx.beginPath(); ctx.arc(x(p.t), y(p.v), 2.5, 0, Math.PI * 2); ctx.fill();
      }
    }
  }

  function legend(node, series) {
    R.clear(node);
    for (const s of series) {
      const item = R.el('span', { text: s.label });
      item.style.setProperty('--swatch', s.color);
      node.append(item);
    }
  }

  function summed(replicas, key) {
    const buckets = new Map();
    for (const r of replicas) {
      for (const p of r.history || []) {
        const t = Math.round(p.t / 2) * 2;
        buckets.set(t, (buckets.get(t) || 0) + (p[key] || 0));
      }
    }
    return Array.from(buckets.entries()).sort((a, b) => a[0] - b[0]).map(([t, v]) => ({ t, v }));
  }

  function render(stats) {
    const t = stats.totals;
    const tiles = $('tiles');
    R.clear(tiles);
    tiles.append(
      tile('Replicas', String(t.replicas), 'tile-replicas'),
      tile('Connections', String(t.connections), 'tile-connections'),
      tile('Rooms', String(t.rooms), 'tile-rooms'),
      tile('Messages / s', fmt(t.messagesPerSecond), 'tile-mps'),
      tile('Events delivered / s', fmt(t.eventsPerSecond), 'tile-eps'),
      tile('Delivery latency (ms)', fmt(t.latencyMs), 'tile-latency'),
      tile('Users online (' + stats.tenant + ')', String(stats.presence.users), 'tile-users'));
    const service = stats.presenceService;
    tiles.append(
      tile('Presence service: users', service ? String(service.totalUsers) : 'not answering', 'tile-service-users'),
      tile('Active conversations', service && service.activeConversations !== null && service.activeConversations !== undefined
        ? String(service.activeConversations) : '–', 'tile-conversations'));

    const rates = [
      { label: 'messages/s (all replicas)', color: COLORS[0], points: summed(stats.replicas, 'messagesPerSecond') },
      { label: 'events delivered/s (all replicas)', color: COLORS[1], points: summed(stats.replicas, 'eventsPerSecond') },
    ];
    drawChart($('rate-chart'), rates, '/s');
    legend($('rate-legend'), rates);
    $('rate-summary').textContent = 'Last ' + WINDOW_S / 60 + ' minutes. Now: ' + fmt(t.messagesPerSecond) +
      ' messages/s, ' + fmt(t.eventsPerSecond) + ' events delivered/s.';

    const latency = stats.replicas.map((r, i) => ({
      label: 'latency ' + r.replicaId, color: COLORS[(i + 2) % COLORS.length],
      points: (r.history || []).map((p) => ({ t: p.t, v: p.latencyMs })),
    }));
    drawChart($('latency-chart'), latency, 'ms');
    legend($('latency-legend'), latency);
    $('latency-summary').textContent = 'Mean delivery latency per replica (event occurredAt → emit). Now: ' +
      fmt(t.latencyMs) + ' ms.';

    table($('replicas'),
      ['Replica', 'Address', 'Connections', 'Namespaces', 'Rooms', 'Bindings', 'Messages/s', 'Events/s', 'Latency ms (mean / p95)', 'Heartbeat'],
      stats.replicas.map((r) => [
        r.replicaId, r.url, String(r.connections),
        Object.entries(r.namespaces || {}).map(([ns, n]) => ns + ' ' + n).join(', ') || '–',
        String(r.rooms), String(r.bindings), fmt(r.messagesPerSecond), fmt(r.eventsPerSecond),
        fmt(r.latencyMs) + ' / ' + fmt(r.latencyP95Ms), R.formatTime(r.heartbeatAt) || r.heartbeatAt,
      ]));
    const serviceRoles = (service && service.usersByRole) || {};
    const roles = Array.from(new Set(Object.keys(stats.presence.byRole).concat(Object.keys(serviceRoles)))).sort();
    table($('presence'), ['Role', 'Users (gateways)', 'Sockets (gateways)', 'Users (presence service)'],
      roles.map((role) => {
        const v = stats.presence.byRole[role] || { users: 0, sockets: 0 };
        return [role, String(v.users), String(v.sockets), service ? String(serviceRoles[role] || 0) : '–'];
      }));
    table($('rooms'), ['Namespace', 'Room', 'Members'],
      stats.rooms.map((r) => [r.namespace, r.room, String(r.members)]));
  }

  async function poll() {
    try {
      const stats = await R.api('GET', '/ops/stats');
      state.last = stats;
      render(stats);
      setStatus('connected', 'updated ' + new Date().toLocaleTimeString() + ' by ' + stats.answeredBy);
      $('dash-error').textContent = '';
    } catch (e) {
      setStatus('disconnected');
      $('dash-error').textContent = e.status === 403 ? 'The ops dashboard is for administrators.' : 'Could not load stats: ' + e.message;
    }
    state.timer = setTimeout(poll, POLL_MS);
  }

  function start(session) {
    $('whoami').textContent = (session.user.username || session.user.userId) + ' · ' + session.user.tenantId;
    $('sign-out').hidden = false;
    $('signin').hidden = true;
    $('dashboard').hidden = false;
    poll();
  }

  function boot() {
    window.relayOps = { state };
    R.staffSignIn((session) => session.isAdmin, 'this account is not an administrator', start);
  }

  document.addEventListener('DOMContentLoaded', boot);
})();
