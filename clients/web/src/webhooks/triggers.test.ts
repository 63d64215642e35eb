import { describe, expect, it } from 'vitest';

import { type TriggerFields, DEFAULT_MAPPING, MAX_MAPPING_BYTES, isProblem, runsOf, triggerBody, urlOf } from './triggers';

const FIELDS: TriggerFields = {
  name: ' on push ',
  target: 'template:hello-sequence',
  mapping: '{"name": "${body.pusher.name}"}',
  signature: 'github',
};

describe('triggerBody', () => {
  it('sends a template, the mapping as an object and the signature', () => {
    expect(triggerBody(FIELDS)).toEqual({
      name: 'on push',
      template: 'hello-sequence',
      input_mapping: { name: '${body.pusher.name}' },
      signature: 'github',
    });
  });

  it('sends a stored chain by id, not a template', () => {
    const body = triggerBody({ ...FIELDS, target: 'chain:0b6c6e3e-1c1d-4a57-9d6e-2a4f5b0c1d2e' });
    expect(body).toMatchObject({ chain_id: '0b6c6e3e-1c1d-4a57-9d6e-2a4f5b0c1d2e' });
    expect(body).not.toHaveProperty('template');
  });

  it('takes an empty mapping as the whole body, as the service does', () => {
    expect(triggerBody({ ...FIELDS, mapping: ' ' })).toMatchObject({ input_mapping: JSON.parse(DEFAULT_MAPPING) });
  });

  it.each([
    [{ target: '' }, 'chain_id'],
    [{ mapping: '{"name": ' }, 'input_mapping'],
    [{ mapping: '[1, 2]' }, 'input_mapping'],
    [{ mapping: 'null' }, 'input_mapping'],
    [{ mapping: JSON.stringify({ big: 'x'.repeat(MAX_MAPPING_BYTES) }) }, 'input_mapping'],
  ])('refuses %j on the field the server names (%s)', (change, field) => {
    const body = triggerBody({ ...FIELDS, ...change });
    expect(isProblem(body) && body.field).toBe(field);
  });
});

describe('urlOf', () => {
  it('is the gateway serving the console, at the trigger path, without a doubled slash', () => {
    expect(urlOf({ id: 'abc' }, 'https://sankalpa.example.com/')).toBe('https://sankalpa.example.com/api/webhooks/in/abc');
  });
});

describe('runsOf', () => {
  it('names a template, a stored chain by its name, an unknown chain by its id', () => {
    const names = new Map([['c1', 'digest']]);
    expect(runsOf({ template: 'hello-sequence' }, names)).toBe('template hello-sequence');
    expect(runsOf({ chain_id: 'c1' }, names)).toBe('chain digest');
    expect(runsOf({ chain_id: 'c2' }, names)).toBe('chain c2');
  });
});
