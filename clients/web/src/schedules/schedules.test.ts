import { describe, expect, it } from 'vitest';

import { type ScheduleFields, MAX_INPUT_BYTES, isProblem, scheduleBody, targetOf, timingOf } from './schedules';

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
