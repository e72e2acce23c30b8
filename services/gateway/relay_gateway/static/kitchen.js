/* Kitchen board (seed-004): the signed-in restaurant's orders as cards by status, live from
   order.new / order.status.changed / order.item.status.changed; item buttons for kitchen and managers,
   and a cancel button for managers (a cancelled order leaves the board on every screen). */
(function () {
  'use strict';
  const R = window.Relay;
  const $ = (id) => document.getElementById(id);
  const COLUMNS = [
    ['CONFIRMED', 'New'],
    ['IN_PROGRESS', 'Cooking'],
    ['READY', 'Ready'],
    ['SERVED', 'Served'],
  ];
  const SERVED_SHOWN = 10;
  // the next step a kitchen may give an item, with its button label
  const NEXT = { PENDING: ['IN_PROGRESS', 'Start'], IN_PROGRESS: ['READY', 'Ready'], READY: ['SERVED', 'Served'] };
  const MOVERS = ['kitchen', 'manager'];
  const CANCELLERS = ['manager'];

  const state = { me: null, canMove: false, canCancel: false, orders: new Map(), socket: null, everConnected: false };
  const setStatus = R.connectionBadge($('connection'));

  const orderId = (o) => o.orderId || o.id;

  function upsert(order) {
    if (!order || !orderId(order)) return;
    const id = orderId(order);
    const known = state.orders.get(id) || {};
    state.orders.set(id, Object.assign({}, known, order, { orderId: id, items: order.items || known.items || [] }));
  }

  async function fetchOrder(id) {
    try {
      upsert(await R.api('GET', '/api/v1/orders/' + encodeURIComponent(id)));
      render();
    } catch (e) {
      $('board-error').textContent = 'Could not load order ' + id + ': ' + e.message;
    }
  }

  async function loadAll() {
    try {
      const data = await R.api('GET', '/api/v1/orders?status=CONFIRMED,IN_PROGRESS,READY,SERVED&limit=200');
      const list = Array.isArray(data) ? data : (data && (data.orders || data.items)) || [];
      state.orders.clear();
      for (const order of list) upsert(order);
      $('board-error').textContent = '';
    } catch (e) {
      $('board-error').textContent = 'Could not load orders: ' + e.message;
    }
    render();
  }

  function tableName(order) {
    return 'Table ' + (order.tableSessionId || '?');
  }

  function announce(text) {
    $('announce').textContent = text;
  }

  async function move(order, item, status) {
    $('board-error').textContent = '';
    try {
      await R.api('POST', '/api/v1/orders/' + encodeURIComponent(orderId(order)) + '/items/' +
        encodeURIComponent(item.id) + '/status', { status });
      // the board changes when the event comes back, like every other screen of this restaurant
    } catch (e) {
      $('board-error').textContent = item.name + ': ' + e.message;
      render();
    }
  }

  async function cancel(order) {
    $('board-error').textContent = '';
    try {
      await R.api('POST', '/api/v1/orders/' + encodeURIComponent(orderId(order)) + '/cancel', {});
    } catch (e) {
      $('board-error').textContent = tableName(order) + ': ' + e.message;
      render();
    }
  }

  function renderItem(order, item) {
    const row = R.el('li', { className: 'item', dataset: { itemId: item.id, status: item.status } },
      R.el('span', { className: 'name', text: item.name + ' ×' + item.qty + (item.notes ? ' — ' + item.notes : '') }),
      R.el('span', { className: 'status', text: item.status }));
    const next = NEXT[item.status];
    if (state.canMove && next) {
      row.append(R.el('button', {
        type: 'button', text: next[1],
        'aria-label': next[1] + ' ' + item.name + ' (' + tableName(order) + ')',
        onclick: (ev) => { ev.target.disabled = true; move(order, item, next[0]); },
      }));
    }
    return row;
  }

  function renderCard(order) {
    const items = R.el('ul', { 'aria-label': 'Items' });
    for (const item of order.items || []) items.append(renderItem(order, item));
    const created = order.createdAt ? R.formatTime(order.createdAt) : '';
    const card = R.el('li', { className: 'card', dataset: { orderId: orderId(order), status: order.status } },
      R.el('h3', { text: tableName(order) }),
      R.el('p', { className: 'muted', text: 'Order ' + orderId(order).slice(0, 8) + (created ? ' · ' + created : '') }),
      items);
    if (state.canCancel && order.status !== 'SERVED') {
      card.append(R.el('button', {
        type: 'button', className: 'danger', text: 'Cancel order',
        'aria-label': 'Cancel order of ' + tableName(order),
        onclick: (ev) => { ev.target.disabled = true; cancel(order); },
      }));
    }
    return card;
  }

  function render() {
    const board = $('board');
    R.clear(board);
    const sorted = Array.from(state.orders.values()).sort((a, b) => String(a.createdAt).localeCompare(String(b.createdAt)));
    for (const [status, label] of COLUMNS) {
      let orders = sorted.filter((o) => o.status === status);
      if (status === 'SERVED') orders = orders.slice(-SERVED_SHOWN);
      const id = 'col-' + status.toLowerCase();
      const list = R.el('ol', { 'aria-labelledby': id });
      for (const order of orders) list.append(renderCard(order));
      board.append(R.el('section', { className: 'column', dataset: { status } },
        R.el('h2', { id, text: label + ' (' + orders.length + ')' }), list));
    }
  }

  function onOrderNew(order) {
    upsert(order);
    announce('New order: ' + tableName(order));
    render();
  }

  function onStatus(ev) {
    const order = ev && state.orders.get(ev.orderId);
    if (!order) { if (ev && ev.orderId) fetchOrder(ev.orderId); return; }
    order.status = ev.newStatus;
    if (ev.newStatus === 'CANCELLED') state.orders.delete(ev.orderId);
    announce(tableName(order) + ' is ' + ev.newStatus);
    render();
  }

  function onItemStatus(ev) {
    const order = ev && state.orders.get(ev.orderId);
    const item = order && (order.items || []).find((i) => i.id === ev.itemId);
    if (!item) { if (ev && ev.orderId) fetchOrder(ev.orderId); return; }
    item.status = ev.newStatus;
    announce(tableName(order) + ': ' + item.name + ' is ' + ev.newStatus);
    render();
  }

  function connectSocket() {
    const socket = R.connect(setStatus);
    state.socket = socket;
    socket.on('connect', () => {
      // the first load and every reconnect read the whole board again: nothing missed while away
      loadAll();
      state.everConnected = true;
    });
    socket.on('order.new', onOrderNew);
    socket.on('order.status.changed', onStatus);
    socket.on('order.item.status.changed', onItemStatus);
  }

  function start(session) {
    state.me = session.user;
    const roles = (state.me.roles || []).map((r) => String(r).toLowerCase());
    state.canMove = roles.some((r) => MOVERS.includes(r));
    state.canCancel = roles.some((r) => CANCELLERS.includes(r));
    $('whoami').textContent = (state.me.username || state.me.userId) + ' · ' + (state.me.tenantId || '');
    $('sign-out').hidden = false;
    $('signin').hidden = true;
    $('board-wrap').hidden = false;
    render();
    connectSocket();
  }

  function boot() {
    window.relayKitchen = { state };
    const staff = (session) => (session.user.roles || []).some((r) => ['kitchen', 'manager', 'waiter'].includes(String(r).toLowerCase()));
    R.staffSignIn(staff, 'this account has no restaurant role', start);
  }

  document.addEventListener('DOMContentLoaded', boot);
})();
