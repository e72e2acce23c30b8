/* Relay chat (seed-001 UX): visitor or agent, several chats with unread badges, history, optimistic
   send with retry, typing, attachments, internal notes for agents, reconnect with gap recovery. */
(function () {
  'use strict';
  const R = window.Relay;
  const $ = (id) => document.getElementById(id);
  const TYPING_TTL_MS = 5000;
  const TYPING_REFRESH_MS = 2000;
  const HISTORY_PAGE = 200;
  // chats joined in the background for live badges (newest activity first); others join when opened,
  // so an agent with a long queue stays within the server's join rate limit
  const AUTO_JOIN = 20;

  const state = {
    me: null,
    isAgent: false,
    socket: null,
    chats: new Map(), // chatId -> chat
    active: null,
    typing: new Map(), // chatId -> Map(userId -> {name, until})
    typingSent: 0,
    typingStopTimer: null,
    everConnected: false,
  };
  const setStatus = R.connectionBadge($('connection'));

  function chatFor(chatId, info) {
    let chat = state.chats.get(chatId);
    if (!chat) {
      chat = {
        chatId, subject: null, status: null, unread: 0, maxSeq: 0, loaded: false, joined: false,
        byId: new Map(), pending: new Map(), syncing: null, resyncAfter: false,
      };
      state.chats.set(chatId, chat);
    }
    if (info) {
      if (info.subject !== undefined) chat.subject = info.subject;
      if (info.status) chat.status = info.status;
      if (Array.isArray(info.participants)) chat.participants = info.participants;
      // the server counts what this user missed while away; live arrivals it may not count (an agent
      // who is not yet a member) are counted here, so the badge shows the larger of the two
      if (typeof info.unreadCount === 'number' && state.active !== chatId) chat.unread = Math.max(chat.unread, info.unreadCount);
    }
    return chat;
  }

  function rememberChats() {
    if (!state.me) return;
    const ids = Array.from(state.chats.keys()).slice(-50);
    try { localStorage.setItem('relay.chats.' + state.me.userId, JSON.stringify(ids)); } catch (_) { /* private mode */ }
  }

  function rememberedChats() {
    try {
      return JSON.parse(localStorage.getItem('relay.chats.' + state.me.userId) || '[]');
    } catch (_) { return []; }
  }

  // ---------- messages ----------

  function accept(chat, msg) {
    if (!msg || !msg.messageId) return false;
    if (msg.clientMessageId) chat.pending.delete(msg.clientMessageId);
    const known = chat.byId.has(msg.messageId);
    chat.byId.set(msg.messageId, Object.assign({}, msg, { status: 'sent' }));
    if (typeof msg.seq === 'number' && msg.seq > chat.maxSeq) chat.maxSeq = msg.seq;
    return !known;
  }

  function ordered(chat) {
    const saved = Array.from(chat.byId.values()).sort((a, b) => (a.seq || 0) - (b.seq || 0));
    return saved.concat(Array.from(chat.pending.values()));
  }

  async function loadHistory(chat) {
    const data = await R.api('GET', '/v2/messages/chat/' + encodeURIComponent(chat.chatId) + '?limit=50');
    for (const msg of (data && data.messages) || []) accept(chat, msg);
    chat.loaded = true;
  }

  /** Everything after chat.maxSeq, page by page: the gap a disconnect left, nothing twice. */
  function syncGap(chat) {
    if (chat.syncing) {
      chat.resyncAfter = true;
      return chat.syncing;
    }
    chat.syncing = (async () => {
      try {
        let more = true;
        while (more) {
          const q = '?limit=' + HISTORY_PAGE + '&afterSeq=' + chat.maxSeq;
          const data = await R.api('GET', '/v2/messages/chat/' + encodeURIComponent(chat.chatId) + q);
          const before = chat.maxSeq;
          for (const msg of (data && data.messages) || []) accept(chat, msg);
          more = Boolean(data && data.hasMore) && chat.maxSeq > before;
        }
      } finally {
        chat.syncing = null;
      }
      if (state.active === chat.chatId) renderMessages();
      if (chat.resyncAfter) {
        chat.resyncAfter = false;
        return syncGap(chat);
      }
      return undefined;
    })();
    return chat.syncing;
  }

  function onMessageNew(msg) {
    if (!msg || typeof msg.chatId !== 'string') return;
    const chat = chatFor(msg.chatId);
    const gap = typeof msg.seq === 'number' && chat.loaded && msg.seq > chat.maxSeq + 1;
    const previousMax = chat.maxSeq;
    const isNew = accept(chat, msg);
    if (gap) {
      // something between previousMax and this one did not reach us (or is an internal note we may not see)
      chat.maxSeq = previousMax;
      syncGap(chat).catch(() => {}).finally(() => { if (msg.seq > chat.maxSeq) chat.maxSeq = msg.seq; });
    }
    const mine = state.me && msg.senderId === state.me.userId;
    if (isNew && !mine && (state.active !== msg.chatId || document.hidden)) chat.unread += 1;
    else if (isNew && !mine) markRead(chat);
    clearTyping(msg.chatId, msg.senderId);
    if (state.active === msg.chatId) renderMessages();
    renderChatList();
  }

  async function post(chat, draft) {
    draft.status = 'sending';
    draft.error = null;
    renderMessages();
    const body = {
      chatId: chat.chatId, content: draft.content, type: draft.type, clientMessageId: draft.clientMessageId,
    };
    if (draft.isInternal) body.isInternal = true;
    if (draft.attachment) body.attachment = draft.attachment;
    try {
      const saved = await R.api('POST', '/v2/messages', body);
      accept(chat, saved);
    } catch (e) {
      if (chat.pending.has(draft.clientMessageId)) {
        draft.status = 'failed';
        draft.error = e.message;
      }
    }
    if (state.active === chat.chatId) renderMessages();
  }

  function send(content, extra) {
    const chat = state.chats.get(state.active);
    if (!chat) return;
    const draft = Object.assign({
      clientMessageId: R.newId(), chatId: chat.chatId, senderId: state.me.userId, content,
      type: 'text', isInternal: false, sentAt: new Date().toISOString(), status: 'sending',
    }, extra || {});
    chat.pending.set(draft.clientMessageId, draft);
    return post(chat, draft);
  }

  // ---------- rendering ----------

  function senderLabel(msg) {
    if (state.me && msg.senderId === state.me.userId) return 'You';
    if (msg.senderName) return msg.senderName;
    const chat = state.chats.get(msg.chatId);
    const who = chat && (chat.participants || []).find((p) => p && p.userId === msg.senderId);
    if (who && (who.username || who.name)) return who.username || who.name;
    if (who && who.role) return (String(who.role).toLowerCase() === 'visitor' ? 'Visitor' : 'Agent') + ' ' + msg.senderId;
    return msg.senderName || msg.senderId || 'unknown';
  }

  function renderAttachment(att) {
    const url = R.safeUrl(att.url);
    const name = att.fileName || 'attachment';
    const box = R.el('div', { className: 'attachment' });
    if (url && typeof att.mimeType === 'string' && att.mimeType.startsWith('image/')) {
      box.append(R.el('img', { src: url, alt: name, loading: 'lazy' }));
    }
    const size = typeof att.fileSize === 'number' ? ' (' + Math.ceil(att.fileSize / 1024) + ' KB)' : '';
    box.append(url ? R.el('a', { href: url, target: '_blank', rel: 'noopener', text: name + size }) : R.el('span', { text: name + size }));
    return box;
  }

  function renderMessage(msg) {
    const mine = state.me && msg.senderId === state.me.userId;
    const classes = ['message'];
    if (mine) classes.push('mine');
    if (msg.isInternal) classes.push('internal');
    const meta = R.el('div', { className: 'meta' },
      R.el('span', { className: 'sender', text: senderLabel(msg) }),
      R.el('time', { datetime: msg.sentAt, text: R.formatTime(msg.sentAt) }));
    if (msg.isInternal) meta.append(R.el('span', { className: 'note-label', text: 'Internal note' }));
    if (mine || msg.status !== 'sent') {
      const label = { sending: 'Sending…', sent: 'Sent', failed: 'Failed' }[msg.status] || '';
      meta.append(R.el('span', { className: 'state', dataset: { state: msg.status }, text: label }));
    }
    const item = R.el('li', {
      className: classes.join(' '),
      dataset: { messageId: msg.messageId || '', clientMessageId: msg.clientMessageId || '', seq: msg.seq || '', state: msg.status },
    }, meta);
    const captionIsName = msg.attachment && msg.content === msg.attachment.fileName;
    if (msg.content && !captionIsName) item.append(R.el('p', { className: 'text', text: msg.content }));
    if (msg.attachment) item.append(renderAttachment(msg.attachment));
    if (msg.status === 'failed') {
      item.append(R.el('span', { className: 'error', text: msg.error ? 'Not sent: ' + msg.error + ' ' : 'Not sent ' }));
      item.append(R.el('button', {
        type: 'button', className: 'secondary retry', text: 'Retry',
        'aria-label': 'Retry sending "' + (msg.content || 'attachment').slice(0, 40) + '"',
        onclick: () => post(state.chats.get(msg.chatId), msg),
      }));
    }
    return item;
  }

  function renderMessages() {
    const list = $('messages');
    const chat = state.chats.get(state.active);
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    R.clear(list);
    if (!chat) return;
    for (const msg of ordered(chat)) list.append(renderMessage(msg));
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function chatTitle(chat) {
    return chat.subject || 'Chat ' + chat.chatId.slice(0, 8);
  }

  function renderChatList() {
    const list = $('chat-list');
    R.clear(list);
    for (const chat of state.chats.values()) {
      const current = chat.chatId === state.active;
      const button = R.el('button', {
        type: 'button', 'aria-current': current ? 'true' : 'false', dataset: { chatId: chat.chatId },
        onclick: () => openChat(chat.chatId),
      }, R.el('span', { className: 'subject', text: chatTitle(chat) }));
      if (chat.unread > 0) {
        button.append(R.el('span', { className: 'badge', 'aria-label': chat.unread + ' unread', text: String(chat.unread) }));
      }
      list.append(R.el('li', {}, button));
    }
  }

  function renderHeader() {
    const chat = state.chats.get(state.active);
    $('chat-title').textContent = chat ? chatTitle(chat) : 'No chat selected';
    $('chat-status').textContent = chat ? 'Status: ' + (chat.status || 'unknown') + ' · id ' + chat.chatId : '';
    $('composer').hidden = !chat;
    $('close-chat').hidden = !(chat && state.isAgent && chat.status && chat.status !== 'CLOSED');
  }

  // ---------- typing ----------

  function clearTyping(chatId, userId) {
    const users = state.typing.get(chatId);
    if (users && users.delete(userId) && chatId === state.active) renderTyping();
  }

  function onTyping(data, typing) {
    if (!data || typeof data.chatId !== 'string' || !data.userId) return;
    if (state.me && data.userId === state.me.userId) return;
    if (data.isTyping === false) typing = false;
    let users = state.typing.get(data.chatId);
    if (!users) state.typing.set(data.chatId, (users = new Map()));
    if (typing) users.set(data.userId, { name: data.username || data.userName || data.userId, until: Date.now() + TYPING_TTL_MS });
    else users.delete(data.userId);
    if (data.chatId === state.active) renderTyping();
  }

  function renderTyping() {
    const users = state.typing.get(state.active);
    const now = Date.now();
    const names = [];
    if (users) {
      for (const [id, entry] of users) {
        if (entry.until < now) users.delete(id);
        else names.push(entry.name);
      }
    }
    const text = names.length === 0 ? '' : names.join(', ') + (names.length === 1 ? ' is typing…' : ' are typing…');
    if ($('typing').textContent !== text) $('typing').textContent = text;
  }

  function typed() {
    if (!state.socket || !state.socket.connected || !state.active) return;
    const now = Date.now();
    if (now - state.typingSent > TYPING_REFRESH_MS) {
      state.typingSent = now;
      state.socket.emit('typing:start', { chatId: state.active });
    }
    clearTimeout(state.typingStopTimer);
    state.typingStopTimer = setTimeout(stopTyping, TYPING_REFRESH_MS);
  }

  function stopTyping() {
    clearTimeout(state.typingStopTimer);
    if (state.typingSent && state.socket && state.active) state.socket.emit('typing:stop', { chatId: state.active });
    state.typingSent = 0;
  }

  // ---------- chats ----------

  async function join(chat) {
    if (!state.socket || !state.socket.connected) return;
    await R.emitAck(state.socket, 'chat:join', { chatId: chat.chatId });
    chat.joined = true;
  }

  async function openChat(chatId) {
    stopTyping();
    const chat = chatFor(chatId);
    state.active = chatId;
    chat.unread = 0;
    renderHeader();
    renderChatList();
    renderMessages();
    renderTyping();
    $('composer-error').textContent = '';
    try {
      if (!chat.joined) await join(chat);
      if (!chat.subject) describe(chat);
      if (!chat.loaded) await loadHistory(chat);
      else await syncGap(chat);
      rememberChats();
    } catch (e) {
      $('composer-error').textContent = 'Could not open this chat: ' + e.message;
    }
    if (state.active === chatId) renderMessages();
    markRead(chat);
  }

  function describe(chat) {
    // subject and status of a chat opened by id (best effort: GET /v2/chats/{chatId})
    R.api('GET', '/v2/chats/' + encodeURIComponent(chat.chatId)).then((info) => {
      chatFor(chat.chatId, info || {});
      renderChatList();
      if (state.active === chat.chatId) renderHeader();
    }).catch(() => {});
  }

  function markRead(chat) {
    // read receipts (seed-003 `marcar_leido`, same conversation id): the server's unread count drops too
    clearTimeout(chat.readTimer);
    chat.readTimer = setTimeout(() => {
      if (state.socket && state.socket.connected) state.socket.emit('marcar_leido', { conversacionId: chat.chatId });
    }, 300);
  }

  async function refreshChats() {
    try {
      const data = await R.api('GET', '/v2/chats');
      const chats = Array.isArray(data) ? data : (data && (data.chats || data.items)) || [];
      chats.forEach((info, index) => {
        const id = info.chatId || info.id;
        if (!id) return;
        const chat = chatFor(id, info);
        if (!chat.joined && index < AUTO_JOIN) join(chat).catch(() => {});
      });
      $('list-error').textContent = '';
    } catch (e) {
      if (e.status !== 404 && e.status !== 405) $('list-error').textContent = 'Could not list chats: ' + e.message;
    }
    renderChatList();
  }

  // ---------- socket ----------

  function connectSocket() {
    const socket = R.connect(setStatus);
    state.socket = socket;
    socket.on('connect', async () => {
      const reconnect = state.everConnected;
      state.everConnected = true;
      const chats = Array.from(state.chats.values());
      const wanted = chats.filter((c, i) => c.chatId === state.active || c.loaded || i < AUTO_JOIN);
      for (const chat of chats) chat.joined = false;
      for (const chat of wanted) {
        try {
          await join(chat);
          if (reconnect && chat.loaded) await syncGap(chat);
        } catch (_) { /* shown when the chat is opened */ }
      }
      if (reconnect) {
        renderMessages();
        renderChatList();
      }
    });
    socket.on('disconnect', () => {
      for (const chat of state.chats.values()) chat.joined = false;
    });
    socket.on('message:new', onMessageNew);
    socket.on('chat:status', (data) => {
      if (!data || !state.chats.has(data.chatId)) return;
      state.chats.get(data.chatId).status = data.status;
      if (data.chatId === state.active) renderHeader();
    });
    socket.on('user:typing', (data) => onTyping(data, true));
    socket.on('typing:start', (data) => onTyping(data, true));
    socket.on('user:stop-typing', (data) => onTyping(data, false));
    socket.on('typing:stop', (data) => onTyping(data, false));
    socket.on('chat:sync', (data) => {
      const chat = data && state.chats.get(data.chatId);
      if (!chat) return;
      for (const msg of data.messages || []) accept(chat, msg);
      if (data.chatId === state.active) renderMessages();
    });
  }

  // ---------- attachments ----------

  function upload(file, chatId) {
    return new Promise((resolve, reject) => {
      const form = new FormData();
      form.append('chatId', chatId);
      form.append('file', file);
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/v2/files/upload');
      xhr.withCredentials = true;
      xhr.responseType = 'json';
      const bar = $('upload-progress');
      bar.hidden = false;
      bar.value = 0;
      xhr.upload.onprogress = (ev) => {
        if (!ev.lengthComputable) return;
        const pct = Math.round((ev.loaded / ev.total) * 100);
        bar.value = pct;
        $('upload-status').textContent = 'Uploading ' + file.name + ': ' + pct + '%';
      };
      xhr.onload = () => {
        bar.hidden = true;
        if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response);
        else reject(new R.ApiError(xhr.status, xhr.response));
      };
      xhr.onerror = () => { bar.hidden = true; reject(new R.ApiError(0, null)); };
      xhr.send(form);
    });
  }

  async function sendFile(file) {
    const chatId = state.active;
    $('composer-error').textContent = '';
    try {
      const meta = await upload(file, chatId);
      $('upload-status').textContent = 'Uploaded ' + file.name;
      const attachment = { url: meta.url, fileName: meta.fileName, fileSize: meta.fileSize, mimeType: meta.mimeType };
      const type = (meta.mimeType || '').startsWith('image/') ? 'image' : 'file';
      await send(meta.fileName || file.name, { type, attachment });
    } catch (e) {
      $('upload-status').textContent = '';
      $('composer-error').textContent = 'Upload failed: ' + e.message;
    }
  }

  // ---------- sign in / start ----------

  async function start(session) {
    state.me = session.user;
    state.isAgent = Boolean(session.isAgent);
    $('whoami').textContent = (state.me.username || state.me.userId) + (state.isAgent ? ' · agent' : ' · visitor');
    $('sign-out').hidden = false;
    $('signin').hidden = true;
    $('workspace').hidden = false;
    $('new-chat-form').hidden = state.isAgent;
    $('internal-label').hidden = !state.isAgent;
    for (const id of rememberedChats()) chatFor(id);
    connectSocket();
    await refreshChats();
    const wanted = new URLSearchParams(window.location.hash.slice(1)).get('chat');
    if (wanted) await openChat(wanted);
    setInterval(() => { if (state.socket && state.socket.connected) refreshChats(); }, 15000);
  }

  async function signIn(kind) {
    $('signin-error').textContent = '';
    try {
      if (kind === 'visitor') {
        const name = $('visitor-name').value.trim();
        await R.api('POST', '/v2/visitor/session', name ? { name } : {});
      } else {
        await R.api('POST', '/api/v1/auth/login', { email: $('agent-email').value, password: $('agent-password').value });
      }
      const session = await R.whoami();
      if (!session) throw new Error('the session was not accepted');
      await start(session);
    } catch (e) {
      $('signin-error').textContent = 'Sign-in failed: ' + e.message;
    }
  }

  function wire() {
    $('visitor-form').addEventListener('submit', (ev) => { ev.preventDefault(); signIn('visitor'); });
    $('agent-form').addEventListener('submit', (ev) => { ev.preventDefault(); signIn('agent'); });
    $('sign-out').addEventListener('click', R.signOut);
    $('new-chat-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const subject = $('new-chat-subject').value.trim();
      try {
        const chat = await R.api('POST', '/v2/chats', subject ? { subject } : {});
        chatFor(chat.chatId, chat);
        $('new-chat-subject').value = '';
        await openChat(chat.chatId);
      } catch (e) {
        $('list-error').textContent = 'Could not open a chat: ' + e.message;
      }
    });
    $('close-chat').addEventListener('click', async () => {
      const chat = state.chats.get(state.active);
      if (!chat) return;
      try {
        const closed = await R.api('POST', '/v2/chats/' + encodeURIComponent(chat.chatId) + '/close', {});
        chat.status = (closed && closed.status) || 'CLOSED';
        renderHeader();
      } catch (e) {
        $('composer-error').textContent = 'Could not close the chat: ' + e.message;
      }
    });
    $('open-chat-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = $('open-chat-id').value.trim();
      if (id) openChat(id);
    });
    $('composer').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = $('message-input');
      const text = input.value;
      if (!text.trim()) return;
      input.value = '';
      stopTyping();
      send(text, { isInternal: state.isAgent && $('internal-note').checked });
      $('internal-note').checked = false;
      input.focus();
    });
    $('message-input').addEventListener('input', typed);
    $('message-input').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) {
        ev.preventDefault();
        $('composer').requestSubmit();
      }
    });
    $('file-input').addEventListener('change', (ev) => {
      const file = ev.target.files && ev.target.files[0];
      if (file) sendFile(file);
      ev.target.value = '';
    });
    document.addEventListener('visibilitychange', () => {
      const chat = state.chats.get(state.active);
      if (!document.hidden && chat) { chat.unread = 0; renderChatList(); markRead(chat); }
    });
    setInterval(renderTyping, 1000);
  }

  async function boot() {
    wire();
    window.relayChat = { state, openChat, send };
    const session = await R.whoami().catch(() => null);
    if (session) await start(session);
    else $('signin').hidden = false;
  }

  document.addEventListener('DOMContentLoaded', boot);
})();
