/* Shared helpers for Relay's pages. Everything a server or user sends is put in the page as text
   (textContent / text nodes), never parsed as HTML. */
(function () {
  'use strict';

  class ApiError extends Error {
    constructor(status, body) {
      const err = (body && body.error) || {};
      super(err.message || (body && body.message) || ('HTTP ' + status));
      this.status = status;
      this.code = err.code || (status === 0 ? 'UNAVAILABLE' : 'HTTP_' + status);
      this.body = body;
    }
  }

  async function api(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, { error: { code: 'UNAVAILABLE', message: 'network error: ' + e.message } });
    }
    let data = null;
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = { message: text }; }
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  /** el('li', {className: 'x', text: 'hello', 'aria-label': '...'}, child, 'text child') */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key === 'className') node.className = value;
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /** A URL the page may link to: same-origin paths only (no javascript:, data: or other hosts). */
  function safeUrl(url) {
    if (typeof url !== 'string' || !url.startsWith('/') || url.startsWith('//')) return null;
    return url;
  }

  function connectionBadge(node) {
    const labels = {
      connecting: 'Connecting…',
      connected: 'Connected',
      reconnecting: 'Reconnecting…',
      disconnected: 'Disconnected',
    };
    return function set(state, detail) {
      node.dataset.state = state;
      node.textContent = labels[state] + (detail ? ' · ' + detail : '');
    };
  }

  /** One Socket.IO connection to this origin; cookies (console_session / visitor_session) authenticate it. */
  function connect(status) {
    // eslint-disable-next-line no-undef
    const socket = io({
      path: '/socket.io/',
      transports: ['websocket', 'polling'],
      withCredentials: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
    });
    if (status) {
      status('connecting');
      socket.on('connect', () => {
        status('connected');
        socket.emit('health-check', {}, (ack) => {
          if (ack && ack.replica && socket.connected) status('connected', 'replica ' + ack.replica);
        });
      });
      socket.on('disconnect', (reason) => {
        status(reason === 'io client disconnect' ? 'disconnected' : 'reconnecting');
      });
      socket.io.on('reconnect_attempt', () => status('reconnecting'));
      socket.on('connect_error', () => status(socket.active ? 'reconnecting' : 'disconnected'));
    }
    return socket;
  }

  function emitAck(socket, event, data, timeoutMs) {
    return new Promise((resolve, reject) => {
      socket.timeout(timeoutMs || 8000).emit(event, data, (err, ack) => {
        if (err) reject(new ApiError(0, { error: { code: 'UNAVAILABLE', message: event + ' timed out' } }));
        else if (ack && ack.success === false) reject(new ApiError(400, ack));
        else resolve(ack);
      });
    });
  }

  async function whoami() {
    try {
      return await api('GET', '/app/session');
    } catch (e) {
      if (e.status === 401) return null;
      throw e;
    }
  }

  async function signOut() {
    try { await api('POST', '/api/v1/auth/logout'); } catch (_) { /* signed out anyway */ }
    window.location.reload();
  }

  /** Staff pages (kitchen, ops): restore the session if `accepts` it, else show #signin-form, which
      signs in with email + password (POST /api/v1/auth/login) and then calls `start(session)`. */
  async function staffSignIn(accepts, refusal, start) {
    const $ = (id) => document.getElementById(id);
    $('sign-out').addEventListener('click', signOut);
    $('signin-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      $('signin-error').textContent = '';
      try {
        await api('POST', '/api/v1/auth/login', { email: $('email').value, password: $('password').value });
        const session = await whoami();
        if (!session || !accepts(session)) throw new Error(refusal);
        start(session);
      } catch (e) {
        $('signin-error').textContent = 'Sign-in failed: ' + e.message;
      }
    });
    const session = await whoami().catch(() => null);
    if (session && accepts(session)) start(session);
    else $('signin').hidden = false;
  }

  function formatTime(iso) {
    const d = new Date(iso);
    return isNaN(d) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  window.Relay = { api, ApiError, el, clear, newId, safeUrl, connectionBadge, connect, emitAck, whoami, signOut, staffSignIn, formatTime };
})();
