/* The association's dashboard: every figure comes from /api/v1/stats/*; this file only
   fetches, formats, sorts and draws. The staff token lives in a variable, never in storage. */
(function () {
  'use strict';

  const API = '/api/v1';
  const ROLE_NAMES = { analyst: '分析人员', admin: '管理员', editor: '编辑', resident: '居民' };
  const {
    DIMENSION_NAMES, FONT, SUPPRESSED, pct, interval, count, perThousand, points, rankedRows,
  } = window.DashboardCharts;
  const Charts = window.DashboardCharts;

  const state = { token: null, user: null, seq: 0, data: null, charts: {} };
  const $ = (id) => document.getElementById(id);

  /* ---------- the API ---------- */

  class ApiError extends Error {
    constructor(status, message, serverMessage) {
      super(message);
      this.status = status;
      this.serverMessage = serverMessage || message;
    }
  }

  function describe(status, serverMessage) {
    if (status === 401) return '登录已过期，请重新登录。';
    if (status === 403) return '无权查看统计数据';
    if (status === 429) return serverMessage || '请求过于频繁，请稍后再试。';
    if (status >= 500) return '服务器暂时出错（' + status + '），请稍后再试。';
    return serverMessage || '请求失败（' + status + '）。';
  }

  async function failure(response) {
    let body = null;
    try { body = await response.json(); } catch (ignored) { body = null; }
    const serverMessage = body && body.error ? body.error.message : '';
    return new ApiError(response.status, describe(response.status, serverMessage), serverMessage);
  }

  async function request(path, options) {
    const headers = {};
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    if (options && options.body !== undefined) headers['Content-Type'] = 'application/json';
    try {
      return await fetch(API + path, {
        method: (options && options.method) || 'GET',
        headers,
        body: options && options.body !== undefined ? JSON.stringify(options.body) : undefined,
        cache: 'no-store',
      });
    } catch (ignored) {
      throw new ApiError(0, '无法连接服务器，请检查网络后重试。');
    }
  }

  async function api(path, options) {
    const response = await request(path, options);
    if (!response.ok) throw await failure(response);
    try {
      return await response.json();
    } catch (ignored) {
      throw new ApiError(response.status, '服务器返回的数据无法识别，请稍后再试。');
    }
  }

  const query = (params) => '?' + new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== '')).toString();

  /* ---------- messages and page states ---------- */

  function showMessage(title, detail, kind) {
    $('message').className = 'message' + (kind === 'info' ? ' info' : '');
    $('message-title').textContent = title;
    $('message-detail').textContent = detail || '';
    $('message').hidden = false;
  }

  function clearMessage() { $('message').hidden = true; }

  function setState(name) { document.body.dataset.state = name; }

  function showLogin() {
    state.token = null;
    state.user = null;
    state.data = null;
    state.seq += 1;
    $('session').hidden = true;
    $('dashboard').hidden = true;
    $('figures').hidden = true;
    $('login-panel').hidden = false;
    $('password').value = '';
    setState('login');
  }

  function handleError(error) {
    if (!(error instanceof ApiError)) {
      showMessage('页面显示出错，请刷新后重试。', String(error && error.message || error));
      setState('error');
      return;
    }
    if (error.status === 401) {
      showLogin();
      showMessage(error.message, '为保护数据安全，登录会在一段时间后失效。');
      return;
    }
    if (error.status === 403) {
      $('dashboard').hidden = true;
      showMessage('无权查看统计数据', '当前账号没有查看统计数据的权限，请使用分析人员或管理员账号登录。');
      setState('forbidden');
      return;
    }
    $('figures').hidden = true;  // never old figures under a new period's heading
    showMessage(error.message, '可点击“刷新”重试。');
    setState('error');
  }

  /* ---------- sign in and out ---------- */

  async function signIn(event) {
    event.preventDefault();
    const button = $('login-submit');
    button.disabled = true;
    clearMessage();
    let session;
    try {
      const body = { username: $('username').value.trim(), password: $('password').value };
      session = await api('/auth/staff', { method: 'POST', body });
    } catch (error) {
      loginFailed(error);
      return;
    } finally {
      button.disabled = false;
    }
    signedIn(session);
    try {
      await start();
    } catch (error) {
      handleError(error);
    }
  }

  function loginFailed(error) {
    const refused = error instanceof ApiError && [401, 422, 429].includes(error.status);
    showMessage('登录失败', refused ? error.serverMessage : error.message);
    setState('login');
  }

  function signedIn(session) {
    state.token = session.token;
    state.user = session.user;
    $('password').value = '';
    $('login-panel').hidden = true;
    $('who').textContent = '已登录：' + session.user.username
      + '（' + (ROLE_NAMES[session.user.role] || session.user.role) + '）';
    $('session').hidden = false;
  }

  async function signOut() {
    const token = state.token;
    showLogin();
    showMessage('已退出登录', '', 'info');
    if (!token) return;
    try {
      await fetch(API + '/auth/logout', { method: 'POST', headers: { Authorization: 'Bearer ' + token } });
    } catch (ignored) {
      /* The token is forgotten here anyway; it also expires on the server. */
    }
  }

  /* ---------- loading ---------- */

  async function start() {
    setState('loading');
    $('dashboard').hidden = false;
    const periods = await api('/stats/periods' + query({ page_size: 100 }));
    fillPeriods(periods.items);
    await load();
  }

  function fillPeriods(items) {
    const select = $('period');
    const previous = select.value;
    select.replaceChildren();
    const years = items.filter((p) => p.kind === 'year');
    const months = items.filter((p) => p.kind === 'month');
    if (!years.length) years.push({ period: String(new Date().getFullYear()), respondents: 0 });
    select.append(optionGroup('年度', years, (p) => p.period + ' 年'));
    if (months.length) select.append(optionGroup('月度', months, (p) => p.period.replace('-', ' 年 ') + ' 月'));
    const values = items.map((p) => p.period);
    select.value = values.includes(previous) ? previous : years[0].period;
  }

  function optionGroup(label, items, text) {
    const group = document.createElement('optgroup');
    group.label = label;
    for (const item of items) group.append(new Option(text(item), item.period));
    return group;
  }

  async function participationAll(period) {
    const first = await api('/stats/participation' + query({ by: 'township', period, page_size: 100 }));
    let items = first.items;
    for (let page = 2; items.length < first.total && page <= 50; page += 1) {
      const next = await api('/stats/participation' + query({ by: 'township', period, page_size: 100, page }));
      if (!next.items.length) break;
      items = items.concat(next.items);
    }
    return Object.assign({}, first, { items });
  }

  async function load() {
    if (!window.echarts) {
      showMessage('图表组件未能加载', '请联系管理员检查服务器上的 echarts.min.js（npm ci）。');
      setState('error');
      return;
    }
    const seq = ++state.seq;
    const period = $('period').value;
    const group = $('group').value;
    setState('loading');
    try {
      const [townships, groups, participation, countyTrend, channels] = await Promise.all([
        api('/stats/literacy' + query({ by: 'township', period, group })),
        api('/stats/literacy' + query({ by: 'group', period })),
        participationAll(period),
        api('/stats/trend' + query({ year: period.slice(0, 4) })),
        api('/stats/literacy' + query({ by: 'channel', period })),
      ]);
      if (seq !== state.seq) return;
      state.data = { period, group, townships, groups, participation, countyTrend, channels, trend: null };
      state.loadedAt = new Date();
      fillSelectors();
      const trend = await townshipTrend();
      if (seq !== state.seq) return;
      state.data.trend = trend;
      clearMessage();
      $('dashboard').hidden = false;
      $('figures').hidden = false;
      render();
      setState('ready');
    } catch (error) {
      if (seq === state.seq) handleError(error);
    }
  }

  async function townshipTrend() {
    const code = $('trend-township').value;
    const year = state.data.period.slice(0, 4);
    return code ? api('/stats/trend' + query({ township: code, year })) : null;
  }

  async function changeTrendTownship() {
    const seq = state.seq;
    try {
      const trend = await townshipTrend();
      if (seq !== state.seq) return;
      state.data.trend = trend;
      renderTrend();
    } catch (error) {
      if (seq === state.seq) handleError(error);
    }
  }

  function fillSelectors() {
    const { townships, groups } = state.data;
    const trend = $('trend-township');
    const keepTownship = trend.value;
    trend.replaceChildren(...townships.rows.map((row) => new Option(row.name, row.key)));
    const codes = townships.rows.map((row) => row.key);
    trend.value = codes.includes(keepTownship) ? keepTownship : laggingTownship(townships.rows);

    const unit = $('dimension-unit');
    const keepUnit = unit.value;
    unit.replaceChildren(new Option(countyName(), 'county'),
      unitGroup('乡镇', 't:', townships.rows), unitGroup('人群', 'g:', groups.rows));
    const values = Array.from(unit.options, (option) => option.value);
    unit.value = values.includes(keepUnit) ? keepUnit : 'county';
  }

  function unitGroup(label, prefix, rows) {
    const group = document.createElement('optgroup');
    group.label = label;
    for (const row of rows) group.append(new Option(row.name, prefix + row.key));
    return group;
  }

  /* The default township to compare with the county: the one ranked lowest by the API's share. */
  function laggingTownship(rows) {
    const published = rows.filter((row) => !row.suppressed);
    if (!published.length) return rows.length ? rows[0].key : '';
    return published.slice().sort((a, b) => a.weighted_share - b.weighted_share)[0].key;
  }

  function groupName() {
    const select = $('group');
    return select.value ? select.options[select.selectedIndex].text : '';
  }

  function countyName() { return '全县' + (groupName() ? '（' + groupName() + '）' : ''); }

  /* ---------- rendering ---------- */

  function render() {
    resizeCharts();  // the containers may have changed size while hidden
    const { townships, groups, participation } = state.data;
    renderHeadline();
    drawRows('chart-townships', Charts.shares(rankedRows(townships.rows), townships.target), townships.rows.length);
    renderTrend();
    renderDimensions();
    drawRows('chart-groups', Charts.shares(groups.rows, groups.target), groups.rows.length);
    const items = participation.items.slice().sort((a, b) => (b.per_1000 || 0) - (a.per_1000 || 0));
    drawRows('chart-participation', Charts.participation(items, participation.county), items.length);
    const tierRows = rankedRows(townships.rows).filter((row) => !row.suppressed);
    drawRows('chart-tiers', Charts.tiers(tierRows), tierRows.length);
    renderTables();
    $('method').textContent = townships.method || '';
  }

  function chart(id) {
    if (!state.charts[id]) state.charts[id] = window.echarts.init($(id), null, { renderer: 'canvas' });
    return state.charts[id];
  }

  function draw(id, option) {
    const reduce = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    chart(id).setOption(Object.assign({ animation: !reduce, textStyle: { fontSize: FONT } }, option), true);
  }

  /* A bar chart as tall as its rows need, so every name stays readable. */
  function drawRows(id, option, rows) {
    $(id).style.height = Math.max(220, 46 * rows + 70) + 'px';
    chart(id).resize();
    draw(id, option);
  }

  function renderHeadline() {
    const { townships, participation } = state.data;
    const county = townships.county;
    const target = townships.target;
    $('county-label').textContent = countyName() + '具备科学素质比例（' + townships.period + '）';
    $('county-share').textContent = county.suppressed ? SUPPRESSED : pct(county.weighted_share);
    const band = county.sensitivity && county.sensitivity.outcome_selection
      && county.sensitivity.outcome_selection['1.5'];
    $('county-interval').textContent = county.suppressed ? '参与人数过少'
      : '95% 区间 ' + interval(county)
        + (band ? '；敏感性区间（Γ=1.5）' + pct(band[0]) + ' – ' + pct(band[1]) : '')
        + (county.integrity && county.integrity.flagged
          ? '；诚信标记 ' + count(county.integrity.flagged) + ' 份，已剔除 ' + count(county.integrity.excluded) + ' 份' : '');
    $('target-share').textContent = target ? pct(target.literate_share) : '未设定';
    $('target-gap').textContent = target ? target.year + ' 年目标，'
      + (target.gap === null ? '差距暂无法估计' : points(target.gap)) : '请管理员设定目标';
    $('target-probability').textContent = target && target.probability_reached !== null
      ? Math.round(target.probability_reached * 100) + '%' : '—';
    $('county-respondents').textContent = count(county.respondents);
    $('county-participation').textContent = '每千名常住人口参与 '
      + perThousand(participation.county.per_1000) + ' 人（全年龄）';
    draw('chart-headline', Charts.shares([county], target, [countyName()]));
  }

  function renderTrend() {
    const { countyTrend, trend, townships } = state.data;
    draw('chart-trend', Charts.trend(countyTrend, trend, townships.target));
  }

  function renderDimensions() {
    const county = state.data.townships.county;
    draw('chart-dimensions', Charts.dimensions(selectedUnit(), county, countyName()));
  }

  function selectedUnit() {
    const { townships, groups } = state.data;
    const value = $('dimension-unit').value || 'county';
    if (value === 'county') return Object.assign({}, townships.county, { name: countyName() });
    const rows = value.startsWith('t:') ? townships.rows : groups.rows;
    return rows.find((row) => row.key === value.slice(2)) || townships.county;
  }

  /* ---------- tables ---------- */

  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function fillTable(id, rows, cells) {
    const body = $(id).querySelector('tbody');
    body.replaceChildren(...rows.map((row, index) => {
      const tr = document.createElement('tr');
      tr.dataset.key = row.key || row.channel || '';
      tr.append(...cells(row, index));
      return tr;
    }));
  }

  const shareCells = (row) => [
    cell(row.suppressed ? SUPPRESSED : pct(row.weighted_share), row.suppressed ? 'suppressed' : 'num'),
    cell(interval(row), 'num'),
  ];

  const rawShareCell = (row) => (row.suppressed ? cell(SUPPRESSED, 'suppressed')
    : cell(pct(row.raw_share), 'num'));

  function integrityCells(row) {
    const flags = row.integrity;  // null for one group's rows: flags are not counted by group
    const sensitivity = row.sensitivity;
    const band = sensitivity && sensitivity.outcome_selection && sensitivity.outcome_selection['1.5'];
    const without = sensitivity ? sensitivity.without_open_flags : null;
    return [
      flags ? cell(count(flags.flagged) + '（' + count(flags.excluded) + '）', flags.flagged ? 'num flagged' : 'num')
        : cell('—', 'num'),
      cell(row.suppressed || without === null || without === undefined ? '—' : pct(without), 'num'),
      cell(row.suppressed || !band ? '—' : pct(band[0]) + ' – ' + pct(band[1]), 'num'),
    ];
  }

  function renderTables() {
    const { townships, groups } = state.data;
    let rank = 0;
    fillTable('township-table', rankedRows(townships.rows), (row) => [
      cell(row.suppressed ? '—' : String(++rank), 'num'), cell(row.name), ...shareCells(row),
      cell(count(row.respondents), 'num'), cell(DIMENSION_NAMES[row.weakest_dimension] || '—'),
      ...integrityCells(row),
    ]);
    fillTable('group-table', groups.rows, (row) => [
      cell(row.name), ...shareCells(row), cell(count(row.respondents), 'num'),
      cell(DIMENSION_NAMES[row.weakest_dimension] || '—'),
    ]);
    fillTable('ages-table', townships.other_ages || [], (row) => [
      cell(row.name), cell(count(row.respondents), 'num'), rawShareCell(row),
    ]);
    const weighted = Object.fromEntries((state.data.channels.rows || []).map((row) => [row.key, row]));
    fillTable('channel-table', townships.channels || [], (row) => {
      const w = weighted[row.channel];
      return [
        cell(row.name), cell(count(row.respondents), 'num'), rawShareCell(row),
        cell(!w || w.suppressed ? '—' : pct(w.weighted_share), 'num'),
        cell(w ? interval(w) : '—', 'num'),
      ];
    });
  }

  /* ---------- export ---------- */

  function filename(response, period) {
    const header = response.headers.get('Content-Disposition') || '';
    const encoded = /filename\*=UTF-8''([^;]+)/i.exec(header);
    if (encoded) return decodeURIComponent(encoded[1]);
    const plain = /filename="?([^";]+)"?/i.exec(header);
    return plain ? plain[1] : '科学素质报表-' + period + '.xlsx';
  }

  async function exportReport() {
    const button = $('export');
    const period = $('period').value;
    button.disabled = true;
    button.textContent = '正在生成报表…';
    try {
      const response = await request('/stats/export' + query({ format: 'xlsx', period }));
      if (!response.ok) throw await failure(response);
      const blob = await response.blob();
      const link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = filename(response, period);
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
      showMessage('报表已开始下载', link.download, 'info');
    } catch (error) {
      handleError(error);
    } finally {
      button.disabled = false;
      button.textContent = '下载报表（Excel）';
    }
  }

  /* ---------- auto refresh and printing ---------- */

  const AUTO_REFRESH_MS = 5 * 60 * 1000;

  /* Reload the figures every five minutes while the page is shown and settled (not while
     signing in, loading or showing an error), unless the analyst turned it off. */
  function autoRefresh() {
    if (!$('auto-refresh').checked || document.hidden) return;
    if (document.body.dataset.state !== 'ready') return;
    load().catch(handleError);
  }

  function stampPrint() {
    const data = state.data;
    $('print-stamp').textContent = data ? '统计期 ' + data.period + (groupName() ? '，' + groupName() : '')
      + '；数据时间 ' + (state.loadedAt || new Date()).toLocaleString('zh-CN') : '';
  }

  /* The print stylesheet shows every data table and hides the controls; the charts are
     resized to the paper's width first. */
  function printReport() {
    stampPrint();
    document.querySelectorAll('details').forEach((d) => { d.open = true; });
    resizeCharts();
    window.print();
  }

  /* ---------- wiring ---------- */

  function resizeCharts() {
    for (const instance of Object.values(state.charts)) instance.resize();
  }

  function guarded(action) {
    return (event) => { action(event).catch(handleError); };
  }

  function init() {
    $('login-form').addEventListener('submit', guarded(signIn));
    $('logout').addEventListener('click', guarded(signOut));
    $('period').addEventListener('change', guarded(load));
    $('group').addEventListener('change', guarded(load));
    $('refresh').addEventListener('click', guarded(load));
    $('export').addEventListener('click', guarded(exportReport));
    $('trend-township').addEventListener('change', guarded(changeTrendTownship));
    $('print').addEventListener('click', printReport);
    window.addEventListener('beforeprint', stampPrint);
    setInterval(autoRefresh, AUTO_REFRESH_MS);
    $('dimension-unit').addEventListener('change', () => { if (state.data) renderDimensions(); });
    let pending = 0;
    window.addEventListener('resize', () => {
      clearTimeout(pending);
      pending = setTimeout(resizeCharts, 150);
    });
    showLogin();
  }

  init();
}());
