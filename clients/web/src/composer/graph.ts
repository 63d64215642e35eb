/**
 * A chain definition as the composer's graph and back: a node per step (the step's JSON kept
 * as it is, `needs` aside), an edge per entry of `needs`, in order. The simple form
 * (`{agents, mode}`) and the conditional form (`{condition, then, else}`) open as the steps the
 * orchestrator expands them into (`definition.rs`: steps named after their agents, `_2` from
 * the second use on); saved unchanged they stay in their form, changed they become the DAG
 * form. So a definition that is only looked at comes back exactly as it was.
 */
import type { Edge, Node, XYPosition } from '@xyflow/react';

import type { StepState } from '../runs/timeline';

export type Json = Record<string, unknown>;

/** A step's JSON, as the definition holds it. */
export type StepJson = Json & { id: string };

export type StepNodeData = {
  step: StepJson;
  /** The problems the orchestrator found with this step, as it words them. */
  problems: string[];
  /** In a comparison of two versions: how the step changed, and which of its fields. */
  change?: { kind: 'added' | 'removed' | 'changed'; fields: string[] };
  /** In a run shown on the canvas: where the step is. */
  run?: StepState;
};

export type StepNode = Node<StepNodeData, 'step'>;

/** Where a definition in another form came from, to give it back unchanged when it is. */
type Origin = { form: 'simple'; fields: Json; steps: StepJson[] } | { form: 'conditional'; fields: Json; steps: StepJson[] };

export interface Graph {
  nodes: StepNode[];
  edges: Edge[];
  /** The definition's other members (name, description, input_schema), kept as they are. */
  header: Json;
  origin?: Origin;
}

const FORM_KEYS = ['steps', 'agents', 'mode', 'condition', 'then', 'else'];

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** As the orchestrator's `steps_for`: named after the agent, numbered from its second use. */
function stepsFor(agents: string[], taken: Map<string, number>, chained: boolean): StepJson[] {
  const steps: StepJson[] = [];
  for (const agent of agents) {
    const uses = (taken.get(agent) ?? 0) + 1;
    taken.set(agent, uses);
    const id = uses === 1 ? agent : `${agent}_${uses}`;
    const previous = steps.at(-1);
    steps.push({ id, agent, ...(chained && previous ? { needs: [previous.id] } : {}) });
  }
  return steps;
}

/** The DAG steps of a definition in any form, and the form it was in. */
function stepsOf(definition: Json): { steps: StepJson[]; origin?: Origin } {
  if ('steps' in definition) {
    const steps = Array.isArray(definition.steps) ? definition.steps : [];
    return {
      steps: steps.map((step: unknown, index) =>
        step && typeof step === 'object' && !Array.isArray(step)
          ? ({ ...(step as Json), id: String((step as Json).id ?? `step_${index + 1}`) } as StepJson)
          : { id: `step_${index + 1}` },
      ),
    };
  }
  const fields = Object.fromEntries(FORM_KEYS.filter((key) => key in definition).map((key) => [key, definition[key]]));
  if ('agents' in definition) {
    const steps = stepsFor(strings(definition.agents), new Map(), definition.mode !== 'parallel');
    return { steps, origin: { form: 'simple', fields, steps } };
  }
  if ('condition' in definition) {
    const condition = String(definition.condition ?? '');
    const taken = new Map<string, number>();
    const then = stepsFor(strings(definition.then), taken, true);
    const otherwise = stepsFor(strings(definition.else), taken, true);
    if (then[0]) then[0] = { ...then[0], when: condition };
    if (otherwise[0]) otherwise[0] = { ...otherwise[0], when: `!(${condition})` };
    const steps = [...then, ...otherwise];
    return { steps, origin: { form: 'conditional', fields, steps } };
  }
  return { steps: [] };
}

/** How far from the origin a step's `position` may be, on either axis (the orchestrator's bound). */
export const MAX_POSITION = 1_000_000;

/** A step's `position` where the composer drew it, when it has a sound one. */
export function positionOf(step: StepJson): XYPosition | undefined {
  const position = step.position as { x?: unknown; y?: unknown } | undefined;
  if (!position || typeof position !== 'object') return undefined;
  const { x, y } = position;
  return typeof x === 'number' && typeof y === 'number' && Number.isFinite(x) && Number.isFinite(y) ? { x, y } : undefined;
}

/** Whether the steps' own positions place them all, so no automatic layout is needed. */
export function placedByDefinition(graph: Pick<Graph, 'nodes'>): boolean {
  return graph.nodes.length > 0 && graph.nodes.every((node) => positionOf(node.data.step) !== undefined);
}

const clamp = (value: number) => Math.round(Math.min(MAX_POSITION, Math.max(-MAX_POSITION, value)));

/** The graph with each step's `position` set where its node is (whole units, within bounds). */
export function withPositions(graph: Graph): Graph {
  return {
    ...graph,
    nodes: graph.nodes.map((node) => {
      const position = { x: clamp(node.position.x), y: clamp(node.position.y) };
      return { ...node, position, data: { ...node.data, step: { ...node.data.step, position } } };
    }),
  };
}

/** The graph with no step keeping a `position`: laid out automatically from then on. */
export function withoutPositions(graph: Graph): Graph {
  return {
    ...graph,
    nodes: graph.nodes.map((node) => {
      const { position: _position, ...step } = node.data.step;
      return { ...node, data: { ...node.data, step: step as StepJson } };
    }),
  };
}

