import { describe, expect, it } from 'vitest';

import { isTimeFilter, windowOf } from './window';

const NOW = Date.parse('2026-12-05T12:00:00.000Z');

describe('the runs time filter', () => {
  it('reaches back a span from now', () => {
    expect(windowOf('hour', NOW)).toEqual({ since: '2026-12-05T11:00:00.000Z' });
    expect(windowOf('day', NOW)).toEqual({ since: '2026-12-04T12:00:00.000Z' });
    expect(windowOf('week', NOW)).toEqual({ since: '2026-11-28T12:00:00.000Z' });
    expect(windowOf('', NOW)).toEqual({});
  });

  it('takes a custom range as local times, either bound optional', () => {
    const from = '2026-12-01T08:30';
    expect(windowOf('custom', NOW, from, '')).toEqual({ since: new Date(from).toISOString() });
    expect(windowOf('custom', NOW, '', 'nonsense')).toEqual({});
  });

  it('knows its filters', () => {
    expect(['', 'hour', 'day', 'week', 'custom'].every(isTimeFilter)).toBe(true);
    expect(isTimeFilter('month')).toBe(false);
    expect(isTimeFilter('toString')).toBe(false);
  });
});
