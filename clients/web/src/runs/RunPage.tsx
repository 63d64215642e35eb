/**
 * One chain run as a live timeline: its steps move as the event stream says (`timeline.ts`
 * folds the events, `stream.ts` follows the stream and resumes it after a drop); cancel, and
 * approve or reject a step that waits for a decision. The timeline's rows (`rows.ts`: steps, and
 * a map step's items) are rendered only while in view, so a run of a thousand rows stays quick.
 */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useWindowVirtualizer } from '@tanstack/react-virtual';
import { useLayoutEffect, useMemo, useRef, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';

import { Files } from '../artifacts/Files';
import { can, useSession } from '../auth/session';
import { JsonTree } from '../ui/JsonTree';
import { Loading, PageHeader, ProblemMessage, StatusBadge } from '../ui/states';
import { duration } from '../ui/time';
import { Decision } from './Decision';
import { cancelRun, runKeys, startRun } from './queries';
import { type Row, rowsOf } from './rows';
import { type ChainRun, type StepState, isFinished } from './timeline';
import { useLiveRun } from './useLiveRun';

function StepItem({ step, run, canDecide }: { step: StepState; run: ChainRun | undefined; canDecide: boolean }) {
  const stored = run?.steps.find((candidate) => candidate.id === step.id);
  return (
    <div className="card">
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
          {canDecide && run && <Decision runId={run.id} stepId={step.id} />}
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
    </div>
  );
}

function ItemRow({ row }: { row: Extract<Row, { kind: 'item' }> }) {
  return (
    <div className="ml-6 flex items-baseline gap-3 rounded border border-slate-200 px-3 py-1.5 text-sm dark:border-slate-700">
      <span className="font-mono">#{row.index + 1}</span>
      {row.summary === null ? (
        <span className="muted">no output (failed or skipped)</span>
      ) : (
        <code className="truncate">{row.summary}</code>
      )}
    </div>
  );
}

/** Estimated heights before a row is measured: a step's card, an item's line. */
const STEP_HEIGHT_PX = 64;
const ITEM_HEIGHT_PX = 36;
/** Rows rendered beyond each edge of the window, so a fast scroll shows no blank. */
const OVERSCAN_ROWS = 10;

/** The timeline's rows, only those near the window in the DOM; each row measured once shown. */
function StepList({ rows, run, canDecide }: { rows: Row[]; run: ChainRun | undefined; canDecide: boolean }) {
  const list = useRef<HTMLOListElement>(null);
  const [offset, setOffset] = useState(0);
  useLayoutEffect(() => setOffset(list.current?.offsetTop ?? 0), []);
  const virtualizer = useWindowVirtualizer({
    count: rows.length,
    estimateSize: (index) => (rows[index]?.kind === 'item' ? ITEM_HEIGHT_PX : STEP_HEIGHT_PX),
    getItemKey: (index) => rows[index]?.key ?? index,
    overscan: OVERSCAN_ROWS,
    scrollMargin: offset,
  });
  return (
    <ol ref={list} aria-label="Steps" className="relative mb-6" style={{ height: virtualizer.getTotalSize() }}>
      {virtualizer.getVirtualItems().map((virtual) => {
        const row = rows[virtual.index];
        if (!row) return null;
        const label = row.kind === 'step' ? `Step ${row.step.id}` : `Item ${row.index + 1} of ${row.stepId}`;
        return (
          <li key={virtual.key} ref={virtualizer.measureElement} data-index={virtual.index} aria-label={label}
            aria-posinset={virtual.index + 1} aria-setsize={rows.length}
            {...(row.kind === 'step' ? { 'data-status': row.step.status } : {})}
            className="absolute left-0 top-0 w-full pb-2"
            style={{ transform: `translateY(${virtual.start - virtualizer.options.scrollMargin}px)` }}>
            {row.kind === 'step' ? <StepItem step={row.step} run={run} canDecide={canDecide} /> : <ItemRow row={row} />}
          </li>
        );
      })}
    </ol>
  );
}

export function RunPage() {
  const { id = '' } = useParams();
  const state = useSession();
  const queryClient = useQueryClient();
  const { run, timeline, stream } = useLiveRun(id);
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

  const rows = useMemo(() => rowsOf(timeline?.steps ?? [], run.data), [timeline, run.data]);

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
      <StepList rows={rows} run={run.data} canDecide={can(state, 'chains:execute')} />
      {isFinished(status) && (
        <section aria-labelledby="run-files" className="card">
          <h2 id="run-files" className="mb-2 text-lg font-semibold">Files</h2>
          <Files workspace={run.data.workspace_id} artifacts={artifacts} />
        </section>
      )}
    </>
  );
}
