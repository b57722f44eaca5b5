// lungate room console.  Polls /api/state every second; every action is a
// POST with the CSRF token, answered by the control socket's own code.
// Names come from clients (initiator names are whatever a PC sends): they
// only ever go into textContent, never into HTML.
'use strict';
(function () {
  const POLL_MS = 1000;
  let csrf = null, timer = null, state = null, lastOk = 0;
  const lastBytes = new Map();       // "storage|initiator" -> bytes of its last session
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function bytes(n) {
    if (n === undefined || n === null) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = Number(n), i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(v < 10 ? 1 : 0) : v.toFixed(0)) + ' ' + u[i];
  }

  function ago(secs) {
    secs = Math.max(0, Math.round(secs));
    if (secs < 60) return secs + ' s';
    if (secs < 3600) return Math.floor(secs / 60) + ' min';
    if (secs < 86400) return Math.floor(secs / 3600) + ' h ' + Math.floor((secs % 3600) / 60) + ' min';
    return Math.floor(secs / 86400) + ' d';
  }

  function clock(t) {
    return new Date(t * 1000).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  async function api(method, url, body) {
    const opt = { method, credentials: 'same-origin', headers: {} };
    if (body !== undefined) {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body);
    }
    if (csrf && method === 'POST') opt.headers['X-CSRF-Token'] = csrf;
    const r = await fetch(url, opt);
    let j = null;
    try { j = await r.json(); } catch (e) { j = { ok: false, error: 'the gateway answered ' + r.status }; }
    j.status = r.status;
    return j;
  }

  // ---- notices ----
  function notice(kind, lines) {
    const n = $('notice');
    n.replaceChildren();
    n.className = 'notice ' + kind;
    n.append(el('span', null, lines.join('\n')));
    const x = el('button', null, '×');
    x.type = 'button';
    x.title = 'Dismiss';
    x.addEventListener('click', () => { n.hidden = true; });
    n.append(x);
    n.hidden = false;
  }

  function showResult(what, res) {
    const errors = (res.errors || []).slice();
    if (res.error) errors.push(res.error);
    const msgs = res.messages || [];
    if (!res.ok || errors.length) notice('error', [what + ' failed:'].concat(errors, msgs));
    else notice('ok', msgs.length ? msgs : [what + ': done']);
  }

  // ---- login ----
  function showLogin(msg) {
    stopPolling();
    csrf = null;
    $('console').hidden = true;
    $('bar-right').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = msg || '';
    $('password').focus();
  }

  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const b = $('login-button');
    b.disabled = true;
    $('login-error').textContent = '';
    try {
      const res = await api('POST', '/api/login', { password: $('password').value });
      if (res.ok) {
        csrf = res.csrf;
        $('password').value = '';
        showConsole();
      } else {
        $('login-error').textContent = res.error || 'refused';
      }
    } catch (e) {
      $('login-error').textContent = 'the gateway does not answer';
    }
    b.disabled = false;
  });

  $('signout').addEventListener('click', async () => {
    try { await api('POST', '/api/logout', {}); } catch (e) { /* signed out below anyway */ }
    showLogin('Signed out.');
  });

  function showConsole() {
    $('login').hidden = true;
    $('console').hidden = false;
    $('bar-right').hidden = false;
    poll();
  }

  function stopPolling() {
    if (timer) clearTimeout(timer);
    timer = null;
  }

  async function poll() {
    stopPolling();
    try {
      const res = await api('GET', '/api/state');
      if (res.status === 401) { showLogin(csrf ? 'Your session ended: sign in again.' : ''); return; }
      if (res.ok) {
        csrf = res.csrf;
        state = res;
        lastOk = Date.now();
        $('login').hidden = true;
        $('console').hidden = false;
        $('bar-right').hidden = false;
        render(res);
      }
    } catch (e) { /* shown as a stale pulse */ }
    const stale = Date.now() - lastOk > 3 * POLL_MS;
    $('pulse').classList.toggle('stale', stale);
    $('pulse-text').textContent = stale ? 'reconnecting…' : 'live';
    timer = setTimeout(poll, POLL_MS);
  }

  // ---- the model: per-client LUNs and their clients ----
  function model(s) {
    const objs = s.storage_objects || [];
    const byRef = new Map(objs.map((o) => ['/backstores/' + o.plugin + '/' + o.name, o]));
    const luns = [];
    for (const o of objs) {
      if (o.plugin !== 'cow' || !o.per_initiator) continue;
      const base = byRef.get(o.base);
      const baseFile = base && (base.dev || base.uri) ? String(base.dev || base.uri).split('/').pop() : null;
      const clients = new Map();
      for (const ov of s.overlays || []) {
        if (ov.storage !== o.name || !ov.initiator) continue;
        clients.set(ov.initiator.toLowerCase(), { initiator: ov.initiator, overlay: ov, sessions: [] });
        if (!lunNames.has(o.name)) lunNames.set(o.name, ov.luns);
      }
      for (const se of s.sessions || []) {
        if (se.discovery) continue;
        if (!(se.luns || []).some((l) => l.storage === 'cow/' + o.name)) continue;
        const k = se.initiator.toLowerCase();
        if (!clients.has(k)) clients.set(k, { initiator: se.initiator, overlay: null, sessions: [] });
        clients.get(k).sessions.push(se);
      }
      const list = [];
      for (const c of clients.values()) {
        const key = o.name + '|' + c.initiator.toLowerCase();
        const live = c.sessions.length > 0 || !!(c.overlay && c.overlay.live);
        let read = 0, written = 0;
        for (const se of c.sessions) { read += se.bytes_read; written += se.bytes_written; }
        if (c.sessions.length) lastBytes.set(key, { read, written });
        const last = lastBytes.get(key);
        list.push({
          key, storage: o.name, initiator: c.initiator, live,
          alias: c.sessions.map((x) => x.alias).filter(Boolean)[0] || '',
          address: c.sessions.map((x) => x.peer).join(', '),
          since: c.sessions.length ? Math.min(...c.sessions.map((x) => x.since)) : (c.overlay ? c.overlay.last_use : null),
          read: c.sessions.length ? read : (last ? last.read : null),
          written: c.sessions.length ? written : (last ? last.written : null),
          fromLast: !c.sessions.length && !!last,
          allocated: c.overlay ? c.overlay.allocated : 0,
          quota: c.overlay ? c.overlay.quota : 0,
          size: c.overlay ? c.overlay.size : o.size,
        });
      }
      list.sort((a, b) => (b.live - a.live) || a.initiator.localeCompare(b.initiator));
      luns.push({ name: o.name, obj: o, base, baseFile, clients: list, luns: lunNames.get(o.name) || '' });
    }
    return luns;
  }
  const lunNames = new Map();

  // ---- rendering (rows are kept and updated, so a button never moves under a click) ----
  const sections = new Map();        // storage name -> { root, tbody, rows: Map, ... }

  function section(l) {
    let sec = sections.get(l.name);
    if (sec) return sec;
    const root = el('section', 'lun card');
    root.dataset.storage = l.name;
    const head = el('div', 'lun-head');
    const left = el('div');
    const h = el('h2', null, l.name);
    const meta = el('div', 'meta');
    left.append(h, meta);
    const resetAll = el('button', 'btn danger-outline act-reset-all', 'Reset all…');
    resetAll.type = 'button';
    resetAll.title = 'Discard every PC\'s changes on this disk';
    resetAll.addEventListener('click', () => askResetAll(l.name));
    head.append(left, resetAll);
    const table = el('table');
    const thead = el('thead');
    const tr = el('tr');
    for (const t of ['PC (initiator)', 'State', 'Address', 'Read', 'Written', 'Layer', '']) tr.append(el('th', null, t));
    thead.append(tr);
    const tbody = el('tbody');
    table.append(thead, tbody);
    const versions = el('div', 'versions');
    versions.hidden = true;
    root.append(head, table, versions);
    $('luns').append(root);
    sec = { root, meta, tbody, resetAll, versions, rows: new Map(), none: null };
    sections.set(l.name, sec);
    return sec;
  }

  function cell(tr, cls, label) {
    const td = el('td', cls);
    td.dataset.label = label;
    tr.append(td);
    return td;
  }

  function row(sec, c) {
    let r = sec.rows.get(c.key);
    if (r) return r;
    const tr = el('tr', 'client');
    tr.dataset.initiator = c.initiator;
    tr.dataset.storage = c.storage;
    r = { tr };
    r.name = cell(tr, 'c-initiator', 'PC');
    r.state = cell(tr, 'c-state', 'State');
    r.addr = cell(tr, 'c-addr mono', 'Address');
    r.read = cell(tr, 'c-read num', 'Read');
    r.written = cell(tr, 'c-written num', 'Written');
    r.layer = cell(tr, 'c-layer num', 'Layer');
    const act = el('div', 'actions');
    cell(tr, 'c-actions', '').append(act);
    const pub = el('button', 'btn secondary small act-publish', 'Publish…');
    pub.type = 'button';
    pub.title = 'Write this PC\'s disk out as the next version of the base';
    pub.addEventListener('click', () => askPublish(c.storage, tr.dataset.initiator));
    const reset = el('button', 'btn danger-outline small act-reset', 'Reset…');
    reset.type = 'button';
    reset.title = 'Discard this PC\'s changes: its next boot starts from the base';
    reset.addEventListener('click', () => askReset(c.storage, tr.dataset.initiator));
    act.append(pub, reset);
    sec.rows.set(c.key, r);
    return r;
  }

  function fill(r, c, now) {
    r.tr.classList.toggle('is-live', c.live);
    r.tr.dataset.state = c.live ? 'live' : 'idle';
    r.name.replaceChildren(document.createTextNode(c.initiator));
    if (c.alias) r.name.append(el('span', 'alias', c.alias));
    const pill = el('span', 'pill ' + (c.live ? 'live' : 'idle'), c.live ? 'Live' : 'Idle');
    const since = el('span', 'since', c.since ? (c.live ? 'for ' : 'since ') + ago(now - c.since) : '');
    if (c.since) since.title = (c.live ? 'logged in ' : 'last used ') + clock(c.since);
    r.state.replaceChildren(pill, since);
    r.addr.textContent = c.address || '–';
    r.read.textContent = bytes(c.read);
    r.written.textContent = bytes(c.written);
    r.read.title = r.written.title = c.fromLast ? 'its last session' : (c.live ? 'this session' : '');
    const limit = c.quota || c.size || 0;
    const pct = limit ? Math.min(100, (100 * c.allocated) / limit) : 0;
    const meter = el('div', 'meter' + (pct > 95 ? ' full' : pct > 80 ? ' high' : ''));
    const bar = el('i');
    bar.style.width = pct.toFixed(1) + '%';
    meter.append(bar);
    const text = el('span', null, bytes(c.allocated) + ' / ' + bytes(limit) + (c.quota ? ' quota' : ''));
    const wrap = el('div');
    wrap.append(text, meter);
    r.layer.replaceChildren(wrap);
  }

  function render(s) {
    const luns = model(s);
    const now = s.now;
    let up = 0, total = 0, layers = 0, read = 0, written = 0;
    const bases = new Set();
    const seen = new Set();
    for (const l of luns) {
      seen.add(l.name);
      const sec = section(l);
      const quota = l.obj.quota;
      sec.meta.textContent = (l.luns ? l.luns + ' · ' : '') + 'base ' + (l.base ? l.base.plugin + '/' + l.base.name : l.obj.base) +
        (l.baseFile ? ' (' + l.baseFile + ')' : '') + ' · ' + bytes(l.obj.size) + ' disk';
      if (quota) sec.meta.textContent += ' · quota ' + bytes(quota);
      if (l.base) bases.add(l.baseFile || l.base.name);
      const keep = new Set();
      for (const c of l.clients) {
        keep.add(c.key);
        const r = row(sec, c);
        fill(r, c, now);
        sec.tbody.append(r.tr);   // keeps the sorted order
        total++;
        layers += c.allocated;
        if (c.live) { up++; read += c.read || 0; written += c.written || 0; }
      }
      for (const [k, r] of sec.rows) if (!keep.has(k)) { r.tr.remove(); sec.rows.delete(k); }
      if (!l.clients.length) {
        if (!sec.none) {
          sec.none = el('tr', 'none-row');
          const td = el('td', null, 'No PC has used this disk yet: they appear here at their first login.');
          td.colSpan = 7;
          sec.none.append(td);
        }
        sec.tbody.append(sec.none);
      } else if (sec.none) {
        sec.none.remove();
      }
      fillVersions(sec, l.name, (s.images || {})[l.name] || []);
      const liveHere = l.clients.filter((c) => c.live).length;
      sec.resetAll.disabled = !l.clients.length;
      sec.resetAll.dataset.live = String(liveHere);
    }
    for (const [name, sec] of sections) if (!seen.has(name)) { sec.root.remove(); sections.delete(name); }
    $('no-luns').hidden = luns.length > 0;
    $('sum-up').replaceChildren(el('span', up ? 'up' : '', String(up)), document.createTextNode(' / ' + total));
    $('sum-up-sub').textContent = up === 1 ? '1 PC logged in' : up + ' PCs logged in';
    $('sum-layers').textContent = bytes(layers);
    $('sum-traffic').textContent = bytes(read + written);
    $('sum-traffic-sub').textContent = bytes(read) + ' read · ' + bytes(written) + ' written';
    $('sum-base').textContent = bases.size ? Array.from(bases).join(', ') : '–';
    $('sum-base-sub').textContent = 'gateway ' + s.version + ' · config generation ' + (s.generation || '–');
    $('foot').textContent = 'lungate ' + s.version + (s.https ? ' · HTTPS' : '') + ' · updated ' + new Date().toLocaleTimeString();
  }

  // the image versions of a per-client disk (lungate image), each with a roll-back button
  function fillVersions(sec, storage, vers) {
    sec.versions.hidden = !vers.length;
    if (!vers.length) return;
    const key = JSON.stringify(vers);
    if (sec.versions.dataset.key === key) return;   // unchanged: keep the buttons still
    sec.versions.dataset.key = key;
    const table = el('table', 'versions-table');
    const tr = el('tr');
    for (const t of ['Image version', 'Published', 'Note', 'PCs on it', '']) tr.append(el('th', null, t));
    table.append(tr);
    for (const v of vers.slice().reverse()) {
      const row = el('tr', 'version' + (v.current ? ' is-current' : ''));
      row.dataset.version = String(v.id);
      row.append(el('td', null, 'v' + v.id + (v.current ? ' (current)' : '')),
        el('td', null, v.time ? clock(v.time) : '–'), el('td', null, v.note || ''),
        el('td', 'num', String((v.clients || []).length)));
      const td = el('td');
      if (!v.current) {
        const b = el('button', 'btn secondary small act-rollback', 'Roll back…');
        b.type = 'button';
        b.title = 'Make this version current again: PCs get it at their next boot';
        b.addEventListener('click', () => askRollback(storage, v.id));
        td.append(b);
      }
      row.append(td);
      table.append(row);
    }
    sec.versions.replaceChildren(table);
  }

  function client(storage, initiator) {
    for (const l of model(state)) if (l.name === storage) for (const c of l.clients) if (c.initiator === initiator) return c;
    return null;
  }

  // ---- confirmations ----
  function ask(opts) {
    return new Promise((resolve) => {
      $('modal-title').textContent = opts.title;
      $('modal-text').textContent = opts.text;
      $('modal-warn').hidden = !opts.warn;
      $('modal-warn').textContent = opts.warn || '';
      const input = $('modal-input');
      input.hidden = $('modal-label').hidden = opts.input === undefined;
      input.value = opts.input || '';
      const ok = $('modal-ok');
      ok.textContent = opts.ok;
      ok.className = 'btn ' + (opts.danger ? 'danger' : 'primary');
      $('modal').hidden = false;
      (opts.input !== undefined ? input : $('modal-cancel')).focus();
      const done = (v) => {
        $('modal').hidden = true;
        ok.onclick = $('modal-cancel').onclick = null;
        document.onkeydown = null;
        resolve(v);
      };
      ok.onclick = () => done(opts.input !== undefined ? input.value.trim() : true);
      $('modal-cancel').onclick = () => done(null);
      document.onkeydown = (e) => { if (e.key === 'Escape') done(null); };
    });
  }

  async function act(what, url, body) {
    try {
      const res = await api('POST', url, body);
      if (res.status === 401) { showLogin('Your session ended: sign in again.'); return; }
      showResult(what, res);
    } catch (e) {
      notice('error', [what + ' failed: the gateway does not answer']);
    }
    poll();
  }

  async function askReset(storage, initiator) {
    const c = client(storage, initiator);
    if (!c) return;
    const ok = await ask({
      title: 'Reset ' + initiator + '?',
      text: 'Its changes (' + bytes(c.allocated) + ') are discarded: its next boot starts from the base image. This cannot be undone.',
      warn: c.live ? 'This PC is live: it is logged out now (whatever it has not saved is lost), then its disk is reset.' : '',
      ok: c.live ? 'Log out and reset' : 'Reset disk', danger: true,
    });
    if (ok) await act('Reset of ' + initiator, '/api/reset', { storage, initiator, force: c.live });
  }

  async function askResetAll(storage) {
    const l = model(state).find((x) => x.name === storage);
    if (!l) return;
    const live = l.clients.filter((c) => c.live);
    const names = live.map((c) => c.initiator);
    const ok = await ask({
      title: 'Reset all ' + l.clients.length + ' PCs on ' + storage + '?',
      text: 'Every PC\'s changes (' + bytes(l.clients.reduce((a, c) => a + c.allocated, 0)) + ' in all) are discarded: they all start again from the base image.',
      warn: live.length ? 'This logs out ' + live.length + ' live PC' + (live.length === 1 ? '' : 's') + ': ' + names.join(', ') + '.' : '',
      ok: live.length ? 'Log out ' + live.length + ' and reset all' : 'Reset all', danger: true,
    });
    if (ok) await act('Reset of all PCs on ' + storage, '/api/reset-all', { storage, force: live.length > 0 });
  }

  async function askPublish(storage, initiator) {
    const c = client(storage, initiator);
    const l = model(state).find((x) => x.name === storage);
    if (!c || !l) return;
    const stem = (l.baseFile || storage).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9._-]/g, '-');
    const d = new Date();
    const p2 = (n) => String(n).padStart(2, '0');
    const stamp = d.getFullYear() + p2(d.getMonth() + 1) + p2(d.getDate()) + '-' + p2(d.getHours()) + p2(d.getMinutes());
    const file = await ask({
      title: 'Publish ' + initiator + '\'s disk',
      text: 'Writes this PC\'s whole disk (the base plus its ' + bytes(c.allocated) + ' of changes) to a new file beside the base image. To serve it, point the base at the new file and reset the PCs.',
      warn: c.live ? 'This PC is live: it is logged out first, so its disk is consistent.' : '',
      input: stem + '-' + stamp + '.img',
      ok: c.live ? 'Log out and publish' : 'Publish', danger: c.live,
    });
    if (file) await act('Publish of ' + initiator, '/api/commit', { storage, initiator, file, force: c.live });
  }

  async function askRollback(storage, version) {
    const ok = await ask({
      title: 'Roll ' + storage + ' back to version ' + version + '?',
      text: 'Version ' + version + ' becomes the current image again. Running PCs keep the disk they have; each PC gets version ' + version + ' at its next boot.',
      ok: 'Roll back', danger: false,
    });
    if (ok) await act('Roll back of ' + storage + ' to version ' + version, '/api/rollback', { storage, version });
  }

  // ---- start: signed in already (a reload) or not ----
  poll();
})();
