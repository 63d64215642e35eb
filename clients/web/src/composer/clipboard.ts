/**
 * Copy and paste of steps. What is copied is the steps as the definition holds them, with their
 * places on the canvas; a paste gives each a new id no step has (`plan` becomes `plan_2`), keeps
 * the `needs` between pasted steps (renamed) and drops those to steps left behind, and makes the
 * pasted steps' expressions read the pasted copies of the steps they read.
 *
 * The steps travel through the system's clipboard as JSON (`clipboardText`), so they paste in
 * another tab or window: written from the page's `copy` event and read from its `paste` event,
 * which need no permission (reading the clipboard at any other time asks for one). What a paste
 * reads is checked (`parseClipboard`): only the composer's own JSON, within the chain's bounds.
 */
import type { Edge, XYPosition } from '@xyflow/react';

import { mappingSource, renameSteps } from './expr';
import { type Graph, type Json, type StepJson, type StepNode, edgeId, positionOf, stepsOfGraph } from './graph';

export interface Copied {
  /** The steps, `needs` included, in the graph's order. */
  steps: StepJson[];
  positions: Record<string, XYPosition>;
}

/** What marks the clipboard's JSON as the composer's steps. */
const CLIPBOARD_KIND = 'sankalpa.composer.steps';
/** The most steps a paste takes: a chain's own bound (the orchestrator's). */
export const MAX_PASTED_STEPS = 200;
/** The longest clipboard text a paste reads, in characters (1 MiB). */
export const MAX_CLIPBOARD_CHARS = 1 << 20;
/** A step's id, as the orchestrator allows it. */
const STEP_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** How far a paste lands from what was copied, so the copies do not hide the originals. */
export const PASTE_OFFSET = 40;

/** `base`, or `base_2`, `base_3`... whichever is not taken. */
export function freeId(base: string, taken: Set<string>): string {
  if (!taken.has(base)) return base;
  for (let n = 2; ; n += 1) if (!taken.has(`${base}_${n}`)) return `${base}_${n}`;
}

/** The steps of `ids`, with their `needs` as the graph's edges say. */
export function copySteps(graph: Graph, ids: Set<string>): Copied {
  const steps = stepsOfGraph(graph).filter((step) => ids.has(step.id));
  const positions = Object.fromEntries(
    graph.nodes.filter((node) => ids.has(node.id)).map((node) => [node.id, node.position]),
  );
  return { steps, positions };
}

/** Each string in `value` that is an expression, with its renamed steps renamed. */
function renamedIn(value: unknown, renames: Map<string, string>): unknown {
  if (typeof value === 'string') {
    const source = mappingSource(value);
    return source === undefined ? value : `\${${renameSteps(source, renames)}}`;
  }
  if (Array.isArray(value)) return value.map((item) => renamedIn(item, renames));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, renamedIn(item, renames)]));
  }
  return value;
}

/**
 * `step` reading the renamed steps by their new ids: its `when`, its `for_each` and the
 * expressions of its input (a sub-chain's too). `needs` is the graph's, renamed apart.
 */
export function withStepsRenamed(step: StepJson, renames: Map<string, string>): StepJson {
  const renamed: Json = { ...step };
  if (typeof step.when === 'string') renamed.when = renameSteps(step.when, renames);
  if (step.for_each !== undefined) renamed.for_each = renamedIn(step.for_each, renames);
  if (step.input !== undefined) renamed.input = renamedIn(step.input, renames);
  if (step.chain && typeof step.chain === 'object') {
    const chain = step.chain as Json;
    if (chain.input !== undefined) renamed.chain = { ...chain, input: renamedIn(chain.input, renames) };
  }
  return renamed as StepJson;
}

/**
 * The graph with `copied` added, `offset` away from where it was copied, the pasted steps
 * selected and nothing else; and their new ids.
 */
