/**
 * One chain run as a live timeline: its steps move as the event stream says (`timeline.ts`
 * folds the events, `stream.ts` follows the stream and resumes it after a drop); cancel, and
 * approve or reject a step that waits for a decision.
 */
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useReducer, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';

import { Files } from '../artifacts/Files';
import { can, useSession } from '../auth/session';
import { JsonTree } from '../ui/JsonTree';
import { Loading, PageHeader, ProblemMessage, StatusBadge } from '../ui/states';
import { duration } from '../ui/time';
import { cancelRun, decide, getRun, runKeys, startRun } from './queries';
import { type StreamState, followRun } from './stream';
import { type ChainRun, type CloudEvent, type StepState, type Timeline, apply, fromRun, isFinished } from './timeline';

type Action = { kind: 'event'; event: CloudEvent } | { kind: 'reset'; run: ChainRun };

function reduce(timeline: Timeline | null, action: Action): Timeline | null {
  if (action.kind === 'reset') {
    // A fetched run is the truth up to now; keep the stream's position.
    return { ...fromRun(action.run), lastSequence: timeline?.lastSequence ?? 0 };
  }
  return timeline ? apply(timeline, action.event) : timeline;
}

function StepItem({ step, run, canDecide }: { step: StepState; run: ChainRun | undefined; canDecide: boolean }) {
  const stored = run?.steps.find((candidate) => candidate.id === step.id);
  const queryClient = useQueryClient();
  const decision = useMutation({
    mutationFn: (approve: boolean) => decide(run?.id ?? '', step.id, approve),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: runKeys.one(run?.id ?? '') }),
  });
  return (
    <li aria-label={`Step ${step.id}`} data-status={step.status} className="card">
      <div className="flex flex-wrap items-center gap-3">
        <StatusBadge status={step.status} />
        <span className="font-mono font-medium">{step.id}</span>
        <span className="muted text-sm">{step.agent || 'approval'}</span>
        <span className="muted ml-auto text-sm">
          {step.attempts > 1 ? `${step.attempts} attempts · ` : ''}
          {step.durationMs !== undefined ? duration(step.durationMs) : step.status === 'running' ? 'running…' : ''}
        </span>
      </div>
      {step.waitingReason && <p className="mt-2 text-sm text-amber-800 dark:text-amber-200">Waiting: {step.waitingReason}</p>}
      {step.error && (
        <p className="mt-2 text-sm text-red-800 dark:text-red-200"><code>{step.error.code}</code>: {step.error.message}</p>
      )}
      {step.skipReason && <p className="muted mt-2 text-sm">Skipped: {step.skipReason}</p>}
      {step.status === 'waiting' && (
        <div className="mt-3 space-y-2">
          {step.prompt && <p className="text-sm">{step.prompt}</p>}
          {canDecide && (
            <div className="flex gap-2">
              <button type="button" className="btn-primary" disabled={decision.isPending} onClick={() => decision.mutate(true)}>
                Approve
              </button>
              <button type="button" className="btn-danger" disabled={decision.isPending} onClick={() => decision.mutate(false)}>
                Reject
              </button>
            </div>
          )}
          <ProblemMessage error={decision.error} />
        </div>
      )}
      {stored && (stored.input || stored.output) && (
        <details className="mt-2 text-sm">
          <summary className="cursor-pointer">Input and output</summary>
          <div className="mt-2 grid grid-cols-1 gap-3 md:grid-cols-2">
            <JsonTree label={`Input of ${step.id}`} value={stored.input ?? null} />
            <JsonTree label={`Output of ${step.id}`} value={stored.output ?? null} />
          </div>
        </details>
      )}
    </li>
  );
}

