/**
 * The runs page's time filter: a span back from now (the last hour, day, week) or a custom range
 * picked as local times, turned into the list's `since` and `until` (RFC 3339, UTC).
 */
import type { CreatedWindow } from './queries';

export const SPANS = { hour: 3_600_000, day: 86_400_000, week: 604_800_000 } as const;

export type TimeFilter = '' | keyof typeof SPANS | 'custom';

export function isTimeFilter(value: string): value is TimeFilter {
  return value === '' || value === 'custom' || Object.hasOwn(SPANS, value);
}

/** A `datetime-local` value (local time, no zone) as an instant; '' or nonsense gives none. */
export function instant(local: string): string | undefined {
  if (!local) return undefined;
  const at = new Date(local);
  return Number.isNaN(at.getTime()) ? undefined : at.toISOString();
}

/** The window a filter means at `now`; a custom one from its local bounds, each optional. */
export function windowOf(filter: TimeFilter, now: number, from = '', to = ''): CreatedWindow {
  if (filter === '') return {};
  if (filter === 'custom') {
    const since = instant(from);
    const until = instant(to);
    return { ...(since ? { since } : {}), ...(until ? { until } : {}) };
  }
  return { since: new Date(now - SPANS[filter]).toISOString() };
}
