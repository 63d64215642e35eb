/**
 * The schedules page's logic apart from React: the form's values as the body the API takes to
 * create or change a schedule (checked where the browser can tell, so the server's bounds are not
 * the only guard), a schedule as the form's values, and a schedule's timing in words.
 */
import type { CreateSchedule, Schedule, UpdateSchedule } from './queries';

/** The API's bounds (`CreateSchedule` in docs/openapi.json, the triggers service's `schedules.rs`). */
export const MAX_INTERVAL_SECONDS = 31_622_400;
export const MAX_JITTER_SECONDS = 3600;
export const MAX_CATCH_UP_WINDOW_SECONDS = 604_800;
export const MAX_INPUT_BYTES = 64 * 1024;

export interface ScheduleFields {
  name: string;
  /** `template:<name>` or `chain:<id>`, as the runs page's chain choice. */
  target: string;
  /** The run input as JSON text. */
  input: string;
  timing: 'cron' | 'interval';
  cron: string;
  timeZone: string;
  interval: string;
  overlap: NonNullable<CreateSchedule['overlap']>;
  catchUp: NonNullable<CreateSchedule['catch_up']>;
  catchUpWindow: string;
  jitter: string;
  paused: boolean;
}

/** A field's problem, named as the server names it, so both land on the same field. */
export interface FieldProblem {
  field: string;
  message: string;
}

function whole(field: string, text: string, min: number, max: number): number | FieldProblem {
  const value = Number(text.trim());
  if (text.trim() === '' || !Number.isInteger(value) || value < min || value > max) {
    return { field, message: `must be a whole number from ${min} to ${max.toLocaleString('en')}` };
  }
  return value;
}

/** What creating and editing share: everything but the chain, which a schedule keeps. */
type Settings = Omit<CreateSchedule, 'template' | 'chain_id'>;

/** The form's settings as the API takes them, or the first field the browser can tell is wrong. */
function settingsOf(fields: ScheduleFields): Settings | FieldProblem {
  if (new TextEncoder().encode(fields.input).length > MAX_INPUT_BYTES) {
    return { field: 'input', message: `must be at most ${MAX_INPUT_BYTES} bytes` };
  }
  let input: unknown;
  try {
    input = fields.input.trim() === '' ? {} : JSON.parse(fields.input);
  } catch {
    return { field: 'input', message: 'is not valid JSON' };
  }
  if (!input || typeof input !== 'object' || Array.isArray(input)) return { field: 'input', message: 'must be a JSON object' };
  const jitter = whole('jitter_seconds', fields.jitter, 0, MAX_JITTER_SECONDS);
  if (typeof jitter !== 'number') return jitter;
  const settings: Settings = {
    name: fields.name.trim(),
    input: input as Record<string, unknown>,
    overlap: fields.overlap,
    catch_up: fields.catchUp,
    jitter_seconds: jitter,
    paused: fields.paused,
  };
  if (fields.catchUp === 'all') {
    const window = whole('catch_up_window_seconds', fields.catchUpWindow, 0, MAX_CATCH_UP_WINDOW_SECONDS);
    if (typeof window !== 'number') return window;
    settings.catch_up_window_seconds = window;
  }
  if (fields.timing === 'interval') {
    const seconds = whole('interval_seconds', fields.interval, 1, MAX_INTERVAL_SECONDS);
    if (typeof seconds !== 'number') return seconds;
    return { ...settings, interval_seconds: seconds };
  }
  return { ...settings, cron: fields.cron.trim(), ...(fields.timeZone.trim() ? { time_zone: fields.timeZone.trim() } : {}) };
}

/** The body `POST /api/schedules` takes, or the first field the browser can tell is wrong. */
export function scheduleBody(fields: ScheduleFields): CreateSchedule | FieldProblem {
  const [origin, name = ''] = fields.target.split(/:(.*)/s);
  if (!name) return { field: 'chain_id', message: 'choose a chain or template' };
  const settings = settingsOf(fields);
  if (isProblem(settings)) return settings;
  return { ...(origin === 'template' ? { template: name } : { chain_id: name }), ...settings };
}

/**
 * The body `PATCH /api/schedules/{id}` takes: every setting as the edit form shows it, so that
 * what is saved is what was seen. A cron expression without a zone is sent in UTC, since the
 * service keeps the stored zone when none is sent.
 */
export function scheduleChanges(fields: ScheduleFields, renewCredential: boolean): UpdateSchedule | FieldProblem {
  const settings = settingsOf(fields);
  if (isProblem(settings)) return settings;
  const zone = settings.cron !== undefined && !settings.time_zone ? { time_zone: 'UTC' } : {};
  return { ...settings, ...zone, renew_credential: renewCredential };
}

/** A schedule as the edit form's starting values. */
export function fieldsOf(schedule: Schedule): ScheduleFields {
  return {
    name: schedule.name,
    target: schedule.template ? `template:${schedule.template}` : `chain:${schedule.chain_id ?? ''}`,
    input: JSON.stringify(schedule.input, null, 2),
    timing: schedule.interval_seconds ? 'interval' : 'cron',
    cron: schedule.cron ?? '',
    timeZone: schedule.time_zone ?? '',
    interval: String(schedule.interval_seconds ?? 3600),
    overlap: schedule.overlap,
    catchUp: schedule.catch_up,
    catchUpWindow: String(schedule.catch_up_window_seconds || 3600),
    jitter: String(schedule.jitter_seconds),
    paused: schedule.paused,
  };
}

export function isProblem<T extends object>(value: T | FieldProblem): value is FieldProblem {
  return 'field' in value && 'message' in value;
}

const UNITS: [seconds: number, unit: string][] = [[86_400, 'd'], [3600, 'h'], [60, 'min']];

/** How often a schedule fires: its cron expression and zone, or its interval in the largest whole unit. */
export function timingOf(schedule: Pick<Schedule, 'cron' | 'time_zone' | 'interval_seconds'>): string {
  if (schedule.cron) return `${schedule.cron} (${schedule.time_zone || 'UTC'})`;
  const seconds = schedule.interval_seconds ?? 0;
  const [size, unit] = UNITS.find(([size]) => seconds % size === 0) ?? [1, 's'];
  return `every ${seconds / size} ${unit}`;
}

/** What a schedule runs: the template's name or the stored chain's, else its id. */
export function targetOf(schedule: Pick<Schedule, 'template' | 'chain_id'>, chainNames: Map<string, string>): string {
  if (schedule.template) return `template ${schedule.template}`;
  const id = schedule.chain_id ?? '';
  return `chain ${chainNames.get(id) ?? id}`;
}