export function edgeId(source: string, target: string): string {
  return `${source}->${target}`;
}

export function toGraph(definition: Json): Graph {
  const { steps, origin } = stepsOf(definition);
  const header = Object.fromEntries(Object.entries(definition).filter(([key]) => !FORM_KEYS.includes(key)));
  const nodes: StepNode[] = steps.map((step) => ({
    id: step.id,
    type: 'step',
    position: { x: 0, y: 0 },
    data: { step, problems: [] },
  }));
  const edges: Edge[] = steps.flatMap((step) =>
    strings(step.needs).map((need) => ({ id: edgeId(need, step.id), source: need, target: step.id })),
  );
  return { nodes, edges, header, ...(origin ? { origin } : {}) };
}

/** The steps the graph says: each node's step with `needs` from the edges into it, in order. */
export function stepsOfGraph(graph: Pick<Graph, 'nodes' | 'edges'>): StepJson[] {
  return graph.nodes.map((node) => {
    const needs = graph.edges.filter((edge) => edge.target === node.id).map((edge) => edge.source);
    const { needs: had, ...rest } = node.data.step;
    // `needs` stays where it was in the step's JSON; an empty one only if it was written so.
    const writtenEmpty = Array.isArray(had) && had.length === 0;
    if (needs.length > 0 || writtenEmpty) return { ...node.data.step, id: node.id, needs };
    return { ...rest, id: node.id };
  });
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function fromGraph(graph: Graph): Json {
  const steps = stepsOfGraph(graph);
  if (graph.origin && same(steps, graph.origin.steps)) return { ...graph.header, ...graph.origin.fields };
  return { ...graph.header, steps };
}

/** A violation's field as the step it concerns, by index into the graph's steps. */
function stepIndex(field: string, origin: Origin | undefined): number | undefined {
  const match = /^(steps|agents|then|else)\[(\d+)\]/.exec(field);
  if (!match) return undefined;
  const index = Number(match[2]);
  if (match[1] === 'else' && origin?.form === 'conditional') return strings(origin.fields.then).length + index;
  return index;
}

/**
 * Each step's problems from the orchestrator's violations (`POST /api/chains/validate`): by the
 * field's step index, and a cycle (`steps`: "cycle: a -> b -> a") on every step along it. The
 * rest concern the definition as a whole.
 */
export function problemsByStep(
  graph: Graph,
  violations: { field: string; message: string }[],
): { byStep: Map<string, string[]>; general: string[] } {
  const byStep = new Map<string, string[]>();
  const general: string[] = [];
  const add = (id: string, text: string) => byStep.set(id, [...(byStep.get(id) ?? []), text]);
  for (const violation of violations) {
    const text = `${violation.field}: ${violation.message}`;
    const index = stepIndex(violation.field, graph.origin);
    const node = index === undefined ? undefined : graph.nodes[index];
    const cycle = /^cycle: (.+)$/.exec(violation.message);
    if (node) add(node.id, text);
    else if (cycle?.[1]) new Set(cycle[1].split(' -> ')).forEach((id) => add(id, text));
    else general.push(text);
  }
  return { byStep, general };
}

/** How deep into nested objects completion offers paths: `metrics.total_lines` is two. */
export const PATH_DEPTH = 3;

/** The dotted paths of a JSON Schema's properties, into nested objects up to `PATH_DEPTH`. */
function propertiesOf(schema: unknown, depth = 1): string[] {
  const properties = (schema as { properties?: unknown } | null)?.properties;
  if (!properties || typeof properties !== 'object') return [];
  return Object.entries(properties).flatMap(([name, property]) => [
    name,
    ...(depth < PATH_DEPTH ? propertiesOf(property, depth + 1).map((inner) => `${name}.${inner}`) : []),
  ]);
}

/** The steps `id` needs, directly or through others: those its expressions may read. */
export function upstreamOf(graph: Pick<Graph, 'edges'>, id: string): string[] {
  const seen = new Set<string>();
  const visit = (target: string) => {
    for (const edge of graph.edges) {
      if (edge.target === target && !seen.has(edge.source)) {
        seen.add(edge.source);
        visit(edge.source);
      }
    }
  };
  visit(id);
  return [...seen];
}

/**
 * The paths a `${...}` in step `id`'s input may name: the chain input's properties, each
 * upstream step's output (an agent's by its output schema, nested objects' fields too; an
 * approval's decision), and a map step's `item` and `index`.
 */
export function pathsFor(graph: Graph, id: string, outputSchemas: Map<string, unknown>): string[] {
  const byId = new Map(graph.nodes.map((node) => [node.id, node.data.step]));
  const own = byId.get(id);
  const paths = ['input', ...propertiesOf(graph.header.input_schema).map((name) => `input.${name}`)];
  if (own?.for_each !== undefined) paths.push('item', 'index');
  for (const upstream of upstreamOf(graph, id)) {
    const step = byId.get(upstream);
    const fields = step?.approval
      ? ['approved', 'by', 'input', 'comment']
      : typeof step?.agent === 'string'
        ? propertiesOf(outputSchemas.get(step.agent))
        : [];
    paths.push(`steps.${upstream}`, ...fields.map((field) => `steps.${upstream}.${field}`));
  }
  return paths;
}
