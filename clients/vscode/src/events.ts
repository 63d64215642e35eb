// A chain run's events, read from the gateway's Server-Sent Events stream
// (`GET /api/chains/runs/{id}/events`): replay, then live, until the run's terminal event. A
// stream that drops before it is opened again after the last sequence seen, so no event is
// missed or repeated.
import { type Client, type CloudEvent } from './api';

/** The largest SSE event accepted (bytes): a CloudEvent is a few KiB. */
export const MAX_EVENT_BYTES = 1024 * 1024;
/** Times a dropped stream is opened again before following gives up. */
export const MAX_RECONNECTS = 5;

export const TERMINAL = ['sankalpa.chains.run.completed', 'sankalpa.chains.run.failed', 'sankalpa.chains.run.cancelled'];

export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** Parses a text/event-stream body into events (the WHATWG rules: fields, comments, blanks). */
export async function* readSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let current: { id?: string; event?: string; data: string[] } = { data: [] };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    if (buffer.length > MAX_EVENT_BYTES) {
      throw new Error(`an event of the stream is larger than ${MAX_EVENT_BYTES} bytes`);
    }
    let end: number;
    while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer.startsWith('\r\n', end) ? 2 : 1));
      if (line === '') {
        if (current.data.length > 0) {
          yield { id: current.id, event: current.event ?? 'message', data: current.data.join('\n') };
        }
        current = { data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') current.data.push(value);
      else if (field === 'event') current.event = value;
      else if (field === 'id') current.id = value;
    }
  }
}

/**
 * Calls `onEvent` with each of the run's events, in order, until its terminal event, whose type
 * it answers. Aborting `signal` stops following (the run goes on: cancelling is `Client.cancel`).
 */
export async function followRun(
  client: Client,
  runId: string,
  onEvent: (event: CloudEvent) => void,
  signal?: AbortSignal,
): Promise<string> {
  let after: number | undefined;
  for (let attempt = 0; attempt <= MAX_RECONNECTS; attempt++) {
    const query = after === undefined ? '' : `?after_sequence=${after}`;
    const response = await client.fetch('GET', `/api/chains/runs/${encodeURIComponent(runId)}/events${query}`, {
      accept: 'text/event-stream',
      signal,
    });
    if (!response.body) throw new Error('the event stream has no body');
    for await (const sse of readSse(response.body)) {
      if (sse.event === 'error') throw new Error(`the event stream ended with an error: ${sse.data}`);
      const event = JSON.parse(sse.data) as CloudEvent;
      after = event.sequence;
      onEvent(event);
      if (TERMINAL.includes(event.type)) {
        await response.body.cancel().catch(() => undefined);
        return event.type;
      }
    }
    if (signal?.aborted) break;
  }
  signal?.throwIfAborted();
  throw new Error(`the event stream of run ${runId} kept ending before the run did`);
}

/** One line of an output channel for an event: `12:00:01 step.completed plan (api_builder)`. */
export function describeEvent(event: CloudEvent): string {
  const data = event.data as Record<string, unknown>;
  const time = event.time ? new Date(event.time).toISOString().slice(11, 19) : '';
  const action = event.type.replace(/^sankalpa\.chains\./, '');
  const step = typeof data.step_id === 'string' ? ` ${data.step_id}` : '';
  const agent = typeof data.agent === 'string' && data.agent ? ` (${data.agent})` : '';
  const error = data.error && typeof data.error === 'object' ? ` — ${JSON.stringify(data.error)}` : '';
  return `${time} ${action}${step}${agent}${error}`.trim();
}
