import { describe, expect, it } from 'vitest';

import type { Schedule } from './queries';
import { type ScheduleFields, MAX_INPUT_BYTES, fieldsOf, isProblem, scheduleBody, scheduleChanges, targetOf, timingOf } from './schedules';

const FIELDS: ScheduleFields = {
  name: ' nightly digest ',
  target: 'template:hello-sequence',
  input: '{"name": "Ada"}',
  timing: 'cron',
  cron: ' 0 30 6 * * 1-5 ',
  timeZone: 'Europe/Paris',
  interval: '60',
  overlap: 'skip',
  catchUp: 'none',
  catchUpWindow: '3600',
  jitter: '0',
  paused: false,
};

describe('scheduleBody', () => {
  it('sends a template with a cron expression and its zone, not the interval', () => {
    expect(scheduleBody(FIELDS)).toEqual({
      name: 'nightly digest',
      template: 'hello-sequence',
      input: { name: 'Ada' },
      overlap: 'skip',
      catch_up: 'none',
      jitter_seconds: 0,
      paused: false,
      cron: '0 30 6 * * 1-5',
      time_zone: 'Europe/Paris',
    });
  });

  it('sends a stored chain every interval, without a zone the server would refuse', () => {
    const body = scheduleBody({ ...FIELDS, target: 'chain:0b6c6e3e-1c1d-4a57-9d6e-2a4f5b0c1d2e', timing: 'interval' });
    expect(body).toMatchObject({ chain_id: '0b6c6e3e-1c1d-4a57-9d6e-2a4f5b0c1d2e', interval_seconds: 60 });
    expect(body).not.toHaveProperty('time_zone');
    expect(body).not.toHaveProperty('cron');
    expect(body).not.toHaveProperty('template');
  });

  it('leaves out an empty zone (UTC) and sends the window only with catch-up all', () => {
    expect(scheduleBody({ ...FIELDS, timeZone: ' ' })).not.toHaveProperty('time_zone');
    expect(scheduleBody(FIELDS)).not.toHaveProperty('catch_up_window_seconds');
    expect(scheduleBody({ ...FIELDS, catchUp: 'all', catchUpWindow: '600' })).toMatchObject({ catch_up: 'all', catch_up_window_seconds: 600 });
  });

  it('takes an empty input as {}', () => {
    expect(scheduleBody({ ...FIELDS, input: '  ' })).toMatchObject({ input: {} });
  });

  it.each([
    [{ target: '' }, 'chain_id'],
    [{ input: '{"name": ' }, 'input'],
    [{ input: '[1, 2]' }, 'input'],
    [{ input: 'null' }, 'input'],
    [{ input: JSON.stringify({ big: 'x'.repeat(MAX_INPUT_BYTES) }) }, 'input'],
    [{ timing: 'interval' as const, interval: '0' }, 'interval_seconds'],
    [{ timing: 'interval' as const, interval: '1.5' }, 'interval_seconds'],
    [{ timing: 'interval' as const, interval: '31622401' }, 'interval_seconds'],
    [{ timing: 'interval' as const, interval: '' }, 'interval_seconds'],
    [{ jitter: '3601' }, 'jitter_seconds'],
    [{ catchUp: 'all' as const, catchUpWindow: '604801' }, 'catch_up_window_seconds'],
  ])('refuses %j on the field the server names (%s)', (change, field) => {
    const body = scheduleBody({ ...FIELDS, ...change });
    expect(isProblem(body) && body.field).toBe(field);
  });

  it('accepts the bounds themselves', () => {
    const body = scheduleBody({ ...FIELDS, timing: 'interval', interval: '31622400', jitter: '3600', catchUp: 'all', catchUpWindow: '604800' });
    expect(isProblem(body)).toBe(false);
  });
});

const STORED: Schedule = {
  id: '0b6c6e3e-1c1d-4a57-9d6e-2a4f5b0c1d2e',
  tenant_id: 't1',
  name: 'nightly digest',
  template: 'hello-sequence',
  chain_id: null,
  input: { name: 'Ada' },
  cron: '0 30 6 * * 1-5',
  time_zone: 'Europe/Paris',
  interval_seconds: null,
  overlap: 'buffer_one',
  catch_up: 'all',
  catch_up_window_seconds: 600,
  jitter_seconds: 5,
  paused: true,
  next: [],
  created_by: 'u1',
};

describe('scheduleChanges', () => {
  it('sends every setting the form shows, never the chain, and the renewal asked for', () => {
    const changes = scheduleChanges(fieldsOf(STORED), true);
    expect(changes).toEqual({
      name: 'nightly digest',
      input: { name: 'Ada' },
      overlap: 'buffer_one',
      catch_up: 'all',
      catch_up_window_seconds: 600,
      jitter_seconds: 5,
      paused: true,
      cron: '0 30 6 * * 1-5',
      time_zone: 'Europe/Paris',
      renew_credential: true,
    });
  });

  it('moves a cron schedule to an interval, and resumes it', () => {
    const changes = scheduleChanges({ ...fieldsOf(STORED), timing: 'interval', interval: '300', paused: false }, false);
    expect(changes).toMatchObject({ interval_seconds: 300, paused: false, renew_credential: false });
    expect(changes).not.toHaveProperty('cron');
    expect(changes).not.toHaveProperty('time_zone');
  });

  it('sends an emptied zone as UTC, since an absent one keeps the stored zone', () => {
    expect(scheduleChanges({ ...fieldsOf(STORED), timeZone: ' ' }, false)).toMatchObject({ time_zone: 'UTC' });
  });

  it('refuses what the browser can tell is wrong, on the field the server names', () => {
    const changes = scheduleChanges({ ...fieldsOf(STORED), jitter: '-1' }, false);
    expect(isProblem(changes) && changes.field).toBe('jitter_seconds');
  });
});

describe('fieldsOf', () => {
  it('starts the form from an interval schedule of a stored chain', () => {
    const fields = fieldsOf({ ...STORED, template: null, chain_id: 'c1', cron: null, time_zone: null, interval_seconds: 90 });
    expect(fields).toMatchObject({ target: 'chain:c1', timing: 'interval', interval: '90', cron: '', timeZone: '' });
    expect(JSON.parse(fields.input)).toEqual({ name: 'Ada' });
  });
});

describe('timingOf', () => {
  it('says a cron expression with its zone, UTC when it has none', () => {
    expect(timingOf({ cron: '*/5 * * * *', time_zone: 'Asia/Kolkata' })).toBe('*/5 * * * * (Asia/Kolkata)');
    expect(timingOf({ cron: '0 0 * * *', time_zone: null })).toBe('0 0 * * * (UTC)');
  });

  it('says an interval in its largest whole unit', () => {
    expect(timingOf({ interval_seconds: 1 })).toBe('every 1 s');
    expect(timingOf({ interval_seconds: 90 })).toBe('every 90 s');
    expect(timingOf({ interval_seconds: 300 })).toBe('every 5 min');
    expect(timingOf({ interval_seconds: 7200 })).toBe('every 2 h');
    expect(timingOf({ interval_seconds: 172_800 })).toBe('every 2 d');
  });
});

describe('targetOf', () => {
  it('names a template, a stored chain by its name, an unknown chain by its id', () => {
    const names = new Map([['c1', 'digest']]);
    expect(targetOf({ template: 'hello-sequence' }, names)).toBe('template hello-sequence');
    expect(targetOf({ chain_id: 'c1' }, names)).toBe('chain digest');
    expect(targetOf({ chain_id: 'c2' }, names)).toBe('chain c2');
  });
});
