import { describe, expect, it } from 'vitest';

import { MAX_EVENT_TYPES, eventTypesError, eventTypesProblem, outcomeOf, parseEventTypes, prettyBody } from './endpoints';

describe('event types as typed', () => {
  it('takes one per line or comma, trimmed, without blanks or repeats', () => {
    expect(parseEventTypes(' sankalpa.chains.run.completed \n\nagents.*.failed, agents.*.failed,\n')).toEqual([
      'sankalpa.chains.run.completed',
      'agents.*.failed',
    ]);
  });

  it('needs at least one', () => {
    expect(eventTypesProblem(parseEventTypes(' \n '))).toMatch(/at least one/);
    expect(eventTypesProblem(['*'])).toBeUndefined();
  });

  it('holds the service bounds: 50 filters, 200 bytes each (counted in UTF-8)', () => {
    const many = Array.from({ length: MAX_EVENT_TYPES + 1 }, (_, index) => `agents.a${index}.completed`);
    expect(eventTypesProblem(many.slice(0, MAX_EVENT_TYPES))).toBeUndefined();
    expect(eventTypesProblem(many)).toMatch(/At most 50/);
    expect(eventTypesProblem(['a'.repeat(200)])).toBeUndefined();
    // 100 two-byte characters fit, 101 do not.
    expect(eventTypesProblem(['é'.repeat(100)])).toBeUndefined();
    expect(eventTypesProblem(['é'.repeat(101)])).toMatch(/200 bytes/);
  });
});

describe('a delivery in the log', () => {
  it('says its response code, or why none came, or that it was not sent', () => {
    expect(outcomeOf({ status: 'delivered', attempts: 1, last_status_code: 200, last_error: null })).toBe('HTTP 200');
    expect(outcomeOf({ status: 'pending', attempts: 2, last_status_code: null, last_error: 'timed out' })).toBe('timed out');
    expect(outcomeOf({ status: 'pending', attempts: 0, last_status_code: null, last_error: null })).toBe('not sent yet');
  });

  it('shows a JSON body indented and anything else as it is', () => {
    expect(prettyBody('{"type":"sankalpa.webhooks.test","data":{"a":1}}')).toBe(
      '{\n  "type": "sankalpa.webhooks.test",\n  "data": {\n    "a": 1\n  }\n}',
    );
    expect(prettyBody('not json {')).toBe('not json {');
  });
});

describe("the service's error about the event types", () => {
  it('names the entry it is about by its text, or the list', () => {
    const types = ['agents.*.completed', 'bad..type'];
    expect(eventTypesError([{ field: 'url', message: 'must be https' }, { field: 'event_types[1]', message: 'must be dot-separated tokens' }], types))
      .toBe('bad..type: must be dot-separated tokens');
    expect(eventTypesError([{ field: 'event_types', message: 'must have at most 50 entries' }], types)).toBe('must have at most 50 entries');
    expect(eventTypesError([{ field: 'url', message: 'must be https' }], types)).toBeUndefined();
    expect(eventTypesError(undefined, types)).toBeUndefined();
  });
});
