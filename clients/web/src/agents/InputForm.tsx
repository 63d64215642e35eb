/**
 * An input as a form generated from its JSON Schema, or as JSON (CodeMirror, loaded with the JSON
 * view: completion of the schema's keys, problems marked as typed). Both views edit one input;
 * the server's field errors (`error`, a problem+json naming fields) land on the fields they name.
 * The agent runner and the composer's chain runs use it.
 */
import { type FormEvent, Suspense, lazy, useMemo, useState } from 'react';

import { ProblemError } from '../api/problem';
import { Loading, ProblemMessage } from '../ui/states';
import { Tabs } from '../ui/Tabs';
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

export function InputForm({ schema, label, submitLabel, busy, error, denied, jsonOnly = false, onSubmit }: {
  schema: JsonSchema;
  /** The form's accessible name. */
  label: string;
  submitLabel: string;
  busy: boolean;
  /** The last submission's failure, if any. */
  error: unknown;
  /** Why the user may not submit, when they may not. */
  denied?: string;
  /** The JSON view alone: for an input no schema describes. */
  jsonOnly?: boolean;
  onSubmit: (input: Record<string, unknown>) => void;
}) {
  const fields = useMemo(() => fieldsFor(schema), [schema]);
  const keys = useMemo(
    () => fields.map((field) => ({ name: field.name, detail: `${field.kind}${field.required ? ', required' : ''}` })),
    [fields],
  );
  const closed = schema.additionalProperties === false;
  const [view, setView] = useState(jsonOnly ? 'json' : 'form');
  const [values, setValues] = useState<FormValues>(() => valuesFor(fields, {}));
  const [json, setJson] = useState('{}');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [jsonError, setJsonError] = useState<string | null>(null);
  // The server's field errors, on the fields they name; those the form finds come first.
  const serverErrors = useMemo(() => {
    const byField: Record<string, string> = {};
    if (!(error instanceof ProblemError)) return byField;
    for (const violation of error.problem.errors ?? []) {
      const name = fieldOf(fields, violation.field);
      if (name) byField[name] = violation.message;
    }
    return byField;
  }, [error, fields]);

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
      if (Object.keys(mapped.errors).length === 0) onSubmit(mapped.input);
      return;
    }
    try {
      const input: unknown = JSON.parse(json);
      if (!input || typeof input !== 'object' || Array.isArray(input)) throw new Error('not an object');
      setJsonError(null);
      onSubmit(input as Record<string, unknown>);
    } catch {
      setJsonError('The input must be a JSON object.');
    }
  }

  // Checked as it is typed; the server checks the whole schema again on Run.
  const typed = useMemo(
    () => (view === 'json' ? checkJson(fields, json, closed) : []),
    [view, fields, json, closed],
  );
  const formView = fields.length === 0 ? (
    <p className="muted text-sm">The input has no fields.</p>
  ) : (
    <div className="space-y-4">
      {fields.map((field) => (
        <FieldInput key={field.name} field={field} value={values[field.name] ?? ''} error={errors[field.name] ?? serverErrors[field.name]}
          onChange={(value) => setValues({ ...values, [field.name]: value })} />
      ))}
    </div>
  );
  const jsonView = (
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
  );
  return (
    <form onSubmit={submit} aria-label={label} className="card space-y-4" noValidate>
      {jsonOnly ? jsonView : (
        <Tabs
          label="Input views"
          value={view}
          onValueChange={switchView}
          tabs={[
            { value: 'form', label: 'Form', content: formView },
            { value: 'json', label: 'JSON', content: jsonView },
          ]}
        />
      )}
      {jsonError && <p role="alert" className="text-sm text-red-700 dark:text-red-300">{jsonError}</p>}
      <ProblemMessage error={error} />
      {denied === undefined ? (
        <button type="submit" className="btn-primary" disabled={busy}>
          {busy ? 'Running…' : submitLabel}
        </button>
      ) : (
        <p className="muted text-sm">{denied}</p>
      )}
    </form>
  );
}
