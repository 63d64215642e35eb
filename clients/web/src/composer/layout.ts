/**
 * Automatic layout of the composer's graph with dagre: steps in ranks from left to right, each
 * after the steps it needs. Edges to a step that does not exist (an error the validation names)
 * are left out of the layout.
 */
import dagre from '@dagrejs/dagre';
import type { Edge } from '@xyflow/react';

import type { StepNode } from './graph';

/** The size a step's node is drawn at, which the layout spaces them by. */
export const NODE_WIDTH = 200;
export const NODE_HEIGHT = 64;

export function laidOut(nodes: StepNode[], edges: Edge[]): StepNode[] {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 64 });
  graph.setDefaultEdgeLabel(() => ({}));
  const known = new Set(nodes.map((node) => node.id));
  for (const node of nodes) graph.setNode(node.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const edge of edges) {
    if (known.has(edge.source) && known.has(edge.target)) graph.setEdge(edge.source, edge.target);
  }
  dagre.layout(graph);
  return nodes.map((node) => {
    const { x, y } = graph.node(node.id);
    // dagre gives centres, React Flow top-left corners.
    return { ...node, position: { x: x - NODE_WIDTH / 2, y: y - NODE_HEIGHT / 2 } };
  });
}
