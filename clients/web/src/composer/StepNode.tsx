/** A step on the canvas: its id, what it runs, and the problems the orchestrator found with it. */
import { Handle, type NodeProps, Position } from '@xyflow/react';

import type { StepJson, StepNode } from './graph';

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

export function StepNodeView({ data, selected }: NodeProps<StepNode>) {
  const invalid = data.problems.length > 0;
  return (
    <div
      data-invalid={invalid || undefined}
      className={`w-[200px] rounded-md border-2 bg-white px-3 py-2 text-left text-xs text-slate-900 shadow-sm dark:bg-slate-900 dark:text-slate-100 ${
        invalid ? 'border-red-600' : selected ? 'border-indigo-600' : 'border-slate-300 dark:border-slate-600'
      }`}
    >
      <Handle type="target" position={Position.Left} />
      <p className="truncate font-mono text-sm font-semibold">{data.step.id}</p>
      <p className="truncate text-slate-700 dark:text-slate-300">{kindOf(data.step)}</p>
      {invalid && (
        <ul aria-label={`Problems of ${data.step.id}`} className="mt-1 space-y-0.5 text-red-800 dark:text-red-200">
          {data.problems.map((problem) => <li key={problem}>{problem}</li>)}
        </ul>
      )}
      <Handle type="source" position={Position.Right} />
    </div>
  );
}
