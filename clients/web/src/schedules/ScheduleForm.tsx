/**
 * A new schedule, or one's changes: the chain or template it runs (fixed once created) and its
 * input, a cron expression (with its time zone) or an interval, what ticks do when a run overlaps
 * or ticks were missed, paused, and (editing) a renewed API key. The browser checks what it can;
 * the service's field errors land on their fields.
 */
import { useQuery } from '@tanstack/react-query';
import { type FormEvent, type ReactElement, cloneElement, useId, useState } from 'react';

import { ProblemError } from '../api/problem';
import { chainKeys, listChains } from '../runs/queries';
import { ProblemMessage } from '../ui/states';
import type { CreateSchedule, Schedule, UpdateSchedule } from './queries';
import { type FieldProblem, type ScheduleFields, fieldsOf, isProblem, scheduleBody, scheduleChanges } from './schedules';

/** The zones the browser knows, offered as the time zone is typed. */
const ZONES = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];

/** A field the service names that lands on another of the form's fields. */
const ON_FIELD: Record<string, string> = { template: 'chain_id' };

/** The fields the form shows errors on; a problem naming another is shown under the form. */
const SHOWN = new Set(['name', 'chain_id', 'input', 'cron', 'time_zone', 'interval_seconds', 'overlap', 'catch_up',
  'catch_up_window_seconds', 'jitter_seconds']);

/** Creating: no schedule, a body to create. Editing: the schedule, and its changes. */
type Purpose =
  | { schedule?: undefined; onSubmit: (body: CreateSchedule) => void; onCancel?: undefined }
  | { schedule: Schedule; onSubmit: (body: UpdateSchedule) => void; onCancel: () => void };

