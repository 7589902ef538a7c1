/* ECharts options for the dashboard, built from the stats API's rows as they are: nothing
   here computes a figure, it only places, formats and colours what the API answered. */
(function () {
  'use strict';

  const DIMENSIONS = [
    ['knowledge', '科学知识'],
    ['method', '科学方法'],
    ['spirit', '科学精神与思想'],
    ['application', '应用科学的能力'],
  ];
  const DIMENSION_NAMES = Object.fromEntries(DIMENSIONS);
  const COLORS = { brand: '#0b4f9c', good: '#1b7a34', unsure: '#b26a00', bad: '#b3261e',
    none: '#8a8a8a', ink: '#111111', county: '#5b6b7f', light: '#c9d1db' };
  const SUPPRESSED = '样本不足，不公布';
  const FONT = 16;

  /* ---------- formatting ---------- */

  const pct = (x) => (x === null || x === undefined ? '—' : (x * 100).toFixed(1) + '%');
  const interval = (row) => (row.suppressed || row.ci_low === null ? '—'
    : pct(row.ci_low) + ' – ' + pct(row.ci_high));
  const count = (n) => (n === null || n === undefined ? '—' : Number(n).toLocaleString('zh-CN'));
  const perThousand = (x) => (x === null || x === undefined ? '—' : x.toFixed(1));
  /* The API's gap is target − estimate: positive means short of the target. */
  const points = (gap) => (gap > 0 ? '距目标还差 ' : gap < 0 ? '已超过目标 ' : '与目标持平')
    + (gap === 0 ? '' : Math.abs(gap * 100).toFixed(1) + ' 个百分点');
  const score = (x) => (x === null || x === undefined ? '—' : x.toFixed(1));
  const escape = (text) => String(text).replace(/[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

  /* ---------- options ---------- */

  /* Published rows by share, highest first; suppressed rows last, in the API's order. */
  function rankedRows(rows) {
    const published = rows.filter((row) => !row.suppressed)
      .sort((a, b) => b.weighted_share - a.weighted_share);
    return published.concat(rows.filter((row) => row.suppressed));
  }

  function standing(row, target) {
    if (row.suppressed) return 'none';
    if (!target) return 'unsure';
    if (row.ci_high < target.literate_share) return 'bad';
    if (row.ci_low > target.literate_share) return 'good';
    return 'unsure';
  }

  /* Horizontal bars of weighted shares with 95% interval whiskers and the target line. */
  function shares(rows, target, names) {
    const labels = names || rows.map((row) => row.name);
    const bars = rows.map((row) => ({
      value: row.suppressed ? 0 : row.weighted_share,
      itemStyle: { color: COLORS[standing(row, target)] },
      label: { show: row.suppressed, position: 'right', fontSize: FONT, color: COLORS.none,
        fontWeight: 'bold', formatter: SUPPRESSED },
      row,
    }));
    const whiskers = rows.map((row, index) => [row.ci_low, row.ci_high, index])
      .filter((item) => item[0] !== null && item[0] !== undefined);
    return {
      grid: { left: 8, right: 24, top: 28, bottom: 8, containLabel: true },
      tooltip: { trigger: 'item', formatter: (p) => shareTip(p.data && p.data.row ? p.data.row : rows[p.value[2]]) },
      xAxis: { type: 'value', min: 0, max: axisMax(rows, target),
        axisLabel: { formatter: (v) => Math.round(v * 100) + '%', fontSize: FONT - 2, hideOverlap: true } },
      yAxis: { type: 'category', data: labels, inverse: true, axisLabel: valueLabels(rows) },
      series: [
        { type: 'bar', data: bars, barMaxWidth: 30, markLine: targetLine(target, 'x') },
        errorBars(whiskers, 'horizontal'),
      ],
    };
  }

  /* Name and share beside each bar, where no whisker can cover the number. */
  function valueLabels(rows) {
    const plain = (text) => String(text).replace(/[{}|]/g, '');
    return {
      color: COLORS.ink,
      formatter: (name, index) => '{name|' + plain(name) + '}{value|'
        + (rows[index].suppressed ? '—' : pct(rows[index].weighted_share)) + '}',
      rich: {
        name: { fontSize: FONT, color: COLORS.ink, padding: [0, 8, 0, 0] },
        value: { fontSize: FONT, fontWeight: 'bold', color: COLORS.ink, width: 52, align: 'right' },
      },
    };
  }

  function axisMax(rows, target) {
    const highs = rows.map((row) => row.ci_high || 0).concat(target ? [target.literate_share] : []);
    return Math.min(1, Math.ceil((Math.max(0.05, ...highs) * 100 + 3) / 5) * 5 / 100);
  }

  function shareTip(row) {
    if (!row) return '';
    const lines = [escape(row.name), '参与人数 ' + count(row.respondents)];
    if (row.suppressed) lines.push(SUPPRESSED);
    else lines.push('具备比例 ' + pct(row.weighted_share), '95% 区间 ' + interval(row));
    return lines.join('<br>');
  }

  function targetLine(target, axis) {
    if (!target) return undefined;
    return {
      symbol: 'none',
      silent: true,
      lineStyle: { color: COLORS.bad, type: 'dashed', width: 2 },
      label: { formatter: '目标 ' + pct(target.literate_share), fontSize: FONT - 2, color: COLORS.bad,
        position: axis === 'x' ? 'start' : 'insideEndTop' },
      data: [axis === 'x' ? { xAxis: target.literate_share } : { yAxis: target.literate_share }],
    };
  }

  /* A custom series drawing [low, high, category] whiskers. */
  function errorBars(data, direction, color) {
    const horizontal = direction === 'horizontal';
    return {
      type: 'custom',
      name: '95% 区间',
      data,
      encode: horizontal ? { x: [0, 1], y: 2 } : { x: 2, y: [0, 1] },
      z: 10,
      silent: true,
      tooltip: { show: false },
      renderItem: (params, api) => {
        const at = (v) => api.coord(horizontal ? [v, api.value(2)] : [api.value(2), v]);
        const low = at(api.value(0));
        const high = at(api.value(1));
        const cap = api.size(horizontal ? [0, 1] : [1, 0])[horizontal ? 1 : 0] * 0.15;
        const style = { stroke: color || COLORS.ink, lineWidth: 2 };
        const tick = (p) => ({ type: 'line', style, shape: horizontal
          ? { x1: p[0], y1: p[1] - cap, x2: p[0], y2: p[1] + cap }
          : { x1: p[0] - cap, y1: p[1], x2: p[0] + cap, y2: p[1] } });
        return { type: 'group', children: [
          { type: 'line', style, shape: { x1: low[0], y1: low[1], x2: high[0], y2: high[1] } },
          tick(low), tick(high),
        ] };
      },
    };
  }

  /* Monthly weighted shares of the county and one township, with whiskers and respondents. */
  function trend(countyTrend, townshipTrend, target) {
    const months = countyTrend.rows.map((row) => row.period);
    const series = [trendLine(countyTrend, '全县', COLORS.brand), trendWhiskers(countyTrend, '全县', months, COLORS.brand)];
    if (townshipTrend) {
      series.push(trendLine(townshipTrend, townshipTrend.name, COLORS.unsure),
        trendWhiskers(townshipTrend, townshipTrend.name, months, COLORS.unsure));
    }
    series.push({ type: 'bar', name: '全县参与人数', yAxisIndex: 1, barMaxWidth: 18, z: 1,
      itemStyle: { color: COLORS.light }, tooltip: { valueFormatter: count },
      data: countyTrend.rows.map((row) => row.respondents) });
    series[0].markLine = targetLine(target, 'y');
    return {
      legend: { top: 0, textStyle: { fontSize: FONT - 2 } },
      grid: { left: 8, right: 8, top: 40, bottom: 8, containLabel: true },
      tooltip: { trigger: 'axis' },
      xAxis: { type: 'category', data: months.map((m) => Number(m.slice(5)) + '月'), axisLabel: { fontSize: FONT - 2 } },
      yAxis: [
        { type: 'value', min: 0, axisLabel: { formatter: (v) => Math.round(v * 100) + '%', fontSize: FONT - 2 } },
        { type: 'value', min: 0, splitLine: { show: false }, axisLabel: { fontSize: FONT - 4, color: COLORS.county } },
      ],
      series,
    };
  }

  function trendLine(trend, name, color) {
    return { type: 'line', name, connectNulls: false, symbolSize: 8, z: 5, tooltip: { valueFormatter: pct },
      lineStyle: { width: 3, color }, itemStyle: { color },
      data: trend.rows.map((row) => (row.suppressed ? null : row.weighted_share)) };
  }

  /* Named as its line, so the legend shows and hides both together. */
  function trendWhiskers(trend, name, months, color) {
    const data = trend.rows
      .map((row) => [row.ci_low, row.ci_high, months.indexOf(row.period)])
      .filter((item) => item[0] !== null && item[0] !== undefined && item[2] >= 0);
    return Object.assign(errorBars(data, 'vertical', color), { name });
  }

  /* Score rates of the four dimensions, the weakest in red; the county beside another unit. */
  function dimensions(unit, county, countyLabel) {
    if (unit.suppressed || !unit.dimension_means) return emptyOption(unit.name + '：' + SUPPRESSED);
    const series = [{
      type: 'bar', name: unit.name, barMaxWidth: 26,
      data: DIMENSIONS.map(([key]) => ({
        value: unit.dimension_means[key],
        itemStyle: { color: key === unit.weakest_dimension ? COLORS.bad : COLORS.brand },
        label: { show: true, position: 'right', fontSize: FONT, fontWeight: 'bold',
          formatter: score(unit.dimension_means[key]) + (key === unit.weakest_dimension ? '  最弱' : '') },
      })),
    }];
    if (unit.key !== county.key && county.dimension_means) {
      series.push({ type: 'bar', name: countyLabel, barMaxWidth: 14, itemStyle: { color: COLORS.light },
        data: DIMENSIONS.map(([key]) => county.dimension_means[key]) });
    }
    return {
      legend: { show: series.length > 1, top: 0, textStyle: { fontSize: FONT - 2 } },
      grid: { left: 8, right: 90, top: 36, bottom: 8, containLabel: true },
      tooltip: { trigger: 'axis', valueFormatter: (v) => (typeof v === 'number' ? v.toFixed(1) + ' 分' : '—') },
      xAxis: { type: 'value', min: 0, max: 100, axisLabel: { fontSize: FONT - 2 } },
      yAxis: { type: 'category', inverse: true, data: DIMENSIONS.map(([, name]) => name), axisLabel: { fontSize: FONT, color: COLORS.ink } },
      series,
    };
  }

  /* Participation per 1,000 residents by township, in the order given. */
  function participation(items, county) {
    return {
      grid: { left: 8, right: 48, top: 28, bottom: 8, containLabel: true },
      tooltip: { trigger: 'item', formatter: (p) => escape(p.name) + '<br>参与 ' + count(items[p.dataIndex].respondents)
        + ' 人，常住人口 ' + count(items[p.dataIndex].population) },
      xAxis: { type: 'value', min: 0, axisLabel: { fontSize: FONT - 2 } },
      yAxis: { type: 'category', inverse: true, data: items.map((item) => item.name), axisLabel: { fontSize: FONT, color: COLORS.ink } },
      series: [{ type: 'bar', barMaxWidth: 26, itemStyle: { color: COLORS.brand },
        label: { show: true, position: 'right', fontSize: FONT, formatter: (p) => perThousand(p.value) },
        data: items.map((item) => item.per_1000),
        markLine: { symbol: 'none', silent: true, lineStyle: { color: COLORS.ink, type: 'dashed', width: 2 },
          label: { formatter: '全县 ' + perThousand(county.per_1000), fontSize: FONT - 2, position: 'start' },
          data: [{ xAxis: county.per_1000 }] } }],
    };
  }

  const TIERS = [
    ['advanced', '高水平（85分及以上）', '#1b7a34'],
    ['literate', '具备（70—84分）', '#0b4f9c'],
    ['basic', '基础（55—69分）', '#b26a00'],
    ['low', '待提高（55分以下）', '#b3261e'],
  ];

  /* Each published township's respondents by tier (exclusive shares from the API's
     cumulative ones), stacked to 100%; suppressed townships are left out. */
  function tiers(rows) {
    const shown = rows.filter((row) => !row.suppressed && row.tiers && row.tiers.low !== null);
    if (!shown.length) return emptyOption(SUPPRESSED);
    const part = (row, key) => {
      const t = row.tiers;
      if (key === 'advanced') return t.advanced;
      if (key === 'literate') return t.literate - t.advanced;
      if (key === 'basic') return t.basic - t.literate;
      return t.low;
    };
    return {
      legend: { top: 0, textStyle: { fontSize: FONT - 2 } },
      grid: { left: 8, right: 24, top: 40, bottom: 8, containLabel: true },
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: pct },
      xAxis: { type: 'value', min: 0, max: 1, axisLabel: { formatter: (v) => Math.round(v * 100) + '%', fontSize: FONT - 2 } },
      yAxis: { type: 'category', inverse: true, data: shown.map((row) => row.name), axisLabel: { fontSize: FONT, color: COLORS.ink } },
      series: TIERS.map(([key, name, color]) => ({
        type: 'bar', name, stack: 'tiers', barMaxWidth: 26, itemStyle: { color },
        data: shown.map((row) => Math.max(0, part(row, key))),
      })),
    };
  }

  function emptyOption(text) {
    return { title: { text, left: 'center', top: 'middle', textStyle: { fontSize: FONT + 2, color: COLORS.none } },
      xAxis: { show: false }, yAxis: { show: false }, series: [] };
  }

  window.DashboardCharts = {
    COLORS, DIMENSION_NAMES, FONT, SUPPRESSED,
    pct, interval, count, perThousand, points, escape,
    rankedRows, standing, shares, trend, dimensions, participation, tiers,
  };
}());
