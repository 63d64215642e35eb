/**
 * A step on the canvas: its id, what it runs, and the problems the orchestrator found with it;
 * in a comparison of versions, how it changed; in a run, its status, attempts and duration.
 * Each state shows as a word and a sign as well as a colour, so colour is never the only cue.
 */
import { Handle, type NodeProps, Position } from '@xyflow/react';

import { duration } from '../ui/time';
import type { StepJson, StepNode, StepNodeData } from './graph';

/** What a step runs, in a few words: its agent (per item for a map step), approval, sub-chain. */
export function kindOf(step: StepJson): string {
  if (step.approval) return 'approval';
  if (step.chain && typeof step.chain === 'object') {
    const chain = step.chain as Record<string, unknown>;
    return `chain ${String(chain.template ?? chain.id ?? '')}`.trim();
  }
  const agent = typeof step.agent === 'string' ? step.agent : '(no agent)';
  return step.for_each ? `for each: ${agent}` : agent;
}

/** Each run status's sign and border; the status itself is written beside the sign. */
const RUN_LOOKS: Record<string, { sign: string; border: string }> = {
  pending: { sign: '○', border: 'border-slate-400 border-dashed' },
  running: { sign: '▶', border: 'border-blue-600' },
  waiting: { sign: '⏸', border: 'border-amber-600' },
  completed: { sign: '✓', border: 'border-green-700' },
  failed: { sign: '✕', border: 'border-red-600' },
  skipped: { sign: '↷', border: 'border-slate-400 border-dotted' },
  cancelled: { sign: '⊘', border: 'border-slate-500' },
};

const CHANGE_LOOKS = {
  added: { sign: '+', border: 'border-green-700', text: 'added' },
  removed: { sign: '−', border: 'border-red-600 border-dashed', text: 'removed' },
  changed: { sign: '✎', border: 'border-amber-600', text: 'changed' },
};

function border(data: StepNodeData, selected: boolean): string {
  if (data.problems.length > 0) return 'border-red-600';
  if (data.run) return RUN_LOOKS[data.run.status]?.border ?? 'border-slate-400';
  if (data.change) return CHANGE_LOOKS[data.change.kind].border;
  return selected ? 'border-indigo-600' : 'border-slate-300 dark:border-slate-600';
}

function RunLine({ run }: { run: NonNullable<StepNodeData['run']> }) {
  const look = RUN_LOOKS[run.status];
  return (
    <p data-status={run.status} className="mt-1 flex flex-wrap gap-x-2 font-medium">
      <span><span aria-hidden="true">{look?.sign ?? '?'} </span>{run.status}</span>
      {run.attempts > 1 && <span>{run.attempts} attempts</span>}
      {run.durationMs !== undefined && <span>{duration(run.durationMs)}</span>}
    </p>
  );
}

export function StepNodeView({ data, selected }: NodeProps<StepNode>) {
  const invalid = data.problems.length > 0;
  const change = data.change && CHANGE_LOOKS[data.change.kind];
  return (
    <div
      data-invalid={invalid || undefined}
      {...(data.change ? { 'data-change': data.change.kind } : {})}
      className={`w-[200px] rounded-md border-2 bg-white px-3 py-2 text-left text-xs text-slate-900 shadow-sm dark:bg-slate-900 dark:text-slate-100 ${border(data, selected)}`}
    >
      <Handle type="target" position={Position.Left} />
      <p className={`truncate font-mono text-sm font-semibold ${data.change?.kind === 'removed' ? 'line-through' : ''}`}>{data.step.id}</p>
      <p className="truncate text-slate-700 dark:text-slate-300">{kindOf(data.step)}</p>
      {data.run && <RunLine run={data.run} />}
      {change && data.change && (
        <p className="mt-1 font-medium">
          <span aria-hidden="true">{change.sign} </span>
          {change.text}
          {data.change.fields.length > 0 && `: ${data.change.fields.join(', ')}`}
        </p>
      )}
      {invalid && (
        <ul aria-label={`Problems of ${data.step.id}`} className="mt-1 space-y-0.5 text-red-800 dark:text-red-200">
          {data.problems.map((problem) => <li key={problem}>{problem}</li>)}
        </ul>
      )}
      <Handle type="source" position={Position.Right} />
    </div>
  );
}