export function ScheduleForm(props: { pending: boolean; error: unknown } & Purpose) {
  const { pending, error, schedule } = props;
  const id = useId();
  const chains = useQuery({ queryKey: chainKeys.all, queryFn: listChains, enabled: !schedule });
  const start = schedule ? fieldsOf(schedule) : undefined;
  const [timing, setTiming] = useState<ScheduleFields['timing']>(start?.timing ?? 'cron');
  const [catchUp, setCatchUp] = useState<ScheduleFields['catchUp']>(start?.catchUp ?? 'none');
  const [local, setLocal] = useState<FieldProblem | undefined>();

  function send(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name: string) => String(form.get(name) ?? '');
    const fields: ScheduleFields = {
      name: text('name'),
      target: text('target'),
      input: text('input'),
      timing,
      cron: text('cron'),
      timeZone: text('time_zone'),
      interval: text('interval_seconds'),
      overlap: text('overlap') as ScheduleFields['overlap'],
      catchUp,
      catchUpWindow: text('catch_up_window_seconds'),
      jitter: text('jitter_seconds'),
      paused: form.get('paused') === 'on',
    };
    if (props.schedule) {
      const changes = scheduleChanges(fields, form.get('renew_credential') === 'on');
      setLocal(isProblem(changes) ? changes : undefined);
      if (!isProblem(changes)) props.onSubmit(changes);
      return;
    }
    const body = scheduleBody(fields);
    setLocal(isProblem(body) ? body : undefined);
    if (!isProblem(body)) props.onSubmit(body);
  }

  const served = error instanceof ProblemError ? error.problem.errors ?? [] : [];
  const problems = local ? [local] : served.map((each) => ({ ...each, field: ON_FIELD[each.field] ?? each.field }));
  const messageOf = (field: string) => problems.find((problem) => problem.field === field)?.message;
  const named = problems.some((problem) => SHOWN.has(problem.field));

  /** A labelled control with its help and, when the field is named, its error. */
  function field(name: string, label: string, control: ReactElement<Record<string, unknown>>, help?: string) {
    const message = messageOf(name);
    const describedBy = [help && `${id}-${name}-help`, message && `${id}-${name}-error`].filter(Boolean).join(' ');
    return (
      <div>
        <label className="label" htmlFor={`${id}-${name}`}>{label}</label>
        {cloneElement(control, {
          id: `${id}-${name}`,
          'aria-invalid': Boolean(message),
          'aria-describedby': describedBy || undefined,
        })}
        {help && <p id={`${id}-${name}-help`} className="muted mt-1 text-xs">{help}</p>}
        {message && <p id={`${id}-${name}-error`} className="mt-1 text-sm text-red-700 dark:text-red-300">{message}</p>}
      </div>
    );
  }

  return (
    <form onSubmit={send} aria-labelledby={`${id}-title`} className="card space-y-3" noValidate>
      <h2 id={`${id}-title`} className="font-semibold">{schedule ? `Edit ${schedule.name}` : 'New schedule'}</h2>
      {field('name', 'Name', <input name="name" className="input" required maxLength={200} defaultValue={start?.name} />)}
      {chains.error && <ProblemMessage error={chains.error} />}
      {/* A schedule's chain is fixed once created: another chain is another schedule. */}
      {start ? <input type="hidden" name="target" value={start.target} /> : field('chain_id', 'Chain', (
        <select name="target" className="input" required defaultValue="">
          <option value="">Choose a chain…</option>
          {chains.data?.chains.map((candidate) => {
            const key = candidate.origin === 'template' ? `template:${candidate.name}` : `chain:${candidate.id ?? ''}`;
            return <option key={key} value={key}>{candidate.name} ({candidate.origin})</option>;
          })}
        </select>
      ))}
      {field('input', 'Input (JSON)', (
        <textarea name="input" className="input min-h-20 font-mono" spellCheck={false} defaultValue={start?.input ?? '{}'} />
      ), 'The input of each run: a JSON object of at most 64 KiB.')}
      <fieldset>
        <legend className="label">Fires</legend>
        <label className="flex items-center gap-2 text-sm">
          <input type="radio" name="timing" value="cron" checked={timing === 'cron'} onChange={() => setTiming('cron')} /> On a cron expression
        </label>
        <label className="flex items-center gap-2 text-sm">
          <input type="radio" name="timing" value="interval" checked={timing === 'interval'} onChange={() => setTiming('interval')} /> Every fixed interval
        </label>
      </fieldset>
      {timing === 'cron' ? (
        <>
          {field('cron', 'Cron expression', <input name="cron" className="input font-mono" required maxLength={256} spellCheck={false}
            placeholder="0 30 6 * * 1-5" defaultValue={start?.cron} />,
          '5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first.')}
          {field('time_zone', 'Time zone', <input name="time_zone" className="input" maxLength={64} list={`${id}-zones`}
            defaultValue={start ? start.timeZone : Intl.DateTimeFormat().resolvedOptions().timeZone} />, 'An IANA name; UTC when empty.')}
          <datalist id={`${id}-zones`}>{ZONES.map((zone) => <option key={zone} value={zone} />)}</datalist>
        </>
      ) : (
        field('interval_seconds', 'Interval (seconds)', <input name="interval_seconds" type="number" className="input" min={1}
          max={31_622_400} required defaultValue={start?.interval ?? 3600} />, 'Counted from the creation; 1 to 31,622,400 (366 days).')
      )}
      {field('overlap', 'While the previous run is unfinished', (
        <select name="overlap" className="input" defaultValue={start?.overlap ?? 'skip'}>
          <option value="skip">Skip the tick</option>
          <option value="buffer_one">Run once it ends (one tick buffered)</option>
          <option value="allow">Run anyway</option>
        </select>
      ))}
      {field('catch_up', 'Ticks missed while no replica ran', (
        <select name="catch_up" className="input" value={catchUp}
          onChange={(event) => setCatchUp(event.target.value as ScheduleFields['catchUp'])}>
          <option value="none">Skip them</option>
          <option value="last">Fire the last one</option>
          <option value="all">Fire all within a window</option>
        </select>
      ))}
      {catchUp === 'all' && field('catch_up_window_seconds', 'Catch-up window (seconds)', (
        <input name="catch_up_window_seconds" type="number" className="input" min={0} max={604_800} defaultValue={start?.catchUpWindow ?? 3600} />
      ), 'At most 604,800 (7 days).')}
      {field('jitter_seconds', 'Jitter (seconds)', (
        <input name="jitter_seconds" type="number" className="input" min={0} max={3600} defaultValue={start?.jitter ?? 0} />
      ), 'Each tick fires up to this many seconds late, at random: 0 to 3,600.')}
      <label className="flex items-center gap-2 text-sm">
        <input type="checkbox" name="paused" defaultChecked={start?.paused} /> {start ? 'Paused' : 'Create paused'}
      </label>
      {start && (
        <label className="flex items-center gap-2 text-sm">
          {/* Ticks fail once the schedule's API key expires: a new one lives the longest auth allows. */}
          <input type="checkbox" name="renew_credential" /> Renew its API key with mine
        </label>
      )}
      {!named && <ProblemMessage error={error} />}
      <div className="flex flex-wrap gap-2">
        <button type="submit" className="btn-primary" disabled={pending}>{start ? 'Save changes' : 'Create schedule'}</button>
        {props.onCancel && <button type="button" className="btn-secondary" onClick={props.onCancel}>Cancel</button>}
      </div>
    </form>
  );
}
