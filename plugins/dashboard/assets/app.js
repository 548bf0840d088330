// alert-router dashboard: loads the router's data from /api/..., keeps it current from
// the server-sent event stream, and draws nothing itself (the charts are SVG from the
// server). Every value is written with textContent, never parsed as HTML.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const SEVERITIES = ['debug', 'info', 'warning', 'error', 'critical'];
  const TRADING = ['trade_opened', 'trade_closed', 'portfolio_update', 'performance_metrics', 'daily_summary'];
  const state = {
    range: sessionStorage.getItem('range') || '1W',
    symbol: '',
    strategy: '',
    severity: '',
    live: true,
    maxEvents: 200,
    feed: [],
    seen: new Set(),
    theme: sessionStorage.getItem('theme') || document.documentElement.dataset.theme || 'dark',
    stream: null,
    down: false,
    pending: null,
    equityWidth: 0,
  };

  // ---- formatting ------------------------------------------------------------------
  const isNum = (v) => typeof v === 'number' && isFinite(v);
  const money = (v, signed) => {
    if (!isNum(v)) return '—';
    const s = Math.abs(v).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return (v < 0 ? '-' : signed && v > 0 ? '+' : '') + '$' + s;
  };
  const price = (v) => {
    if (!isNum(v)) return '—';
    const digits = Math.abs(v) >= 1 ? 2 : 6;
    return '$' + v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: digits });
  };
  const pct = (v, signed = true) => (isNum(v) ? (signed && v > 0 ? '+' : '') + v.toFixed(2) + '%' : '—');
  const plain = (v, d = 2) => (isNum(v) ? v.toFixed(d) : '—');
  // A drawdown or a VaR is a loss: one minus sign, whichever sign the producer used.
  const loss = (v) => (isNum(v) ? (Math.abs(v) >= 0.005 ? '-' : '') + Math.abs(v).toFixed(2) + '%' : '—');
  const lossSign = (v) => (isNum(v) ? -Math.abs(v) : undefined);
  const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  // Where a figure comes from, in the words the Telegram answers use too.
  const seen = (n) => `from ${count(n ?? 0, 'trade', 'trades')} seen`;
  const reportedAt = (t) => 'reported by the bot' + (t ? ' at ' + when(t) : '');
  const sourceText = (f) => {
    if (!f || f.source === 'none') return '';
    if (f.source === 'reported') return reportedAt(f.time);
    if ('daily_returns' in f) return `from ${count(f.daily_returns ?? 0, 'daily return', 'daily returns')}`;
    return seen(f.trades);
  };
  const qty = (v) => (isNum(v) ? v.toLocaleString('en-US', { maximumFractionDigits: 8 }) : '—');
  const when = (t) => {
    if (!t) return '—';
    const d = new Date(t);
    if (isNaN(d)) return String(t);
    return d.toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  };
  const clock = (t) => {
    const d = new Date(t);
    return isNaN(d) ? '' : d.toISOString().slice(11, 19);
  };
  const since = (s) => {
    if (!isNum(s)) return '—';
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${Math.floor(s % 60)}s` : `${Math.floor(s)}s`;
  };
  // The sign class for a figure: green up, red down.
  const signed = (el, v) => {
    el.classList.toggle('pos', isNum(v) && v > 0);
    el.classList.toggle('neg', isNum(v) && v < 0);
  };
  const setText = (id, text, sign) => {
    const el = $(id);
    el.textContent = text;
    if (sign !== undefined) signed(el, sign);
  };
  const cell = (tr, text, cls, sign) => {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    if (sign !== undefined) signed(td, sign);
    tr.appendChild(td);
    return td;
  };
  const emptyRow = (tbody, cols, text) => {
    const tr = document.createElement('tr');
    const td = cell(tr, text, 'muted');
    td.colSpan = cols;
    tbody.replaceChildren(tr);
  };
  const kv = (dl, rows) => {
    const out = [];
    for (const [label, text, sign] of rows) {
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.textContent = text;
      if (sign !== undefined) signed(dd, sign);
      out.push(dt, dd);
    }
    dl.replaceChildren(...out);
  };

  // ---- data ------------------------------------------------------------------------
  const get = async (path, asText) => {
    const r = await fetch(path, { cache: 'no-store', credentials: 'same-origin' });
    if (!r.ok) {
      let why = r.status + ' ' + r.statusText;
      try { why = (await r.json()).error || why; } catch (_) { /* not JSON */ }
      throw new Error(path.split('?')[0] + ': ' + why);
    }
    return asText ? r.text() : r.json();
  };
  const problems = new Map();
  const report = (key, err) => {
    if (err) problems.set(key, err.message || String(err)); else problems.delete(key);
    const banner = $('banner');
    banner.hidden = problems.size === 0;
    banner.textContent = [...problems.values()].join(' · ');
  };
  const load = (key, fn) => fn().then(() => report(key), (e) => report(key, e));

  const loadSummary = () => load('summary', async () => {
    const s = await get('api/summary');
    setText('m-total-value', money(s.total_value));
    setText('m-total-sub', isNum(s.cash) ? 'cash ' + money(s.cash) : s.updated_at ? 'as of ' + when(s.updated_at) : 'no portfolio update yet');
    const pnl = s.pnl || {};
    setText('m-pnl', money(pnl.value, true), pnl.value);
    if (pnl.source === 'computed') setText('m-pnl-pct', 'closed trades, ' + seen(pnl.trades), pnl.value);
    else setText('m-pnl-pct', isNum(pnl.pct) ? pct(pnl.pct) : '', pnl.pct);
    const win = s.win_rate || {};
    setText('m-win-rate', isNum(win.value) ? win.value.toFixed(1) + '%' : '—');
    setText('m-trades', sourceText(win));
    const sharpe = s.sharpe_ratio || {};
    setText('m-sharpe', plain(sharpe.value), sharpe.value);
    setText('m-sharpe-source', sourceText(sharpe));
    $('updated').textContent = s.updated_at ? 'portfolio as of ' + when(s.updated_at) : '';
  });

  const loadPositions = () => load('positions', async () => {
    const p = await get('api/positions');
    const tbody = $('positions').tBodies[0];
    const list = p.positions || [];
    $('positions-count').textContent = list.length ? list.length + ' open' : '';
    if (!list.length) return emptyRow(tbody, 8, 'No open positions');
    tbody.replaceChildren(...list.map((x) => {
      const tr = document.createElement('tr');
      cell(tr, x.symbol);
      cell(tr, x.side);
      cell(tr, qty(x.quantity), 'num');
      cell(tr, price(x.entry_price), 'num');
      cell(tr, price(x.current_price), 'num');
      cell(tr, money(x.value), 'num');
      cell(tr, money(x.pnl, true), 'num', x.pnl);
      cell(tr, pct(x.pnl_pct), 'num', x.pnl_pct);
      return tr;
    }));
  });

  const fillSelect = (select, values, current) => {
    const options = [new Option('All', '')].concat(values.map((v) => new Option(v, v)));
    select.replaceChildren(...options);
    select.value = values.includes(current) ? current : '';
  };
  const loadTrades = () => load('trades', async () => {
    const q = new URLSearchParams();
    if (state.symbol) q.set('symbol', state.symbol);
    if (state.strategy) q.set('strategy', state.strategy);
    const t = await get('api/trades' + (q.toString() ? '?' + q : ''));
    fillSelect($('f-symbol'), t.symbols || [], state.symbol);
    fillSelect($('f-strategy'), t.strategies || [], state.strategy);
    const list = t.trades || [];
    $('trades-count').textContent = isNum(t.total) ? `${list.length} of ${t.total}` : '';
    const tbody = $('trades').tBodies[0];
    if (!list.length) return emptyRow(tbody, 10, state.symbol || state.strategy ? 'No trades match the filters' : 'No closed trades yet');
    tbody.replaceChildren(...list.map((x) => {
      const tr = document.createElement('tr');
      cell(tr, x.closed_at ? when(x.closed_at).replace(' UTC', '') : '—');
      cell(tr, x.symbol);
      cell(tr, x.side);
      cell(tr, x.strategy || '—');
      cell(tr, price(x.entry_price), 'num');
      cell(tr, price(x.exit_price), 'num');
      cell(tr, qty(x.quantity), 'num');
      cell(tr, money(x.pnl, true), 'num', x.pnl);
      cell(tr, pct(x.pnl_pct), 'num', x.pnl_pct);
      cell(tr, x.reason || '');
      return tr;
    }));
  });

  // The producer's fields, labelled and formatted; any other field is shown as sent.
  const REPORTED = {
    date: ['Date', String],
    total_trades: ['Total trades', String],
    winning_trades: ['Winning trades', String],
    losing_trades: ['Losing trades', String],
    win_rate: ['Win rate', (v) => pct(v, false)],
    total_pnl: ['Total P&L', (v) => money(v, true), (v) => v],
    total_pnl_pct: ['Total P&L %', (v) => pct(v), (v) => v],
    best_trade: ['Best trade', (v) => money(v, true), (v) => v],
    worst_trade: ['Worst trade', (v) => money(v, true), (v) => v],
    portfolio_value: ['Portfolio value', (v) => money(v)],
    total_return: ['Total return', (v) => pct(v), (v) => v],
    sharpe_ratio: ['Sharpe ratio', (v) => plain(v), (v) => v],
    sortino_ratio: ['Sortino ratio', (v) => plain(v), (v) => v],
    profit_factor: ['Profit factor', (v) => plain(v)],
    max_drawdown: ['Max drawdown', loss, lossSign],
    volatility: ['Volatility', (v) => pct(v, false)],
    var_95: ['VaR 95% (1 day)', loss, lossSign],
  };
  const asSent = (v) => (isNum(v) ? v.toLocaleString('en-US', { maximumFractionDigits: 8 }) : typeof v === 'string' ? v : JSON.stringify(v));
  const reportedRows = (r) => {
    const known = Object.keys(REPORTED).filter((k) => k in r);
    const other = Object.keys(r).filter((k) => k !== 'time' && !(k in REPORTED)).sort();
    return known.map((k) => {
      const [label, fmt, sign] = REPORTED[k];
      const v = r[k];
      return [label, typeof v === 'number' || k === 'date' ? fmt(v) : asSent(v), sign && isNum(v) ? sign(v) : undefined];
    }).concat(other.map((k) => [k.charAt(0).toUpperCase() + k.slice(1).replace(/_/g, ' '), asSent(r[k])]));
  };

  const loadPerformance = () => load('performance', async () => {
    const p = await get('api/performance');
    // Computed: the router's own figures, from the events it saw.
    const c = p.computed || {};
    $('performance-source').textContent = seen(c.total_trades);
    kv($('performance'), [
      ['Total trades', isNum(c.total_trades) ? String(c.total_trades) : '—'],
      ['Wins / losses', `${c.wins ?? '—'} / ${c.losses ?? '—'}`],
      ['Win rate', isNum(c.win_rate) ? c.win_rate.toFixed(1) + '%' : '—'],
      ['Total P&L (closed)', money(c.total_pnl, true), c.total_pnl],
      ['Total return', pct(c.total_return), c.total_return],
      ['Profit factor', plain(c.profit_factor)],
      ['Average win', money(c.avg_win, true), c.avg_win],
      ['Average loss', money(c.avg_loss, true), c.avg_loss],
      ['Best trade', money(c.best_trade, true), c.best_trade],
      ['Worst trade', money(c.worst_trade, true), c.worst_trade],
      ['Expectancy', money(c.expectancy, true), c.expectancy],
      ['Today', c.today ? `${count(c.today.trades, 'trade', 'trades')}, ${money(c.today.pnl, true)}` : '—', c.today && c.today.pnl],
    ]);
    $('risk-source').textContent = {
      portfolio_update: `from portfolio updates, ${count(c.daily_returns ?? 0, 'daily return', 'daily returns')}`,
      trades: 'from closed trades (ratios need portfolio updates)',
    }[c.equity_source] || 'no portfolio updates yet';
    kv($('risk'), [
      ['Max drawdown', loss(c.max_drawdown), lossSign(c.max_drawdown)],
      ['Max drawdown ($)', isNum(c.max_drawdown_abs) ? money(-Math.abs(c.max_drawdown_abs)) : '—', lossSign(c.max_drawdown_abs)],
      ['Volatility (annualised)', pct(c.volatility, false)],
      ['VaR 95% (1 day)', loss(c.var_95), lossSign(c.var_95)],
      ['Sharpe ratio', plain(c.sharpe_ratio), c.sharpe_ratio],
      ['Sortino ratio', plain(c.sortino_ratio), c.sortino_ratio],
      ['Daily returns used', isNum(c.daily_returns) ? String(c.daily_returns) : '—'],
    ]);
    // Reported: the producer's latest events, as sent, apart from the router's figures.
    const r = p.reported || {};
    const metrics = r.performance_metrics;
    const daily = r.daily_summary;
    $('reported-empty').hidden = Boolean(metrics || daily);
    $('reported-metrics-block').hidden = !metrics;
    $('reported-daily-block').hidden = !daily;
    if (metrics) {
      $('reported-metrics-source').textContent = reportedAt(metrics.time);
      kv($('reported-metrics'), reportedRows(metrics));
    }
    if (daily) {
      $('reported-daily-source').textContent = reportedAt(daily.time);
      kv($('reported-daily'), reportedRows(daily));
    }
  });

  const chartTheme = () => 'theme=' + encodeURIComponent(state.theme);
  // Drawn at the width it is shown, so its text is the size it was drawn at.
  const chartWidth = () => Math.max(280, Math.round($('equity-chart').clientWidth || 800));
  const loadEquity = () => load('equity', async () => {
    state.equityWidth = chartWidth();
    const svg = await get(`api/charts/equity.svg?range=${encodeURIComponent(state.range)}&width=${state.equityWidth}&${chartTheme()}`, true);
    $('equity-chart').innerHTML = svg; // our own server's SVG: numbers and dates only
    for (const b of $('range').querySelectorAll('button')) {
      b.setAttribute('aria-pressed', String(b.dataset.range === state.range));
    }
  });
  const loadAllocation = () => load('allocation', async () => {
    $('allocation-chart').innerHTML = await get('api/charts/allocation.svg?' + chartTheme(), true);
  });

  const loadStatus = () => load('status', async () => renderStatus(await get('api/status')));
  const renderStatus = (s) => {
    const c = s.config || {};
    const e = s.events || {};
    const last = c.last_reload;
    kv($('router-status'), [
      ['Version', s.version || '—'],
      ['Uptime', since(s.uptime_seconds)],
      ['Events accepted', String(e.accepted ?? '—')],
      ['Unrouted', String(e.unrouted ?? '—')],
      ['Rejected', String(e.rejected ?? '—')],
      ['Routes', String(c.routes ?? '—')],
      ['Config loaded', when(c.loaded_at)],
      ['Last reload', last ? (last.ok ? 'ok' : 'failed') + ' · ' + when(last.at) : 'none'],
    ]);
    const sinks = Object.entries(s.sinks || {});
    $('sink-list').replaceChildren(...sinks.map(([name, x]) => {
      const li = document.createElement('li');
      const n = document.createElement('span');
      n.textContent = name;
      const b = document.createElement('span');
      b.className = 'badge ' + (x.healthy ? 'ok' : 'bad');
      b.textContent = x.healthy ? 'healthy' : 'unhealthy';
      li.append(n, b);
      return li;
    }));
    const tbody = $('sinks').tBodies[0];
    if (!sinks.length) return emptyRow(tbody, 8, 'No sinks');
    tbody.replaceChildren(...sinks.map(([name, x]) => {
      const tr = document.createElement('tr');
      cell(tr, name);
      cell(tr, x.plugin || '—');
      cell(tr, x.healthy ? '● healthy' : '● unhealthy', x.healthy ? 'pos' : 'neg');
      cell(tr, String(x.queued ?? 0), 'num');
      cell(tr, String(x.sent ?? 0), 'num');
      cell(tr, String(x.failed ?? 0), 'num', x.failed > 0 ? -1 : undefined);
      cell(tr, String(x.rate_limited ?? 0), 'num');
      cell(tr, x.last_error || '', 'err');
      return tr;
    }));
  };

  // ---- noise control -------------------------------------------------------------------
  const loadNoise = () => load('noise', async () => renderNoise(await get('api/noise')));
  const th = (text, cls) => {
    const el = document.createElement('th');
    el.textContent = text;
    if (cls) el.className = cls;
    return el;
  };
  const capital = (s) => s.charAt(0).toUpperCase() + s.slice(1);
  const renderNoise = (n) => {
    const held = n.held_back || {};
    const router = held.router || {};
    // The columns are the reasons the router counts, in its order: a new one shows too.
    const reasons = Object.keys(router);
    $('held-back').tHead.rows[0].replaceChildren(th('Sink'), ...reasons.map((r) => th(capital(r), 'num')));
    const heldRows = [['All sinks', router]].concat(Object.entries(held.sinks || {}));
    $('held-back').tBodies[0].replaceChildren(...heldRows.map(([name, counts], i) => {
      const tr = document.createElement('tr');
      if (i === 0) tr.className = 'total';
      else tr.dataset.sink = name;
      cell(tr, name);
      for (const r of reasons) {
        const v = (counts || {})[r] ?? 0;
        cell(tr, String(v), v > 0 ? 'num held' : 'num');
      }
      return tr;
    }));
    const total = reasons.reduce((sum, r) => sum + (isNum(router[r]) ? router[r] : 0), 0);

    const alerts = n.alerts || {};
    const firing = alerts.firing || [];
    const ac = alerts.counts || {};
    const cut = ac.firing > firing.length ? `, the newest ${firing.length} shown` : '';
    $('alerts-count').textContent = `· ${ac.firing ?? 0} firing, ${ac.resolved ?? 0} resolved${cut}`;
    const alertBody = $('alerts').tBodies[0];
    if (!firing.length) emptyRow(alertBody, 6, 'No alert is firing');
    else alertBody.replaceChildren(...firing.map((x) => {
      const tr = document.createElement('tr');
      tr.dataset.fingerprint = x.fingerprint || '';
      cell(tr, x.type || '—');
      cell(tr, x.severity || '—', 'sev-' + (x.severity || 'info'));
      const labels = cell(tr, '', 'wrap');
      const pairs = Object.entries(x.labels || {});
      if (!pairs.length) labels.textContent = '—';
      labels.append(...pairs.map(([k, v]) => {
        const chip = document.createElement('span');
        chip.className = 'label-chip';
        chip.textContent = `${k}=${v}`;
        return chip;
      }));
      cell(tr, isNum(x.since_seconds) ? since(x.since_seconds) + ' ago' : when(x.starts_at)).title = when(x.starts_at);
      cell(tr, String(x.count ?? '—'), 'num');
      cell(tr, x.held_back || 'sent', x.held_back ? 'held' : 'muted');
      return tr;
    }));

    const silences = n.silences || {};
    const current = silences.current || [];
    const sc = silences.counts || {};
    $('silences-count').textContent = `· ${sc.active ?? 0} active, ${sc.pending ?? 0} pending, ${sc.expired ?? 0} expired`;
    const silenceBody = $('silences').tBodies[0];
    if (!current.length) emptyRow(silenceBody, 6, 'No silence is active or pending');
    else silenceBody.replaceChildren(...current.map((x) => {
      const tr = document.createElement('tr');
      tr.dataset.id = x.id || '';
      cell(tr, x.state || '—', x.state === 'active' ? 'held' : 'muted');
      cell(tr, (x.matchers || []).join(', '), 'wrap');
      const pending = x.state === 'pending';
      const left = pending ? x.starts_in_seconds : x.ends_in_seconds;
      const at = pending ? x.starts_at : x.ends_at;
      const text = isNum(left) ? `${pending ? 'starts' : 'ends'} in ${since(left)}` : when(at);
      cell(tr, text).title = `${when(x.starts_at)} → ${when(x.ends_at)}`;
      cell(tr, x.created_by || '—');
      cell(tr, x.comment || '', 'wrap');
      cell(tr, String(x.held_back ?? 0), 'num');
      return tr;
    }));

    const groups = n.groups || {};
    $('noise-summary').textContent = [
      count(ac.firing ?? 0, 'alert firing', 'alerts firing'),
      count(sc.active ?? 0, 'silence active', 'silences active'),
      count(groups.open ?? 0, 'group open', 'groups open'),
      `${total} held back`,
    ].join(' · ');
  };

  // ---- live feed ---------------------------------------------------------------------
  const rank = (s) => Math.max(0, SEVERITIES.indexOf(s));
  const renderFeed = () => {
    const min = state.severity ? rank(state.severity) : 0;
    const shown = state.feed.filter((i) => rank(i.severity) >= min);
    const ol = $('feed');
    if (!shown.length) {
      const li = document.createElement('li');
      li.className = 'muted empty';
      li.textContent = state.feed.length ? 'No events at this severity' : 'No events yet';
      return ol.replaceChildren(li);
    }
    ol.replaceChildren(...shown.map((i) => {
      const li = document.createElement('li');
      li.className = `sev-${i.severity} tone-${i.tone}`;
      li.dataset.id = i.id;
      li.dataset.type = i.type;
      const meta = document.createElement('div');
      meta.className = 'meta';
      const sev = document.createElement('span');
      sev.className = 'sev';
      sev.textContent = i.severity;
      const at = document.createElement('span');
      at.textContent = when(i.time);
      const type = document.createElement('span');
      type.textContent = i.type;
      meta.append(sev, type, at);
      const title = document.createElement('div');
      title.className = 'title';
      title.textContent = i.title;
      const text = document.createElement('div');
      text.className = 'text';
      text.textContent = i.text;
      li.append(meta, title, text);
      return li;
    }));
  };
  // Adds items (newest first or not), each once, keeping the newest maxEvents.
  const addFeed = (items) => {
    let added = false;
    for (const i of items) {
      if (state.seen.has(i.id)) continue;
      state.seen.add(i.id);
      state.feed.push(i);
      added = true;
    }
    if (!added) return;
    state.feed.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0));
    while (state.feed.length > state.maxEvents) state.seen.delete(state.feed.pop().id);
    renderFeed();
  };
  const loadFeed = () => load('feed', async () => addFeed((await get('api/feed')).events || []));

  // ---- refreshing ----------------------------------------------------------------------
  const loadState = () => Promise.all([loadSummary(), loadPositions(), loadTrades(), loadPerformance(), loadEquity(), loadAllocation()]);
  const loadAll = () => Promise.all([loadState(), loadFeed(), loadStatus(), loadNoise()]);
  // Trading events come in bursts: one refresh for a burst.
  const soon = () => {
    if (state.pending) return;
    state.pending = setTimeout(() => {
      state.pending = null;
      loadState();
    }, 120);
  };

  const applyInfo = (info) => {
    if (!info) return;
    document.title = info.title;
    $('title').textContent = info.title;
    $('brand-title').textContent = info.title;
    $('version').textContent = 'v' + info.version;
    state.maxEvents = info.max_events || state.maxEvents;
    if (!sessionStorage.getItem('theme') && info.theme !== state.theme) setTheme(info.theme, false);
  };
  const setTheme = (theme, remember) => {
    state.theme = theme;
    document.documentElement.dataset.theme = theme;
    $('theme-toggle').textContent = theme === 'dark' ? 'Light theme' : 'Dark theme';
    if (remember) sessionStorage.setItem('theme', theme);
    loadEquity();
    loadAllocation();
  };
  const setConn = (what, text) => {
    $('conn').dataset.state = what;
    $('conn-text').textContent = text;
  };

  const connect = () => {
    if (state.stream) state.stream.close();
    const es = new EventSource('api/events');
    state.stream = es;
    es.addEventListener('open', () => {
      setConn('live', 'live');
      // Back after the router restarted: what changed meanwhile.
      if (state.down) {
        state.down = false;
        loadAll();
      }
    });
    es.addEventListener('error', () => {
      state.down = true;
      setConn('down', 'reconnecting…');
    });
    es.addEventListener('hello', (e) => applyInfo(JSON.parse(e.data)));
    es.addEventListener('config', (e) => applyInfo(JSON.parse(e.data)));
    es.addEventListener('status', (e) => { if (state.live) renderStatus(JSON.parse(e.data)); });
    es.addEventListener('noise', (e) => { if (state.live) renderNoise(JSON.parse(e.data)); });
    es.addEventListener('resync', () => loadFeed());
    es.addEventListener('feed', (e) => {
      const item = JSON.parse(e.data);
      addFeed([item]);
      if (state.live && TRADING.includes(item.type)) soon();
    });
  };

  // ---- controls ------------------------------------------------------------------------
  const init = () => {
    // A token given in the address is now a cookie: keep it out of the address bar.
    if (new URLSearchParams(location.search).has('token')) {
      history.replaceState(null, '', location.pathname);
    }
    $('theme-toggle').textContent = state.theme === 'dark' ? 'Light theme' : 'Dark theme';
    document.documentElement.dataset.theme = state.theme;
    $('range').addEventListener('click', (e) => {
      const r = e.target && e.target.dataset && e.target.dataset.range;
      if (!r) return;
      state.range = r;
      sessionStorage.setItem('range', r);
      loadEquity();
    });
    $('f-symbol').addEventListener('change', (e) => { state.symbol = e.target.value; loadTrades(); });
    $('f-strategy').addEventListener('change', (e) => { state.strategy = e.target.value; loadTrades(); });
    $('f-severity').addEventListener('change', (e) => { state.severity = e.target.value; renderFeed(); });
    $('live').addEventListener('change', (e) => {
      state.live = e.target.checked;
      if (state.live) loadAll();
    });
    $('refresh').addEventListener('click', () => loadAll());
    $('theme-toggle').addEventListener('click', () => setTheme(state.theme === 'dark' ? 'light' : 'dark', true));
    let resizing = null;
    window.addEventListener('resize', () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => {
        if (Math.abs(chartWidth() - (state.equityWidth || 0)) > 40) loadEquity();
      }, 200);
    });
    load('info', async () => applyInfo(await get('api/info')));
    loadAll().then(() => { document.body.dataset.loaded = 'true'; });
    connect();
  };
  init();
})();
