/**
 * The selected step's settings: id, what it runs (agent, approval, sub-chain), the steps it
 * needs (the keyboard's way to connect steps), its input mapping, `when`, retry, timeout and
 * failure handling; a map step's list and parallelism. Each change rewrites the step's JSON. The
 * expressions (`when`, the list, each `${...}` of the mapping) are checked as they are typed
 * (`expr.ts`), before the orchestrator's validation says the same on the node; the paths they
 * may read complete as they are typed (the mapping's in its editor, the `when`'s in `PathInput`).
 */
import { type ReactNode, Suspense, lazy, useMemo, useState } from 'react';

import type { Agent } from '../agents/queries';
import type { KeyHint } from '../ui/jsonEditing';
import { Loading } from '../ui/states';
import { expressionProblems, mappingProblems, mappingSource } from './expr';
import type { Json, StepJson } from './graph';
import { PathInput } from './PathInput';

const JsonEditor = lazy(() => import('../ui/JsonEditor'));

/** The step with `key` set, or removed when `value` is empty. */
function withField(step: StepJson, key: string, value: unknown): StepJson {
  const { [key]: _old, ...rest } = step;
  const empty = value === undefined || value === '' || (typeof value === 'number' && Number.isNaN(value));
  return (empty ? rest : { ...rest, [key]: value }) as StepJson;
}

function objectOf(value: unknown): Json {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : {};
}

function numberOrEmpty(text: string): number | undefined {
  return text === '' ? undefined : Number(text);
}

/** Where a step's expressions are read: which steps they may name, and whether `item` is one. */
interface Scope {
  perItem: boolean;
  upstream: Set<string>;
}

function Field({ id, label, children, help, problems }: {
  id: string;
  label: string;
  children: ReactNode;
  help?: string;
  /** What is wrong with the value as typed; the control names `${id}-problems` in its aria-describedby. */
  problems?: string[];
}) {
  return (
    <div>
      <label className="label" htmlFor={id}>{label}</label>
      {children}
      {help && <p id={`${id}-help`} className="muted mt-1 text-xs">{help}</p>}
      {problems && (
        <div id={`${id}-problems`} aria-live="polite" className="mt-1 text-sm text-red-700 dark:text-red-300">
          {problems.map((problem) => <p key={problem}>{problem}</p>)}
        </div>
      )}
    </div>
  );
}

/** An expression field's problems as typed: none when it is empty. */
function problemsOf(source: unknown, scope: Scope): string[] {
  return typeof source === 'string' && source !== '' ? expressionProblems(source, scope) : [];
}

/** Its problems as the JSON editor marks them, or none when it is not (yet) a JSON object. */
function mappingCheck(text: string, scope: Scope) {
  try {
    return mappingProblems(JSON.parse(text), scope);
  } catch {
    return [];
  }
}

/** The input mapping as JSON (CodeMirror, with the agent's keys and the paths it may name), applied once it parses. */
function InputMapping({ step, keys, paths, scope, onChange }: {
  step: StepJson;
  keys: KeyHint[];
  paths: string[];
  scope: Scope;
  onChange: (step: StepJson) => void;
}) {
  const [text, setText] = useState(() => (step.input === undefined ? '' : JSON.stringify(step.input, null, 2)));
  const [error, setError] = useState<string | null>(null);
  function change(next: string) {
    setText(next);
    if (next.trim() === '') {
      setError(null);
      onChange(withField(step, 'input', undefined));
      return;
    }
    try {
      const parsed: unknown = JSON.parse(next);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('The mapping must be a JSON object');
      setError(null);
      onChange(withField(step, 'input', parsed));
    } catch (problem) {
      setError(problem instanceof Error ? problem.message : String(problem));
    }
  }
  const problems = useMemo(() => mappingCheck(text, scope), [text, scope]);
  return (
    <div>
      <p className="label" aria-hidden="true">Input mapping (JSON)</p>
      <Suspense fallback={<Loading label="Loading the editor" />}>
        <JsonEditor label="Input mapping (JSON)" value={text} onChange={change} keys={keys} paths={paths}
          check={(typed) => mappingCheck(typed, scope)} />
      </Suspense>
      <p className="muted mt-1 text-xs">
        {'${input.<path>} and ${steps.<id>.<path>} name values (type ${ for the choices); empty: the chain input merged with the needed steps\' outputs.'}
      </p>
      {error && <p role="alert" className="mt-1 text-sm text-red-700 dark:text-red-300">{error}</p>}
      <ul aria-label="Problems of the input mapping" aria-live="polite" className="mt-1 text-sm text-red-700 dark:text-red-300">
        {problems.map((problem) => <li key={problem.field + problem.message}>{problem.field}: {problem.message}</li>)}
      </ul>
    </div>
  );
}

