import { describe, expect, it } from 'vitest';

import { type Action, type ChatMessage, type Conversation, EMPTY, isSaved, lastAsked, reduce } from './conversation';

const AT = '2026-12-06T00:00:00Z';

function message(id: string, role: 'user' | 'assistant', text: string): ChatMessage {
  return { id, role, text, created_at: AT, stopped: false };
}

function fold(actions: Action[], from: Conversation = EMPTY): Conversation {
  return actions.reduce(reduce, from);
}

const plan = {
  chain: { steps: [{ id: 'db_schema', agent: 'db_schema' }] },
  input: {},
  analysis: { agent_count: 1, chain_type: 'sequential', estimated_complexity: 'low', identified_entities: [], identified_requirements: [] },
  execution_ready: true,
  violations: [],
  not_in_chain: [],
} as unknown as Extract<Action, { kind: 'plan' }>['plan'];

describe('the conversation reducer', () => {
  it('folds a reply as it streams, then takes the saved ids', () => {
    const writing = fold([
      { kind: 'sent', text: 'a shop', regenerate: false, at: AT },
      { kind: 'plan', plan },
      { kind: 'delta', text: 'Here ' },
      { kind: 'delta', text: 'it is.' },
    ]);
    expect(writing.writing).toBe(true);
    expect(writing.messages.map((m) => [m.role, m.text])).toEqual([
      ['user', 'a shop'],
      ['assistant', 'Here it is.'],
    ]);
    expect(writing.messages[1]?.plan).toBe(plan);
    expect(writing.messages.some(isSaved)).toBe(false);
    const done = reduce(writing, { kind: 'done', userMessageId: 'u1', messageId: 'a1' });
    expect(done.writing).toBe(false);
    expect(done.messages.map((m) => m.id)).toEqual(['u1', 'a1']);
    expect(done.messages.every(isSaved)).toBe(true);
  });

  it('ignores events of no reply in flight', () => {
    const loaded = fold([{ kind: 'loaded', messages: [message('u1', 'user', 'hi')] }]);
    expect(fold([{ kind: 'delta', text: 'late' }], loaded)).toEqual(loaded);
  });

  it('regenerating replaces the last exchange, as the server does', () => {
    const loaded = fold([
      {
        kind: 'loaded',
        messages: [message('u1', 'user', 'one'), message('a1', 'assistant', 'first'), message('u2', 'user', 'two'), message('a2', 'assistant', 'second')],
      },
    ]);
    expect(lastAsked(loaded)).toBe('two');
    const again = reduce(loaded, { kind: 'sent', text: 'two', regenerate: true, at: AT });
    expect(again.messages.map((m) => m.text)).toEqual(['one', 'first', 'two', '']);
  });

  it('a stop keeps what was written, marked stopped', () => {
    const stopped = fold([
      { kind: 'sent', text: 'a shop', regenerate: false, at: AT },
      { kind: 'delta', text: 'Here' },
      { kind: 'stopped' },
    ]);
    expect(stopped.writing).toBe(false);
    expect(stopped.messages[1]).toMatchObject({ text: 'Here', stopped: true });
  });

  it('a failure before any text leaves no empty reply, and says why', () => {
    const problem = { type: '/problems/service-unavailable', title: 'Service Unavailable', status: 503 };
    const failed = fold([
      { kind: 'sent', text: 'a shop', regenerate: false, at: AT },
      { kind: 'failed', problem },
    ]);
    expect(failed.messages.map((m) => m.role)).toEqual(['user']);
    expect(failed.problem).toBe(problem);
    expect(failed.writing).toBe(false);
  });

  it('links a run to its message', () => {
    const loaded = fold([{ kind: 'loaded', messages: [message('a1', 'assistant', 'plan')] }]);
    expect(reduce(loaded, { kind: 'linked', messageId: 'a1', runId: 'r1' }).messages[0]?.run_id).toBe('r1');
  });
});
