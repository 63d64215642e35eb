import { describe, expect, it } from 'vitest';

import { PANELS, type Series, align, formatValue, lineLabel } from './panels';

const latency = PANELS.find((panel) => panel.id === 'latency')!;

function series(name: string, labels: Record<string, string>, points: [number, number | null][]): Series {
  return { name, labels, unit: 'seconds', points };
}

describe('align', () => {
  it('puts the panel series on one time axis with gaps as null', () => {
    const aligned = align(
      [
        series('http_request_duration_p50', { method: 'GET', route: '/api/status' }, [[1000, 0.01], [2000, 0.02]]),
        series('http_request_duration_p99', { method: 'GET', route: '/api/status' }, [[2000, 0.5], [3000, null]]),
        series('process_cpu_usage', { service: 'auth' }, [[1000, 0.3]]),
      ],
      latency,
    );
    expect(aligned.times).toEqual([1, 2, 3]);
    expect(aligned.lines.map((line) => line.label)).toEqual(['p99 GET /api/status', 'p50 GET /api/status']);
    expect(aligned.lines[0]!.values).toEqual([null, 0.5, null]);
    expect(aligned.lines[0]!.last).toBe(0.5);
    expect(aligned.lines[1]!.values).toEqual([0.01, 0.02, null]);
  });

  it('keeps the busiest eight lines', () => {
    const many = Array.from({ length: 12 }, (_, route) =>
      series('http_request_rate', { route: `/r${route}` }, [[1000, route]]),
    );
    const aligned = align(many, PANELS[0]!);
    expect(aligned.lines).toHaveLength(8);
    expect(aligned.lines[0]!.label).toBe('/r11');
  });
});

describe('formatValue', () => {
  it('reads each unit as a person would', () => {
    expect(formatValue(0.0042, 'seconds')).toBe('4.2 ms');
    expect(formatValue(1.5, 'seconds')).toBe('1.50 s');
    expect(formatValue(0.25, 'ratio')).toBe('25.0%');
    expect(formatValue(3, 'rate')).toBe('3.00/s');
    expect(formatValue(52_428_800, 'bytes')).toBe('50.0 MiB');
    expect(formatValue(null, 'rate')).toBe('—');
  });
});

describe('lineLabel', () => {
  it('tells the names of a panel apart', () => {
    const chains = PANELS.find((p) => p.id === 'chains')!;
    expect(lineLabel(series('chain_step_rate', { status: 'failed' }, []), chains)).toBe('steps failed');
    const lag = PANELS.find((p) => p.id === 'lag')!;
    expect(lineLabel(series('event_publish_lag_p95', { schema: 'memory' }, []), lag)).toBe('publish schema=memory');
  });

  it('names a single-series panel by its labels alone', () => {
    expect(lineLabel(series('process_cpu_usage', { service: 'auth' }, []), PANELS.find((p) => p.id === 'cpu')!)).toBe('auth');
  });
});