export function StepPanel({ step, others, needs, upstream, agents, paths, problems, onChange, onRename, onNeeds, onDelete }: {
  step: StepJson;
  others: string[];
  needs: string[];
  /** The steps it needs, directly or through others: those its expressions may read. */
  upstream: string[];
  agents: Agent[];
  /** What a `${...}` in its input may name. */
  paths: string[];
  problems: string[];
  onChange: (step: StepJson) => void;
  onRename: (id: string) => void;
  onNeeds: (needs: string[]) => void;
  onDelete: () => void;
}) {
  const [id, setId] = useState(step.id);
  const retry = objectOf(step.retry);
  const approval = objectOf(step.approval);
  const chain = objectOf(step.chain);
  const isAgent = !step.approval && !step.chain;
  const agent = agents.find((candidate) => candidate.name === step.agent);
  const keys = useMemo(
    () => Object.keys((agent?.input_schema as { properties?: Json } | undefined)?.properties ?? {}).map((name) => ({ name })),
    [agent],
  );
  // By value: the panel's checks are not redone while the steps it may read stay the same.
  const upstreamKey = upstream.toSorted().join('\n');
  const upstreamSet = useMemo(() => new Set(upstreamKey.split('\n').filter(Boolean)), [upstreamKey]);
  const scope = useMemo(() => ({ perItem: false, upstream: upstreamSet }), [upstreamSet]);
  const itemScope = useMemo(() => ({ perItem: step.for_each !== undefined, upstream: upstreamSet }), [step.for_each, upstreamSet]);
  const whenProblems = problemsOf(step.when, scope);
  // A condition is read before any item: it names the chain's input and the steps upstream only.
  const whenPaths = useMemo(() => paths.filter((path) => path !== 'item' && path !== 'index'), [paths]);
  const forEachProblems = problemsOf(typeof step.for_each === 'string' ? mappingSource(step.for_each) : undefined, scope);
  const setRetry = (key: string, value: number | undefined) => {
    const { [key]: _old, ...fields } = retry;
    const next = value === undefined || Number.isNaN(value) ? fields : { ...fields, [key]: value };
    onChange(withField(step, 'retry', Object.keys(next).length > 0 ? next : undefined));
  };
  return (
    <section aria-labelledby="step-panel" className="space-y-3">
      <h2 id="step-panel" className="font-semibold">Step {step.id}</h2>
      {problems.length > 0 && (
        <ul aria-label="Problems of this step" className="list-disc pl-5 text-sm text-red-700 dark:text-red-300">
          {problems.map((problem) => <li key={problem}>{problem}</li>)}
        </ul>
      )}
      <form className="flex items-end gap-2" onSubmit={(event) => { event.preventDefault(); if (id && id !== step.id) onRename(id); }}>
        <Field id="step-id" label="Id">
          <input id="step-id" className="input font-mono" value={id} pattern="[A-Za-z0-9_-]{1,64}" onChange={(event) => setId(event.target.value)} />
        </Field>
        <button type="submit" className="btn-secondary" disabled={!id || id === step.id}>Rename</button>
      </form>
      {isAgent && (
        <>
          <Field id="step-agent" label="Agent">
            <select id="step-agent" className="input" value={typeof step.agent === 'string' ? step.agent : ''}
              onChange={(event) => onChange(withField(step, 'agent', event.target.value))}>
              <option value="">Choose an agent…</option>
              {agents.map((agent) => <option key={agent.name} value={agent.name}>{agent.name} ({agent.category})</option>)}
            </select>
          </Field>
          <InputMapping key={step.id} step={step} keys={keys} paths={paths} scope={itemScope} onChange={onChange} />
          <Field id="step-for-each" label="For each (a list expression)" help="${input.items}: runs the agent once per item, ${item} and ${index} naming it."
            problems={forEachProblems}>
            <input id="step-for-each" className="input font-mono" value={typeof step.for_each === 'string' ? step.for_each : ''}
              aria-invalid={forEachProblems.length > 0} aria-describedby="step-for-each-help step-for-each-problems"
              onChange={(event) => onChange(withField(step, 'for_each', event.target.value))} />
          </Field>
          {typeof step.for_each === 'string' && (
            <Field id="step-parallel" label="Items at once (1 to 64)">
              <input id="step-parallel" type="number" min={1} max={64} className="input" value={String(step.max_parallel ?? '')}
                onChange={(event) => onChange(withField(step, 'max_parallel', numberOrEmpty(event.target.value)))} />
            </Field>
          )}
          <div className="grid grid-cols-2 gap-2">
            <Field id="step-attempts" label="Attempts (1 to 10)">
              <input id="step-attempts" type="number" min={1} max={10} className="input" value={String(retry.attempts ?? '')}
                onChange={(event) => setRetry('attempts', numberOrEmpty(event.target.value))} />
            </Field>
            <Field id="step-backoff" label="Backoff (ms)">
              <input id="step-backoff" type="number" min={0} max={60000} className="input" value={String(retry.backoff_ms ?? '')}
                onChange={(event) => setRetry('backoff_ms', numberOrEmpty(event.target.value))} />
            </Field>
          </div>
          <Field id="step-timeout" label="Timeout (ms, at most 3,600,000)">
            <input id="step-timeout" type="number" min={0} max={3600000} className="input" value={String(step.timeout_ms ?? '')}
              onChange={(event) => onChange(withField(step, 'timeout_ms', numberOrEmpty(event.target.value)))} />
          </Field>
        </>
      )}
      {step.approval !== undefined && (
        <>
          <Field id="step-prompt" label="Approval prompt">
            <input id="step-prompt" className="input" value={String(approval.prompt ?? '')}
              onChange={(event) => onChange(withField(step, 'approval', { ...approval, prompt: event.target.value }))} />
          </Field>
          <Field id="step-approvers" label="Approvers (comma-separated: role:admin, user:<id>)">
            <input id="step-approvers" className="input" value={Array.isArray(approval.approvers) ? approval.approvers.join(', ') : ''}
              onChange={(event) => onChange(withField(step, 'approval', {
                ...approval,
                approvers: event.target.value.split(',').map((who) => who.trim()).filter(Boolean),
              }))} />
          </Field>
        </>
      )}
      {step.chain !== undefined && (
        <Field id="step-chain" label="Template it runs">
          <input id="step-chain" className="input font-mono" value={String(chain.template ?? '')}
            onChange={(event) => onChange(withField(step, 'chain', { ...chain, template: event.target.value }))} />
        </Field>
      )}
      <Field id="step-when" label="When (condition)" problems={whenProblems}
        help='Runs only when it holds: "auth" in input.features. The paths it may read complete as typed (Control+Space lists them).'>
        <PathInput id="step-when" value={typeof step.when === 'string' ? step.when : ''} paths={whenPaths}
          invalid={whenProblems.length > 0} describedBy="step-when-help step-when-problems"
          onChange={(value) => onChange(withField(step, 'when', value))} />
      </Field>
      <Field id="step-on-failure" label="When it fails">
        <select id="step-on-failure" className="input" value={typeof step.on_failure === 'string' ? step.on_failure : ''}
          onChange={(event) => onChange(withField(step, 'on_failure', event.target.value))}>
          <option value="">Fail the run (default)</option>
          <option value="continue">Continue</option>
          <option value="skip_dependants">Skip the steps after it</option>
        </select>
      </Field>
      <fieldset>
        <legend className="label">Needs</legend>
        {others.length === 0 ? (
          <p className="muted text-sm">No other steps yet.</p>
        ) : (
          <ul className="max-h-40 space-y-1 overflow-y-auto">
            {others.map((other) => (
              <li key={other}>
                <label className="flex items-center gap-2 text-sm">
                  <input type="checkbox" checked={needs.includes(other)}
                    onChange={(event) => onNeeds(event.target.checked ? [...needs, other] : needs.filter((need) => need !== other))} />
                  <span className="font-mono">{other}</span>
                </label>
              </li>
            ))}
          </ul>
        )}
      </fieldset>
      <button type="button" className="btn-danger" onClick={onDelete}>Delete step</button>
    </section>
  );
}