export function RunPage() {
  const { id = '' } = useParams();
  const state = useSession();
  const queryClient = useQueryClient();
  const run = useQuery({ queryKey: runKeys.one(id), queryFn: () => getRun(id) });
  const [timeline, dispatch] = useReducer(reduce, null);
  const [stream, setStream] = useState<StreamState>('connecting');
  const cancel = useMutation({
    mutationFn: () => cancelRun(id),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: runKeys.one(id) }),
  });
  const navigate = useNavigate();
  // A new run of the same chain or template with the same input (an inline definition, too).
  const retry = useMutation({
    mutationFn: (run: ChainRun) =>
      run.template || run.chain_id
        ? startRun({ ...(run.template ? { template: run.template } : { chainId: run.chain_id ?? '' }) }, run.input ?? {})
        : startRun({ definition: run.definition ?? undefined }, run.input ?? {}),
    onSuccess: (next) => navigate(`/runs/${next.id}`),
  });

  useEffect(() => {
    if (run.data) dispatch({ kind: 'reset', run: run.data });
  }, [run.data]);

  const seeded = timeline !== null;
  const finishedAtLoad = run.data ? isFinished(run.data.status) : false;
  useEffect(() => {
    if (!seeded || finishedAtLoad) return;
    return followRun(
      id,
      0,
      (event) => dispatch({ kind: 'event', event }),
      (next) => {
        setStream(next);
        // The stream ended with the run: fetch it once more for outputs and artifacts.
        if (next === 'ended') void queryClient.invalidateQueries({ queryKey: runKeys.one(id) });
      },
    );
  }, [id, seeded, finishedAtLoad, queryClient]);

  if (run.isPending) return <Loading label="Loading the run" />;
  if (run.error) return <ProblemMessage error={run.error} />;
  const status = timeline?.status ?? run.data.status;
  // The steps share one workspace: a file a later step rewrote is listed once, as it is now.
  const artifacts = [
    ...new Map(run.data.steps.flatMap((step) => step.artifacts).map((artifact) => [artifact.path, artifact])).values(),
  ];
  return (
    <>
      <p className="mb-2 text-sm"><Link className="link" to="/runs">← Runs</Link></p>
      <PageHeader title={run.data.chain_name}>
        {!isFinished(status) && can(state, 'chains:execute') && (
          <button type="button" className="btn-danger" disabled={cancel.isPending || run.data.cancel_requested}
            onClick={() => cancel.mutate()}>
            {run.data.cancel_requested ? 'Cancelling…' : 'Cancel run'}
          </button>
        )}
        {isFinished(status) && can(state, 'chains:execute') && (
          <button type="button" className="btn-secondary" disabled={retry.isPending} onClick={() => retry.mutate(run.data)}>
            Run again
          </button>
        )}
      </PageHeader>
      <div className="mb-4 flex flex-wrap items-center gap-3 text-sm">
        <span>Run status:</span>
        <span data-testid="run-status"><StatusBadge status={status} /></span>
        {!isFinished(status) && (
          <span role="status" className="muted">
            {stream === 'live' ? 'Live' : stream === 'reconnecting' ? 'Reconnecting…' : 'Connecting…'}
          </span>
        )}
        <span className="muted font-mono text-xs">{run.data.id}</span>
      </div>
      <ProblemMessage error={cancel.error ?? retry.error} />
      {timeline?.error && (
        <p role="alert" className="mb-4 text-sm text-red-800 dark:text-red-200">
          <code>{timeline.error.code}</code>: {timeline.error.message}
        </p>
      )}
      <h2 className="mb-2 text-lg font-semibold">Steps</h2>
      <ol aria-label="Steps" className="mb-6 space-y-2">
        {(timeline?.steps ?? []).map((step) => (
          <StepItem key={step.id} step={step} run={run.data} canDecide={can(state, 'chains:execute')} />
        ))}
      </ol>
      {isFinished(status) && (
        <section aria-labelledby="run-files" className="card">
          <h2 id="run-files" className="mb-2 text-lg font-semibold">Files</h2>
          <Files workspace={run.data.workspace_id} artifacts={artifacts} />
        </section>
      )}
    </>
  );
}
