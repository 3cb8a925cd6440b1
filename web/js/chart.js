// A bar chart of items per hour or per day, drawn as plain SVG (no library, no inline styles:
// colours come from app.css classes).

import { s } from './dom.js';
import { formatNumber, plural } from './format.js';

const HOUR_MS = 3600 * 1000;
const HOURS_SHOWN = 24;
const MIN_DAYS = 7;
const MAX_DAYS = 60;

const hourLabel = new Intl.DateTimeFormat(undefined, { hour: 'numeric' });
const hourLong = new Intl.DateTimeFormat(undefined, { weekday: 'short', hour: 'numeric', minute: '2-digit' });
const dayLabel = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const dayLong = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric' });

function startOfHour(date) {
  const d = new Date(date);
  d.setMinutes(0, 0, 0);
  return d;
}

function startOfDay(date) {
  const d = new Date(date);
  d.setHours(0, 0, 0, 0);
  return d;
}

function addDays(date, n) {
  const d = new Date(date);
  d.setDate(d.getDate() + n); // calendar days, right across daylight-saving changes
  return d;
}

/** Pick per hour when everything is from the last day, else per day. */
export function defaultBucket(items, now = new Date()) {
  const since = now.getTime() - HOURS_SHOWN * HOUR_MS;
  return items.every((item) => Date.parse(item.createdAt) >= since) ? 'hour' : 'day';
}

/**
 * Count items into consecutive periods ending with the current one (local time).
 * Returns {buckets: [{start, end, count}], counted, older}.
 */
export function bucketize(items, bucket, now = new Date()) {
  const times = items.map((item) => Date.parse(item.createdAt)).filter((t) => Number.isFinite(t));
  const starts = [];
  if (bucket === 'hour') {
    const last = startOfHour(now).getTime();
    for (let i = HOURS_SHOWN - 1; i >= 0; i -= 1) starts.push(new Date(last - i * HOUR_MS));
    starts.push(new Date(last + HOUR_MS));
  } else {
    const today = startOfDay(now);
    const oldest = times.length ? startOfDay(new Date(Math.min(...times))) : today;
    const span = Math.round((today - oldest) / (24 * HOUR_MS)) + 1;
    const days = Math.min(MAX_DAYS, Math.max(MIN_DAYS, span));
    for (let i = days - 1; i >= -1; i -= 1) starts.push(addDays(today, -i));
  }
  const buckets = starts.slice(0, -1).map((start, i) => ({ start, end: starts[i + 1], count: 0 }));
  const first = buckets[0].start.getTime();
  let older = 0;
  let counted = 0;
  for (const t of times) {
    if (t < first) {
      older += 1;
      continue;
    }
    // Linear scan from the end: periods are few and items mostly recent.
    for (let i = buckets.length - 1; i >= 0; i -= 1) {
      if (t >= buckets[i].start.getTime()) {
        if (t < buckets[i].end.getTime() || i === buckets.length - 1) {
          buckets[i].count += 1;
          counted += 1;
        }
        break;
      }
    }
  }
  return { buckets, counted, older };
}

export function periodLabel(bucket, start, long = false) {
  if (bucket === 'hour') return (long ? hourLong : hourLabel).format(start);
  return (long ? dayLong : dayLabel).format(start);
}

/** One sentence saying what the chart shows, for the caption and for screen readers. */
export function summarize(result, bucket, { truncated = false, total = 0 } = {}) {
  if (total === 0 || !result) return 'Nothing to chart yet: items you add will show up here.';
  const { buckets, counted, older } = result;
  const window = bucket === 'hour' ? 'the last 24 hours' : `the last ${buckets.length} days`;
  const parts = [];
  if (counted === 0) {
    parts.push(`No items in ${window}.`);
  } else {
    const busiest = buckets.reduce((a, b) => (b.count > a.count ? b : a));
    const unit = bucket === 'hour' ? 'hour' : 'day';
    parts.push(
      `${plural(counted, 'item')} in ${window}; busiest ${unit}: ${periodLabel(bucket, busiest.start, true)} with ${formatNumber(busiest.count)}.`,
    );
  }
  if (older) parts.push(`${plural(older, 'older item')} not shown${bucket === 'hour' ? ' (try per day)' : ''}.`);
  if (truncated) parts.push(`Counted from your newest ${plural(total, 'item')}.`);
  return parts.join(' ');
}

function niceStep(max, maxTicks) {
  const steps = [1, 2, 5];
  for (let magnitude = 1; ; magnitude *= 10) {
    for (const step of steps) {
      if (Math.ceil(max / (step * magnitude)) <= maxTicks) return step * magnitude;
    }
  }
}

/** Draw the chart into container, sized to its current width. */
export function drawChart(container, result, bucket, label) {
  const width = Math.max(260, Math.floor(container.clientWidth || 600));
  const height = 200;
  const margin = { top: 16, right: 8, bottom: 28, left: 36 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const { buckets } = result;
  const maxCount = Math.max(0, ...buckets.map((b) => b.count));
  const step = niceStep(Math.max(1, maxCount), 4);
  const yMax = Math.max(step, Math.ceil(Math.max(1, maxCount) / step) * step);
  const y = (v) => margin.top + plotH - (v / yMax) * plotH;
  const band = plotW / buckets.length;
  const barW = Math.max(1, Math.min(48, band * 0.72));

  const svg = s('svg', {
    class: 'chart-svg',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': label,
  });

  const grid = s('g', { class: 'grid', 'aria-hidden': 'true' });
  for (let v = 0; v <= yMax; v += step) {
    grid.append(
      s('line', { x1: margin.left, x2: width - margin.right, y1: y(v), y2: y(v), class: v === 0 ? 'axis' : 'gridline' }),
      s('text', { x: margin.left - 6, y: y(v), class: 'tick tick-y', 'dominant-baseline': 'middle', 'text-anchor': 'end' }, formatNumber(v)),
    );
  }
  svg.append(grid);

  const labelEvery = Math.max(1, Math.ceil(buckets.length / Math.max(1, Math.floor(plotW / 52))));
  const bars = s('g', { class: 'bars' });
  buckets.forEach((b, i) => {
    const cx = margin.left + band * i + band / 2;
    const isCurrent = i === buckets.length - 1;
    if (b.count > 0) {
      const top = y(b.count);
      bars.append(
        s(
          'rect',
          {
            x: cx - barW / 2,
            y: top,
            width: barW,
            height: margin.top + plotH - top,
            rx: Math.min(3, barW / 3),
            class: isCurrent ? 'bar bar-current' : 'bar',
          },
          s('title', {}, `${periodLabel(bucket, b.start, true)}: ${plural(b.count, 'item')}`),
        ),
      );
      if (band >= 22) {
        bars.append(s('text', { x: cx, y: top - 4, class: 'bar-value', 'text-anchor': 'middle', 'aria-hidden': 'true' }, formatNumber(b.count)));
      }
    }
    if ((buckets.length - 1 - i) % labelEvery === 0) {
      bars.append(
        s('text', { x: cx, y: height - 8, class: 'tick tick-x', 'text-anchor': 'middle', 'aria-hidden': 'true' }, periodLabel(bucket, b.start)),
      );
    }
  });
  svg.append(bars);
  container.replaceChildren(svg);
}
