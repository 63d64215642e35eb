/**
 * A plan's chain as a small read-only graph: the composer's mapping (`toGraph`), layout and step
 * nodes, each step's run status on it once the plan runs. Loaded with React Flow on first use,
 * in the composer's chunk, so the chat page itself stays small.
 */
import '@xyflow/react/dist/style.css';

import { ReactFlow } from '@xyflow/react';
import { useMemo } from 'react';

import { useShownTheme } from '../app/theme';
import { type Json, type StepNode, toGraph } from '../composer/graph';
import { laidOut } from '../composer/layout';
import { StepNodeView } from '../composer/StepNode';
import type { StepState } from '../runs/timeline';

const NODE_TYPES = { step: StepNodeView };

export default function PlanGraph({ chain, steps }: { chain: Json; steps: StepState[] }) {
  const colorMode = useShownTheme();
  const graph = useMemo(() => {
    const { nodes, edges } = toGraph(chain);
    const states = new Map(steps.map((step) => [step.id, step]));
    const placed = laidOut(nodes, edges).map((node): StepNode => {
      const run = states.get(node.id);
      return { ...node, ariaLabel: `Step ${node.id}`, ariaRole: 'group', data: { ...node.data, ...(run ? { run } : {}) } };
    });
    return { nodes: placed, edges };
  }, [chain, steps]);
  return (
    <div className="h-56 rounded-md border border-slate-200 dark:border-slate-700">
      <ReactFlow
        nodes={graph.nodes}
        edges={graph.edges}
        nodeTypes={NODE_TYPES}
        colorMode={colorMode}
        nodesDraggable={false}
        nodesConnectable={false}
        nodesFocusable={false}
        edgesFocusable={false}
        elementsSelectable={false}
        fitView
        minZoom={0.1}
      />
    </div>
  );
}
