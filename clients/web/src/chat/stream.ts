/**
 * Sending a message: `POST /api/chat/conversations/{id}/messages` answers Server-Sent Events
 * (`plan`, `delta`s, `done`, or `error`), read with fetch so the token travels as a header and
 * aborting the request is the Stop button (the server stops writing and keeps what it wrote).
 */
import type { Problem } from '../api/problem';
import { session } from '../auth/session';
import { parseSse, type SseMessage } from '../runs/sse';
import type { Action } from './conversation';

/** A reply's SSE message as the conversation's action; null for what the page does not know. */
export function actionOf(message: SseMessage): Action | null {
  const data: unknown = JSON.parse(message.data);
  if (!data || typeof data !== 'object') return null;
  const fields = data as Record<string, unknown>;
  switch (message.event) {
    case 'plan':
      return { kind: 'plan', plan: data as Extract<Action, { kind: 'plan' }>['plan'] };
    case 'delta':
      return typeof fields.text === 'string' ? { kind: 'delta', text: fields.text } : null;
    case 'done':
      return typeof fields.message_id === 'string' && typeof fields.user_message_id === 'string'
        ? { kind: 'done', messageId: fields.message_id, userMessageId: fields.user_message_id }
        : null;
    case 'error':
      return { kind: 'failed', problem: data as Problem };
    default:
      return null;
  }
}

/** Reads SSE messages from a body cut anywhere, handing each over as it completes. */
export async function readEvents(body: ReadableStream<Uint8Array<ArrayBuffer>>, onMessage: (message: SseMessage) => void) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const parsed = parseSse(buffer + value);
    buffer = parsed.rest;
    parsed.messages.forEach(onMessage);
  }
}

function failed(status: number, title: string, detail?: string): Action {
  return { kind: 'failed', problem: { type: 'about:blank', title, status, ...(detail ? { detail } : {}) } };
}

/**
 * Sends `text` to conversation `id` and dispatches the reply's actions as they come; resolves
 * when the reply ends. Aborting `signal` stops it (dispatching `stopped`).
 */
export async function send(
  id: string,
  text: string,
  regenerate: boolean,
  dispatch: (action: Action) => void,
  signal: AbortSignal,
): Promise<void> {
  const post = () => {
    const token = session.token();
    return fetch(`/api/chat/conversations/${encodeURIComponent(id)}/messages`, {
      method: 'POST',
      headers: {
        accept: 'text/event-stream',
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ text, regenerate }),
      signal,
    });
  };
  let ended = false;
  try {
    let response = await post();
    if (response.status === 401 && (await session.refresh())) response = await post();
    if (!response.ok || !response.body) {
      const body: unknown = await response.json().catch(() => null);
      const problem = body && typeof body === 'object' && 'title' in body ? (body as Problem) : null;
      dispatch(problem ? { kind: 'failed', problem } : failed(response.status, response.statusText || `HTTP ${response.status}`));
      return;
    }
    await readEvents(response.body, (message) => {
      const action = actionOf(message);
      if (!action) return;
      if (action.kind === 'done' || action.kind === 'failed') ended = true;
      dispatch(action);
    });
    if (!ended) dispatch(failed(0, 'The reply was cut off', 'The connection closed before the reply ended.'));
  } catch (error) {
    if (signal.aborted) dispatch({ kind: 'stopped' });
    else dispatch(failed(0, 'The request failed', error instanceof Error ? error.message : String(error)));
  }
}
