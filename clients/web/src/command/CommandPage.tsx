/**
 * The seed's command page: describe a project in words, read the plan the platform makes of it
 * (POST /api/nlp/process: what it understood, the steps, whether it runs as is), and run it.
 * A thin page over the same API the CLI's `plan` uses; nothing is stored until it runs.
 */
import { useMutation } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { useNavigate } from 'react-router';

import { api, data, type Schemas } from '../api/client';
import { can, useSession } from '../auth/session';
import { startRun } from '../runs/queries';
import { PageHeader, ProblemMessage } from '../ui/states';

type Plan = Schemas['ProcessedCommand'];

/** The API's bound on a command, in characters. */
const MAX_COMMAND_CHARS = 5000;

function processCommand(command: string, projectName: string) {
  return data(
    api.POST('/api/nlp/process', {
      body: { command, ...(projectName.trim() ? { context: { project_name: projectName.trim() } } : {}) },
    }),
  );
}

interface PlannedStep {
  id: string;
  agent?: string;
  needs?: string[];
}

export function CommandPage() {
  const state = useSession();
  const navigate = useNavigate();
  const [command, setCommand] = useState('');
  const [projectName, setProjectName] = useState('');
  const plan = useMutation({ mutationFn: () => processCommand(command, projectName) });
  const run = useMutation({
    mutationFn: (planned: Plan) =>
      startRun({ definition: planned.chain }, planned.input as Record<string, unknown>),
    onSuccess: (started) => navigate(`/runs/${started.id}`),
  });
  const allowed = can(state, 'agents:execute') && can(state, 'chains:read');

  function submit(event: FormEvent) {
    event.preventDefault();
    plan.mutate();
  }

  return (
    <>
      <PageHeader title="Command" />
      <form className="card max-w-3xl space-y-3" onSubmit={submit} aria-label="Describe a project">
        <div>
          <label className="label" htmlFor="command-text">What should be built?</label>
          <textarea id="command-text" className="input min-h-24" value={command} required minLength={3}
            maxLength={MAX_COMMAND_CHARS} placeholder="A shop with products, orders and customers, with login and payments"
            onChange={(event) => setCommand(event.target.value)} />
        </div>
        <div className="max-w-sm">
          <label className="label" htmlFor="command-name">Project name (optional)</label>
          <input id="command-name" className="input" value={projectName} maxLength={100}
            onChange={(event) => setProjectName(event.target.value)} />
        </div>
        {allowed ? (
          <button type="submit" className="btn-primary" disabled={plan.isPending}>
            {plan.isPending ? 'Planning…' : 'Plan'}
          </button>
        ) : (
          <p className="muted text-sm">Your role cannot run agents and chains.</p>
        )}
        {plan.error && <ProblemMessage error={plan.error} />}
      </form>
      {plan.data && (
        <PlanView plan={plan.data} running={run.isPending} error={run.error} onRun={() => run.mutate(plan.data)} />
      )}
    </>
  );
}

function PlanView({ plan, running, error, onRun }: { plan: Plan; running: boolean; error: unknown; onRun: () => void }) {
  const analysis = plan.analysis;
  const steps = ((plan.chain as { steps?: PlannedStep[] }).steps ?? []);
  return (
    <section aria-labelledby="plan-heading" className="card mt-6 max-w-3xl space-y-4">
      <h2 id="plan-heading" className="font-semibold">The plan</h2>
      <dl className="grid grid-cols-[max-content_1fr] gap-x-4 gap-y-1 text-sm">
        <dt className="muted">Entities</dt>
        <dd>{analysis.identified_entities.join(', ') || '–'}</dd>
        <dt className="muted">Features</dt>
        <dd>{analysis.identified_requirements.join(', ') || '–'}</dd>
        <dt className="muted">Steps</dt>
        <dd>{analysis.agent_count} ({analysis.chain_type}, {analysis.estimated_complexity} complexity)</dd>
        <dt className="muted">Read by</dt>
        <dd>{plan.planned_by === 'model' ? 'the model' : 'the rules'}</dd>
      </dl>
      <ol aria-label="Planned steps" className="space-y-1 text-sm">
        {steps.map((step) => (
          <li key={step.id} className="font-mono">
            {step.agent ?? step.id}
            {step.needs && step.needs.length > 0 && <span className="muted"> after {step.needs.join(', ')}</span>}
          </li>
        ))}
      </ol>
      {plan.not_in_chain.length > 0 && (
        <ul aria-label="Left out" className="muted text-sm">
          {plan.not_in_chain.map((left, index) => (
            <li key={index}>{describe(left)}</li>
          ))}
        </ul>
      )}
      {plan.execution_ready ? (
        <button type="button" className="btn-primary" disabled={running} onClick={onRun}>
          {running ? 'Starting…' : 'Run this plan'}
        </button>
      ) : (
        <div role="alert">
          <p className="font-medium">This plan cannot run as it is:</p>
          <ul className="text-sm">
            {plan.violations.map((problem) => (
              <li key={problem.field}><code>{problem.field}</code>: {problem.message}</li>
            ))}
          </ul>
        </div>
      )}
      {error !== null && error !== undefined && <ProblemMessage error={error} />}
    </section>
  );
}

/** A left-out agent as `agent: why`. */
function describe(left: Record<string, unknown>): string {
  const agent = typeof left.agent === 'string' ? left.agent : 'an agent';
  const why = typeof left.why === 'string' ? left.why : '';
  return why ? `${agent}: ${why}` : agent;
}
