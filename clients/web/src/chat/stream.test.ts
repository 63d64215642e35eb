import { describe, expect, it } from 'vitest';

import { actionOf, readEvents } from './stream';

function body(chunks: string[]): ReadableStream<Uint8Array<ArrayBuffer>> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

describe('the chat stream', () => {
  it('reads each event as it completes, however the body is cut', async () => {
    const text = 'event: plan\ndata: {"execution_ready":true}\n\nevent: delta\ndata: {"text":"Hel"}\n\n' +
      'event: delta\ndata: {"text":"lo"}\n\n: keep-alive\n\nevent: done\ndata: {"message_id":"a","user_message_id":"u"}\n\n';
    for (let cut = 1; cut < text.length; cut += 7) {
      const actions: unknown[] = [];
      await readEvents(body([text.slice(0, cut), text.slice(cut)]), (message) => actions.push(actionOf(message)));
      expect(actions).toEqual([
        { kind: 'plan', plan: { execution_ready: true } },
        { kind: 'delta', text: 'Hel' },
        { kind: 'delta', text: 'lo' },
        { kind: 'done', messageId: 'a', userMessageId: 'u' },
      ]);
    }
  });

  it('turns an error event into a failure carrying the problem', () => {
    const problem = { type: '/problems/service-unavailable', title: 'Service Unavailable', status: 503 };
    expect(actionOf({ event: 'error', data: JSON.stringify(problem) })).toEqual({ kind: 'failed', problem });
  });

  it('ignores events it does not know and deltas without text', () => {
    expect(actionOf({ event: 'message', data: '{}' })).toBeNull();
    expect(actionOf({ event: 'delta', data: '{"text": 3}' })).toBeNull();
    expect(actionOf({ event: 'done', data: '{"message_id": "a"}' })).toBeNull();
  });
});
