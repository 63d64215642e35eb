/**
 * When to refresh an access token: early enough that no request meets an expired token, late
 * enough not to refresh needlessly. A fifth of its life before it expires, at most a minute
 * before and at least a second after now (a shortened lifetime in tests still works).
 */
export function refreshDelayMs(expiresInSeconds: number): number {
  const lifetimeMs = Math.max(0, expiresInSeconds) * 1000;
  const margin = Math.min(60_000, lifetimeMs / 5);
  return Math.max(1_000, lifetimeMs - margin);
}

/** How long to wait before the `attempt`th retry of a failed refresh (1, 2, 4 ... 30 s). */
export function retryDelayMs(attempt: number): number {
  return Math.min(30_000, 1_000 * 2 ** Math.max(0, attempt - 1));
}
