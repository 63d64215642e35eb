/**
 * The dashboard's panels: which series each charts, and how its values read. The series come
 * from `GET /api/dashboard/series` (names in docs/observability.md); a panel lines up the
 * series it charts on one time axis, the busiest few when there are many.
 */
import type { Schemas } from '../api/client';

export type Series = Schemas['Series'];

export interface Panel {
  id: string;
  title: string;
  names: string[];
  /** How the legend tells the names apart, one for each (when there are several). */
  short?: string[];
  unit: 'rate' | 'ratio' | 'seconds' | 'bytes' | 'cores';
}

export const PANELS: Panel[] = [
  { id: 'requests', title: 'Requests per second', names: ['http_request_rate'], unit: 'rate' },
  { id: 'errors', title: 'Error ratio (5xx) by route', names: ['http_error_ratio'], unit: 'ratio' },
  {
    id: 'latency',
    title: 'Request latency (p50, p95, p99)',
    names: ['http_request_duration_p50', 'http_request_duration_p95', 'http_request_duration_p99'],
    short: ['p50', 'p95', 'p99'],
    unit: 'seconds',
  },
  { id: 'agents', title: 'Agent runs per second, by agent and outcome', names: ['agent_run_rate'], unit: 'rate' },
  {
    id: 'agent-durations',
    title: 'Agent step durations (p50, p95)',
    names: ['agent_run_duration_p50', 'agent_run_duration_p95'],
    short: ['p50', 'p95'],
    unit: 'seconds',
  },
  { id: 'chains', title: 'Chain runs and steps per second', names: ['chain_run_rate', 'chain_step_rate'], short: ['runs', 'steps'], unit: 'rate' },
  { id: 'cache', title: 'Memory cache hit ratio', names: ['memory_cache_hit_ratio'], unit: 'ratio' },
  {
    id: 'lag',
    title: 'Event stream lag (p95)',
    names: ['event_publish_lag_p95', 'event_consume_lag_p95'],
    short: ['publish', 'consume'],
    unit: 'seconds',
  },
  { id: 'cpu', title: 'CPU per service', names: ['process_cpu_usage'], unit: 'cores' },
  { id: 'memory', title: 'Resident memory per service', names: ['process_resident_memory_bytes'], unit: 'bytes' },
];

/** Lines a panel draws at most: the busiest ones. */
export const MAX_LINES = 8;

export function formatValue(value: number | null | undefined, unit: Panel['unit']): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  switch (unit) {
    case 'rate':
      return `${value < 10 ? value.toFixed(2) : value.toFixed(0)}/s`;
    case 'ratio':
      return `${(value * 100).toFixed(1)}%`;
    case 'seconds':
      return value < 1 ? `${(value * 1000).toFixed(value < 0.01 ? 1 : 0)} ms` : `${value.toFixed(2)} s`;
    case 'bytes':
      return value >= 1 << 30
        ? `${(value / (1 << 30)).toFixed(2)} GiB`
        : `${(value / (1 << 20)).toFixed(1)} MiB`;
    case 'cores':
      return value.toFixed(2);
  }
}

/** Labels whose values speak for themselves; others show as `key=value`. */
const PLAIN_LABELS = new Set(['method', 'route', 'service', 'agent', 'outcome', 'status', 'channel']);

/** A series' name for its legend: what distinguishes it (which of the panel's names, its labels). */
export function lineLabel(series: Series, panel: Panel): string {
  const labels = Object.entries(series.labels)
    .map(([key, value]) => (PLAIN_LABELS.has(key) ? value : `${key}=${value}`))
    .join(' ');
  const which = panel.short?.[panel.names.indexOf(series.name)] ?? '';
  return [which, labels].filter(Boolean).join(' ') || series.name;
}

export interface Aligned {
  /** Seconds since the epoch (uPlot's x), ascending. */
  times: number[];
  lines: { label: string; values: (number | null)[]; last: number | null }[];
}

/** The panel's series on one time axis, the busiest MAX_LINES first. */
export function align(all: Series[], panel: Panel): Aligned {
  const chosen = all
    .filter((series) => panel.names.includes(series.name))
    .map((series) => ({
      series,
      weight: series.points.reduce((sum, point) => sum + Math.abs(point[1] ?? 0), 0),
    }))
    .sort((a, b) => b.weight - a.weight)
    .slice(0, MAX_LINES)
    .map(({ series }) => series);
  const times = [...new Set(chosen.flatMap((series) => series.points.map((point) => point[0] ?? 0)))].sort(
    (a, b) => a - b,
  );
  const index = new Map(times.map((time, position) => [time, position]));
  const lines = chosen.map((series) => {
    const values: (number | null)[] = times.map(() => null);
    for (const [time, value] of series.points) {
      const position = index.get(time ?? 0);
      if (position !== undefined) values[position] = value ?? null;
    }
    const last = [...values].reverse().find((value) => value !== null) ?? null;
    return { label: lineLabel(series, panel), values, last };
  });
  return { times: times.map((time) => time / 1000), lines };
}