export function pasteSteps(graph: Graph, copied: Copied, offset: number): { graph: Graph; ids: string[] } {
  const taken = new Set(graph.nodes.map((node) => node.id));
  const renames = new Map<string, string>();
  for (const step of copied.steps) {
    const id = freeId(step.id, taken);
    taken.add(id);
    renames.set(step.id, id);
  }
  const nodes: StepNode[] = copied.steps.map((step) => {
    const id = renames.get(step.id) ?? step.id;
    const { needs: _needs, ...rest } = withStepsRenamed(step, renames);
    const at = copied.positions[step.id] ?? { x: 0, y: 0 };
    const position = { x: at.x + offset, y: at.y + offset };
    // A step that kept its place in the definition keeps its new one.
    const placed = positionOf(step) ? { position } : {};
    return {
      id,
      type: 'step',
      position,
      selected: true,
      data: { step: { ...rest, ...placed, id }, problems: [] },
    };
  });
  const edges: Edge[] = copied.steps.flatMap((step) => {
    const target = renames.get(step.id) ?? step.id;
    const needs = Array.isArray(step.needs) ? step.needs.filter((need): need is string => typeof need === 'string') : [];
    return needs.flatMap((need) => {
      const source = renames.get(need);
      return source ? [{ id: edgeId(source, target), source, target }] : [];
    });
  });
  return {
    graph: {
      ...graph,
      nodes: [...graph.nodes.map((node) => ({ ...node, selected: false })), ...nodes],
      edges: [...graph.edges.map((edge) => ({ ...edge, selected: false })), ...edges],
    },
    ids: nodes.map((node) => node.id),
  };
}

/** The graph without the steps of `ids` and the edges to or from them, nor the edges of `edgeIds`. */
export function removeSteps(graph: Graph, ids: Set<string>, edgeIds: Set<string> = new Set()): Graph {
  return {
    ...graph,
    nodes: graph.nodes.filter((node) => !ids.has(node.id)),
    edges: graph.edges.filter((edge) => !ids.has(edge.source) && !ids.has(edge.target) && !edgeIds.has(edge.id)),
  };
}

/** The copied steps as the system's clipboard carries them: JSON that says what it is. */
export function clipboardText(copied: Copied): string {
  return JSON.stringify({ kind: CLIPBOARD_KIND, steps: copied.steps, positions: copied.positions }, null, 2);
}

function isPosition(value: unknown): value is XYPosition {
  const at = value as Partial<XYPosition> | null;
  return typeof at === 'object' && at !== null && Number.isFinite(at.x) && Number.isFinite(at.y);
}

/**
 * The steps in a clipboard's text, or why there are none: text that is not the composer's JSON,
 * too long, too many steps, a step without a valid id, or the same id twice.
 */
export function parseClipboard(text: string): { copied: Copied } | { problem: string } {
  const none = { problem: 'The clipboard holds no steps.' };
  if (text.length > MAX_CLIPBOARD_CHARS) return { problem: 'The clipboard holds more than 1 MiB: not steps.' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return none;
  }
  const { kind, steps, positions } = (value ?? {}) as { kind?: unknown; steps?: unknown; positions?: unknown };
  if (kind !== CLIPBOARD_KIND || !Array.isArray(steps)) return none;
  if (steps.length === 0) return none;
  if (steps.length > MAX_PASTED_STEPS) return { problem: `At most ${MAX_PASTED_STEPS} steps paste at once (${steps.length} copied).` };
  const ids = new Set<string>();
  for (const step of steps as unknown[]) {
    const id = (step as { id?: unknown } | null)?.id;
    if (typeof step !== 'object' || step === null || Array.isArray(step) || typeof id !== 'string' || !STEP_ID.test(id)) {
      return { problem: 'A copied step has no valid id.' };
    }
    if (ids.has(id)) return { problem: `Step ${id} is copied twice.` };
    ids.add(id);
  }
  const places = positions && typeof positions === 'object' ? (positions as Record<string, unknown>) : {};
  return {
    copied: {
      steps: steps as StepJson[],
      // Only the places of the steps copied, and only real ones: a paste lands where they say.
      positions: Object.fromEntries([...ids].flatMap((id) => (isPosition(places[id]) ? [[id, { x: places[id].x, y: places[id].y }]] : []))),
    },
  };
}
