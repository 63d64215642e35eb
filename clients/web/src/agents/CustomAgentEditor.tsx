/**
 * Creates or edits a custom agent: its definition as JSON (name, description, input and output
 * schemas, a template or a prompt), checked by agent-runner on Validate and again on Save, each
 * violation listed with the JSON path it names.
 */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';

import { api, data, type Schemas } from '../api/client';
import { ProblemError } from '../api/problem';
import { ProblemMessage } from '../ui/states';

type Violation = Schemas['FieldViolation'];

const EXAMPLE = {
  name: 'greeter',
  description: 'Greets someone by name.',
  category: 'custom',
  version: '1.0.0',
  input_schema: {
    type: 'object',
    properties: { name: { type: 'string', minLength: 1, maxLength: 100 } },
    required: ['name'],
  },
  output_schema: { type: 'object' },
  template: { output: { greeting: 'Hello, {{ name }}!' } },
};

export function CustomAgentEditor({ name, definition, onSaved }: {
  /** The agent being edited; a new one when absent. */
  name?: string;
  definition?: unknown;
  onSaved: (name: string) => void;
}) {
  const queryClient = useQueryClient();
  const [text, setText] = useState(() => JSON.stringify(definition ?? EXAMPLE, null, 2));
  const [violations, setViolations] = useState<Violation[] | null>(null);
  const [parseError, setParseError] = useState<string | null>(null);

  function parsed(): Record<string, unknown> | null {
    try {
      const value: unknown = JSON.parse(text);
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
      setParseError(null);
      return value as Record<string, unknown>;
    } catch {
      setParseError('The definition must be a JSON object');
      return null;
    }
  }

  const validate = useMutation({
    mutationFn: (body: Record<string, unknown>) => data(api.POST('/api/agents/custom/validate', { body })),
    onSuccess: (result) => setViolations(result.violations),
  });
  const save = useMutation({
    mutationFn: (body: Record<string, unknown>) =>
      name
        ? data(api.PUT('/api/agents/custom/{name}', { params: { path: { name } }, body }))
        : data(api.POST('/api/agents/custom', { body })),
    onSuccess: (agent) => {
      void queryClient.invalidateQueries({ queryKey: ['agents'] });
      onSaved(agent.name);
    },
    onError: (error) => {
      if (error instanceof ProblemError && error.problem.errors?.length) setViolations(error.problem.errors);
    },
  });

  return (
    <section aria-labelledby="custom-agent" className="card space-y-3">
      <h2 id="custom-agent" className="font-semibold">{name ? `Edit ${name}` : 'New custom agent'}</h2>
      <div>
        <label className="label" htmlFor="agent-definition">Definition (JSON)</label>
        <textarea id="agent-definition" className="input min-h-72 font-mono text-xs" spellCheck={false} value={text}
          aria-invalid={Boolean(parseError) || Boolean(violations?.length)}
          aria-describedby="agent-definition-check"
          onChange={(event) => {
            setText(event.target.value);
            setViolations(null);
          }} />
      </div>
      <div id="agent-definition-check" aria-live="polite">
        {parseError && <p className="text-sm text-red-700 dark:text-red-300">{parseError}</p>}
        {violations && violations.length === 0 && <p className="text-sm text-green-800 dark:text-green-200">The definition is valid.</p>}
        {violations && violations.length > 0 && (
          <ul aria-label="Problems in the definition" className="list-disc pl-5 text-sm text-red-800 dark:text-red-200">
            {violations.map((violation) => (
              <li key={violation.field + violation.message}><code>{violation.field}</code>: {violation.message}</li>
            ))}
          </ul>
        )}
      </div>
      {!(save.error instanceof ProblemError && save.error.problem.errors?.length) && <ProblemMessage error={save.error ?? validate.error} />}
      <div className="flex gap-2">
        <button type="button" className="btn-secondary" disabled={validate.isPending} onClick={() => {
          const body = parsed();
          if (body) validate.mutate(body);
        }}>
          Validate
        </button>
        <button type="button" className="btn-primary" disabled={save.isPending} onClick={() => {
          const body = parsed();
          if (body) save.mutate(body);
        }}>
          {name ? 'Save changes' : 'Create agent'}
        </button>
      </div>
    </section>
  );
}
