(() => {
  'use strict';
  // The admin key lives in this tab's session storage only; it goes out in a header, never in a URL.
  const keyName = 'tenantdb.adminKey';
  const refreshMs = 15000;
  const base = location.pathname.replace(/\/dashboard\/?$/, '');
  const healthWords = ['healthy', 'degraded', 'unhealthy', 'unknown'];
  const $ = (id) => document.getElementById(id);
  let timer = null;

  class KeyRefused extends Error {}

  function cell(row, text, className) {
    const td = document.createElement('td');
    td.textContent = text === null || text === undefined ? '' : String(text);
    if (className) { td.className = className; }
    row.appendChild(td);
    return td;
  }

  function field(td, name) { td.dataset.field = name; return td; }

  // An ISO timestamp shown to the second, in UTC; the exact value in the tooltip.
  function when(row, text) {
    const d = new Date(text);
    const td = cell(row, !text ? '—' : isNaN(d.getTime()) ? text : d.toISOString().slice(0, 19).replace('T', ' ') + 'Z', 'when');
    if (text) { td.title = String(text); }
    return td;
  }

  function emptyRow(tbody, columns, text) {
    const tr = document.createElement('tr');
    const td = cell(tr, text, 'empty');
    td.colSpan = columns;
    tbody.appendChild(tr);
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function badge(td, health) {
    const span = document.createElement('span');
    span.className = 'badge' + (healthWords.includes(health) ? ' ' + health : '');
    span.textContent = String(health);
    td.appendChild(span);
  }

  function capacityBar(td, used, max) {
    const pct = max > 0 ? Math.min(100, Math.round(1000 * used / max) / 10) : 0;
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.setAttribute('role', 'img');
    bar.setAttribute('aria-label', pct + '% used');
    const fill = document.createElement('span');
    fill.className = 'fill' + (pct >= 100 ? ' full' : pct >= 80 ? ' high' : '');
    fill.style.display = 'block';
    fill.style.width = pct + '%';
    bar.appendChild(fill);
    td.appendChild(bar);
    const label = document.createElement('span');
    label.className = 'pct';
    label.textContent = pct + '%';
    td.appendChild(label);
  }

  async function getJson(path, key) {
    const response = await fetch(base + path, {
      headers: { 'x-functions-key': key, 'accept': 'application/json' },
      cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
    });
    if (response.status === 401 || response.status === 403) { throw new KeyRefused(); }
    if (!response.ok) {
      let title = response.statusText;
      try { const problem = await response.json(); title = problem.title || problem.detail || title; } catch (e) { /* not JSON */ }
      throw new Error(path + ' answered ' + response.status + ' ' + title);
    }
    return response.json();
  }

  function renderSummary(stats) {
    const dl = $('summary');
    clear(dl);
    const items = [
      ['Pools', stats.total_pools, 'total_pools'],
      ['Capacity', stats.total_capacity, 'total_capacity'],
      ['Used', stats.used_capacity, 'used_capacity'],
      ['Available', stats.available_capacity, 'available_capacity'],
      ['Utilisation', stats.utilization_percent + '%', 'utilization_percent'],
      ['Tenants', stats.total_tenants, 'total_tenants'],
    ];
    for (const h of healthWords) { items.push(['Pools ' + h, (stats.pools_by_health || {})[h] || 0, 'health_' + h]); }
    for (const [label, value, name] of items) {
      const div = document.createElement('div');
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.textContent = String(value);
      dd.dataset.field = name;
      div.appendChild(dt);
      div.appendChild(dd);
      dl.appendChild(div);
    }
  }

  function renderPools(page, activity) {
    const tbody = $('pools').tBodies[0];
    clear(tbody);
    const tenants = new Map((activity.tenants_by_pool || []).map((t) => [t.pool_id, t.live]));
    if (page.pools.length === 0) { emptyRow(tbody, 9, 'No pools yet.'); return; }
    for (const pool of page.pools) {
      const tr = document.createElement('tr');
      tr.dataset.poolId = String(pool.id);
      field(cell(tr, pool.name, 'nowrap'), 'name');
      field(cell(tr, pool.server_type), 'server_type');
      field(cell(tr, pool.status), 'status');
      const health = field(cell(tr, ''), 'health');
      badge(health, pool.health_status);
      capacityBar(field(cell(tr, ''), 'capacity'), pool.current_instances, pool.max_instances);
      field(cell(tr, pool.current_instances, 'num'), 'used');
      field(cell(tr, pool.max_instances, 'num'), 'max');
      field(cell(tr, tenants.get(pool.id) || 0, 'num'), 'tenants');
      field(when(tr, pool.last_health_check), 'last_check');
      tbody.appendChild(tr);
    }
    if (page.total > page.pools.length) { emptyRow(tbody, 9, 'Showing ' + page.pools.length + ' of ' + page.total + ' pools.'); }
  }

  function renderRuns(activity) {
    const runs = $('runs').tBodies[0];
    clear(runs);
    if (activity.provisioning_runs.length === 0) { emptyRow(runs, 6, 'No pool is being made.'); }
    for (const run of activity.provisioning_runs) {
      const tr = document.createElement('tr');
      tr.dataset.poolId = String(run.pool_id);
      if (run.orchestration_id) { tr.dataset.orchestrationId = run.orchestration_id; }
      field(cell(tr, run.pool_name, 'nowrap'), 'pool_name');
      field(cell(tr, run.server_type), 'server_type');
      field(cell(tr, run.status), 'status');
      field(cell(tr, run.orchestration_id || '—', 'mono'), 'orchestration_id');
      field(cell(tr, run.runtime_status || 'not found'), 'runtime_status');
      field(when(tr, run.since), 'since');
      runs.appendChild(tr);
    }
    const waiting = $('waiting').tBodies[0];
    clear(waiting);
    if (activity.waiting_allocations.length === 0) { emptyRow(waiting, 3, 'No allocation is waiting.'); }
    for (const wait of activity.waiting_allocations) {
      const tr = document.createElement('tr');
      tr.dataset.instanceId = wait.instance_id;
      field(cell(tr, wait.instance_id, 'mono'), 'instance_id');
      field(cell(tr, wait.runtime_status), 'runtime_status');
      field(when(tr, wait.since), 'since');
      waiting.appendChild(tr);
    }
  }

  function renderEvents(activity) {
    const tbody = $('events').tBodies[0];
    clear(tbody);
    if (activity.recent_events.length === 0) { emptyRow(tbody, 8, 'No events yet.'); }
    for (const e of activity.recent_events) {
      const tr = document.createElement('tr');
      tr.dataset.eventId = String(e.id);
      field(when(tr, e.at), 'at');
      field(cell(tr, e.pool_name || (e.pool_id ? '#' + e.pool_id : '—'), 'nowrap'), 'pool_name');
      field(cell(tr, e.event), 'event');
      field(cell(tr, e.from_status || ''), 'from_status');
      field(cell(tr, e.to_status || ''), 'to_status');
      field(cell(tr, e.actor), 'actor');
      field(cell(tr, e.reason || ''), 'reason');
      field(cell(tr, e.instance_id || '', 'mono'), 'instance_id');
      tbody.appendChild(tr);
    }
  }

  function clearData() {
    for (const id of ['pools', 'runs', 'waiting', 'events']) { clear($(id).tBodies[0]); }
    clear($('summary'));
    $('load-error').textContent = '';
    $('updated').textContent = '';
    $('data').hidden = true;
    $('session').hidden = true;
    document.body.dataset.state = 'locked';
  }

  function showKeyPanel(message) {
    if (timer) { clearTimeout(timer); timer = null; }
    clearData();
    $('key-error').textContent = message || '';
    $('key-panel').hidden = false;
    $('key').focus();
  }

  async function load() {
    if (timer) { clearTimeout(timer); timer = null; }
    const key = sessionStorage.getItem(keyName);
    if (!key) { showKeyPanel(''); return; }
    try {
      const [stats, pools, activity] = await Promise.all([
        getJson('/stats', key), getJson('/pools?page_size=200', key), getJson('/activity', key),
      ]);
      $('key-panel').hidden = true;
      $('key-error').textContent = '';
      $('load-error').textContent = '';
      renderSummary(stats);
      renderPools(pools, activity);
      renderRuns(activity);
      renderEvents(activity);
      $('updated').textContent = 'Updated ' + new Date().toISOString();
      $('data').hidden = false;
      $('session').hidden = false;
      document.body.dataset.state = 'loaded';
    } catch (e) {
      if (e instanceof KeyRefused) {
        sessionStorage.removeItem(keyName);
        showKeyPanel('The key was refused: this page needs the admin (master) key.');
        return;
      }
      $('load-error').textContent = 'Could not load: ' + e.message;
      document.body.dataset.state = 'error';
    }
    timer = setTimeout(load, refreshMs);
  }

  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('key');
    const key = input.value.trim();
    input.value = '';
    if (!key) { return; }
    sessionStorage.setItem(keyName, key);
    load();
  });
  $('refresh').addEventListener('click', () => load());
  $('forget').addEventListener('click', () => { sessionStorage.removeItem(keyName); showKeyPanel('Key forgotten.'); });
  load();
})();
