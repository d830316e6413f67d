// Usage of the token's tenant: commands and bandwidth this day and month against the quotas
// (bars with the 80 % line), and a chart of points sampled while the page is open.

import { h, svg, $ } from './dom.js';
import { formatBytes } from './values.js';

const EVERY_MS = 2000;
const MAX_POINTS = 90;

export function createUsage({ api, admin = false }) {
  const bars = $('#usage-bars');
  const chart = $('#usage-chart');
  const error = $('#usage-error');
  const points = [];
  let timer = null;

  function bar(label, used, limit, thresholds, bytes) {
    const fmt = bytes ? formatBytes : (n) => n.toLocaleString('en');
    const ratio = limit ? used / limit : 0;
    const pct = Math.min(100, ratio * 100);
    const cls = ratio >= 1 ? 'bar over' : ratio >= 0.8 ? 'bar warn' : 'bar';
    const marks = new Set([0.8, ...(thresholds || [])].filter((t) => t > 0 && t < 1));
    const graphic = svg(
      'svg',
      { viewBox: '0 0 100 10', preserveAspectRatio: 'none', 'aria-hidden': 'true' },
      svg('rect', { class: 'track', x: 0, y: 0, width: 100, height: 10 }),
      svg('rect', { class: 'fill', x: 0, y: 0, width: limit ? pct.toFixed(2) : 0, height: 10 }),
      [...marks].map((t) => svg('line', { class: 'mark', x1: t * 100, x2: t * 100, y1: 0, y2: 10 })),
    );
    const text = limit ? `${fmt(used)} of ${fmt(limit)} (${(ratio * 100).toFixed(1)} %)` : `${fmt(used)} (no quota)`;
    return h('div', { class: cls, dataset: { quota: label } }, h('div', {}, h('strong', { text: label }), ' ', h('span', { class: 'muted', text })), graphic);
  }

  function drawChart() {
    const W = 600;
    const H = 200;
    const pad = { l: 50, r: 10, t: 10, b: 24 };
    const ys = points.map((p) => p.v);
    const min = Math.min(...ys);
    const max = Math.max(...ys);
    const span = max - min || 1;
    const x = (i) => pad.l + (points.length <= 1 ? 0 : (i * (W - pad.l - pad.r)) / (points.length - 1));
    const y = (v) => H - pad.b - ((v - min) / span) * (H - pad.t - pad.b);
    const nodes = [
      svg('line', { class: 'axis', x1: pad.l, x2: W - pad.r, y1: H - pad.b, y2: H - pad.b }),
      svg('line', { class: 'axis', x1: pad.l, x2: pad.l, y1: pad.t, y2: H - pad.b }),
      svg('text', { x: 4, y: pad.t + 10, text: String(max) }),
      svg('text', { x: 4, y: H - pad.b, text: String(min) }),
    ];
    if (points.length) {
      nodes.push(svg('text', { x: pad.l, y: H - 6, text: points[0].t.toLocaleTimeString() }));
      nodes.push(svg('text', { x: W - pad.r - 60, y: H - 6, text: points[points.length - 1].t.toLocaleTimeString() }));
      nodes.push(svg('polyline', { class: 'series', points: points.map((p, i) => `${x(i).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ') }));
      points.forEach((p, i) => nodes.push(svg('circle', { class: 'point', cx: x(i).toFixed(1), cy: y(p.v).toFixed(1), r: 3 }, svg('title', { text: `${p.t.toLocaleTimeString()}: ${p.v} commands today` }))));
    }
    chart.replaceChildren(...nodes);
    $('#usage-points').textContent = String(points.length);
  }

  // The admin token: every tenant side by side, one row each, a bar per quota.
  function drawAll(r) {
    const rows = (r.tenants || []).map((t) => {
      const l = t.limits || {};
      const cell = (label, used, limit, bytes) => h('td', {}, bar(label, used, limit, t.thresholds, bytes));
      return h(
        'tr',
        { dataset: { tenant: t.tenant } },
        h('th', { scope: 'row', text: t.tenant }),
        cell('today', t.day.commands, l.daily_commands),
        cell('month', t.month.commands, l.monthly_commands),
        cell('today', t.day.bandwidth, l.daily_bandwidth, true),
        cell('month', t.month.bandwidth, l.monthly_bandwidth, true),
      );
    });
    $('#usage-all-table tbody').replaceChildren(...rows);
  }

  async function sample() {
    try {
      const r = await api.usage();
      if (admin) {
        error.textContent = '';
        drawAll(r);
        return;
      }
      error.textContent = '';
      $('#usage-tenant').textContent = r.tenant;
      const l = r.limits || {};
      bars.replaceChildren(
        bar('Commands today', r.day.commands, l.daily_commands, r.thresholds),
        bar('Commands this month', r.month.commands, l.monthly_commands, r.thresholds),
        bar('Bandwidth today', r.day.bandwidth, l.daily_bandwidth, r.thresholds, true),
        bar('Bandwidth this month', r.month.bandwidth, l.monthly_bandwidth, r.thresholds, true),
        h('div', { class: 'bar', dataset: { quota: 'requests' } }, h('strong', { text: 'Requests' }), ' ', h('span', { class: 'muted', text: `${r.requests_since_start} since this server started` })),
      );
      points.push({ t: new Date(), v: r.day.commands });
      if (points.length > MAX_POINTS) points.shift();
      drawChart();
    } catch (e) {
      error.textContent = `Usage: ${e.message}`;
    }
  }

  function start() {
    if (timer) return;
    sample();
    timer = setInterval(sample, EVERY_MS);
  }
  return { start, sample };
}
