/**
 * An endpoint's settings as a form, for a new endpoint and for editing one: its URL, the event
 * types it wants (one per line), a description, and whether deliveries go one at a time in
 * order or concurrently. The event types are checked before sending; the service's field
 * errors land on their fields.
 */
import { type FormEvent, useId, useState } from 'react';

import { ProblemError } from '../api/problem';
import { ProblemMessage } from '../ui/states';
import { eventTypesError, eventTypesProblem, parseEventTypes } from './endpoints';
import type { Endpoint } from './queries';

export interface EndpointFields {
  url: string;
  event_types: string[];
  description: string;
  ordered: boolean;
}

const FIELDS = ['url', 'event_types', 'description'] as const;

export function EndpointForm({ title, initial, submit, pending, error, onSubmit }: {
  title: string;
  initial?: Endpoint;
  /** The submit button's words. */
  submit: string;
  pending: boolean;
  error: unknown;
  onSubmit: (fields: EndpointFields) => void;
}) {
  const id = useId();
  const [typesProblem, setTypesProblem] = useState<string | undefined>();
  // The list sent, which the service's `event_types[i]` errors index.
  const [sent, setSent] = useState<string[]>([]);
  function send(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const types = parseEventTypes(String(form.get('event_types') ?? ''));
    const problem = eventTypesProblem(types);
    setTypesProblem(problem);
    if (problem) return;
    setSent(types);
    onSubmit({
      url: String(form.get('url') ?? '').trim(),
      event_types: types,
      description: String(form.get('description') ?? '').trim(),
      ordered: form.get('mode') === 'ordered',
    });
  }
  const problem = error instanceof ProblemError ? error : undefined;
  const fieldError = (field: (typeof FIELDS)[number]) =>
    field === 'event_types'
      ? (typesProblem ?? eventTypesError(problem?.problem.errors, sent))
      : problem?.fieldMessage(field);
  const describedBy = (field: (typeof FIELDS)[number], help?: string) =>
    [help, fieldError(field) ? `${id}-${field}-error` : undefined].filter(Boolean).join(' ') || undefined;
  const errorOf = (field: (typeof FIELDS)[number]) =>
    fieldError(field) && (
      <p id={`${id}-${field}-error`} className="mt-1 text-sm text-red-700 dark:text-red-300">{fieldError(field)}</p>
    );
  const named = FIELDS.some((field) => field !== 'event_types' ? problem?.fieldMessage(field) : eventTypesError(problem?.problem.errors, sent));
  return (
    <form onSubmit={send} aria-labelledby={`${id}-title`} className="card space-y-3" noValidate>
      <h2 id={`${id}-title`} className="font-semibold">{title}</h2>
      <div>
        <label className="label" htmlFor={`${id}-url`}>URL</label>
        <input id={`${id}-url`} name="url" type="url" className="input font-mono" required maxLength={2048}
          defaultValue={initial?.url ?? ''} placeholder="https://example.com/hooks/sankalpa"
          aria-invalid={Boolean(fieldError('url'))} aria-describedby={describedBy('url')} />
        {errorOf('url')}
      </div>
      <div>
        <label className="label" htmlFor={`${id}-types`}>Event types (one per line)</label>
        <textarea id={`${id}-types`} name="event_types" className="input min-h-20 font-mono" spellCheck={false}
          defaultValue={initial?.event_types.join('\n') ?? 'sankalpa.chains.run.completed'}
          aria-invalid={Boolean(fieldError('event_types'))} aria-describedby={describedBy('event_types', `${id}-types-help`)} />
        <p id={`${id}-types-help`} className="muted mt-1 text-xs">
          CloudEvents types (sankalpa.chains.run.completed) or subjects without the tenant (agents.*.completed): * is
          one word, a final &gt; the rest, * alone every event. At most 50.
        </p>
        {errorOf('event_types')}
      </div>
      <div>
        <label className="label" htmlFor={`${id}-description`}>Description (optional)</label>
        <input id={`${id}-description`} name="description" className="input" maxLength={500}
          defaultValue={initial?.description ?? ''}
          aria-invalid={Boolean(fieldError('description'))} aria-describedby={describedBy('description')} />
        {errorOf('description')}
      </div>
      <fieldset>
        <legend className="label">Delivery</legend>
        <label className="flex items-center gap-2 text-sm">
          <input type="radio" name="mode" value="concurrent" defaultChecked={!initial?.ordered} /> Concurrent (faster; any order)
        </label>
        <label className="flex items-center gap-2 text-sm">
          <input type="radio" name="mode" value="ordered" defaultChecked={Boolean(initial?.ordered)} /> Ordered (one at a time, in event order)
        </label>
      </fieldset>
      {!named && <ProblemMessage error={error} />}
      <button type="submit" className="btn-primary" disabled={pending}>{submit}</button>
    </form>
  );
}
