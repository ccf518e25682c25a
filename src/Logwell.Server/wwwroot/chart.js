// Charts drawn as SVG: the histogram above the hits (drag across it to pick a range) and the timechart of a
// `| timechart` query (lines or bars, one series per column).
import { formatNumber, formatTick, h } from './util.js';

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child);
  return element;
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

const Margin = { left: 48, right: 8, top: 8, bottom: 22 };

/** Axis lines, value grid and time ticks for a plot area of width × height over [from, to). */
function axes(width, height, from, to, max) {
  const group = svg('g', { class: 'axes' });
  const plotHeight = height - Margin.top - Margin.bottom;
  for (const fraction of [0, 0.5, 1]) {
    const y = Margin.top + plotHeight * (1 - fraction);
    group.append(svg('line', { x1: Margin.left, x2: width - Margin.right, y1: y, y2: y, class: 'grid' }));
    const label = svg('text', { x: Margin.left - 6, y: y + 4, 'text-anchor': 'end' });
    label.textContent = formatNumber(Math.round(max * fraction * 100) / 100);
    group.append(label);
  }
  const plotWidth = width - Margin.left - Margin.right;
  const ticks = Math.max(2, Math.floor(plotWidth / 110));
  for (let i = 0; i <= ticks; i++) {
    const t = from + ((to - from) * i) / ticks;
    const x = Margin.left + (plotWidth * i) / ticks;
    const label = svg('text', { x, y: height - 6, 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle' });
    label.textContent = formatTick(t, to - from);
    group.append(label);
  }
  return group;
}

/**
 * The histogram: one bar per interval. `onSelect(fromMs, toMs)` is called when the user drags across it.
 * @param {{buckets: {t: string, count: number}[], interval_ms: number, from: string, to: string}} data
 */
export function histogram(container, data, onSelect) {
  const width = Math.max(container.clientWidth, 300);
  const height = 120;
  const from = Date.parse(data.buckets[0]?.t ?? data.from);
  const to = data.buckets.length ? Date.parse(data.buckets[data.buckets.length - 1].t) + data.interval_ms : Date.parse(data.to);
  const max = niceMax(Math.max(0, ...data.buckets.map(b => b.count)));
  const plotWidth = width - Margin.left - Margin.right;
  const plotHeight = height - Margin.top - Margin.bottom;
  const xOf = t => Margin.left + ((t - from) / (to - from)) * plotWidth;
  const root = svg('svg', { width, height, class: 'chart histogram', role: 'img', 'aria-label': 'events over time' });
  root.append(axes(width, height, from, to, max));
  const bars = svg('g', { class: 'bars' });
  const barWidth = Math.max(1, (data.interval_ms / (to - from)) * plotWidth - 1);
  for (const bucket of data.buckets) {
    if (bucket.count === 0) continue;
    const t = Date.parse(bucket.t);
    const barHeight = Math.max(1, (bucket.count / max) * plotHeight);
    const bar = svg('rect', { x: xOf(t), y: Margin.top + plotHeight - barHeight, width: barWidth, height: barHeight, class: 'bar' });
    const title = svg('title', {});
    title.textContent = `${formatNumber(bucket.count)} events from ${new Date(t).toLocaleString()}`;
    bar.append(title);
    bars.append(bar);
  }
  root.append(bars);
  const selection = svg('rect', { class: 'selection', y: Margin.top, height: plotHeight, x: 0, width: 0, visibility: 'hidden' });
  root.append(selection);

  // Drag to zoom: the range under the drag becomes the search's range.
  const timeAt = clientX => {
    const box = root.getBoundingClientRect();
    const x = Math.min(Math.max(clientX - box.left, Margin.left), width - Margin.right);
    return { x, t: from + ((x - Margin.left) / plotWidth) * (to - from) };
  };
  let start = null;
  root.addEventListener('pointerdown', event => {
    if (event.button !== 0) return;
    start = timeAt(event.clientX);
    root.setPointerCapture(event.pointerId);
    selection.setAttribute('visibility', 'visible');
    selection.setAttribute('x', start.x);
    selection.setAttribute('width', 0);
  });
  root.addEventListener('pointermove', event => {
    if (!start) return;
    const now = timeAt(event.clientX);
    selection.setAttribute('x', Math.min(start.x, now.x));
    selection.setAttribute('width', Math.abs(now.x - start.x));
  });
  root.addEventListener('pointerup', event => {
    if (!start) return;
    const end = timeAt(event.clientX);
    const begun = start;
    start = null;
    selection.setAttribute('visibility', 'hidden');
    if (Math.abs(end.x - begun.x) < 4) return;
    onSelect(Math.floor(Math.min(begun.t, end.t)), Math.ceil(Math.max(begun.t, end.t)));
  });
  container.replaceChildren(root);
}

const Palette = 10;

/**
 * A timechart: the first column is the time, each other column a series.
 * @param {'line'|'bar'} kind
 */
export function timechart(container, columns, rows, kind) {
  const width = Math.max(container.clientWidth, 300);
  const height = 260;
  const times = rows.map(row => Date.parse(row[0]));
  const step = times.length > 1 ? times[1] - times[0] : 60_000;
  const from = times[0] ?? Date.now();
  const to = (times[times.length - 1] ?? from) + step;
  const series = columns.slice(1);
  const plotWidth = width - Margin.left - Margin.right;
  const plotHeight = height - Margin.top - Margin.bottom;
  let max = 0;
  for (const row of rows) {
    if (kind === 'bar') max = Math.max(max, row.slice(1).reduce((sum, v) => sum + (Number(v) || 0), 0));
    else for (const v of row.slice(1)) max = Math.max(max, Number(v) || 0);
  }
  max = niceMax(max);
  const xOf = t => Margin.left + ((t - from) / (to - from)) * plotWidth;
  const yOf = v => Margin.top + plotHeight - (v / max) * plotHeight;
  const root = svg('svg', { width, height, class: `chart timechart ${kind}`, role: 'img', 'aria-label': `${kind} chart of ${series.join(', ')}` });
  root.append(axes(width, height, from, to, max));
  const slot = (step / (to - from)) * plotWidth;
  if (kind === 'bar') {
    rows.forEach((row, r) => {
      let base = 0;
      series.forEach((name, s) => {
        const value = Number(row[s + 1]) || 0;
        if (value === 0) return;
        const top = yOf(base + value);
        const bar = svg('rect', { x: xOf(times[r]), y: top, width: Math.max(1, slot - 1), height: Math.max(1, yOf(base) - top), class: `series s${s % Palette}` });
        const title = svg('title', {});
        title.textContent = `${name}: ${formatNumber(value)} at ${new Date(times[r]).toLocaleString()}`;
        bar.append(title);
        root.append(bar);
        base += value;
      });
    });
  } else {
    series.forEach((name, s) => {
      const points = rows.map((row, r) => `${(xOf(times[r]) + slot / 2).toFixed(1)},${yOf(Number(row[s + 1]) || 0).toFixed(1)}`);
      const line = svg('polyline', { points: points.join(' '), class: `series s${s % Palette}`, fill: 'none' });
      const title = svg('title', {});
      title.textContent = name;
      line.append(title);
      root.append(line);
    });
  }
  const legend = h('div', { class: 'legend' },
    series.map((name, s) => h('span', { class: 'legend-item' }, h('span', { class: `swatch s${s % Palette}` }), name)));
  container.replaceChildren(root, legend);
}
