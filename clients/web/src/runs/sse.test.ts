import { describe, expect, it } from 'vitest';

import { parseSse } from './sse';

describe('parseSse', () => {
  it('splits complete messages and keeps a partial one for the next chunk', () => {
    const chunk =
      ': keep-alive\n\nid: 7\nevent: sankalpa.chains.step.started\ndata: {"a":1}\n\nid: 8\nevent: sankalpa.ch';
    const { messages, rest } = parseSse(chunk);
    expect(messages).toEqual([{ id: '7', event: 'sankalpa.chains.step.started', data: '{"a":1}' }]);
    expect(rest).toBe('id: 8\nevent: sankalpa.ch');
    const next = parseSse(`${rest}ains.run.completed\ndata: {}\n\n`);
    expect(next.messages).toEqual([{ id: '8', event: 'sankalpa.chains.run.completed', data: '{}' }]);
    expect(next.rest).toBe('');
  });

  it('joins multi-line data and accepts CRLF', () => {
    expect(parseSse('event: error\r\ndata: line one\r\ndata: line two\r\n\r\n').messages).toEqual([
      { event: 'error', data: 'line one\nline two' },
    ]);
  });
});
