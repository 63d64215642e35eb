import { describe, expect, it } from 'vitest';

import { refreshDelayMs, retryDelayMs } from './refresh';

describe('refreshDelayMs', () => {
  it('refreshes a 15-minute token a minute before it expires', () => {
    expect(refreshDelayMs(900)).toBe(840_000);
  });

  it('refreshes a short token a fifth of its life early', () => {
    expect(refreshDelayMs(10)).toBe(8_000);
  });

  it('never schedules sooner than a second, even for an expired token', () => {
    expect(refreshDelayMs(0)).toBe(1_000);
    expect(refreshDelayMs(-5)).toBe(1_000);
  });
});

describe('retryDelayMs', () => {
  it('doubles from one second up to thirty', () => {
    expect([1, 2, 3, 6, 10].map(retryDelayMs)).toEqual([1_000, 2_000, 4_000, 30_000, 30_000]);
  });
});
