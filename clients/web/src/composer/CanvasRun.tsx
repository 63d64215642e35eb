/**
 * Running the chain from the composer: its input as a form generated from the definition's
 * `input_schema` (a JSON box when it has none), then the run followed live on the canvas
 * (`useLiveRun`, as the run page follows it): a banner with the run's status, and for the step
 * selected its status, attempts, duration, input, output or error, and the decision an
 * approval step waits for.
 */
import { useMutation, useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';

import { InputForm } from '../agents/InputForm';
import type { JsonSchema } from '../agents/schemaForm';
import type { Schemas } from '../api/client';
import { can, useSession } from '../auth/session';
import { Decision } from '../runs/Decision';
import { getRun, runKeys, startRun } from '../runs/queries';
import type { StreamState } from '../runs/stream';
import { type StepState, isFinished } from '../runs/timeline';
import { JsonTree } from '../ui/JsonTree';
import { ProblemMessage, StatusBadge } from '../ui/states';
import { duration } from '../ui/time';
import type { Json } from './graph';

/** What to run: the stored chain as saved, or the definition as the composer has it now. */
export type RunTarget = { chainId: string } | { definition: Json };

export function RunForm({ target, inputSchema, onStarted }: {
  target: RunTarget;
  inputSchema: unknown;
  onStarted: (runId: string) => void;
}) {
  const state = useSession();
  const start = useMutation({
    mutationFn: (input: Record<string, unknown>) =>
      'chainId' in target
        ? startRun({ chainId: target.chainId }, input)
        : startRun({ definition: target.definition as Schemas['ChainDefinition'] }, input),
    onSuccess: (run) => onStarted(run.id),
  });
  const described = Boolean(inputSchema && typeof inputSchema === 'object' && 'properties' in inputSchema);
  return (
    <div className="space-y-2">
      <p className="muted text-sm">
        {'chainId' in target
          ? 'Runs the chain as saved; its steps show the run as it goes.'
          : 'Runs the definition as it is here, unsaved changes included; its steps show the run as it goes.'}
      </p>
      <InputForm schema={(described ? inputSchema : { type: 'object' }) as JsonSchema} label="Run the chain" submitLabel="Run"
        busy={start.isPending} error={start.error} jsonOnly={!described} onSubmit={(input) => start.mutate(input)}
        {...(can(state, 'chains:execute') ? {} : { denied: 'Your role cannot run chains.' })} />
    </div>
  );
}

const STREAM_WORDS: Record<StreamState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  ended: '',
};

export function RunBanner({ runId, status, stream, onClose }: {
  runId: string;
  status: string | undefined;
  stream: StreamState;
  onClose: () => void;
}) {
  return (
    <div role="region" aria-label="Run on the canvas" className="flex flex-wrap items-center gap-3 rounded-md border border-slate-300 px-3 py-2 text-sm dark:border-slate-600">
      <span>Run status:</span>
      <span data-testid="canvas-run-status">{status ? <StatusBadge status={status} /> : '…'}</span>
      {status && !isFinished(status) && <span role="status" className="muted">{STREAM_WORDS[stream]}</span>}
      <Link className="link" to={`/runs/${runId}`}>Open the run page</Link>
      <button type="button" className="btn-secondary ml-auto" onClick={onClose}>Stop showing the run</button>
    </div>
  );
}

/** A step of the run on the canvas: where it is, and what went in and came out. */
export function StepRun({ runId, step }: { runId: string; step: StepState }) {
  const state = useSession();
  // Fetched again whenever the step moves on, for what it took and gave.
  const stored = useQuery({
    queryKey: [...runKeys.one(runId), 'step', step.id, step.status],
    queryFn: () => getRun(runId),
    select: (run) => run.steps.find((candidate) => candidate.id === step.id),
  });
  return (
    <section aria-labelledby="step-run" className="space-y-2 border-b border-slate-200 pb-3 dark:border-slate-700">
      <h2 id="step-run" className="font-semibold">In the run</h2>
      <p className="flex flex-wrap items-center gap-2 text-sm">
        <StatusBadge status={step.status} />
        {step.attempts > 1 && <span>{step.attempts} attempts</span>}
        {step.durationMs !== undefined && <span>{duration(step.durationMs)}</span>}
      </p>
      {step.error && (
        <p className="text-sm text-red-800 dark:text-red-200"><code>{step.error.code}</code>: {step.error.message}</p>
      )}
      {step.skipReason && <p className="muted text-sm">Skipped: {step.skipReason}</p>}
      {step.waitingReason && <p className="text-sm text-amber-800 dark:text-amber-200">Waiting: {step.waitingReason}</p>}
      {step.status === 'waiting' && (
        <div className="space-y-2">
          {step.prompt && <p className="text-sm">{step.prompt}</p>}
          {can(state, 'chains:execute') && <Decision runId={runId} stepId={step.id} />}
        </div>
      )}
      <ProblemMessage error={stored.error} />
      {stored.data?.input && (
        <div>
          <p className="label" aria-hidden="true">Input</p>
          <JsonTree label={`Input of ${step.id}`} value={stored.data.input} />
        </div>
      )}
      {stored.data?.output && (
        <div>
          <p className="label" aria-hidden="true">Output</p>
          <JsonTree label={`Output of ${step.id}`} value={stored.data.output} />
        </div>
      )}
    </section>
  );
}
