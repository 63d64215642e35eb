/**
 * The Run panel: the agent's input as a form generated from its schema, or as JSON (CodeMirror,
 * loaded with the JSON view: completion of the schema's keys, problems marked as typed), then
 * the run. Both views edit one input; the server's field errors land on the fields they name.
 */
import { useMutation } from '@tanstack/react-query';
import { type FormEvent, Suspense, lazy, useMemo, useState } from 'react';

import { ProblemError } from '../api/problem';
import { can, useSession } from '../auth/session';
import { Loading, ProblemMessage } from '../ui/states';
import { Tabs } from '../ui/Tabs';
import { type Agent, type AgentRun, executeAgent } from './queries';
import { type Field, type FormValues, type JsonSchema, checkJson, fieldOf, fieldsFor, inputFor, valuesFor } from './schemaForm';

const JsonEditor = lazy(() => import('../ui/JsonEditor'));

function FieldInput({ field, value, error, onChange }: {
  field: Field;
  value: string | boolean;
  error: string | undefined;
  onChange: (value: string | boolean) => void;
}) {
  const id = `field-${field.name}`;
  const described = [field.description ? `${id}-help` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ');
  const common = {
    id,
    name: field.name,
    'aria-invalid': Boolean(error),
    ...(described ? { 'aria-describedby': described } : {}),
  };
  const text = typeof value === 'string' ? value : '';
  let control;
  switch (field.kind) {
    case 'boolean':
      control = (
        <input {...common} type="checkbox" className="h-4 w-4" checked={value === true}
          onChange={(event) => onChange(event.target.checked)} />
      );
      break;
    case 'choice':
      control = (
        <select {...common} className="input" value={text} onChange={(event) => onChange(event.target.value)}>
          <option value="">{field.required ? 'Choose…' : '(none)'}</option>
          {field.options.map((option) => <option key={option} value={option}>{option}</option>)}
        </select>
      );
      break;
    case 'number':
      control = (
        <input {...common} className="input" type="number" inputMode={field.integer ? 'numeric' : 'decimal'}
          step={field.integer ? 1 : 'any'} min={field.minimum} max={field.maximum} value={text}
          onChange={(event) => onChange(event.target.value)} />
      );
      break;
    case 'text':
      control = field.multiline ? (
        <textarea {...common} className="input min-h-24 font-mono" value={text} onChange={(event) => onChange(event.target.value)} />
      ) : (
        <input {...common} className="input" type="text" maxLength={field.maxLength} value={text}
          onChange={(event) => onChange(event.target.value)} />
      );
      break;
    case 'list':
    case 'json':
      control = (
        <textarea {...common} className="input min-h-24 font-mono" spellCheck={false} value={text}
          placeholder={field.kind === 'list' ? 'One item per line' : 'JSON'} onChange={(event) => onChange(event.target.value)} />
      );
      break;
  }
  return (
    <div className={field.kind === 'boolean' ? 'flex items-center gap-2' : ''}>
      <label className="label" htmlFor={id}>
        {field.label}
        {field.required && <span aria-hidden="true" className="ml-0.5 text-red-700 dark:text-red-300">*</span>}
      </label>
      {control}
      {field.description && <p id={`${id}-help`} className="muted mt-1 text-xs">{field.description}</p>}
      {error && <p id={`${id}-error`} className="mt-1 text-sm text-red-700 dark:text-red-300">{error}</p>}
    </div>
  );
}

export function AgentRunner({ agent, onRun }: { agent: Agent; onRun?: (run: AgentRun, input: Record<string, unknown>) => void }) {
  const state = useSession();
  const schema = agent.input_schema as JsonSchema;
  const fields = useMemo(() => fieldsFor(schema), [schema]);
  const keys = useMemo(
    () => fields.map((field) => ({ name: field.name, detail: `${field.kind}${field.required ? ', required' : ''}` })),
    [fields],
  );
  const closed = schema.additionalProperties === false;
  const [view, setView] = useState('form');
  const [values, setValues] = useState<FormValues>(() => valuesFor(fields, {}));
  const [json, setJson] = useState('{}');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [jsonError, setJsonError] = useState<string | null>(null);
  const run = useMutation({
    mutationFn: (input: Record<string, unknown>) => executeAgent(agent.name, input),
    onSuccess: (result, input) => onRun?.(result, input),
    onError: (error) => {
      if (!(error instanceof ProblemError)) return;
      const byField: Record<string, string> = {};
      for (const violation of error.problem.errors ?? []) {
        const name = fieldOf(fields, violation.field);
        if (name) byField[name] = violation.message;
      }
      setErrors(byField);
    },
  });

  function switchView(next: string) {
    if (next === 'json') {
      setJson(JSON.stringify(inputFor(fields, values).input, null, 2));
    } else {
      try {
        setValues(valuesFor(fields, JSON.parse(json) as Record<string, unknown>));
        setJsonError(null);
      } catch {
        setJsonError('Not valid JSON: fix it before switching to the form.');
        return;
      }
    }
    setView(next);
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    if (view === 'form') {
      const mapped = inputFor(fields, values);
      setErrors(mapped.errors);
      if (Object.keys(mapped.errors).length === 0) run.mutate(mapped.input);
      return;
    }
    try {
      const input: unknown = JSON.parse(json);
      if (!input || typeof input !== 'object' || Array.isArray(input)) throw new Error('not an object');
      setJsonError(null);
      run.mutate(input as Record<string, unknown>);
    } catch {
      setJsonError('The input must be a JSON object.');
    }
  }

  const allowed = can(state, 'agents:execute');
  // Checked as it is typed; the server checks the whole schema again on Run.
  const typed = useMemo(
    () => (view === 'json' ? checkJson(fields, json, closed) : []),
    [view, fields, json, closed],
  );
  return (
    <form onSubmit={submit} aria-label={`Run ${agent.name}`} className="card space-y-4" noValidate>
      <Tabs
        label="Input views"
        value={view}
        onValueChange={switchView}
        tabs={[
          {
            value: 'form',
            label: 'Form',
            content: fields.length === 0 ? (
              <p className="muted text-sm">This agent takes no input fields.</p>
            ) : (
              <div className="space-y-4">
                {fields.map((field) => (
                  <FieldInput key={field.name} field={field} value={values[field.name] ?? ''} error={errors[field.name]}
                    onChange={(value) => setValues({ ...values, [field.name]: value })} />
                ))}
              </div>
            ),
          },
          {
            value: 'json',
            label: 'JSON',
            content: (
              <div>
                <p className="label" aria-hidden="true">Input (JSON)</p>
                <Suspense fallback={<Loading label="Loading the editor" />}>
                  <JsonEditor label="Input (JSON)" value={json} onChange={setJson} keys={keys}
                    check={(text) => checkJson(fields, text, closed)} />
                </Suspense>
                <div aria-live="polite" className="mt-1 text-sm">
                  {typed.length === 0 ? (
                    <p className="text-green-800 dark:text-green-200">Fits the input schema.</p>
                  ) : (
                    <ul aria-label="Problems in the input" className="list-disc pl-5 text-red-700 dark:text-red-300">
                      {typed.map((problem) => {
                        const text = problem.field === undefined ? problem.message : `${problem.field}: ${problem.message}`;
                        return <li key={text}>{text}</li>;
                      })}
                    </ul>
                  )}
                </div>
              </div>
            ),
          },
        ]}
      />
      {jsonError && <p role="alert" className="text-sm text-red-700 dark:text-red-300">{jsonError}</p>}
      <ProblemMessage error={run.error} />
      {allowed ? (
        <button type="submit" className="btn-primary" disabled={run.isPending}>
          {run.isPending ? 'Running…' : 'Run'}
        </button>
      ) : (
        <p className="muted text-sm">Your role cannot run agents.</p>
      )}
    </form>
  );
}
