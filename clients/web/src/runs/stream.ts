/**
 * Follows a run's event stream until the run ends, reconnecting after a drop (growing pauses)
 * from the last sequence seen, and renewing the token when the stream says it expired.
 */
import { session } from '../auth/session';
import { parseSse } from './sse';
import type { CloudEvent } from './timeline';

export type StreamState = 'connecting' | 'live' | 'reconnecting' | 'ended';

const TERMINAL_TYPES = new Set([
  'sankalpa.chains.run.completed',
  'sankalpa.chains.run.failed',
  'sankalpa.chains.run.cancelled',
]);

export function followRun(
  runId: string,
  afterSequence: number,
  onEvent: (event: CloudEvent) => void,
  onState: (state: StreamState) => void,
  /** The gateway's origin; the page's own when empty. */
  origin = '',
): () => void {
  const stop = new AbortController();
  let last = afterSequence;
  // Failed connections in a row: the pause before the next grows with it, and a stream that
  // went live starts counting again.
  let attempt = 0;

  async function once(): Promise<'ended' | 'dropped'> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    const token = session.token();
    if (token) headers.authorization = `Bearer ${token}`;
    if (last > 0) headers['last-event-id'] = String(last);
    const response = await fetch(`${origin}/api/chains/runs/${encodeURIComponent(runId)}/events`, {
      headers,
      signal: stop.signal,
    });
    if (response.status === 401) {
      return (await session.refresh()) ? 'dropped' : 'ended';
    }
    if (!response.ok || !response.body) return response.status === 404 ? 'ended' : 'dropped';
    onState('live');
    attempt = 0;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return 'dropped';
      const parsed = parseSse(buffer + value);
      buffer = parsed.rest;
      for (const message of parsed.messages) {
        if (message.event === 'error') {
          // The stream's caller no longer holds (401): renew and resume.
          return (await session.refresh()) ? 'dropped' : 'ended';
        }
        const event = JSON.parse(message.data) as CloudEvent;
        last = Math.max(last, event.sequence);
        onEvent(event);
        if (TERMINAL_TYPES.has(event.type)) return 'ended';
      }
    }
  }

  void (async () => {
    onState('connecting');
    while (!stop.signal.aborted) {
      let outcome: 'ended' | 'dropped';
      try {
        outcome = await once();
      } catch {
        if (stop.signal.aborted) return;
        outcome = 'dropped';
      }
      if (outcome === 'ended') break;
      onState('reconnecting');
      attempt += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 250 * 2 ** attempt)));
    }
    onState('ended');
  })();

  return () => stop.abort();
}
